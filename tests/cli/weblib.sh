# Helpers for the web console's tests: source after lib.sh and vmlib.sh.
command -v curl >/dev/null || skip "curl is not installed"
WEB_PID=
stop_web() {
    [ -z "$WEB_PID" ] || { kill "$WEB_PID" 2>/dev/null; wait "$WEB_PID" 2>/dev/null || true; }
    WEB_PID=
}
# start_web [options...]: hvm web serve on a free loopback port, its token in
# $T/token; sets URL and TOKEN.
start_web() {
    rm -f "$T/web.out"
    "$HVM" web serve --listen 127.0.0.1:0 --token-file "$T/token" "$@" >"$T/web.out" 2>"$T/web.err" &
    WEB_PID=$!
    _i=0
    until grep -q "listening on" "$T/web.out" 2>/dev/null; do
        _i=$((_i + 1)); [ $_i -lt 300 ] || { cat "$T/web.err" >&2; fail "hvm web serve did not start"; }
        kill -0 $WEB_PID 2>/dev/null || { cat "$T/web.err" >&2; fail "hvm web serve exited"; }
        sleep 0.1
    done
    URL=$(sed -n 's/^hvm web: listening on //p' "$T/web.out")
    TOKEN=$(cat "$T/token")
}
# api METHOD PATH [JSON]: the reply's body in $T/body, its status printed.
api() {
    if [ $# -ge 3 ]; then
        curl -s --path-as-is -o "$T/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/json' --data-binary "$3" "$URL/api/$2"
    else
        curl -s --path-as-is -o "$T/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $TOKEN" \
            "$URL/api/$2"
    fi
}
# expect_api STATUS METHOD PATH [JSON]: the call answers STATUS with a JSON object.
expect_api() {
    _want=$1; shift
    _got=$(api "$@")
    [ "$_got" = "$_want" ] || { cat "$T/body" >&2; echo >&2; fail "$1 $2: HTTP $_got, expected $_want"; }
    jq -e 'type == "object" or type == "array"' "$T/body" >/dev/null ||
        fail "$1 $2: the reply is not JSON: $(cat "$T/body")"
    if [ "$_want" -ge 400 ]; then
        jq -e '.error | type == "string" and length > 0' "$T/body" >/dev/null ||
            fail "$1 $2: no error message in $(cat "$T/body")"
    fi
}
body() { cat "$T/body"; }
