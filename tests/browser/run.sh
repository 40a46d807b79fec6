#!/usr/bin/env bash
# Starts everything the browser tests need, on loopback only, and runs each tests/browser/*.mjs
# in order against it:
#   - the Klaviyo emulator with the "Acme Outdoors" account (a valid key, and a second key that is
#     revoked through the emulator's admin API before the tests),
#   - the Shopify and SMS stand-ins (cadence-shopify-sim, cadence-sms-sim) behind Step 4,
#   - a real SMTP server (tests/mail/smtp_sink.py on Debian's python3-aiosmtpd) saving messages,
#   - `cadence serve` on a free port with CADENCE_KLAVIYO_URL pointing at the emulator,
#   - a data directory with an admin, an operator and four tenants, each with an onboarding link,
#   - before plan.mjs, a plan of examples/bundle for Acme made with `cadence plan create`, which
#     the operator confirms in the browser and `cadence serve`'s background workers apply.
# The scripts get everything through the environment; `cadence mail send` (run by the console
# script) delivers the outbox to the SMTP server (the server's own outbox loop is off for that). Every process started here is killed by its
# PID on exit. Afterwards no key, password or token may be in any log or file of the run.
source "${CADENCE_SRC:?set by CTest}/tests/e2e/lib.sh"

SIM="${CADENCE_BUILD:?set by CTest}/cadence-klaviyo-sim"
[ -x "$SIM" ] || { echo "no emulator at $SIM" >&2; exit 1; }
for s in shopify sms; do
    [ -x "$CADENCE_BUILD/cadence-$s-sim" ] || { echo "no $CADENCE_BUILD/cadence-$s-sim" >&2; exit 1; }
done
[ -x /usr/bin/chromium ] || { echo "Debian's chromium is missing: run scripts/install-deps.sh" >&2; exit 1; }
[ -f "$CADENCE_SRC/node_modules/playwright-core/package.json" ] ||
    { echo "playwright-core is missing: run scripts/install-deps.sh (npm ci)" >&2; exit 1; }
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
    { echo "python3-aiosmtpd is missing: run scripts/install-deps.sh" >&2; exit 1; }

ARTIFACTS="$CADENCE_BUILD/test-artifacts/browser"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
KEY_FULL=$(random_key)
KEY_REVOKED=$(random_key)
ADMIN_PW="pw-$(head -c 200 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c 24)"
OPER_PW="op-$(head -c 200 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c 24)"
SHOPIFY_TOKEN="shpat_$(head -c 4000 /dev/urandom | tr -dc 'a-f0-9' | head -c 32)"
PS_PUBLIC="pk_$(head -c 2000 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c 34)"
AT_KEY="$(head -c 2000 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c 40)"

