#!/bin/sh
# hvm web serve's JSON API with curl: every verb answers what the CLI's
# --json says (the API runs hvm itself), actions do what the CLI does, bad
# requests get a JSON error, requests without the token or with a wrong one
# are refused (401), path traversal in any parameter is refused, and the
# server refuses to listen beyond localhost without TLS. The power verbs on
# a running guest are in t99b, with the browser.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/weblib.sh"
EXTRA_CLEANUP=stop_web

"$HVM" vm create g --new-disk 16M >/dev/null
"$HVM" vm create off --new-disk 16M >/dev/null
"$HVM" switch create lab --type private
"$HVM" checkpoint take off first >/dev/null

# Listening: beyond localhost only with TLS; a token file keeps its token.
expect_fail 2 "$HVM" web serve --listen 0.0.0.0:0
grep -q "TLS" "$T/.err" || fail "no TLS named: $(last_error)"
expect_fail 2 "$HVM" web serve --listen nowhere
expect_fail 2 "$HVM" web serve --tls-cert x.pem
start_web
[ "$(stat -c %a "$T/token")" = 600 ] || fail "the token file is not 0600"
[ "$(wc -c <"$T/token")" -ge 33 ] || fail "the token is short"
case "$URL" in http://127.0.0.1:*) ;; *) fail "listening on $URL" ;; esac

# No token, a wrong token, a token in the query of an API call: 401.
code=$(curl -s -o "$T/body" -w '%{http_code}' "$URL/api/vms")
[ "$code" = 401 ] || fail "no token: HTTP $code"
jq -e .error "$T/body" >/dev/null || fail "no JSON error without a token"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN}x" "$URL/api/vms")
[ "$code" = 401 ] || fail "wrong token: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer x" "$URL/api/host")
[ "$code" = 401 ] || fail "short wrong token: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/vms?token=$TOKEN")
[ "$code" = 401 ] || fail "the token in an API call's query: HTTP $code"
# The pages themselves hold no data: served without a token.
code=$(curl -s -o "$T/index.html" -w '%{http_code}' "$URL/")
[ "$code" = 200 ] && grep -q "app.js" "$T/index.html" || fail "no front page: HTTP $code"

# The same model as the CLI's --json.
expect_api 200 GET vms
"$HVM" vm list --json | jq -S . >cli.json
jq -S . "$T/body" >api.json
cmp -s cli.json api.json || { diff cli.json api.json >&2; fail "GET vms differs from vm list --json"; }
expect_api 200 GET vms/off
[ "$(jq -r .folder "$T/body")" = "$HVM_STORE/vms/off" ] || fail "vm show: $(body)"
"$HVM" vm show off --json | jq -S . >cli.json
jq -S . "$T/body" >api.json
cmp -s cli.json api.json || fail "GET vms/off differs from vm show --json"
expect_api 200 GET host
jq -e '(.vms | length) == 2 and (.switches | length) == 1 and .store.free > 0 and .store.size > 0 and .cpus > 0' \
    "$T/body" >/dev/null || fail "host: $(body)"
expect_api 200 GET switches
[ "$(jq -r '.[0].name' "$T/body")" = lab ] || fail "switches: $(body)"
expect_api 200 GET switches/lab
[ "$(jq -r .type "$T/body")" = private ] || fail "switch show: $(body)"
expect_api 404 GET switches/nope

# Checkpoints: list, take (named and default), rename, apply (with and
# without taking one first), revert, show, delete (and a subtree).
expect_api 200 GET vms/off/checkpoints
[ "$(jq -r '.tree[0].name' "$T/body")" = first ] || fail "checkpoint list: $(body)"
expect_api 200 POST vms/off/checkpoints '{"name": "second"}'
jq -e '.message | test("second")' "$T/body" >/dev/null || fail "take: $(body)"
expect_api 200 POST vms/off/checkpoints
"$HVM" checkpoint list off --json | jq -e '[.. | objects | select(.id) ] | length == 3' >/dev/null ||
    fail "the default-named take did not take"
expect_api 200 POST vms/off/checkpoints/second/rename '{"name": "renamed"}'
"$HVM" checkpoint show off renamed >/dev/null || fail "rename did not rename"
expect_api 200 GET vms/off/checkpoints/renamed
[ "$(jq -r .name "$T/body")" = renamed ] || fail "checkpoint show: $(body)"
expect_api 200 POST vms/off/checkpoints/first/apply '{"take_first": true}'
"$HVM" checkpoint list off --json | jq -e '[.. | objects | select(.id)] | length == 4' >/dev/null ||
    fail "apply --take-first took none"
"$HVM" vm show off --json | jq -e '.checkpoint.name == "first"' >/dev/null || fail "apply did not apply"
expect_api 200 POST vms/off/checkpoints/renamed/apply
"$HVM" vm show off --json | jq -e '.checkpoint.name == "renamed"' >/dev/null || fail "apply"
expect_api 200 POST vms/off/revert
expect_api 200 DELETE vms/off/checkpoints/renamed
expect_fail 2 "$HVM" checkpoint show off renamed
expect_api 200 POST vms/off/checkpoints '{"name": "sub"}'
expect_api 200 POST vms/off/checkpoints/sub/delete '{"subtree": true}'
expect_api 404 POST vms/off/checkpoints/nope/apply
expect_api 404 GET vms/nope
expect_api 404 GET vms/nope/checkpoints

