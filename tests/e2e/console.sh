#!/usr/bin/env bash
# End to end through the operators' console (/admin) of `cadence serve`, with the Klaviyo emulator
# behind key verification: login and its errors, CSRF on the login form and on every console
# form, brute force -> account lockout (the same answer for an account that does not exist) and
# address lockout, session cookies (HttpOnly, SameSite=Strict, Secure behind https), session
# rotation at login, logout, idle and absolute expiry, sessions stored hashed, roles, another
# tenant's data through a valid onboarding token, the tenants list and search, a tenant's page
# (credential metadata), issuing a link, confirming a payment (the key request for a deferred key,
# from the console and from `cadence tenant paid`), the waiting-for-key list, re-verify with
# throttling and a revoked key, the audit viewer (filters, paging, bad filters), CSV export,
# chain verification (intact, then tampered), oversized bodies, and no key, password, session or
# onboarding token in any response, header, log or file.
source "$(dirname "$0")/lib.sh"

SIM="${CADENCE_BUILD:?set by CTest}/cadence-klaviyo-sim"
[ -x "$SIM" ] || { echo "no emulator at $SIM" >&2; exit 1; }
KEY_FULL=$(random_key)
ADMIN_PW="admin-$(head -c 100 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c 20)"
OPER_PW="oper-$(head -c 100 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c 20)"
NEW_PW="new-$(head -c 100 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c 20)"

"$SIM" --listen 127.0.0.1:0 --account "Acme Outdoors" --key "$KEY_FULL" \
    >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
CLEANUP+=("kill $SIM_PID 2>/dev/null")
KBASE=$(wait_listening "$WORK/sim.out" "$SIM_PID")
[ -n "$KBASE" ] || { echo "the emulator did not start" >&2; exit 1; }
export CADENCE_KLAVIYO_URL=$KBASE CADENCE_KLAVIYO_TIMEOUT_MS=5000

db() { sqlite3 "$CADENCE_DATA/cadence.db" "$@"; }
state_of() { # state_of TENANT: the Klaviyo key's state
    run key show "$1" --kind klaviyo --json
    printf '%s' "$RUN_OUT" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}

run init
expect "init" 0
run_in "$ADMIN_PW" operator add --email admin@agency.test --role admin
expect "admin added" 0
run_in "$OPER_PW" operator add --email Oper@Agency.test --role operator
expect "operator added" 0
for t in "Acme Outdoors:ops@acme.test" "Blue Fern Tea:hello@bluefern.test" "Cold Brew Co:cold@brew.test"; do
    run tenant add --name "${t%%:*}" --email "${t#*:}"
    expect "tenant ${t%%:*}" 0