wait_for() { # wait_for FILE PATTERN
    for _ in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

"$SIM" --listen 127.0.0.1:0 --account "Acme Outdoors" --key "$KEY_FULL" --key "$KEY_REVOKED" \
    >"$WORK/sim.out" 2>"$WORK/sim.err" &
CLEANUP+=("kill $! 2>/dev/null")
wait_for "$WORK/sim.out" '^listening on ' || { echo "the emulator did not start" >&2; exit 1; }
KBASE=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$WORK/sim.out")

"$CADENCE_BUILD/cadence-shopify-sim" --listen 127.0.0.1:0 --shop "Acme Outdoors" --token "$SHOPIFY_TOKEN" \
    >"$WORK/shopify.out" 2>"$WORK/shopify.err" &
SHOPIFY_PID=$!
CLEANUP+=("kill $SHOPIFY_PID 2>/dev/null")
SHOPIFY_URL=$(wait_listening "$WORK/shopify.out" "$SHOPIFY_PID") || { echo "the Shopify stand-in did not start" >&2; exit 1; }
"$CADENCE_BUILD/cadence-sms-sim" --listen 127.0.0.1:0 --attentive-key "$AT_KEY" \
    >"$WORK/sms.out" 2>"$WORK/sms.err" &
SMS_PID=$!
CLEANUP+=("kill $SMS_PID 2>/dev/null")
SMS_URL=$(wait_listening "$WORK/sms.out" "$SMS_PID") || { echo "the SMS stand-in did not start" >&2; exit 1; }

mkdir -p "$WORK/smtp"
/usr/bin/python3 "$CADENCE_SRC/tests/mail/smtp_sink.py" "$WORK/smtp" >"$WORK/smtp.log" 2>&1 &
CLEANUP+=("kill $! 2>/dev/null")
wait_for "$WORK/smtp/port" '^[0-9]' || { echo "the SMTP server did not start" >&2; exit 1; }
SMTP_PORT=$(cat "$WORK/smtp/port")

run init
expect "init" 0
run_in "$ADMIN_PW" operator add --email admin@agency.test --role admin
expect "admin" 0
run_in "$OPER_PW" operator add --email oper@agency.test --role operator
expect "operator" 0
declare -A TOK
for t in "acme:Acme Outdoors:owner@acme.test" "beta:Beta Brand:owner@beta.test" \
    "gamma:Gamma Goods:owner@gamma.test" "delta:Delta Dunes:owner@delta.test"; do
    IFS=: read -r short name email <<<"$t"
    run tenant add --name "$name" --email "$email"
    expect "tenant $name" 0
    id=$RUN_OUT
    run tenant link "$id"
    expect "link $name" 0
    TOK[$short]=${RUN_OUT##*/}
done
[ "$FAILED" = 0 ] || { finish; exit 1; }

export CADENCE_KLAVIYO_URL=$KBASE CADENCE_KLAVIYO_TIMEOUT_MS=5000
export CADENCE_SHOPIFY_URL=$SHOPIFY_URL CADENCE_POSTSCRIPT_URL=$SMS_URL CADENCE_ATTENTIVE_URL=$SMS_URL
# The example bundle's webhooks read their signing secrets from these.
export ACME_EMAIL_WEBHOOK_SECRET=whsec-email-$$ ACME_SMS_WEBHOOK_SECRET=whsec-sms-$$
CADENCE_MAIL_INTERVAL_S=0 "$CADENCE_BIN" serve --listen 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
CLEANUP+=("kill $SERVE_PID 2>/dev/null")
wait_for "$WORK/serve.out" '^listening on ' || { echo "cadence serve did not start" >&2; cat "$WORK/serve.err" >&2; exit 1; }
BASE=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$WORK/serve.out")

export BASE KBASE KEY_FULL KEY_REVOKED ADMIN_PW OPER_PW ARTIFACTS OPER_EMAIL=oper@agency.test
export ADMIN_EMAIL=admin@agency.test SMTP_DIR="$WORK/smtp" CADENCE_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
export SHOPIFY_TOKEN PS_PUBLIC AT_KEY
export TOK_ACME=${TOK[acme]} TOK_BETA=${TOK[beta]} TOK_GAMMA=${TOK[gamma]} TOK_DELTA=${TOK[delta]}
# A fresh, empty Chromium profile; outside $WORK, since what the browser keeps is not Cadence's.
BROWSER_PROFILE=$(mktemp -d "${TMPDIR:-/tmp}/cadence-chromium-XXXXXX")
CLEANUP+=("rm -rf '$BROWSER_PROFILE'")
export BROWSER_PROFILE

# The console script works on what the onboarding and Step 4 scripts left (a verified key, a
# skipped one, Acme's Shopify and Attentive connections); the plan script on Acme's verified key.
for name in onboarding step4 console plan; do
    if [ "$name" = plan ]; then
        run plan create acme-outdoors "$CADENCE_SRC/examples/bundle" --json
        expect "plan create for the browser" 0 '"status":"planned"'
        PLAN_ID=$(printf '%s' "$RUN_OUT" | jq -r .id)
        PLAN_HASH=$(printf '%s' "$RUN_OUT" | jq -r .hash)
        PLAN_STEPS=$(printf '%s' "$RUN_OUT" | jq '.steps | length')
        export PLAN_ID PLAN_HASH PLAN_STEPS
    fi
    script="$CADENCE_SRC/tests/browser/$name.mjs"
    echo "== $name.mjs"
    node "$script" >"$WORK/node.out" 2>&1
    rc=$?
    cat "$WORK/node.out"
    sed -n 's/^# \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$WORK/node.out" | {
        read -r p f || true
        echo "${p:-0} ${f:-1}" >"$WORK/counts"
    }
    read -r p f <"$WORK/counts"
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    [ "$rc" = 0 ] || [ "$f" != 0 ] || fail "$(basename "$script") exited $rc"
done

kill -TERM "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
cat "$WORK/serve.out" "$WORK/serve.err" "$WORK/node.out" >>"$OUT"
cp "$WORK/serve.err" "$ARTIFACTS/serve.log"
# The exported CSV and the server log are files of this run too.
cp -r "$ARTIFACTS" "$WORK/artifacts-copy"
assert_no_secret "no key or password in any log or file of the run" "$KEY_FULL" "$KEY_REVOKED" "$ADMIN_PW" "$OPER_PW" \
    "$SHOPIFY_TOKEN" "$PS_PUBLIC" "$AT_KEY"
for t in "${TOK[@]}"; do
    grep -qF -- "$t" "$WORK/serve.err" && fail "an onboarding token is in the server log"
done
ok
echo "screenshots: $ARTIFACTS"
finish
