#!/usr/bin/env bash
# End to end: onboarding Step 4 (the brand's Shopify store and SMS providers) through `cadence
# serve` over HTTP, with cadence-shopify-sim and cadence-sms-sim behind each Verify. Every outcome
# of each section's own form: store domain errors, token and key format errors (a Postscript
# public key explained), Shopify ok (shop name and scopes) / missing read_products / a token that
# can write (least-privilege warning) / a wrong token / unreachable, Postscript ok / wrong,
# Attentive ok / wrong; a failed submit keeps the domain and never fills a secret back in; a
# Klaviyo rejection of a pk_ key points to Postscript; the console shows each connection with the
# shop's name, domain and scopes; the sealed records, the audit trail, and no plaintext secret in
# the data directory or any response, header or log.
source "$(dirname "$0")/lib.sh"

B="${CADENCE_BUILD:?set by CTest}"
for s in shopify sms klaviyo; do [ -x "$B/cadence-$s-sim" ] || { echo "no $B/cadence-$s-sim" >&2; exit 1; }; done

hex32() { head -c 4000 /dev/urandom | tr -dc 'a-f0-9' | head -c 32; }
alnum() { head -c 2000 /dev/urandom | tr -dc 'a-zA-Z0-9' | head -c "$1"; }
TOK_OK="shpat_$(hex32)"
TOK_NOPROD="shpat_$(hex32)"
TOK_WRITE="shpat_$(hex32)"
TOK_WRONG="shpat_$(hex32)"
PS_KEY="sk_$(alnum 32)"
PS_WRONG="sk_$(alnum 32)"
PS_PUBLIC="pk_$(alnum 34)"
AT_KEY="$(alnum 40)"
AT_WRONG="$(alnum 40)"
KLAVIYO_KEY=$(random_key)
ADMIN_PW="pw-$(alnum 24)"
ALL_SECRETS=("$TOK_OK" "$TOK_NOPROD" "$TOK_WRITE" "$TOK_WRONG" "$PS_KEY" "$PS_WRONG" "$PS_PUBLIC"
    "$AT_KEY" "$AT_WRONG" "$KLAVIYO_KEY" "$ADMIN_PW")

start_sim() { # start_sim NAME ARGS...: starts a stand-in, waits for its line, sets SIM_URL.
    local name=$1
    shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    CLEANUP+=("kill $pid 2>/dev/null")
    SIM_URL=$(wait_listening "$WORK/$name.out" "$pid")
    [ -n "$SIM_URL" ] || { echo "$name did not start" >&2; cat "$WORK/$name.err" >&2; exit 1; }
}
start_sim ok "$B/cadence-shopify-sim" --listen 127.0.0.1:0 --shop "Acme Outdoors" --token "$TOK_OK"
URL_OK=$SIM_URL
start_sim noprod "$B/cadence-shopify-sim" --listen 127.0.0.1:0 --shop "Beta Brand" --token "$TOK_NOPROD" --scopes read_inventory
URL_NOPROD=$SIM_URL
start_sim write "$B/cadence-shopify-sim" --listen 127.0.0.1:0 --shop "Gamma Goods" --token "$TOK_WRITE" --scopes read_products,write_products,read_inventory
URL_WRITE=$SIM_URL
start_sim sms "$B/cadence-sms-sim" --listen 127.0.0.1:0 --postscript-key "$PS_KEY" --attentive-key "$AT_KEY"
URL_SMS=$SIM_URL
start_sim klaviyo "$B/cadence-klaviyo-sim" --listen 127.0.0.1:0 --account "Acme Outdoors" --key "$KLAVIYO_KEY"
URL_KLAVIYO=$SIM_URL
DEAD_URL="http://127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export CADENCE_PROVIDER_TIMEOUT_MS=5000 CADENCE_KLAVIYO_URL=$URL_KLAVIYO CADENCE_KLAVIYO_TIMEOUT_MS=5000
export CADENCE_POSTSCRIPT_URL=$URL_SMS CADENCE_ATTENTIVE_URL=$URL_SMS

state_of() { # state_of TENANT KIND
    run key show "$1" --kind "$2" --json
    printf '%s' "$RUN_OUT" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}

