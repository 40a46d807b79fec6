#!/usr/bin/env bash
# End-to-end: the Shopify token and the SMS providers' keys. `cadence key set --kind shopify
# --shop DOMAIN` and `cadence key verify --kind shopify|postscript|attentive` against
# cadence-shopify-sim and cadence-sms-sim on free loopback ports: Shopify ok, missing
# read_products, a write-capable token (warning), a wrong token, unreachable; Postscript and
# Attentive ok, wrong, unreachable; a Postscript public key explained; keys sealed (last 4 and
# fingerprint only) and no plaintext secret in any output or file.
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
AT_KEY="$(alnum 40)"
AT_WRONG="$(alnum 40)"

# start_sim NAME ARGS...: starts a stand-in, waits for its line, sets SIM_URL.
start_sim() {
    local name=$1
    shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    CLEANUP+=("kill $pid 2>/dev/null")
    SIM_URL=$(wait_listening "$WORK/$name.out" "$pid")
    [ -n "$SIM_URL" ] || { echo "$name did not start" >&2; cat "$WORK/$name.err" >&2; exit 1; }
}

start_sim ok "$B/cadence-shopify-sim" --listen 127.0.0.1:0 --shop "Acme Outdoors" --token "$TOK_OK" --products 5
URL_OK=$SIM_URL
start_sim noprod "$B/cadence-shopify-sim" --listen 127.0.0.1:0 --shop "Beta Brand" --token "$TOK_NOPROD" --scopes read_inventory
URL_NOPROD=$SIM_URL
start_sim write "$B/cadence-shopify-sim" --listen 127.0.0.1:0 --shop "Gamma Goods" --token "$TOK_WRITE" --scopes read_products,write_products,read_inventory
URL_WRITE=$SIM_URL
start_sim klaviyo "$B/cadence-klaviyo-sim" --listen 127.0.0.1:0 --account "Acme Outdoors" --key "pk_$(alnum 34)"
URL_KLAVIYO=$SIM_URL
start_sim sms "$B/cadence-sms-sim" --listen 127.0.0.1:0 --postscript-key "$PS_KEY" --attentive-key "$AT_KEY"
URL_SMS=$SIM_URL
# A loopback port nobody listens on: bind one, note it, let it go.
DEAD_URL="http://127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export CADENCE_PROVIDER_TIMEOUT_MS=5000

state_of() { # state_of TENANT KIND
    run key show "$1" --kind "$2" --json
    printf '%s' "$RUN_OUT" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}

run init
expect "init" 0
for t in "Acme Outdoors" "Beta Brand" "Gamma Goods" "Delta Dry"; do
    run tenant add --name "$t" --email "owner@example.com"
    expect "tenant add $t" 0
done

# ---- input errors ----
run_in "$TOK_OK" key set acme-outdoors --kind shopify
expect "shopify needs --shop" 2 "needs --shop"
run_in "$TOK_OK" key set acme-outdoors --kind shopify --shop shop.acme.com
expect "custom domain explained" 1 "storefront's own domain.*Settings → Domains"
run_in "$TOK_OK" key set acme-outdoors --kind shopify --shop "owner@acme.com"
expect "email explained" 1 "email address"
run_in "shpss_$(hex32)" key set acme-outdoors --kind shopify --shop acme-outdoors
expect "shared secret refused" 1 "API secret key"
run_in "$(hex32)" key set acme-outdoors --kind shopify --shop acme-outdoors
expect "storefront token refused" 1 "Storefront API access token"
run_in "pk_$(alnum 20)" key set acme-outdoors --kind postscript
expect "postscript public key refused" 1 "Public Key of your Postscript key pair"
run_in "Bearer $AT_KEY" key set acme-outdoors --kind attentive
expect "attentive Bearer prefix" 1 "without the word Bearer"

# ---- Shopify: ok ----
export CADENCE_SHOPIFY_URL=$URL_OK
run_in "$TOK_OK" key set acme-outdoors --kind shopify --shop "https://Acme-Outdoors.myshopify.com/admin"
expect "shopify key set" 0 "Stored the shopify key for acme-outdoors: …${TOK_OK: -4}, fingerprint [0-9a-f]+, version 1 \(unverified\)"
run key show acme-outdoors --kind shopify
expect "sealed: last 4 and fingerprint" 0 "shopify +unverified +…${TOK_OK: -4} +fingerprint [0-9a-f]{16}"
run key verify acme-outdoors --kind shopify
expect "shopify verified" 0 "^Verified: Acme Outdoors \(acme-outdoors\.myshopify\.com\)"
expect "shopify scopes shown" 0 "scopes +read_products,read_inventory"
[ "$(state_of acme-outdoors shopify)" = verified ] && ok || fail "shopify ok: state is not verified"
run key show acme-outdoors --kind shopify --json
expect "shop recorded" 0 '"account_id":"acme-outdoors.myshopify.com"'

