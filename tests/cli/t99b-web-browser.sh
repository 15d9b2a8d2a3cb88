#!/bin/sh
# The web console in a real browser (headless Debian chromium driven by
# puppeteer-core, tests/cli/web-browser.js): start the test guest from its
# page, see its counter in the console pane (xterm.js over the WebSocket),
# type into it, see its screen through noVNC, take a checkpoint from the tree and apply it, and see a
# shell's change appear without a reload. Screenshots are kept in the test
# log folder (BUILD/test-logs/t99b-web-browser/). Then the power verbs of
# the API on the running guest with curl.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
. "$TESTS/cli/weblib.sh"
web_cleanup() { stop_web; kill_running_vms; }
EXTRA_CLEANUP=web_cleanup
BUILD=${BUILD:-$(dirname "$HVM")}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
PUPPETEER_CORE="$BUILD/web-npm/node_modules/puppeteer-core"
[ -x "$CHROMIUM" ] || skip "no $CHROMIUM (scripts/install-deps.sh installs it)"
command -v node >/dev/null || skip "no node to drive the browser"
[ -d "$PUPPETEER_CORE" ] || skip "no puppeteer-core in $BUILD/web-npm (npm was not reachable at build time)"
[ -f "$BUILD/web/vendor/xterm/xterm.js" ] && [ -f "$BUILD/web/vendor/novnc/core/rfb.js" ] ||
    skip "the build has no xterm.js or noVNC (npm was not reachable)"
export CHROMIUM PUPPETEER_CORE
shots="$BUILD/test-logs/t99b-web-browser"
rm -rf "$shots"; mkdir -p "$shots"

GUEST_ARGS="hvm.period=0.5" guest_vm g counter --new-disk 16M
start_web
# Chromium's profile and crash files go to the scratch folder.
HOME="$T" node "$TESTS/cli/web-browser.js" "$URL" "$TOKEN" "$shots" "$HVM" g ||
    fail "the browser test failed (screenshots in $shots)"
ls "$shots"/2-console.png "$shots"/4-tree-applied.png >/dev/null || fail "screenshots missing"
"$HVM" checkpoint list g --json | jq -e '[.. | objects | select(.name == "from-web")] | length == 1' >/dev/null ||
    fail "no checkpoint from-web"
[ "$("$HVM" vm show g --json | jq -r .state)" = Running ] || fail "not running after the apply"

# The handshake of the console's WebSocket (RFC 6455's example key).
curl -s -i --max-time 3 -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" \
    -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" "$URL/api/vms/g/console?token=$TOKEN" >ws.txt || true
grep -q "^HTTP/1.1 101" ws.txt || fail "no 101 Switching Protocols: $(head -3 ws.txt)"
grep -qi "^Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ws.txt || fail "bad accept key: $(cat ws.txt)"

# The power verbs of the API on the running guest.
expect_api 200 POST vms/g/pause
[ "$("$HVM" vm show g --json | jq -r .state)" = Paused ] || fail "pause did not pause"
expect_api 200 POST vms/g/resume
expect_api 200 POST vms/g/save
jq -e '.message | test("Saved")' "$T/body" >/dev/null || fail "save: $(body)"
expect_api 200 POST vms/g/start
[ "$("$HVM" vm show g --json | jq -r .state)" = Running ] || fail "start did not resume"
expect_api 200 POST vms/g/stop '{"timeout": 60, "force": true}'
[ "$("$HVM" vm show g --json | jq -r .state)" = Off ] || fail "stop did not stop"
expect_api 200 POST vms/g/start
expect_api 200 POST vms/g/turn-off
[ "$("$HVM" vm show g --json | jq -r .state)" = Off ] || fail "turn-off did not"
stop_web
echo ok