done
run tenant add --name "Dune Surf"
expect "tenant without an email" 0
run tenant link acme-outdoors
TOK_A=${RUN_OUT##*/}
run tenant link blue-fern-tea
TOK_B=${RUN_OUT##*/}

start_serve() { # start_serve NAME [ENV=VALUE...]: sets PID_<NAME> and BASE
    local name=$1
    shift
    env "$@" "$CADENCE_BIN" serve --listen 127.0.0.1:0 >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    eval "PID_$name=$pid"
    CLEANUP+=("kill $pid 2>/dev/null")
    BASE=$(wait_listening "$WORK/$name.out" "$pid") ||
        { echo "cadence serve did not start" >&2; cat "$WORK/$name.err" >&2; exit 1; }
}

start_serve serve CADENCE_LOGIN_MAX_FAILURES=3 CADENCE_LOGIN_PER_ADDRESS=8 CADENCE_VERIFY_PER_LINK=3 \
    CADENCE_MAIL_INTERVAL_S=0 \
    CADENCE_PUBLIC_URL=http://127.0.0.1:8080
ok
N=0

# req NAME METHOD PATH [curl args...]: CODE, BODY (file), HDRS (file); everything stays in $WORK.
# JAR (a cookie jar file) is used when set.
req() {
    local name=$1 method=$2 path=$3
    shift 3
    N=$((N + 1))
    BODY="$WORK/resp-$N-$name.body"
    HDRS="$WORK/resp-$N-$name.hdrs"
    local jar=()
    [ -n "${JAR:-}" ] && jar=(-b "$JAR" -c "$JAR")
    CODE=$(curl -s -X "$method" -o "$BODY" -D "$HDRS" -w '%{http_code}' "${jar[@]}" "$@" "$BASE$path")
}
check() { # check NAME WANT_CODE [PATTERN]
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
cookies() { grep -i '^set-cookie:' "$HDRS" | tr -d '\r'; }
csrf_in() { grep -o 'name="csrf" value="[^"]*"' "$BODY" | head -1 | sed 's/.*value="//;s/"$//'; }
jar_value() { awk -v n="$2" '$6 == n { print $7 }' "$1" | tail -1; }

# login JAR EMAIL PASSWORD [curl args]: fetches the form, then posts it (CODE/BODY of the post).
login() {
    local jar=$1 email=$2 pw=$3
    shift 3
    JAR=$jar req login_form GET /admin/login "$@"
    local csrf
    csrf=$(csrf_in)
    JAR=$jar req login POST /admin/login --data-urlencode "csrf=$csrf" \
        --data-urlencode "email=$email" --data-urlencode "password=$pw" "$@"
}

# ---- the login page, and the console without a session ----
req console_anon GET /admin
check "the console without a session redirects to the login page" 303
[ "$(header Location)" = /admin/login ] && ok || fail "anonymous: Location $(header Location)"
req tenant_anon GET /admin/tenants/acme-outdoors
check "a tenant page without a session" 303
req paid_anon POST /admin/tenants/acme-outdoors/paid -d csrf=x
check "a console form without a session" 403 "sign in again"
JAR="$WORK/jar-probe" req login_page GET /admin/login
check "login page" 200 '<label for="password">Password</label>'
[ "$(header Cache-Control)" = no-store ] && ok || fail "the login page is cacheable"
cookies | matches 'cadence_login=.*; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=3600$' && ok ||
    fail "pre-login cookie attributes: $(cookies)"
cookies | matches -i 'secure' && fail "Secure cookie behind an http public URL" || ok
if grep -Eq '<script>|<script [^>]*>[^<]' "$BODY"; then fail "inline script on the login page"; else ok; fi

# ---- CSRF and validation on the login form ----
req login_nocsrf POST /admin/login --data-urlencode "email=admin@agency.test" --data-urlencode "password=$ADMIN_PW"
check "login without a CSRF token" 403
cookies | matches cadence_console && fail "a session without CSRF" || ok
JAR="$WORK/jar-x" req login_form_x GET /admin/login
CSRF_X=$(csrf_in)
req login_othercookie POST /admin/login --data-urlencode "csrf=$CSRF_X" -b "cadence_login=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | head -c 42)A" \
    --data-urlencode "email=admin@agency.test" --data-urlencode "password=$ADMIN_PW"
check "a login CSRF token of another browser" 403
JAR="$WORK/jar-x" req login_bad_email POST /admin/login --data-urlencode "csrf=$CSRF_X" -d "email=nope" -d "password=x"
check "a malformed email" 422 "This is not an email address"
JAR="$WORK/jar-x" req login_empty POST /admin/login --data-urlencode "csrf=$CSRF_X" -d "email=" -d "password="
check "an empty form" 422 "Enter your password"
head -c 100000 /dev/zero | tr '\0' a >"$WORK/big"
JAR="$WORK/jar-x" req login_big POST /admin/login --data-binary "@$WORK/big"
check "an oversized login body" 413

# ---- wrong passwords, lockout per account (existing or not) and per address ----
login "$WORK/jar-w" oper@agency.test "wrong password 1"
check "a wrong password" 401 "Wrong email or password"
WRONG_BODY=$(sed 's/value="[^"]*"//g' "$BODY")
login "$WORK/jar-w2" nobody@agency.test "wrong password 1"
check "an unknown account" 401 "Wrong email or password"
[ "$(sed 's/value="[^"]*"//g' "$BODY")" = "$WRONG_BODY" ] && ok || fail "unknown account and wrong password answer differently"
login "$WORK/jar-w" oper@agency.test "wrong password 2"
check "second failure" 401
login "$WORK/jar-w" oper@agency.test "wrong password 3"
check "the third failure locks the account" 429 "Account locked"
grep -Eq 'locked until [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC' "$BODY" && ok || fail "the lockout does not say when it ends"
[ -n "$(header Retry-After)" ] && ok || fail "lockout without Retry-After"
login "$WORK/jar-w" Oper@Agency.test "$OPER_PW"
check "the right password is refused while locked (any case of the email)" 429 "Account locked"
cookies | matches cadence_console && fail "a session while locked" || ok
login "$WORK/jar-w2" nobody@agency.test "wrong password 2"
login "$WORK/jar-w2" nobody@agency.test "wrong password 3"
check "an unknown account locks the same way" 429 "Account locked"
LOCK_UNKNOWN=$(grep -o 'Too many failed sign-ins for this account[^<]*' "$BODY" | sed 's/[0-9]//g')
login "$WORK/jar-w3" oper@agency.test "whatever"
LOCK_KNOWN=$(grep -o 'Too many failed sign-ins for this account[^<]*' "$BODY" | sed 's/[0-9]//g')
[ -n "$LOCK_KNOWN" ] && [ "$LOCK_KNOWN" = "$LOCK_UNKNOWN" ] && ok || fail "locked existing and unknown accounts answer differently"
# From another loopback address: 8 failures lock the address, not the accounts.
for i in 1 2 3 4 5 6 7 8; do
    login "$WORK/jar-addr" "user$i@agency.test" "wrong" --interface 127.0.0.2
done
check "the 8th failure from one address locks the address" 429 "from your network"
login "$WORK/jar-addr" admin@agency.test "$ADMIN_PW" --interface 127.0.0.2
check "a locked address cannot sign in even with the right password" 429 "from your network"
[ "$(db "SELECT COUNT(*) FROM audit_log WHERE action = 'console.login.failed'")" -ge 14 ] && ok || fail "failed logins are not audited"

# ---- signing in: cookies, rotation, hashing ----
printf '# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/admin\tFALSE\t0\tcadence_console\tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n' >"$WORK/jar-admin"
login "$WORK/jar-admin" admin@agency.test "$ADMIN_PW"
check "admin signs in" 303
[ "$(header Location)" = /admin ] && ok || fail "login: Location $(header Location)"
cookies | matches -Ei '^set-cookie: cadence_console=[A-Za-z0-9_-]{43}; Path=/admin; HttpOnly; SameSite=Strict$' && ok ||
    fail "session cookie attributes: $(cookies)"
SESS_A=$(jar_value "$WORK/jar-admin" cadence_console)
[ ${#SESS_A} = 43 ] && [ "$SESS_A" != AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ] && ok || fail "the planted session id survived login"
db .dump | matches -F "$SESS_A" && fail "a session id is stored in plain" || ok
[ "$(db "SELECT COUNT(*) FROM console_sessions WHERE id_sha256 = '$(printf '%s' "$SESS_A" | sha256sum | cut -c1-64)'")" = 1 ] &&
    ok || fail "the session is not stored as its SHA-256"
# A second login from the same browser replaces the session; the old id stops working.
login "$WORK/jar-admin" admin@agency.test "$ADMIN_PW"
SESS_A2=$(jar_value "$WORK/jar-admin" cadence_console)
[ "$SESS_A2" != "$SESS_A" ] && ok || fail "the session id was not rotated at login"
req old_session GET /admin -b "cadence_console=$SESS_A"
check "the session presented at login is ended" 303
[ "$(header Location)" = "/admin/login?ended=1" ] && ok || fail "ended session: Location $(header Location)"

JAR="$WORK/jar-admin"
req tenants GET /admin
check "tenants list" 200 'Acme Outdoors'
for t in "Blue Fern Tea" "Cold Brew Co" "Dune Surf" 'href="/admin/operators"' 'awaiting payment' '>waiting<'; do
    grep -qF -- "$t" "$BODY" && ok || fail "tenants list lacks: $t"
done
[ "$(header Cache-Control)" = no-store ] && ok || fail "console pages are cacheable"
CSRF_ADMIN=$(csrf_in)
[ ${#CSRF_ADMIN} = 43 ] && ok || fail "no CSRF token on the console"
req search GET "/admin?q=FERN"
check "search (any case)" 200 "Blue Fern Tea"
grep -q "Acme Outdoors" "$BODY" && fail "search shows a tenant that does not match" || ok
req search_like GET "/admin?q=%25"
check "a LIKE wildcard is searched literally" 200 "No tenant matches"
req search_bad GET "/admin?q=a%01b"
check "a control character in a search" 400
req search_page_bad GET "/admin?page=-1"
check "a bad page number" 400
JAR=

# ---- another operator: role, and CSRF bound to the session ----
db "DELETE FROM console_login_failures"
login "$WORK/jar-oper" Oper@Agency.test "$OPER_PW"
check "operator signs in" 303
JAR="$WORK/jar-oper" req oper_tenants GET /admin
check "operator sees the tenants" 200 "Acme Outdoors"
grep -q 'href="/admin/operators"' "$BODY" && fail "operators link shown to an operator" || ok
CSRF_OPER=$(csrf_in)
[ "$CSRF_OPER" != "$CSRF_ADMIN" ] && ok || fail "CSRF tokens are not per session"
JAR="$WORK/jar-oper" req oper_tenant GET /admin/tenants/acme-outdoors
grep -q 'id="confirm-payment"' "$BODY" && fail "confirm payment shown to an operator" || ok
JAR="$WORK/jar-oper" req oper_paid POST /admin/tenants/acme-outdoors/paid --data-urlencode "csrf=$CSRF_OPER"
check "an operator cannot confirm a payment" 403 "Admins only"
JAR="$WORK/jar-oper" req oper_ops GET /admin/operators
check "an operator cannot manage operators" 403
JAR="$WORK/jar-admin" req paid_nocsrf POST /admin/tenants/acme-outdoors/paid -d x=1
check "confirm payment without a CSRF token" 403 "This form has expired"
JAR="$WORK/jar-admin" req paid_othercsrf POST /admin/tenants/acme-outdoors/paid --data-urlencode "csrf=$CSRF_OPER"
check "confirm payment with another session's CSRF token" 403
JAR="$WORK/jar-admin" req link_nocsrf POST /admin/tenants/acme-outdoors/link -d x=1
check "issue a link without a CSRF token" 403
[ "$(db "SELECT payment FROM tenants WHERE id = 'acme-outdoors'")" = awaiting ] && ok || fail "a forged post confirmed a payment"

# ---- a valid onboarding token reaches its own tenant only ----
req tok_as_cookie GET /admin/tenants/blue-fern-tea -b "cadence_console=$TOK_A"
check "an onboarding token is no console session" 303
req tok_other GET "/onboard/$TOK_A/details?tenant=blue-fern-tea"
check "A's link with B's id in the query" 200 "Onboarding for Acme Outdoors"
grep -q "Blue Fern" "$BODY" && fail "A's link shows B" || ok
req tok_adminpath GET "/onboard/$TOK_A/../../admin" --path-as-is
[ "$CODE" != 200 ] && ok || fail "path tricks reach the console"
JAR="$WORK/jar-admin" req unknown_tenant GET /admin/tenants/nobody
check "an unknown tenant" 404
JAR="$WORK/jar-admin" req bad_tenant GET "/admin/tenants/Acme%27%20OR%201=1"
check "a malformed tenant id" 404
JAR="$WORK/jar-admin" req paid_unknown POST /admin/tenants/nobody/paid --data-urlencode "csrf=$CSRF_ADMIN"
check "confirming an unknown tenant" 404
[ "$(db "SELECT COUNT(*) FROM tenants")" = 4 ] && ok || fail "a post for an unknown tenant created one"

# ---- the brand connects its key and skips; the console shows it ----
csrf_ob() { curl -s "$BASE/onboard/$1/klaviyo" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"$//'; }
CSRF_OA=$(csrf_ob "$TOK_A")
req ob_verify POST "/onboard/$TOK_A/verify" --data-urlencode "csrf=$CSRF_OA" --data-urlencode "key=$KEY_FULL"
check "the brand's key connects" 200 "Connected to Acme Outdoors"
CSRF_OB=$(csrf_ob "$TOK_B")
req ob_details POST "/onboard/$TOK_B/details" --data-urlencode "csrf=$CSRF_OB" -d "brand_name=Blue Fern" -d "contact_email=owner%40bluefern.test"
check "B's details" 303
req ob_skip POST "/onboard/$TOK_B/skip" --data-urlencode "csrf=$CSRF_OB"
check "B skips the key" 303
run tenant defer cold-brew-co
expect "C defers" 0

JAR="$WORK/jar-admin" req tenant_a GET /admin/tenants/acme-outdoors
check "tenant page" 200 "Acme Outdoors"
LAST4=${KEY_FULL: -4}
FP=$(db "SELECT fingerprint FROM credentials WHERE tenant_id = 'acme-outdoors' AND kind = 'klaviyo'")
for t in ">$LAST4<" "$FP" '<li class="ok">lists: ok</li>' '<li class="ok">webhooks: ok</li>' '>verified<' 'id="reverify"' 'id="confirm-payment"'; do
    grep -qF -- "$t" "$BODY" && ok || fail "tenant page lacks: $t"
done
grep -Eq '<td>[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC</td></tr>' "$BODY" && ok || fail "no verified time"
JAR="$WORK/jar-admin" req tenants2 GET /admin
grep -q 'badge ok">verified' "$BODY" && grep -q 'badge wait">deferred' "$BODY" && ok || fail "key states at a glance"
grep -q '4 · Optional extras' "$BODY" && ok || fail "onboarding step at a glance"

# ---- issuing a link: shown once, old link dead ----
JAR="$WORK/jar-admin" req issue POST /admin/tenants/acme-outdoors/link --data-urlencode "csrf=$CSRF_ADMIN"
check "issue a link" 200 "shown once"
NEW_A=$(grep -o 'value="http://127.0.0.1:8080/onboard/[A-Za-z0-9_-]*"' "$BODY" | sed 's/.*onboard\///;s/"$//')
[ ${#NEW_A} = 43 ] && ok || fail "no new link on the page"
req new_link GET "/onboard/$NEW_A"
check "the new link works" 200 "Onboarding for Acme Outdoors"
req old_link GET "/onboard/$TOK_A"
check "the old link is revoked" 404
[ "$(db "SELECT actor FROM audit_log WHERE action = 'onboarding.link' ORDER BY seq DESC LIMIT 1")" = admin@agency.test ] &&
    ok || fail "the link is not audited with the operator"
JAR="$WORK/jar-admin" req tenant_a2 GET /admin/tenants/acme-outdoors
grep -qF "$NEW_A" "$BODY" && fail "the link is shown again" || ok

# ---- confirming payments: the key request for deferred keys ----
JAR="$WORK/jar-admin" req pay_a POST /admin/tenants/acme-outdoors/paid --data-urlencode "csrf=$CSRF_ADMIN"
check "confirm A's payment (key verified: no email)" 200 "Payment confirmed"
[ "$(db "SELECT COUNT(*) FROM outbox WHERE tenant_id = 'acme-outdoors'")" = 0 ] && ok || fail "an email for a tenant with a key"
JAR="$WORK/jar-admin" req pay_b POST /admin/tenants/blue-fern-tea/paid --data-urlencode "csrf=$CSRF_ADMIN"
check "confirm B's payment (deferred key)" 200 "queued to owner@bluefern.test"
[ "$(db "SELECT kind || ' ' || to_addr || ' ' || status FROM outbox WHERE tenant_id = 'blue-fern-tea'")" = "key_request owner@bluefern.test queued" ] &&
    ok || fail "B's key request is not in the outbox"
[ "$(db "SELECT actor FROM audit_log WHERE action = 'tenant.paid' AND tenant_id = 'blue-fern-tea'")" = admin@agency.test ] &&
    ok || fail "the payment is not audited with the operator"
[ "$(db "SELECT actor FROM audit_log WHERE action = 'key.request' AND tenant_id = 'blue-fern-tea'")" = admin@agency.test ] &&
    ok || fail "the key request is not audited"
req b_old_link GET "/onboard/$TOK_B"
check "B's old link was replaced by the emailed one" 404
JAR="$WORK/jar-admin" req pay_b2 POST /admin/tenants/blue-fern-tea/paid --data-urlencode "csrf=$CSRF_ADMIN"
check "confirming again" 200 "already confirmed"
[ "$(db "SELECT COUNT(*) FROM outbox WHERE tenant_id = 'blue-fern-tea'")" = 1 ] && ok || fail "a second confirmation queued a second email"
run tenant paid cold-brew-co
expect "cadence tenant paid queues the key request too" 0 "key request with a fresh onboarding link is queued to cold@brew.test"
run tenant paid cold-brew-co
expect "cadence tenant paid again" 0 "already confirmed"
[ "$(db "SELECT COUNT(*) FROM outbox WHERE tenant_id = 'cold-brew-co' AND kind = 'key_request'")" = 1 ] && ok || fail "C's key request count"
run tenant defer dune-surf
run tenant paid dune-surf
expect "no address to ask" 0 "no email address"

JAR="$WORK/jar-admin" req waiting GET /admin/waiting
check "waiting for key" 200 "Blue Fern Tea"
grep -q "Key request to owner@bluefern.test queued" "$BODY" && ok || fail "waiting: B's queued email"
grep -q "Dune Surf" "$BODY" && grep -q "No email sent" "$BODY" && ok || fail "waiting: D without email"
grep -q "Acme Outdoors" "$BODY" && fail "waiting lists a tenant with a key" || ok
run mail send
expect "the outbox is delivered (.eml)" 0 "2 sent"
JAR="$WORK/jar-admin" req waiting2 GET /admin/waiting
grep -Eq "Key request sent to owner@bluefern.test</td><td>[0-9]{4}-" "$BODY" && ok || fail "waiting: sent and when"
EML=$(ls "$CADENCE_DATA"/outbox/*.eml | head -1)
# The bodies may be quoted-printable: read them as a mail client would.
LINK_B=$(python3 -c '
import email, re, sys
for f in sys.argv[1:]:
    m = email.message_from_binary_file(open(f, "rb"))
    if "owner@bluefern.test" in m["To"]:
        print(re.search(r"http://127\.0\.0\.1:8080/onboard/[A-Za-z0-9_-]{43}", m.get_payload(decode=True).decode()).group(0))
' "$CADENCE_DATA"/outbox/*.eml)
[ -n "$EML" ] && [ -n "$LINK_B" ] && ok || fail "no link in the emails"
req emailed_link GET "/onboard/${LINK_B##*/}"
[ "$CODE" = 200 ] && ok || fail "the emailed link does not work"

# ---- re-verify: ok, throttled, revoked ----
JAR="$WORK/jar-admin" req reverify POST /admin/tenants/acme-outdoors/reverify --data-urlencode "csrf=$CSRF_ADMIN"
check "re-verify a good key" 200 "Key verified: connected to Acme Outdoors"
JAR="$WORK/jar-admin" req reverify_none POST /admin/tenants/blue-fern-tea/reverify --data-urlencode "csrf=$CSRF_ADMIN"
check "re-verify without a key" 409
curl -s -o /dev/null -X POST "$KBASE/__sim/keys/revoke" -H 'Content-Type: application/json' \
    --data-binary "{\"key\":\"$KEY_FULL\"}"
JAR="$WORK/jar-admin" req reverify_revoked POST /admin/tenants/acme-outdoors/reverify --data-urlencode "csrf=$CSRF_ADMIN"
check "re-verify a revoked key" 422 "did not verify \(rejected\)"
[ "$(state_of acme-outdoors)" = revoked ] && ok || fail "the revoked key is not marked revoked"
grep -q 'badge bad">revoked' "$BODY" && ok || fail "the tenant page does not show revoked"
[ "$(db "SELECT actor FROM audit_log WHERE action = 'key.revoked' ORDER BY seq DESC LIMIT 1")" = admin@agency.test ] &&
    ok || fail "the revocation is not audited with the operator"
JAR="$WORK/jar-admin" req reverify_3 POST /admin/tenants/acme-outdoors/reverify --data-urlencode "csrf=$CSRF_ADMIN"
check "a third re-verify" 422
JAR="$WORK/jar-admin" req reverify_throttled POST /admin/tenants/acme-outdoors/reverify --data-urlencode "csrf=$CSRF_ADMIN"
check "the 4th re-verify in a row is throttled" 429 "Too many verifications"
[ -n "$(header Retry-After)" ] && ok || fail "throttled re-verify without Retry-After"

# ---- operators page (admin) ----
JAR="$WORK/jar-admin" req ops GET /admin/operators
check "operators page" 200 "Oper@Agency.test"
JAR="$WORK/jar-admin" req ops_bad POST /admin/operators --data-urlencode "csrf=$CSRF_ADMIN" -d email=bad -d role=root -d password=short
check "a bad new operator" 422 "This is not an email address"
grep -q "Choose operator or admin" "$BODY" && grep -q "at least 12 characters" "$BODY" && ok || fail "operator form errors"
JAR="$WORK/jar-admin" req ops_add POST /admin/operators --data-urlencode "csrf=$CSRF_ADMIN" -d email=new%40agency.test -d role=operator --data-urlencode "password=$NEW_PW"
check "add an operator" 200 "Added new@agency.test as operator"
JAR="$WORK/jar-admin" req ops_dup POST /admin/operators --data-urlencode "csrf=$CSRF_ADMIN" -d email=new%40agency.test -d role=operator --data-urlencode "password=$NEW_PW"
check "a duplicate operator" 409 "already exists"
login "$WORK/jar-new" new@agency.test "$NEW_PW"
check "the new operator signs in" 303

# ---- audit viewer, CSV, verify chain ----
JAR="$WORK/jar-admin" req audit GET /admin/audit
check "audit viewer" 200 'console.login'
JAR="$WORK/jar-admin" req audit_tenant GET "/admin/audit?tenant=blue-fern-tea"
check "filter by tenant" 200 'tenant.paid'
if grep -o '<tr><td>[0-9]*</td><td><time>[^<]*</time></td><td>[^<]*</td>' "$BODY" | grep -v '<td>blue-fern-tea</td>$' | matches .; then
    fail "the tenant filter shows other tenants"
else ok; fi
JAR="$WORK/jar-admin" req audit_actor GET "/admin/audit?actor=admin%40agency.test&action=tenant.paid"
check "filter by actor and action" 200 'tenant.paid'
ROWS=$(grep -o '<td>tenant.paid</td>' "$BODY" | wc -l)
[ "$ROWS" = 2 ] && ok || fail "actor+action filter: $ROWS rows, expected 2"
JAR="$WORK/jar-admin" req audit_prefix GET "/admin/audit?action=klaviyo.*&status=401"
check "filter by action prefix and status" 200 '<td>401</td>'
JAR="$WORK/jar-admin" req audit_time GET "/admin/audit?since=2000-01-01&until=2000-01-02"
check "filter by time" 200 "No records match"
for bad in "status=abc" "since=yesterday" "tenant=%3Cscript%3E" "action=a*b" "after=-3"; do
    JAR="$WORK/jar-admin" req audit_bad GET "/admin/audit?$bad"
    check "a bad filter ($bad)" 400 "Please check the filters"
done
grep -q '<script>' "$BODY" && fail "a filter value is echoed unescaped" || ok
TOTAL=$(db "SELECT COUNT(*) FROM audit_log WHERE ref_seq IS NULL")
JAR="$WORK/jar-admin" req audit_p1 GET /admin/audit
NEXT=$(grep -o 'href="/admin/audit?after=[0-9]*"' "$BODY" | sed 's/.*after=//;s/"//')
[ "$TOTAL" -gt 50 ] && [ -n "$NEXT" ] && ok || fail "no next page ($TOTAL records)"
JAR="$WORK/jar-admin" req audit_p2 GET "/admin/audit?after=$NEXT"
check "second page" 200 "First page"
FIRST2=$(grep -o '<tr><td>[0-9]*</td>' "$BODY" | head -1 | tr -dc 0-9)
[ "$FIRST2" -gt "$NEXT" ] && ok || fail "page 2 does not continue after $NEXT"

JAR="$WORK/jar-admin" req csv GET "/admin/audit.csv?tenant=blue-fern-tea"
check "CSV export" 200 '^seq,'
[[ "$(header Content-Type)" == text/csv* ]] && ok || fail "CSV content type"
[ "$(header Content-Disposition)" = 'attachment; filename="cadence-audit.csv"' ] && ok || fail "CSV disposition"
grep -q 'tenant.paid' "$BODY" && ! grep -q 'acme-outdoors' "$BODY" && ok || fail "CSV ignores the filter"
[ "$(db "SELECT COUNT(*) FROM audit_log WHERE action = 'audit.export' AND actor = 'admin@agency.test'")" = 1 ] && ok || fail "the export is not audited"
JAR="$WORK/jar-oper" req csv_oper GET /admin/audit.csv
check "an operator may export too" 200 '^seq,'

JAR="$WORK/jar-admin" req verify_nocsrf POST /admin/audit/verify -d x=1
check "verify chain without CSRF" 403
JAR="$WORK/jar-admin" req verify_chain POST /admin/audit/verify --data-urlencode "csrf=$CSRF_ADMIN"
check "verify chain" 200 "Chain verified"
grep -Eq "All [0-9]+ records verify" "$BODY" && ok || fail "verify chain: no count"

# ---- sessions end: logout, idle, absolute ----
JAR="$WORK/jar-new" req new_home GET /admin
CSRF_NEW=$(csrf_in)
SESS_NEW=$(jar_value "$WORK/jar-new" cadence_console)
JAR="$WORK/jar-new" req logout_nocsrf POST /admin/logout -d x=1
check "logout without CSRF" 403
JAR="$WORK/jar-new" req logout POST /admin/logout --data-urlencode "csrf=$CSRF_NEW"
check "logout" 303
cookies | matches -i '^set-cookie: cadence_console=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0$' && ok || fail "logout does not clear the cookie"
req after_logout GET /admin -b "cadence_console=$SESS_NEW"
check "a logged-out session is dead" 303
HASH_OPER=$(printf '%s' "$(jar_value "$WORK/jar-oper" cadence_console)" | sha256sum | cut -c1-64)
db "UPDATE console_sessions SET last_seen_ms = last_seen_ms - 31 * 60000 WHERE id_sha256 = '$HASH_OPER'"
JAR="$WORK/jar-oper" req idle GET /admin
check "an idle session has expired" 303
[ "$(header Location)" = "/admin/login?ended=1" ] && ok || fail "idle: Location $(header Location)"
HASH_ADMIN=$(printf '%s' "$(jar_value "$WORK/jar-admin" cadence_console)" | sha256sum | cut -c1-64)
JAR="$WORK/jar-admin" req still GET /admin
check "the admin's session is still alive" 200
db "UPDATE console_sessions SET expires_ms = 1 WHERE id_sha256 = '$HASH_ADMIN'"
JAR="$WORK/jar-admin" req absolute GET /admin
check "a session past its absolute expiry has ended" 303
req ended_page GET "/admin/login?ended=1"
check "the login page says why" 200 "Your session has ended"

# ---- a tampered log is caught ----
login "$WORK/jar-admin3" admin@agency.test "$ADMIN_PW"
JAR="$WORK/jar-admin3" req home3 GET /admin
CSRF3=$(csrf_in)
db "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET detail = 'edited' WHERE seq = 3"
JAR="$WORK/jar-admin3" req verify_broken POST /admin/audit/verify --data-urlencode "csrf=$CSRF3"
check "verify chain finds the edit" 200 "The chain is broken"
grep -q "first bad record: #3" "$BODY" && ok || fail "verify chain: wrong first bad record"

# ---- Secure cookies behind https ----
kill -TERM "$PID_serve"
wait "$PID_serve" 2>/dev/null
start_serve serve2 CADENCE_PUBLIC_URL=https://console.agency.test
req https_login GET /admin/login
cookies | matches 'cadence_login=.*; HttpOnly; SameSite=Strict; Max-Age=3600; Secure$' && ok || fail "no Secure cookie behind https: $(cookies)"
kill -TERM "$PID_serve2"
wait "$PID_serve2" 2>/dev/null

# ---- nothing secret anywhere ----
cat "$WORK"/serve*.out "$WORK"/serve*.err >>"$OUT"
assert_no_secret "no key or password in any response, header, log or file" "$KEY_FULL" "$ADMIN_PW" "$OPER_PW" "$NEW_PW"
for s in "$SESS_A" "$SESS_A2" "$SESS_NEW" "$NEW_A" "$TOK_B"; do
    grep -qF -- "$s" "$WORK"/serve*.err "$WORK"/serve*.out && fail "a session id or link token is in the server log"
done
ok
finish
