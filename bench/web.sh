#!/usr/bin/env bash
# `make bench` (through bench/run.sh), the web part: wrk against `cadence serve` and, in the same
# run on the same machine, against nginx (Debian's nginx-light, started here on 127.0.0.1 with a
# temporary configuration) serving the same two things: GET /healthz (nginx: a fixed "ok") and a
# static asset (/assets/cadence.css, the very file cadence embeds). For each: requests per second,
# cadence/nginx ratio, p99 latency. Then the resident memory (VmRSS from /proc) of `cadence serve`
# idle on an empty store, after the load, and idle again with 10,000 tenants in the store (created
# in one SQL transaction), and after console pages that scan all of them; then a 200,010-step
# plan's console page and its progress.json, with the memory after them beside the memory before.
# Figures are printed, never asserted. Everything listens on 127.0.0.1 only; every process started
# here is stopped by its PID.
# Usage: bench/web.sh BUILD_DIR. Knobs: BENCH_WEB_SECONDS (10), BENCH_WEB_CONNS (64),
# BENCH_WEB_THREADS (wrk threads, 2), BENCH_WEB_TENANTS (10000), BENCH_WEB_PLAN_STEPS (200010).
set -u
BUILD=${1:?usage: bench/web.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tests/listen.sh"
CADENCE=$BUILD/cadence
DUR=${BENCH_WEB_SECONDS:-10}
CONNS=${BENCH_WEB_CONNS:-64}
WRK_THREADS=${BENCH_WEB_THREADS:-2}
TENANTS=${BENCH_WEB_TENANTS:-10000}
PLAN_STEPS=${BENCH_WEB_PLAN_STEPS:-200010}
[ -x "$CADENCE" ] || { echo "missing $CADENCE (build first)" >&2; exit 1; }
for tool in wrk nginx sqlite3 curl; do
    command -v "$tool" >/dev/null || { echo "$tool is required (scripts/install-deps.sh)" >&2; exit 1; }
done

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx's workers (user nobody) read the document root inside it
serve_pid=
nginx_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

export CADENCE_DATA=$tmp/data
unset CADENCE_SMTP_URL CADENCE_PUBLIC_URL
"$CADENCE" init >/dev/null 2>"$tmp/init.err" || { cat "$tmp/init.err" >&2; exit 1; }

start_serve() { # start_serve [ARGS...]: cadence serve on a free port, with ARGS
    "$CADENCE" serve --listen 127.0.0.1:0 "$@" >"$tmp/serve.out" 2>"$tmp/serve.err" &
    serve_pid=$!
    CBASE=$(wait_listening "$tmp/serve.out" "$serve_pid")
    [ -n "$CBASE" ] || { echo "cadence serve did not start" >&2; cat "$tmp/serve.err" >&2; exit 1; }
}
stop_serve() {
    kill -TERM "$serve_pid"
    wait "$serve_pid" 2>/dev/null
    serve_pid=
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$serve_pid/status"; }

# nginx on a free port: the same stylesheet, and /healthz answered from the configuration.
mkdir -p "$tmp/nginx/html/assets" "$tmp/nginx/logs"
cp "$root/src/web/assets/cadence.css" "$tmp/nginx/html/assets/cadence.css"
NPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    types { text/css css; }
    server {
        listen 127.0.0.1:$NPORT;
        root $tmp/nginx/html;
        location = /healthz { default_type text/plain; return 200 "ok\n"; }
    }
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/start.err" &
nginx_pid=$!
NBASE="http://127.0.0.1:$NPORT"
for _ in $(seq 50); do
    curl -s -o /dev/null "$NBASE/healthz" && break
    sleep 0.1
done
curl -s -o /dev/null "$NBASE/healthz" || { echo "nginx did not start" >&2; cat "$tmp/nginx/start.err" >&2; exit 1; }

start_serve
cmp -s <(curl -s "$CBASE/assets/cadence.css") <(curl -s "$NBASE/assets/cadence.css") ||
    { echo "cadence and nginx do not serve the same stylesheet" >&2; exit 1; }
rss_start=$(rss_kib)

# wrk_run URL: "RPS P99_MS"
wrk_run() {
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DUR}s" --latency "$1" >"$tmp/wrk.out" 2>&1
    awk '
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            ms = unit == "us" ? v / 1000 : unit == "s" ? v * 1000 : v
        }
        END { printf "%.0f %.2f\n", rps, ms }' "$tmp/wrk.out"
}

