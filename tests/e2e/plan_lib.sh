# Helpers for the plan suites (source after lib.sh): an emulator on a free loopback port with its
# clock N times faster (the client's limits scaled to match), a tenant with a key and an
# operator, bundles, and reads of the emulator's objects and call log.
SIM="${CADENCE_BUILD:?set by CTest}/cadence-klaviyo-sim"
[ -x "$SIM" ] || { echo "no emulator at $SIM" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }
SCALE=${SCALE:-20}
KEY=$(random_key)
OPERATOR=ann@agency.test
export ACME_EMAIL_WEBHOOK_SECRET=whsec-email-$$ ACME_SMS_WEBHOOK_SECRET=whsec-sms-$$

# start_sim [EXTRA ARGS...]: starts the emulator with one account holding $KEY.
start_sim() {
    "$SIM" --listen 127.0.0.1:0 --time-scale "$SCALE" --account "Acme Outdoors" --key "$KEY" "$@" \
        >"$WORK/sim.out" 2>"$WORK/sim.err" &
    SIM_PID=$!
    CLEANUP+=("kill $SIM_PID 2>/dev/null")
    for _ in $(seq 50); do
        grep -q '^listening on ' "$WORK/sim.out" && break
        sleep 0.1
    done
    BASE=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$WORK/sim.out")
    [ -n "$BASE" ] || { echo "the emulator did not start" >&2; cat "$WORK/sim.err" >&2; exit 1; }
    export CADENCE_KLAVIYO_URL=$BASE CADENCE_KLAVIYO_RATE_SCALE=$SCALE CADENCE_KLAVIYO_TIMEOUT_MS=5000
}

# setup_tenant: init, tenant acme-outdoors with an email, its key, an operator.
setup_tenant() {
    run init
    run tenant add --name "Acme Outdoors" --email owner@acme.test
    expect "tenant add" 0 "^acme-outdoors$"
    run_in "$KEY" key set acme-outdoors
    expect "key set" 0 "Stored the klaviyo key"
    run_in "correct horse battery staple" operator add --email "$OPERATOR" --role operator
    expect "operator add" 0
}

# objects TYPE: the emulator's live objects of a type (JSON array).
objects() { curl -s "$BASE/__sim/objects?type=$1" | jq -c '.objects'; }
# count_named TYPE FIELD VALUE: how many live objects of TYPE have attributes.FIELD == VALUE.
count_named() {
    curl -s "$BASE/__sim/objects?type=$1" |
        jq --arg v "$3" --arg f "$2" '[.objects[] | select((._.hidden // false) | not) | select(.attributes[$f] == $v)] | length'
}
# dup_names TYPE FIELD: names held by more than one live object (empty when none).
dup_names() {
    curl -s "$BASE/__sim/objects?type=$1" |
        jq -r --arg f "$2" '[.objects[] | .attributes[$f]] | group_by(.) | map(select(length > 1) | .[0]) | .[]'
}
sim_faults() { curl -s -X POST -H 'Content-Type: application/json' --data-binary "$1" "$BASE/__sim/faults" >/dev/null; }

# plan_make TENANT DIR [ARGS...]: plan create --json; sets PLAN_ID, PLAN_HASH, PLAN_JSON.
plan_make() {
    run plan create "$@" --json
    PLAN_JSON=$RUN_OUT
    PLAN_ID=$(printf '%s' "$RUN_OUT" | jq -r '.id // empty' 2>/dev/null)
    PLAN_HASH=$(printf '%s' "$RUN_OUT" | jq -r '.hash // empty' 2>/dev/null)
}
# actions KIND: the actions of a kind's steps in the last plan, sorted and joined.
actions() { printf '%s' "$PLAN_JSON" | jq -r --arg k "$1" '[.steps[] | select(.kind == $k) | .action] | sort | unique | join(",")'; }

