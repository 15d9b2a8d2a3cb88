#!/bin/sh
# The web console's figures (issue 18), not part of make check:
#   - page load of a store with 100 VMs and of a VM with 200 checkpoints in
#     headless chromium (target: under 300 ms to the data on screen);
#   - API latency of GET /api/vms against `hvm vm list --json` run directly.
# HVM=build/hvm sh bench/web.sh   (needs chromium, node and the build's web-npm/)
set -eu
: "${HVM:?set HVM to the hvm binary}"
BUILD=${BUILD:-$(dirname "$HVM")}
RUNS=${RUNS:-11}
export PUPPETEER_CORE="$BUILD/web-npm/node_modules/puppeteer-core"
T=$(mktemp -d /tmp/hvm-bench-web.XXXXXX)
WEB_PID=
trap '[ -z "$WEB_PID" ] || kill $WEB_PID; rm -rf "$T"' EXIT
export HVM_STORE="$T/store"
i=0
while [ $i -lt 100 ]; do
    "$HVM" vm create "vm$i" --new-disk 16M >/dev/null 2>&1
    i=$((i + 1))
done
i=0
while [ $i -lt 200 ]; do
    "$HVM" checkpoint take vm0 "cp$i" >/dev/null
    [ $((i % 3)) != 2 ] || "$HVM" checkpoint apply vm0 "cp$((i / 2))" >/dev/null  # branches
    i=$((i + 1))
done
"$HVM" web serve --listen 127.0.0.1:0 --token-file "$T/token" >"$T/web.out" &
WEB_PID=$!
until grep -q "listening on" "$T/web.out" 2>/dev/null; do sleep 0.1; done
URL=$(sed -n 's/^hvm web: listening on //p' "$T/web.out")
TOKEN=$(cat "$T/token")

ms() { # median of RUNS runs of a command, in ms
    for _ in $(seq "$RUNS"); do
        s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
        echo $(((e - s) / 1000))
    done | sort -n | sed -n "$((RUNS / 2 + 1))p" | awk '{printf "%.1f", $1 / 1000}'
}
get_ms() { # median of RUNS requests, as curl times them (its own start left out)
    for _ in $(seq "$RUNS"); do
        curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$URL/api/$1"
    done | sort -n | sed -n "$((RUNS / 2 + 1))p" | awk '{printf "%.1f", $1 * 1000}'
}
cli=$(ms "$HVM" vm list --json)
api=$(get_ms vms)
host=$(get_ms host)
cps=$(get_ms vms/vm0/checkpoints)
chg=$(get_ms changes)
echo "100 VMs: hvm vm list --json ${cli} ms, GET /api/vms ${api} ms (ratio $(echo "$api $cli" | awk '{printf "%.2f", $1 / $2}')), GET /api/host ${host} ms"
echo "200 checkpoints: GET /api/vms/vm0/checkpoints ${cps} ms; GET /api/changes ${chg} ms (median of $RUNS)"
node "$(dirname "$0")/web-page.js" "$URL" "$TOKEN" vm0 "$RUNS"
