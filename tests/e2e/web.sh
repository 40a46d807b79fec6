#!/usr/bin/env bash
# End to end through `cadence serve` over HTTP, with the Klaviyo emulator behind Verify: every
# route and its errors (healthz, metrics, assets, the help page, each onboarding step), unknown /
# expired / revoked links, another tenant's link, CSRF, oversized and malformed bodies, Verify's
# format errors, a connected key, a rejected key, throttling, the skip path, extras, security
# headers, no key or token in any response, header or log, and a clean SIGTERM shutdown.
source "$(dirname "$0")/lib.sh"

SIM="${CADENCE_BUILD:?set by CTest}/cadence-klaviyo-sim"
[ -x "$SIM" ] || { echo "no emulator at $SIM" >&2; exit 1; }
KEY_FULL=$(random_key)
KEY_WRONG=$(random_key)
SHOPIFY_TOKEN="shpat_$(head -c 4000 /dev/urandom | tr -dc 'a-f0-9' | head -c 32)"
SMS_KEY="ps_$(head -c 2000 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c 30)"

"$SIM" --listen 127.0.0.1:0 --account "Acme Outdoors" --key "$KEY_FULL" \
    >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
CLEANUP+=("kill $SIM_PID 2>/dev/null")
KBASE=$(wait_listening "$WORK/sim.out" "$SIM_PID")
[ -n "$KBASE" ] || { echo "the emulator did not start" >&2; exit 1; }
export CADENCE_KLAVIYO_URL=$KBASE CADENCE_KLAVIYO_TIMEOUT_MS=5000

state_of() { # state_of TENANT [KIND]
    run key show "$1" --kind "${2:-klaviyo}" --json
    printf '%s' "$RUN_OUT" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}

run init
expect "init" 0
run tenant add --name "Acme Outdoors" --email ops@acme.test
expect "tenant acme" 0
run tenant add --name "Blue Fern Tea" --email hello@bluefern.test
expect "tenant blue" 0
run tenant add --name "Later Co"
expect "tenant later" 0

