#!/usr/bin/env bash
# End to end through the real `cadence` binary: init, tenants, keys from stdin, the format check,
# KMS rotation, operators, the audit log (list, export, verify, tamper detection), exit codes,
# and finally a scan of every file and every line of output for the plaintext keys.
source "$(dirname "$0")/lib.sh"

run init
expect "init creates the data directory" 0 "Created Cadence data"
run init
expect "init is idempotent" 0 "Using Cadence data"
[ "$(stat -c %a "$CADENCE_DATA")" = 700 ] && ok || fail "data dir mode is not 700"
key_files=("$CADENCE_DATA"/kms/*)
[ -f "${key_files[0]}" ] && [ "$(stat -c %a "${key_files[0]}")" = 600 ] && ok ||
    fail "master key file missing or not 0600"

chmod 644 "${key_files[0]}"
run tenant add --name "Should Fail"
expect "a group-readable master key is refused with the fix" 1 "chmod 600"
chmod 600 "${key_files[0]}"

run tenant add --name "Acme Outdoors" --email ops@acme.test
expect "tenant add prints the id" 0 "^acme-outdoors$"
run tenant add --name "Acme Outdoors"
expect "a second tenant with the same name gets its own id" 0 "^acme-outdoors-2$"
run tenant add --name "Blue Fern Tea" --email hello@bluefern.test
expect "third tenant" 0 "^blue-fern-tea$"
run tenant add
expect "tenant add without --name is a usage error" 2 "--name is required"
run tenant add --name "X" --email nope
expect "a bad email is refused" 1 "not an email address"
run tenant show nobody
expect "an unknown tenant is a failure" 1 "no tenant \"nobody\""
run frobnicate
expect "an unknown command is a usage error" 2 "unknown command"
run tenant
expect "a group without subcommand is a usage error" 2 "cadence tenant add"
run key set acme-outdoors "$(random_key)"
expect "a key on the command line is refused" 2 "standard input"

k1=$(random_key)
k2=$(random_key)
k3=$(random_key)
k_shopify="shpat_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
run_in "  \"$k1\""$'\r\n' key set acme-outdoors
expect "key set accepts a quoted paste with whitespace" 0 "Stored the klaviyo key for acme-outdoors: …${k1: -4}"
run_in "$k2" key set acme-outdoors-2
expect "key set for a second tenant" 0 "version 1"
run_in "$k3" key set blue-fern-tea
expect "key set for a third tenant" 0 "unverified"
run_in "$k3" key set blue-fern-tea
expect "setting a key again makes version 2" 0 "version 2"
run_in "$k_shopify" key set blue-fern-tea --kind shopify --shop blue-fern-tea.myshopify.com
expect "a Shopify token is stored the same way" 0 "Stored the shopify key"

short=${k1:0:30}
run_in "$short" key set acme-outdoors
expect "a short key is refused with counts" 1 "not stored.*30 characters"
run key show acme-outdoors --kind klaviyo
expect "the earlier key survives a bad paste" 0 "unverified.*${k1: -4}"
run_in "AbC123" key set acme-outdoors-2
expect "a public key is explained" 1 "[Pp]ublic"
run key show acme-outdoors --json
expect "key show --json" 0 '"kind":"klaviyo","state":"unverified","version":1'

run_in "$k1" key check
expect "key check accepts a valid key" 0 "^ok:"
run_in "pk_••••••••••••••••••••••••••••••••••" key check
expect "key check recognises a masked copy" 1 "^masked:"
run_in "" key check --json
expect "key check on empty input" 1 '"verdict":"empty"'
run_in "AbC123" key check
expect "key check recognises a public key" 1 "^public_key:"

run tenant defer blue-fern-tea
expect "deferring a tenant with a stored key is refused" 1 "cannot defer"
run tenant add --name "Later Co"
run tenant defer later-co
expect "continue without a key" 0 "deferred"
run tenant paid later-co
expect "payment confirmed" 0 "confirmed"
run tenant list --json
expect "tenant list --json" 0 '"id":"later-co".*"payment":"confirmed","klaviyo_key":"deferred"'
run tenant show acme-outdoors
expect "tenant show lists credentials, never keys" 0 "klaviyo +unverified"

run_in "correct horse battery staple" operator add --email ann@agency.test --role admin
expect "operator add" 0 "Added admin ann@agency.test"
run_in "short" operator add --email bob@agency.test --role operator
expect "a short password is refused" 1 "at least 12"
run operator add --email bob@agency.test --role boss
expect "an unknown role is a usage error" 2 "admin or operator"

run kms rotate
expect "kms rotate re-wraps every data key" 0 "Rotated master key version 1 -> 2; 4 data keys re-wrapped"
run kms status
expect "kms status after rotation" 0 "version 2, 4 data keys, 0 on older"
run key show blue-fern-tea --kind shopify
expect "credentials survive rotation" 0 "unverified"

CADENCE_OPERATOR=ann@agency.test run audit list --tenant acme-outdoors
expect "audit list by tenant" 0 "key.set"
run audit list --action 'key.*' --json
expect "audit list --json" 0 '"action":"key.set"'
run audit list --since yesterday
expect "a bad time is a usage error" 2 "not a time"
run audit export --csv
expect "audit export --csv" 0 "^seq,"
run audit verify
expect "the audit chain verifies" 0 "intact"

assert_no_secret "no plaintext key anywhere (data dir, WAL, output)" "$k1" "$k2" "$k3" "$k_shopify"

# Tampering: an attacker with the database edits a record. Verify must name it.
if command -v sqlite3 >/dev/null; then
    sqlite3 "$CADENCE_DATA/cadence.db" "DROP TRIGGER audit_log_no_update;
        UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 3;" 2>>"$OUT"
    run audit verify
    expect "audit verify names the altered record" 1 "TAMPERED at record 3"
else
    fail "sqlite3 is not installed (scripts/install-deps.sh installs it)"
fi

finish
