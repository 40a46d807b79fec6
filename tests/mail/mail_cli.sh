#!/usr/bin/env bash
# End-to-end: `cadence mail list` and `cadence mail send` on the embedded default (.eml files).
# Nothing on the command line queues mail (the web and tenant code do), so the outbox row is
# inserted with sqlite3 the way mail_queue() writes it. Checks that the message is written once,
# that listings and the audit log never show the body (it holds an onboarding token), and that a
# bad SMTP configuration is refused without echoing a password.
source "$(dirname "$0")/../e2e/lib.sh"
command -v sqlite3 >/dev/null || { echo "mail_cli: sqlite3 is not installed (scripts/install-deps.sh)" >&2; exit 1; }
unset CADENCE_SMTP_URL CADENCE_SMTP_USER CADENCE_SMTP_PASSWORD_FILE CADENCE_MAIL_FROM

run init
expect "init" 0
run tenant add --name "Acme Outdoors" --email brand@acme.example
expect "tenant add" 0 '^acme-outdoors'

run mail list
expect "empty outbox" 0 'The outbox is empty'

token="tok_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
sqlite3 "$CADENCE_DATA/cadence.db" "INSERT INTO outbox (id, tenant_id, kind, to_addr, subject, body,
  dedupe_key, status, attempts, next_attempt_ms, created_ms) VALUES (1, 'acme-outdoors',
  'key_request', 'brand@acme.example', 'Connect your Klaviyo account',
  'Paste your key here:' || char(10) || 'https://cadence.example/onboard/$token' || char(10),
  'key_request:acme-outdoors:1', 'queued', 0, 0, 0)"

run mail list
expect "list shows the queued message" 0 '^1 +queued +0 +key_request +acme-outdoors +brand@acme.example'

CADENCE_SMTP_URL="smtp://cadence:hunter2-password@mail.example:587" run mail send
expect "credentials in the SMTP URL are refused" 1 'CADENCE_SMTP_USER'
if printf '%s' "$RUN_ERR" | matches hunter2; then fail "the SMTP password was echoed"; else ok; fi

CADENCE_MAIL_FROM="$(printf 'a@b.example\nBcc: victim@evil.example')" run mail send
expect "a From header with a line break is refused" 1 'line break'

run mail send
expect "send writes the message" 0 '1 sent, 0 to retry later, 0 failed'
if [ "$(ls "$CADENCE_DATA/outbox")" = "1.eml" ]; then ok; else fail "outbox holds: $(ls "$CADENCE_DATA/outbox")"; fi
if grep -q "$token" "$CADENCE_DATA/outbox/1.eml"; then ok; else fail "the .eml lacks the link"; fi
if [ "$(stat -c %a "$CADENCE_DATA/outbox/1.eml")" = 600 ]; then ok; else fail "the .eml is not private"; fi

run mail send
expect "nothing is sent twice" 0 '0 sent, 0 to retry later, 0 failed'
if [ "$(ls "$CADENCE_DATA/outbox" | wc -l)" = 1 ]; then ok; else fail "a second file appeared"; fi

run mail list --json
expect "json list" 0 '"status":"sent"'
msgid=$(printf '%s' "$RUN_OUT" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["message_id"])')
if grep -qiF "Message-ID: $msgid" "$CADENCE_DATA/outbox/1.eml"; then ok; else fail "Message-ID $msgid is not the file's"; fi

run mail list --status failed
expect "status filter" 0 'The outbox is empty'
run mail list --status bogus
expect "a bad status is a usage error" 2 'queued, sending, sent or failed'

run audit list --action 'mail.*'
expect "the send is audited" 0 'mail.send +EML outbox/1.eml -> 250 .*kind=key_request outbox=1 sent'
run audit verify
expect "audit chain intact" 0 'intact'

# The token is in the .eml (that is the message) and nowhere else Cadence writes or prints.
rm -f "$CADENCE_DATA/outbox/1.eml"
sqlite3 "$CADENCE_DATA/cadence.db" "DELETE FROM outbox"
assert_no_secret "token only in the message" "$token"

finish