# ---- Shopify: missing read_products ----
export CADENCE_SHOPIFY_URL=$URL_NOPROD
run_in "$TOK_NOPROD" key set beta-brand --kind shopify --shop beta-brand
expect "beta key set" 0
run key verify beta-brand --kind shopify
expect "missing read_products" 1 "missing_scopes.*cannot read products"
[ "$(state_of beta-brand shopify)" = invalid ] && ok || fail "missing scope: state is not invalid"

# ---- Shopify: a token that can write ----
export CADENCE_SHOPIFY_URL=$URL_WRITE
run_in "$TOK_WRITE" key set gamma-goods --kind shopify --shop gamma-goods.myshopify.com --verify
expect "write token accepted" 0 "Verified: Gamma Goods"
expect "least-privilege warning" 0 "warning +The token can also write \(write_products\)"
[ "$(state_of gamma-goods shopify)" = verified ] && ok || fail "write token: state is not verified"

# ---- Shopify: wrong token ----
run_in "$TOK_WRONG" key set delta-dry --kind shopify --shop delta-dry
expect "delta key set" 0
run key verify delta-dry --kind shopify
expect "wrong token rejected" 1 "rejected.*HTTP 401"
[ "$(state_of delta-dry shopify)" = invalid ] && ok || fail "wrong token: state is not invalid"
run_in "$TOK_WRONG" key set gamma-goods --kind shopify --shop gamma-goods --verify
expect "rejected candidate not stored" 1 "not stored"
run key show gamma-goods --kind shopify --json
expect "verified token kept" 0 '"state":"verified","version":1'

# ---- Shopify: unreachable ----
export CADENCE_SHOPIFY_URL=$DEAD_URL
run key verify acme-outdoors --kind shopify
expect "shopify unreachable" 1 "unreachable"
expect "state left alone" 1 "state was not changed"
[ "$(state_of acme-outdoors shopify)" = verified ] && ok || fail "unreachable: state changed"

# ---- Postscript and Attentive ----
export CADENCE_POSTSCRIPT_URL=$URL_SMS CADENCE_ATTENTIVE_URL=$URL_SMS
run_in "$PS_KEY" key set acme-outdoors --kind postscript
expect "postscript key set" 0 "…${PS_KEY: -4}"
run key verify acme-outdoors --kind postscript
expect "postscript verified" 0 "^Verified: Acme Outdoors \(Postscript shop_1234567abcde\)"
run_in "$AT_KEY" key set acme-outdoors --kind attentive
expect "attentive key set" 0
run key verify acme-outdoors --kind attentive
expect "attentive verified" 0 "^Verified: Acme Outdoors \(Attentive MDc6Q29tcGFueTI\)"
run_in "$PS_WRONG" key set beta-brand --kind postscript
run key verify beta-brand --kind postscript
expect "postscript wrong key" 1 "Postscript rejected the key \(HTTP 401\)"
run_in "$AT_WRONG" key set beta-brand --kind attentive
run key verify beta-brand --kind attentive
expect "attentive wrong key" 1 "Attentive rejected the key \(HTTP 401\)"
[ "$(state_of beta-brand attentive)" = invalid ] && ok || fail "attentive wrong: state is not invalid"
export CADENCE_POSTSCRIPT_URL=$DEAD_URL CADENCE_ATTENTIVE_URL=$DEAD_URL
run key verify acme-outdoors --kind postscript
expect "postscript unreachable" 1 "unreachable"
run key verify acme-outdoors --kind attentive
expect "attentive unreachable" 1 "unreachable"
[ "$(state_of acme-outdoors postscript)" = verified ] && ok || fail "postscript unreachable: state changed"
[ "$(state_of acme-outdoors attentive)" = verified ] && ok || fail "attentive unreachable: state changed"

# ---- a Postscript public key in the Klaviyo field ----
export CADENCE_KLAVIYO_URL=$URL_KLAVIYO CADENCE_KLAVIYO_TIMEOUT_MS=5000
PS_PUBLIC="pk_$(alnum 34)"
run_in "$PS_PUBLIC" key set delta-dry --verify
expect "postscript public key explained" 1 "Postscript's public keys also start with pk_"

# ---- audit: every call recorded with its outcome, and no secret anywhere ----
run audit list --tenant acme-outdoors --json
expect "shopify calls audited" 0 '"action":"shopify.call".*"endpoint":"/admin/api/[0-9-]+/graphql.json"'
expect "attentive calls audited" 0 '"action":"attentive.call".*"endpoint":"/v1/me"'
assert_no_secret "no plaintext secret" "$TOK_OK" "$TOK_NOPROD" "$TOK_WRITE" "$TOK_WRONG" \
    "$PS_KEY" "$PS_WRONG" "$AT_KEY" "$AT_WRONG" "$PS_PUBLIC"
finish