run init
expect "init" 0
run_in "$ADMIN_PW" operator add --email admin@agency.test --role admin
expect "admin" 0
run tenant add --name "Acme Outdoors" --email owner@acme.test
expect "tenant acme" 0
run tenant link acme-outdoors
TOK=${RUN_OUT##*/}

# One server per Shopify stand-in: CADENCE_SHOPIFY_URL serves every shop, as in production.
SERVE_PID=
serve() { # serve SHOPIFY_URL: (re)starts cadence serve against it; sets BASE
    if [ -n "$SERVE_PID" ]; then
        kill -TERM "$SERVE_PID"
        wait "$SERVE_PID" 2>/dev/null
        cat "$WORK/serve.out" "$WORK/serve.err" >>"$OUT"
    fi
    CADENCE_SHOPIFY_URL=$1 CADENCE_VERIFY_PER_LINK=100 CADENCE_VERIFY_PER_ADDRESS=100 \
        "$CADENCE_BIN" serve --listen 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
    SERVE_PID=$!
    CLEANUP+=("kill $SERVE_PID 2>/dev/null")
    BASE=$(wait_listening "$WORK/serve.out" "$SERVE_PID") ||
        { echo "cadence serve did not start" >&2; cat "$WORK/serve.err" >&2; exit 1; }
}
N=0
req() { # req NAME METHOD PATH [curl args...]: CODE, BODY, HDRS (files in $WORK)
    local name=$1 method=$2 path=$3
    shift 3
    N=$((N + 1))
    BODY="$WORK/resp-$N-$name.body"
    HDRS="$WORK/resp-$N-$name.hdrs"
    CODE=$(curl -s -X "$method" -o "$BODY" -D "$HDRS" -w '%{http_code}' "$@" "$BASE$path")
}
check() { # check NAME WANT_CODE [PATTERN...]: the last response had WANT_CODE and matches each
    local name=$1 want=$2
    shift 2
    if [ "$CODE" != "$want" ]; then
        fail "$name: HTTP $CODE, expected $want"
        return
    fi
    local p
    for p in "$@"; do
        grep -Eq -- "$p" "$BODY" || { fail "$name: body does not match /$p/"; return; }
    done
    ok
}
lacks() { # lacks NAME PATTERN: the last body does not match
    if grep -Eq -- "$2" "$BODY"; then fail "$1: body matches /$2/"; else ok; fi
}
header() { grep -i "^$1:" "$HDRS" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }
connect() { # connect NAME PROVIDER DATA...: posts that section's form with the link's CSRF token
    local name=$1 p=$2
    shift 2
    req "$name" POST "/onboard/$TOK/connect/$p" --data-urlencode "csrf=$CSRF" "$@"
}
# value_of FIELD: the value attribute the last page rendered for the input named FIELD
value_of() { grep -o "<input id=\"$1\" name=\"$1\" type=\"[a-z]*\" value=\"[^\"]*\"" "$BODY" | sed 's/.*value="//;s/"$//'; }

serve "$URL_OK"
req page GET "/onboard/$TOK/extras"
check "step 4 page" 200 'id="shopify"' 'id="postscript"' 'id="attentive"' 'Skip for now'
CSRF=$(grep -o 'name="csrf" value="[^"]*"' "$BODY" | head -1 | sed 's/.*value="//;s/"$//')
[ "$(grep -o '<form method="post"' "$BODY" | wc -l)" = 4 ] && ok || fail "three connection forms and the finish form"
for a in connect/shopify connect/postscript connect/attentive extras; do
    grep -q "action=\"/onboard/$TOK/$a\"" "$BODY" && ok || fail "no form posting to $a"
done
[ "$(grep -o 'name="csrf"' "$BODY" | wc -l)" = 4 ] && ok || fail "every form carries a CSRF token"
for f in shopify_token postscript_key attentive_key; do
    grep -q "<input id=\"$f\" name=\"$f\" type=\"password\" value=\"\" autocomplete=\"off\"" "$BODY" &&
        ok || fail "$f is not an empty password input with autocomplete=off"
done
check "Shopify instructions, step by step" 200 'Settings → Apps and sales channels' 'Develop apps' \
    'Create an app' 'Configure Admin API scopes' 'read_products.*read_inventory' 'Install app' \
    'Reveal token once' 'read access only'
check "Postscript and Attentive instructions" 200 'Private Key' 'Manage Custom Apps'

# ---- the form's errors: nothing is sent, nothing stored ----
req forged POST "/onboard/$TOK/connect/shopify" -d csrf=forged -d shopify_domain=acme --data-urlencode "shopify_token=$TOK_OK"
check "a forged form is refused" 403
connect dom_custom shopify -d shopify_domain=www.acme-outdoors.com --data-urlencode "shopify_token=$TOK_OK"
check "a storefront's own domain" 422 "Settings → Domains"
[ "$(value_of shopify_domain)" = www.acme-outdoors.com ] && ok || fail "the typed domain is not kept"
[ "$(value_of shopify_token)" = "" ] && ok || fail "the token was filled back in"
connect dom_email shopify -d shopify_domain=owner@acme.test --data-urlencode "shopify_token=$TOK_OK"
check "an email address as the domain" 422 "looks like an email address"
connect dom_empty shopify -d shopify_domain= --data-urlencode "shopify_token=$TOK_OK"
check "no domain" 422 "Enter your store(.|&#39;)s address"
connect dom_admin shopify -d shopify_domain=https://admin.shopify.com --data-urlencode "shopify_token=$TOK_OK"
check "Shopify's own address" 422 "Shopify(.|&#39;)s own address"
connect tok_secret shopify -d shopify_domain=acme-outdoors --data-urlencode "shopify_token=shpss_$(hex32)"
check "the app's API secret key" 422 "API secret key"
[ "$(value_of shopify_domain)" = acme-outdoors ] && ok || fail "the domain is not kept after a token error"
connect tok_short shopify -d shopify_domain=acme-outdoors --data-urlencode "shopify_token=${TOK_OK:0:20}"
check "a token cut short" 422 "You pasted 20 characters"
connect tok_empty shopify -d shopify_domain=acme-outdoors -d shopify_token=
check "no token" 422 "Nothing was pasted"
connect tok_storefront shopify -d shopify_domain=acme-outdoors --data-urlencode "shopify_token=$(hex32)"
check "a Storefront token" 422 "Storefront API access token"
connect ps_public postscript --data-urlencode "postscript_key=$PS_PUBLIC"
check "a Postscript public key" 422 "Public Key of your Postscript key pair"
connect ps_bad postscript --data-urlencode "postscript_key=$AT_KEY"
check "not a Postscript key" 422 "does not start with sk_"
connect at_bearer attentive --data-urlencode "attentive_key=Bearer $AT_KEY"
check "Attentive with Bearer" 422 "without the word Bearer"
connect at_klaviyo attentive --data-urlencode "attentive_key=$KLAVIYO_KEY"
check "a Klaviyo key in the Attentive field" 422 "not an Attentive API key"
for k in shopify postscript attentive; do
    [ "$(state_of acme-outdoors $k)" = none ] && ok || fail "a format error changed the $k credential"
done

# ---- Shopify: a wrong token, then the right one ----
connect shop_wrong shopify -d shopify_domain=acme-outdoors --data-urlencode "shopify_token=$TOK_WRONG"
check "a wrong token" 422 "Shopify did not accept this token" "HTTP 401"
[ "$(state_of acme-outdoors shopify)" = invalid ] && ok || fail "wrong token: state is not invalid"
connect shop_ok shopify -d shopify_domain="https://Acme-Outdoors.myshopify.com/admin" --data-urlencode "shopify_token=$TOK_OK"
check "Shopify connected" 200 "Connected to Acme Outdoors" "acme-outdoors\.myshopify\.com" \
    '<li class="ok">read_products</li>' '<li class="ok">read_inventory</li>'
lacks "no least-privilege warning for a read-only token" 'id="shopify-warning"'
[ "$(state_of acme-outdoors shopify)" = verified ] && ok || fail "shopify ok: state is not verified"
[ "$(sqlite3 "$CADENCE_DATA/cadence.db" "SELECT extra FROM credentials WHERE tenant_id = 'acme-outdoors' AND kind = 'shopify'")" = '{"shop":"acme-outdoors.myshopify.com"}' ] &&
    ok || fail "the normalised shop domain is not recorded beside the token"
run key show acme-outdoors --kind shopify
expect "sealed as the CLI does: last 4 and fingerprint" 0 "shopify +verified +…${TOK_OK: -4} +fingerprint [0-9a-f]{16}.*account Acme Outdoors \(acme-outdoors\.myshopify\.com\)"

# ---- Postscript and Attentive ----
connect ps_wrong postscript --data-urlencode "postscript_key=$PS_WRONG"
check "Postscript wrong key" 422 "Postscript did not accept this key" "HTTP 401"
connect ps_ok postscript --data-urlencode "postscript_key=$PS_KEY"
check "Postscript connected" 200 "Connected to Acme Outdoors"
[ "$(state_of acme-outdoors postscript)" = verified ] && ok || fail "postscript: state is not verified"
connect at_wrong attentive --data-urlencode "attentive_key=$AT_WRONG"
check "Attentive wrong key" 422 "Attentive did not accept this key" "HTTP 401"
[ "$(state_of acme-outdoors attentive)" = invalid ] && ok || fail "attentive wrong: state is not invalid"
connect at_ok attentive --data-urlencode "attentive_key=$AT_KEY"
check "Attentive connected" 200 "Connected to Acme Outdoors"
[ "$(state_of acme-outdoors attentive)" = verified ] && ok || fail "attentive: state is not verified"
connect ps_wrong2 postscript --data-urlencode "postscript_key=$PS_WRONG"
check "a wrong candidate" 422 "did not accept"
[ "$(state_of acme-outdoors postscript)" = verified ] && ok || fail "a rejected candidate demoted the working key"

# ---- Shopify: missing read_products, a token that can write, unreachable ----
serve "$URL_NOPROD"
connect shop_noprod shopify -d shopify_domain=beta-brand --data-urlencode "shopify_token=$TOK_NOPROD"
check "missing read_products" 422 "cannot read your products" "read_products"
run key show acme-outdoors --kind shopify
expect "a token lacking read_products did not replace the working one" 0 "…${TOK_OK: -4}"
serve "$URL_WRITE"
connect shop_write shopify -d shopify_domain=gamma-goods.myshopify.com --data-urlencode "shopify_token=$TOK_WRITE"
check "a token that can write" 200 "Connected to Gamma Goods" 'id="shopify-warning"' \
    "Least privilege" "write_products"
serve "$DEAD_URL"
connect shop_dead shopify -d shopify_domain=gamma-goods --data-urlencode "shopify_token=$TOK_WRITE"
check "Shopify unreachable" 503 "could not reach Shopify" "nothing was stored"
[ "$(state_of acme-outdoors shopify)" = verified ] && ok || fail "unreachable: state changed"

# ---- the Klaviyo field: a pk_ key Klaviyo rejects may be a Postscript public key ----
req klaviyo_page GET "/onboard/$TOK/klaviyo"
req klaviyo_pk POST "/onboard/$TOK/verify" --data-urlencode "csrf=$CSRF" --data-urlencode "key=$PS_PUBLIC"
check "a rejected pk_ key points to Postscript" 422 "Klaviyo did not accept this key" \
    "public keys also start with pk_" "href=\"/onboard/$TOK/extras#postscript\""

# ---- finish, skip ----
req finish POST "/onboard/$TOK/extras" --data-urlencode "csrf=$CSRF" -d action=done
check "finish step 4" 303
[[ "$(header Location)" == "/onboard/$TOK/done" ]] && ok || fail "finish: Location"
req done GET "/onboard/$TOK/done"
check "the done page lists each connection" 200 "<dt>Shopify</dt><dd>Connected to Gamma Goods</dd>" \
    "<dt>Postscript</dt><dd>Connected to Acme Outdoors</dd>" "<dt>Attentive</dt><dd>Connected to Acme Outdoors</dd>"
run audit list --tenant acme-outdoors --json
expect "each verification audited" 0 '"action":"shopify.call"'
expect "postscript audited" 0 '"action":"postscript.call"'
expect "stored as key.set" 0 '"action":"key.set"'
expect "finish audited" 0 '"action":"onboarding.extras"'

# ---- the console shows every connection ----
JAR="$WORK/cookies"
req login_page GET /admin/login -c "$JAR"
LCSRF=$(grep -o 'name="csrf" value="[^"]*"' "$BODY" | head -1 | sed 's/.*value="//;s/"$//')
req login POST /admin/login -b "$JAR" -c "$JAR" --data-urlencode "csrf=$LCSRF" \
    -d email=admin@agency.test --data-urlencode "password=$ADMIN_PW"
check "console login" 303
req tenant GET /admin/tenants/acme-outdoors -b "$JAR"
check "tenant page: connections" 200 '<h2>Connections</h2>' 'id="cred-klaviyo"' 'id="cred-shopify"' \
    'id="cred-postscript"' 'id="cred-attentive"'
ROW=$(tr -d '\n' <"$BODY" | grep -o '<tr id="cred-shopify">.*' | sed 's|</tr>.*||')
for want in "Gamma Goods" "gamma-goods\.myshopify\.com" ">read_products<" ">write_products<" \
    "The token can also write" "${TOK_WRITE: -4}" "verified"; do
    grep -Eq -- "$want" <<<"$ROW" && ok || fail "the console's Shopify row lacks /$want/"
done
FP=$(sqlite3 "$CADENCE_DATA/cadence.db" "SELECT fingerprint FROM credentials WHERE tenant_id = 'acme-outdoors' AND kind = 'shopify'")
grep -q "$FP" <<<"$ROW" && ok || fail "the console's Shopify row lacks the fingerprint"
ROW=$(tr -d '\n' <"$BODY" | grep -o '<tr id="cred-postscript">.*' | sed 's|</tr>.*||')
grep -q "${PS_KEY: -4}" <<<"$ROW" && grep -q "Acme Outdoors" <<<"$ROW" && ok || fail "the console's Postscript row"

# ---- shutdown, then nothing secret anywhere ----
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
cat "$WORK/serve.out" "$WORK/serve.err" >>"$OUT"
grep -qF "$TOK" "$WORK/serve.err" && fail "the onboarding token is in the server log" || ok
assert_no_secret "no plaintext token or key in the data directory, any response, header or log" "${ALL_SECRETS[@]}"
finish