run tenant link acme-outdoors
expect "tenant link prints the URL" 0 "^http://127\.0\.0\.1:8080/onboard/[A-Za-z0-9_-]{43}$"
OLD_A=${RUN_OUT##*/}
run tenant link acme-outdoors
expect "re-issuing a link" 0 "earlier link no longer works"
TOK_A=${RUN_OUT##*/}
CADENCE_PUBLIC_URL=https://onboard.agency.test/ run tenant link blue-fern-tea
expect "CADENCE_PUBLIC_URL is the base" 0 "^https://onboard\.agency\.test/onboard/[A-Za-z0-9_-]{43}$"
TOK_B=${RUN_OUT##*/}
run tenant link later-co
TOK_C=${RUN_OUT##*/}
run tenant link nobody
expect "a link for an unknown tenant" 1 "no tenant"
CADENCE_LINK_TTL_DAYS=0 run tenant link later-co
expect "a bad TTL is refused" 1 "CADENCE_LINK_TTL_DAYS"
run tenant link later-co
TOK_EXPIRED=${RUN_OUT##*/}
run tenant link later-co # the link used below; TOK_C and TOK_EXPIRED are now revoked
TOK_C=${RUN_OUT##*/}
sqlite3 "$CADENCE_DATA/cadence.db" "UPDATE onboarding_links SET revoked_ms = NULL, expires_ms = 1
    WHERE token_sha256 = '$(printf '%s' "$TOK_EXPIRED" | sha256sum | cut -c1-64)'"
run tenant link later-co
expect "only hashes are stored" 0
if sqlite3 "$CADENCE_DATA/cadence.db" .dump | matches -F "$TOK_A"; then fail "a token is stored"; else ok; fi
run tenant link later-co
TOK_C=${RUN_OUT##*/}

CADENCE_VERIFY_PER_ADDRESS=100 "$CADENCE_BIN" serve --listen 127.0.0.1:0 \
    >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
CLEANUP+=("kill $SERVE_PID 2>/dev/null")
PORT=$(wait_listening "$WORK/serve.out" "$SERVE_PID") ||
    { echo "cadence serve did not start" >&2; cat "$WORK/serve.err" >&2; exit 1; }
PORT=${PORT##*:}
ok
grep -q "cadence operator add --email you@agency --role admin" "$WORK/serve.out" && ok ||
    fail "no hint to create the first admin on a fresh data directory"
BASE="http://127.0.0.1:$PORT"
N=0

# req NAME METHOD PATH [curl args...]: CODE, BODY (file), HDRS (file); everything stays in $WORK.
req() {
    local name=$1 method=$2 path=$3
    shift 3
    N=$((N + 1))
    BODY="$WORK/resp-$N-$name.body"
    HDRS="$WORK/resp-$N-$name.hdrs"
    CODE=$(curl -s -X "$method" -o "$BODY" -D "$HDRS" -w '%{http_code}' "$@" "$BASE$path")
}
# check NAME WANT_CODE [PATTERN]: the last response had WANT_CODE and its body matches PATTERN.
check() {
    local name=$1 want=$2 pattern=${3:-}
    if [ "$CODE" != "$want" ]; then
        fail "$name: HTTP $CODE, expected $want"
        return
    fi
    if [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$BODY"; then
        fail "$name: body does not match /$pattern/"
        return
    fi
    ok
}
header() { grep -i "^$1:" "$HDRS" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }
csrf_of() { # csrf_of TOKEN: the CSRF token the step 3 page embeds
    curl -s "$BASE/onboard/$1/klaviyo" | grep -o 'name="csrf" value="[^"]*"' | head -1 |
        sed 's/.*value="//;s/"$//'
}
post() { # post NAME TOKEN ACTION DATA...
    local name=$1 tok=$2 action=$3
    shift 3
    req "$name" POST "/onboard/$tok/$action" "$@"
}

# ---- health, metrics, assets, help ----
req healthz GET /healthz
check "healthz" 200 "^ok$"
CSP="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
[ "$(header Content-Security-Policy)" = "$CSP" ] && ok || fail "CSP header: $(header Content-Security-Policy)"
[ "$(header X-Content-Type-Options)" = nosniff ] && ok || fail "nosniff missing"
req metrics GET /metrics
check "metrics" 200 '^http_requests_total\{route="healthz",status="200"\} 1$'
grep -q '^# TYPE http_requests_total counter$' "$BODY" && ok || fail "metrics: no TYPE line"
if grep -v '^#' "$BODY" | matches -Ev '^[a-z_:]+(\{[^}]*\})? [0-9]+$'; then fail "metrics: a malformed sample"; else ok; fi
req css GET /assets/cadence.css
check "stylesheet" 200 "box-sizing"
[[ "$(header Content-Type)" == text/css* ]] && ok || fail "css content type"
req js GET /assets/cadence.js
check "script" 200 "keyfmt"
req noasset GET /assets/nope.css
check "unknown asset" 404
req help GET /help/klaviyo
check "help page" 200 "<h1>Connect Klaviyo <span class=\"accent\">in 3 minutes\.</span></h1>"
for text in "Tl;dr" "Step by step." "My key gets rejected on the Verify step." \
    "Stored AES-256-GCM with a per-tenant data key wrapped by KMS" "Got your key? Let&#39;s connect it." \
    'id="q-my-key-gets-rejected-on-the-verify-step"' '<li>Webhooks</li>'; do
    grep -qF -- "$text" "$BODY" && ok || fail "help page lacks: $text"
done
if grep -Eq '<script>|<script [^>]*>[^<]' "$BODY"; then fail "inline script on the help page"; else ok; fi
req root GET /
check "landing page" 200 "personal onboarding link"
req nowhere GET /no/such/page
check "unknown route" 404
req badmethod DELETE /healthz
check "wrong method" 405
[ "$(header Allow)" = GET ] && ok || fail "405 without Allow: GET"

# ---- links ----
req onboard GET "/onboard/$TOK_A"
check "a valid link opens step 1" 200 "Onboarding for Acme Outdoors"
[ "$(header Cache-Control)" = no-store ] && ok || fail "token page is cacheable"
[ "$(header Referrer-Policy)" = no-referrer ] && ok || fail "token page without no-referrer"
grep -q 'Blue Fern' "$BODY" && fail "tenant A's page names tenant B" || ok
UNKNOWN=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
req unknown GET "/onboard/$UNKNOWN"
check "an unknown token" 404 "This link does not work"
cp "$BODY" "$WORK/unknown.html"
req revoked GET "/onboard/$OLD_A"
check "a revoked token" 404
cmp -s "$BODY" "$WORK/unknown.html" && ok || fail "a revoked link's page differs from an unknown one's"
req expired GET "/onboard/$TOK_EXPIRED/klaviyo"
check "an expired token" 404
cmp -s "$BODY" "$WORK/unknown.html" && ok || fail "an expired link's page differs from an unknown one's"
req malformed GET "/onboard/x'%20OR%201=1/details"
check "a malformed token" 404
req nostep GET "/onboard/$TOK_A/admin"
check "an unknown step" 404
req b_page GET "/onboard/$TOK_B/details?tenant=acme-outdoors"
check "tenant B's link shows B whatever the query says" 200 "Onboarding for Blue Fern Tea"
grep -q 'Acme' "$BODY" && fail "B's page shows A" || ok

CSRF_A=$(csrf_of "$TOK_A")
CSRF_B=$(csrf_of "$TOK_B")
CSRF_C=$(csrf_of "$TOK_C")
[ ${#CSRF_A} = 43 ] && [ "$CSRF_A" != "$CSRF_B" ] && ok || fail "CSRF tokens are not per link"

# ---- step 1: details ----
post details_bad "$TOK_A" details --data-urlencode "csrf=$CSRF_A" -d brand_name=Acme -d contact_email=nope
check "a bad email is explained" 422 "This is not an email address"
grep -q 'aria-invalid="true"' "$BODY" && ok || fail "the bad field is not marked aria-invalid"
post details_empty "$TOK_A" details --data-urlencode "csrf=$CSRF_A" -d brand_name= -d contact_email=
check "empty details" 422 "Enter your brand"
post details_nocsrf "$TOK_A" details -d brand_name=Evil -d contact_email=evil%40x.test
check "no CSRF token: 403" 403
post details_badcsrf "$TOK_A" details --data-urlencode "csrf=$CSRF_B" -d brand_name=Evil -d contact_email=evil%40x.test
check "another link's CSRF token: 403" 403
post details_ok "$TOK_A" details --data-urlencode "csrf=$CSRF_A" --data-urlencode "brand_name=Acme <Outdoors>" -d contact_email=owner%40acme.test
check "details saved" 303
[[ "$(header Location)" == "/onboard/$TOK_A/payment" ]] && ok || fail "details: Location $(header Location)"
req done_a GET "/onboard/$TOK_A/done"
grep -qF 'Acme &lt;Outdoors&gt;' "$BODY" && ok || fail "the brand name is not escaped on the summary"
grep -q 'Evil' "$BODY" && fail "a rejected post changed data" || ok
req payment GET "/onboard/$TOK_A/payment"
check "payment step" 200 "Awaiting payment"
run tenant paid acme-outdoors
req payment2 GET "/onboard/$TOK_A/payment"
check "payment confirmed" 200 "Payment confirmed"

# ---- abuse: sizes and shapes ----
head -c 100000 /dev/zero | tr '\0' a >"$WORK/big"
post big "$TOK_A" details --data-binary "@$WORK/big"
check "oversized body (Content-Length)" 413
post bigchunked "$TOK_A" details -H "Transfer-Encoding: chunked" --data-binary "@$WORK/big"
check "oversized body (chunked)" 413
post multipart "$TOK_A" verify -F "csrf=$CSRF_A" -F "key=$KEY_FULL"
check "a multipart form" 415
post badescape "$TOK_A" verify --data-binary "csrf=$CSRF_A&key=%zz"
check "a malformed form" 400
post dup "$TOK_A" details --data-binary "csrf=$CSRF_A&brand_name=a&brand_name=b&contact_email=a%40b.test"
check "a repeated field" 400
[ "$(state_of acme-outdoors)" = none ] && ok || fail "rejected requests changed the key state"

# ---- step 3: Verify, format errors (tenant C) and throttling ----
req step3 GET "/onboard/$TOK_C/klaviyo"
check "step 3" 200 '<label for="key">Klaviyo private API key</label>'
for text in '>Verify</button>' '>Continue without entering a key</button>' 'href="/help/klaviyo"' \
    'autocomplete="off"' 'src="/assets/cadence.js"'; do
    grep -qF -- "$text" "$BODY" && ok || fail "step 3 lacks: $text"
done
post short "$TOK_C" verify --data-urlencode "csrf=$CSRF_C" --data-urlencode "key=${KEY_FULL:0:30}"
check "a short key" 422 "You pasted 30 characters"
post public "$TOK_C" verify --data-urlencode "csrf=$CSRF_C" --data-urlencode "key=AbC123"
check "a public key" 422 "Public API Key"
post masked "$TOK_C" verify --data-urlencode "csrf=$CSRF_C" --data-urlencode "key=pk_••••••••••••••••••••••••••••••••••"
check "a masked key" 422 "masked"
[ "$(state_of later-co)" = invalid ] && ok || fail "a format error is not recorded as invalid"
post empty "$TOK_C" verify --data-urlencode "csrf=$CSRF_C" --data-urlencode "key="
check "an empty key" 422 "Paste your key first"
post prefix "$TOK_C" verify --data-urlencode "csrf=$CSRF_C" --data-urlencode "key=sk_abc"
check "another prefix" 422 "starts with sk_"
post throttled "$TOK_C" verify --data-urlencode "csrf=$CSRF_C" --data-urlencode "key=$KEY_FULL"
check "the 6th attempt in 10 minutes is throttled" 429 "Too many attempts"
[ -n "$(header Retry-After)" ] && ok || fail "429 without Retry-After"
[ "$(state_of later-co)" = invalid ] && ok || fail "a throttled attempt changed the state"

# ---- Verify against the emulator ----
post wrong "$TOK_B" verify --data-urlencode "csrf=$CSRF_B" --data-urlencode "key=$KEY_WRONG"
check "a rejected key" 422 "Klaviyo did not accept this key"
[ "$(state_of blue-fern-tea)" = invalid ] && ok || fail "a rejected key is not invalid"
post good "$TOK_A" verify --data-urlencode "csrf=$CSRF_A" --data-urlencode "key=  $KEY_FULL
"
check "a valid key connects" 200 "Connected to Acme Outdoors"
grep -q '<th scope="row">Webhooks</th>' "$BODY" && ok || fail "no per-scope results"
[ "$(state_of acme-outdoors)" = verified ] && ok || fail "the key is not verified"
run key show acme-outdoors --kind klaviyo
expect "key show names the account" 0 "Acme Outdoors"
post skip_verified "$TOK_A" skip --data-urlencode "csrf=$CSRF_A"
check "skipping with a verified key" 409 "already connected"
[ "$(state_of acme-outdoors)" = verified ] && ok || fail "skip changed a verified key"

# ---- the skip path ----
post skip "$TOK_B" skip --data-urlencode "csrf=$CSRF_B"
check "continue without a key" 303
[[ "$(header Location)" == "/onboard/$TOK_B/extras" ]] && ok || fail "skip: Location"
run key show blue-fern-tea
expect "the key is deferred" 0 "klaviyo +deferred"
post skip_nocsrf "$TOK_C" skip -d ''
check "skip without CSRF" 403
[ "$(state_of later-co)" = invalid ] && ok || fail "a forged skip changed the state"

# ---- step 4: extras (each connection's outcomes are in onboard_step4.sh) ----
post extras_bad "$TOK_A" connect/shopify --data-urlencode "csrf=$CSRF_A" -d shopify_domain=acme.com \
    --data-urlencode "shopify_token=$SHOPIFY_TOKEN"
check "a storefront domain is explained" 422 "myshopify.com"
post extras_sms_bad "$TOK_A" connect/postscript --data-urlencode "csrf=$CSRF_A" --data-urlencode "postscript_key=$SMS_KEY"
check "a key that is not Postscript's is explained" 422 "does not start with sk_"
[ "$(state_of acme-outdoors shopify)" = none ] && ok || fail "bad extras stored something"
[ "$(state_of acme-outdoors postscript)" = none ] && ok || fail "a bad SMS key stored something"
post extras_nocsrf "$TOK_A" connect/attentive -d attentive_key=x
check "a connection without CSRF" 403
post extras_unknown "$TOK_A" connect/twilio --data-urlencode "csrf=$CSRF_A"
check "an unknown connection" 404
post extras "$TOK_A" extras --data-urlencode "csrf=$CSRF_A" -d action=done
check "extras finished" 303
post extras_skip "$TOK_B" extras --data-urlencode "csrf=$CSRF_B" -d action=skip
check "extras skipped" 303
req done_b GET "/onboard/$TOK_B/done"
check "B's onboarding is done" 200 "You will send the key later"
req metrics2 GET /metrics
check "metrics count each route and status" 200 '^http_requests_total\{route="onboard_verify",status="422"\} [0-9]+$'
grep -q 'route="onboard_verify",status="429"' "$BODY" && ok || fail "no 429 in metrics"

# ---- shutdown, then nothing secret anywhere ----
kill -TERM "$SERVE_PID"
SERVE_RC=0
wait "$SERVE_PID" || SERVE_RC=$?
[ "$SERVE_RC" = 0 ] && ok || fail "cadence serve exited $SERVE_RC after SIGTERM"
grep -q 'event=web.stopped unfinished=0' "$WORK/serve.err" && ok || fail "no clean stop in the log"
curl -s -o /dev/null "$BASE/healthz" && fail "still answering after SIGTERM" || ok
cat "$WORK/serve.out" "$WORK/serve.err" >>"$OUT"
assert_no_secret "no key in any response, header, log or file" "$KEY_FULL" "$KEY_WRONG" "$SHOPIFY_TOKEN" "$SMS_KEY"
for t in "$TOK_A" "$TOK_B" "$TOK_C" "$OLD_A"; do
    grep -qF -- "$t" "$WORK/serve.err" "$WORK/serve.out" && fail "an onboarding token is in the server log"
done
ok
finish
