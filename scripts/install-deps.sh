#!/usr/bin/env bash
# Installs what Cadence needs to build, test and run on Debian 12. Idempotent: every package is
# checked first and apt-get runs only when something is missing; npm packages come from the
# committed package-lock.json and are installed only when node_modules is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git ca-certificates
  clang clang-format clang-tidy cppcheck valgrind libclang-rt-14-dev
  libssl-dev libcurl4-openssl-dev libsqlite3-dev sqlite3 libmicrohttpd-dev libjansson-dev
  libargon2-dev libcmocka-dev
  python3 python3-aiosmtpd nodejs npm chromium
  bc curl jq time wrk nginx-light
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    # nodejs/npm may come from elsewhere (NodeSource); a working binary is enough.
    case "$p" in
      nodejs) command -v node >/dev/null && continue ;;
      npm) command -v npm >/dev/null && continue ;;
    esac
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: system packages present"
fi

if [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "install-deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  else
    echo "install-deps: npm packages present"
  fi
fi