echo "bench web: wrk -t$WRK_THREADS -c$CONNS -d${DUR}s on $(nproc) cores; cadence serve (4 threads) vs" \
    "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') ($(nproc) workers, access log off), same run"
for target in "healthz:/healthz" "asset:/assets/cadence.css"; do
    name=${target%%:*}
    path=${target#*:}
    read -r c_rps c_p99 < <(wrk_run "$CBASE$path")
    read -r n_rps n_p99 < <(wrk_run "$NBASE$path")
    ratio=$(awk -v c="$c_rps" -v n="$n_rps" 'BEGIN { printf "%.2f", (n > 0 ? c / n : 0) }')
    echo "bench web.$name  cadence ${c_rps} req/s p99 ${c_p99} ms | nginx ${n_rps} req/s p99 ${n_p99} ms |" \
        "ratio ${ratio}"
done
rss_load=$(rss_kib)
stop_serve

# 10,000 tenants in one transaction, with the rows the console joins (Klaviyo credential state,
# onboarding progress) in a realistic mix.
sqlite3 "$CADENCE_DATA/cadence.db" <<EOF
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $TENANTS)
INSERT INTO tenants (id, name, email, created_ms, payment, payment_ms)
SELECT printf('brand-%05d', i), printf('Brand %05d', i), printf('owner@brand-%05d.test', i),
       1700000000000 + i, CASE WHEN i % 3 = 0 THEN 'confirmed' ELSE 'awaiting' END,
       CASE WHEN i % 3 = 0 THEN 1700000000000 + i END FROM n;
INSERT INTO credentials (tenant_id, kind, state, updated_ms)
SELECT id, 'klaviyo', CASE created_ms % 4 WHEN 0 THEN 'verified' WHEN 1 THEN 'deferred'
       WHEN 2 THEN 'none' ELSE 'revoked' END, created_ms FROM tenants WHERE id LIKE 'brand-%';
INSERT INTO onboarding_progress (tenant_id, brand_name, contact_email, details_ms, updated_ms)
SELECT id, name, email, created_ms, created_ms FROM tenants WHERE id LIKE 'brand-%' AND created_ms % 2 = 0;
-- two catalog plans, the steps of a 50,000-product sync (pl-b1) and a tenth of it (pl-b2), each
-- step with a field-by-field diff
INSERT INTO plans (id, tenant_id, bundle_dir, bundle_hash, hash, prune, created_ms, created_by,
                   expires_ms, estimate_ms, estimate, n_steps)
VALUES ('pl-b1', 'brand-00001', 'catalog:brand-00001.myshopify.com', 'bh', 'h', 0,
        1700000000000, 'bench', 4102444800000, 0, '{}', $PLAN_STEPS),
       ('pl-b2', 'brand-00002', 'catalog:brand-00002.myshopify.com', 'bh', 'h', 0,
        1700000000000, 'bench', 4102444800000, 0, '{}', $((PLAN_STEPS / 10)));
INSERT INTO plan_state (plan_id, status, updated_ms)
VALUES ('pl-b1', 'planned', 1700000000000), ('pl-b2', 'planned', 1700000000000);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $PLAN_STEPS),
p(id, n) AS (VALUES ('pl-b1', $PLAN_STEPS), ('pl-b2', $((PLAN_STEPS / 10))))
INSERT INTO plan_steps (plan_id, seq, kind, name, action, content_hash, remote_id, remote_updated,
                        deps, calls, diff, note, token)