# Bad requests: clear JSON errors.
expect_api 400 POST vms/off/checkpoints '{"name": 5}'
expect_api 400 POST vms/off/checkpoints '[1]'
expect_api 400 POST vms/off/checkpoints '{not json'
expect_api 400 POST vms/off/checkpoints/first/rename '{}'
expect_api 400 POST vms/off/checkpoints/first/apply '{"take_first": "yes"}'
expect_api 400 POST vms/off/stop '{"timeout": "soon"}'
expect_api 400 POST vms/off/pause
jq -e '.error | test("not running")' "$T/body" >/dev/null || fail "pause of an Off VM: $(body)"
expect_api 405 GET vms/off/start
expect_api 405 DELETE vms/off
expect_api 404 GET nothing
expect_api 404 GET vms/off/checkpoints/first/frobnicate
expect_api 400 GET vms/-x
expect_api 400 GET "vms/a%00b"
expect_api 400 GET "vms/a%zz"
dd if=/dev/zero bs=1024 count=70 2>/dev/null | tr '\0' a >big
code=$(curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" --data-binary @big "$URL/api/vms/off/checkpoints")
[ "$code" = 413 ] || fail "a 70 KiB body: HTTP $code"

# The console: a WebSocket, of a running VM, with the token.
ws() { curl -s -o "$T/body" -w '%{http_code}' -H "Connection: Upgrade" -H "Upgrade: websocket" \
    -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" "$URL/api/vms/$1"; }
[ "$(ws "off/console?token=$TOKEN")" = 409 ] || fail "the console of an Off VM: $(body)"
jq -e '.error | test("not running")' "$T/body" >/dev/null || fail "console: $(body)"
[ "$(ws "off/console")" = 401 ] || fail "the console without a token"
[ "$(ws "off/console?token=x$TOKEN")" = 401 ] || fail "the console with a wrong token"
[ "$(ws "nope/console?token=$TOKEN")" = 404 ] || fail "the console of no VM: $(body)"
[ "$(ws "..%2Fx/console?token=$TOKEN")" = 400 ] || fail "the console of ../x: $(body)"
expect_api 400 GET vms/off/console

# Path traversal, in every parameter and in the pages' paths.
for p in "vms/.." "vms/../../etc" "vms/%2e%2e" "vms/off%2F..%2F..%2Fetc" "vms/off/checkpoints/.." \
    "vms/off/checkpoints/..%2F..%2Fx" "switches/..%2Fswitches.json" "vms/off/checkpoints/%2e%2e/apply"; do
    code=$(api GET "$p")
    [ "$code" = 400 ] || fail "GET $p: HTTP $code"
    jq -e '.error | test("traversal|path")' "$T/body" >/dev/null || fail "GET $p: $(body)"
done
expect_api 400 POST vms/off/checkpoints/first/rename '{"name": "../../x"}'
expect_api 400 POST vms/off/checkpoints '{"name": "a/b"}'
expect_api 400 POST vms/off/checkpoints '{"name": "-x"}'
for p in "../../../etc/passwd" "..%2F..%2Fetc%2Fpasswd" "%2e%2e/%2e%2e/etc/passwd" "vendor/../../../../etc/passwd"; do
    code=$(curl -s --path-as-is -o "$T/body" -w '%{http_code}' "$URL/$p")
    [ "$code" = 400 ] || [ "$code" = 404 ] || fail "GET /$p: HTTP $code"
    ! grep -q "root:" "$T/body" || fail "GET /$p served /etc/passwd"
done
ls "$HVM_STORE/vms" | sort | tr '\n' ' ' | grep -qx "g off " || fail "the store changed: $(ls "$HVM_STORE/vms")"

# SIGTERM ends the server; the port is closed.
kill "$WEB_PID"; wait "$WEB_PID" || fail "hvm web serve exited with an error on SIGTERM"
WEB_PID=
! curl -s -o /dev/null "$URL/" || fail "still listening after SIGTERM"

# A Unix socket: 0600, the same API.
"$HVM" web serve --listen "unix:$T/web.sock" --token-file "$T/token" >"$T/web.out" 2>&1 &
WEB_PID=$!
i=0; until [ -S "$T/web.sock" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "no socket"; sleep 0.1; done
[ "$(stat -c %a "$T/web.sock")" = 600 ] || fail "web.sock is $(stat -c %a "$T/web.sock")"
code=$(curl -s --unix-socket "$T/web.sock" -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" http://x/api/vms)
[ "$code" = 200 ] && jq -e 'length == 2' "$T/body" >/dev/null || fail "over the socket: $code $(body)"
stop_web

# TLS (a self-signed certificate): HTTPS only, the same API.
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=localhost \
    2>/dev/null || fail "openssl could not make a certificate"
expect_fail 2 "$HVM" web serve --tls-cert cert.pem --tls-key cert.pem --listen 127.0.0.1:0
start_web --tls-cert cert.pem --tls-key key.pem
case "$URL" in https://127.0.0.1:*) ;; *) fail "with TLS: $URL" ;; esac
code=$(curl -s --cacert cert.pem -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    "https://localhost:${URL##*:}/api/vms")
[ "$code" = 200 ] && jq -e 'length == 2' "$T/body" >/dev/null || fail "over TLS: $code $(body)"
! curl -s -o /dev/null "http://127.0.0.1:${URL##*:}/" || fail "plain HTTP answered on the TLS port"
stop_web
echo "ok"