# gen_bundle DIR PREFIX TEMPLATES LISTS SEGMENTS CAMPAIGNS ITEMS [FLOWS] [TAGS] [FORMS]: a bundle
# whose asset names start with PREFIX. Segments refer to lists, campaigns to a segment, a list
# and a template, flows to a list and a template, tags to lists and campaigns, forms to a list.
gen_bundle() {
    local d=$1 p=$2 nt=$3 nl=$4 ns=$5 nc=$6 ni=$7 nf=${8:-0} ng=${9:-0} nfo=${10:-0} i
    mkdir -p "$d"/{templates,lists,segments,campaigns,catalog,flows,tags,forms}
    for i in $(seq 1 "$nt"); do
        printf '<html><body><h1>%s template %d</h1>\n<p>{{ first_name }}</p>\n</body></html>\n' "$p" "$i" >"$d/templates/$p-t$i.html"
    done
    for i in $(seq 1 "$nl"); do echo '{"opt_in_process": "single_opt_in"}' >"$d/lists/$p-l$i.json"; done
    for i in $(seq 1 "$ns"); do
        printf '{"definition":{"condition_groups":[{"conditions":[{"type":"profile-group-membership","is_member":true,"group_ids":[{"$ref":"list:%s-l%d"}]}]}]}}\n' \
            "$p" $(((i - 1) % nl + 1)) >"$d/segments/$p-s$i.json"
    done
    for i in $(seq 1 "$nc"); do
        printf '{"audiences":{"included":[{"$ref":"segment:%s-s%d"}],"excluded":[{"$ref":"list:%s-l%d"}]},"campaign-messages":{"data":[{"type":"campaign-message","attributes":{"definition":{"channel":"email","label":"c%d","content":{"subject":"Hello %d","from_email":"store@example.com","from_label":"Store"}}},"relationships":{"template":{"data":{"$ref":"template:%s-t%d"}}}}]}}\n' \
            "$p" $(((i - 1) % ns + 1)) "$p" $(((i - 1) % nl + 1)) "$i" "$i" "$p" $(((i - 1) % nt + 1)) >"$d/campaigns/$p-c$i.json"
    done
    for i in $(seq 1 "$nf"); do
        printf '{"definition":{"triggers":[{"type":"list","id":{"$ref":"list:%s-l%d"}}],"entry_action_id":"a1","actions":[{"temporary_id":"a1","type":"send-email","links":{"next":null},"data":{"status":"draft","message":{"name":"m%d","subject_line":"Hi","from_email":"store@example.com","from_label":"Store","template_id":{"$ref":"template:%s-t%d"}}}}]}}\n' \
            "$p" $(((i - 1) % nl + 1)) "$i" "$p" $(((i - 1) % nt + 1)) >"$d/flows/$p-f$i.json"
    done
    for i in $(seq 1 "$ng"); do
        local tgt="\"list:$p-l$(((i - 1) % nl + 1))\""
        [ "$nc" -gt 0 ] && tgt="$tgt, \"campaign:$p-c$(((i - 1) % nc + 1))\""
        printf '{"targets": [%s]}\n' "$tgt" >"$d/tags/$p-g$i.json"
    done
    for i in $(seq 1 "$nfo"); do
        printf '{"status":"draft","ab_test":false,"definition":{"versions":[{"type":"popup","steps":[{"columns":[{"rows":[{"blocks":[{"type":"email","properties":{"required":true}},{"type":"button","properties":{"label":"Join"},"action":{"type":"close","submit":true,"properties":{"list_id":{"$ref":"list:%s-l%d"}}}}]}]}]}]}]}}\n' \
            "$p" $(((i - 1) % nl + 1)) >"$d/forms/$p-fo$i.json"
    done
    if [ "$ni" -gt 0 ]; then
        {
            echo "external_id,title,description,url,price"
            for i in $(seq 1 "$ni"); do echo "$p-SKU-$i,Item $i,Product $i,https://shop.example.com/p/$i,$((i % 90 + 10)).5"; done
        } >"$d/catalog/items.csv"
    fi
    for k in templates lists segments campaigns catalog flows tags forms; do
        rmdir "$d/$k" 2>/dev/null || true
    done
}

# exactly_once PREFIX: every asset of the bundle with PREFIX exists exactly once in the emulator
# (templates copied for campaign messages are hidden copies and are not counted). Prints problems.
exactly_once() {
    local p=$1 t f
    for t in template list segment campaign flow tag form; do
        curl -s "$BASE/__sim/objects?type=$t" |
            jq -r --arg p "$p-" '[.objects[] | select((._.hidden // false) | not) | .attributes.name | select(startswith($p))] | group_by(.) | map(select(length > 1) | "duplicate: \(.[0]) x\(length)") | .[]'
    done
    curl -s "$BASE/__sim/objects?type=catalog-item" |
        jq -r --arg p "$p-" '[.objects[] | .attributes.external_id | select(startswith($p))] | group_by(.) | map(select(length > 1) | "duplicate: \(.[0])") | .[]'
}
# count_prefix TYPE FIELD PREFIX: live objects of TYPE whose FIELD starts with PREFIX.
count_prefix() {
    curl -s "$BASE/__sim/objects?type=$1" |
        jq --arg f "$2" --arg p "$3" '[.objects[] | select((._.hidden // false) | not) | .attributes[$f] // "" | select(startswith($p))] | length'
}