SELECT p.id, i, 'catalog-variant', 'v-' || i, 'create', 'c', NULL, NULL,
       CASE WHEN i > 10 THEN '[1]' ELSE '[]' END,
       '[{"method":"POST","path":"/api/catalog-variant-bulk-create-jobs","operation":"bulk_create_catalog_variants","per":100}]',
       printf('  title: "Alpine Jacket %d - Small"%c  price: 42.99%c  url: "https://brand.example/products/p-%d?variant=%d"', i, 10, 10, i, i),
       '', p.id || '-' || i FROM p JOIN n ON i <= p.n;
COMMIT;
EOF
count=$(sqlite3 "$CADENCE_DATA/cadence.db" "SELECT COUNT(*) FROM tenants")
pw="bench-$(head -c 64 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c 20)"
printf '%s' "$pw" | "$CADENCE" operator add --email bench@agency.test --role admin >/dev/null 2>&1

start_serve
curl -s -o /dev/null "$CBASE/healthz"
rss_idle_big=$(rss_kib)
jar=$tmp/jar
csrf=$(curl -s -c "$jar" -b "$jar" "$CBASE/admin/login" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//;s/"$//')
curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$csrf" \
    --data-urlencode "email=bench@agency.test" --data-urlencode "password=$pw" "$CBASE/admin/login"
pages=0
for q in "q=zzz" "q=brand-09" "page=150" "" ; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$CBASE/admin?$q")
    [ "$code" = 200 ] && pages=$((pages + 1))
done
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$CBASE/admin/waiting")
[ "$code" = 200 ] && pages=$((pages + 1))
rss_pages_big=$(rss_kib)
stop_serve

# A plan's console page (500 steps of it) and progress.json, which the page polls every second
# while the plan applies: the small plan's, then the big one's; neither may grow with the plan.
# One worker thread, each page viewed three times: a thread's first page leaves its malloc arena
# and SQLite page cache at their working size (about 4 MB), whichever thread serves it, so with
# four threads the figure would depend on which ones served which plan.
start_serve --threads 1
plan_view() { # plan_view ID: "HTTP-code seconds bytes steps-shown progress.json-ms" of its page
    local page prog
    page=$(curl -s -o "$tmp/plan.html" -w '%{http_code} %{time_total}' -b "$jar" "$CBASE/admin/plans/$1")
    prog=$( (for _ in $(seq 10); do
        curl -s -o /dev/null -w '%{time_total}\n' -b "$jar" "$CBASE/admin/plans/$1/progress.json"
    done) | awk '{ s += $1 } END { printf "%.1f", s / NR * 1000 }')
    echo "$page $(wc -c <"$tmp/plan.html") $(grep -o 'class="plan-step card"' "$tmp/plan.html" | grep -c .) $prog"
}
for _ in 1 2 3; do
    read -r small_code small_s small_bytes small_shown small_prog <<<"$(plan_view pl-b2)"
done
rss_plan_small=$(rss_kib)
for _ in 1 2 3; do
    read -r big_code big_s big_bytes big_shown big_prog <<<"$(plan_view pl-b1)"
done
rss_plan_big=$(rss_kib)
stop_serve

echo "bench web.rss  idle, empty store ${rss_start} KiB | after the wrk runs ${rss_load} KiB |" \
    "idle, ${count} tenants ${rss_idle_big} KiB | after ${pages}/5 console pages over them" \
    "(searches, last page, waiting list; one includes an Argon2id sign-in, 64 MiB) ${rss_pages_big} KiB"
echo "bench web.plan_page  $((PLAN_STEPS / 10))-step plan: page HTTP $small_code, $small_shown steps shown," \
    "$small_bytes bytes in $small_s s, progress.json $small_prog ms (mean of 10), RSS after ${rss_plan_small} KiB |" \
    "${PLAN_STEPS}-step plan: page HTTP $big_code, $big_shown steps shown, $big_bytes bytes in $big_s s," \
    "progress.json $big_prog ms, RSS after ${rss_plan_big} KiB | RSS ratio big/small" \
    "$(awk -v a="$rss_plan_big" -v b="$rss_plan_small" 'BEGIN { printf "%.2f", a / b }')" \
    "(bound 1.10: a page holds 501 steps, whatever the plan's size)"
