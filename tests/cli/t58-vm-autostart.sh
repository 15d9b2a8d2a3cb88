#!/bin/sh
# Automatic start and stop actions (Hyper-V's): vm set --autostart on|off,
# --autostart-delay, --autostop save|shutdown|turn-off; one canonical form in
# vm.json ({"enabled", "delay"}) whichever form was there; vm show in text and
# JSON; bad values refused in one line with nothing written; the validator
# refuses an unknown autostop in vm.json naming the field.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

show() { "$HVM" vm show "$1" --json >"$T/show.json"; json_get "$T/show.json" "$2"; }
doc() { json_get "$HVM_STORE/vms/$1/vm.json" "$2"; }

"$HVM" vm create a --new-disk 16M >/dev/null
# Defaults: off, no delay, save (Hyper-V's default stop action).
[ "$(show a "d['autostart']['enabled']")" = False ] || fail "autostart is on by default"
[ "$(show a "d['autostart']['delay']")" = 0 ] || fail "default delay"
[ "$(show a "d['autostop']")" = save ] || fail "default autostop"
"$HVM" vm show a | grep -q "^Autostart: *off$" || fail "text show: autostart"
"$HVM" vm show a | grep -q "^Autostop: *save$" || fail "text show: autostop"

"$HVM" vm set a --autostart on --autostart-delay 7 --autostop shutdown
[ "$(doc a "d['config']['autostart']")" = "{'enabled': True, 'delay': 7}" ] || fail "canonical form: $(doc a "d['config']['autostart']")"
[ "$(doc a "d['config']['autostop']")" = shutdown ] || fail "autostop not stored"
[ "$(show a "d['autostart']['delay']")" = 7 ] || fail "show: delay"
"$HVM" vm show a | grep -q "^Autostart: *on, 7 s after host start$" || fail "text show: autostart on"
"$HVM" vm show a | grep -q "^Autostop: *shutdown$" || fail "text show: shutdown"
# Each option alone keeps the others.
"$HVM" vm set a --autostart off
[ "$(doc a "d['config']['autostart']")" = "{'enabled': False, 'delay': 7}" ] || fail "off lost the delay"
"$HVM" vm set a --autostart-delay 3
[ "$(doc a "d['config']['autostart']")" = "{'enabled': False, 'delay': 3}" ] || fail "delay alone"
"$HVM" vm set a --autostop turn-off
[ "$(show a "d['autostop']")" = turn-off ] || fail "turn-off"
[ "$(show a "d['autostart']['delay']")" = 3 ] || fail "autostop changed the delay"

# The short form another writer may have used (true) is read, and rewritten
# in the canonical form by the next set.
$PY - "$HVM_STORE/vms/a/vm.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1])); d['config']['autostart'] = True
json.dump(d, open(sys.argv[1], 'w'))
PYEOF
[ "$(show a "d['autostart']['enabled']")" = True ] || fail "plain true not read"
[ "$(show a "d['autostart']['delay']")" = 0 ] || fail "plain true: delay"
"$HVM" vm set a --autostart-delay 2
[ "$(doc a "d['config']['autostart']")" = "{'enabled': True, 'delay': 2}" ] || fail "not rewritten canonically"

# Bad values: one line, exit 2, nothing written.
before=$(sha "$HVM_STORE/vms/a/vm.json")
for bad in "--autostart yes" "--autostart-delay -1" "--autostart-delay 5s" "--autostart-delay 99999999999" \
           "--autostop hibernate"; do
    expect_fail 2 "$HVM" vm set a $bad
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err"; fail "$bad: not one line"; }
done
[ "$(sha "$HVM_STORE/vms/a/vm.json")" = "$before" ] || fail "a refused set changed vm.json"

# The validator: an unknown stop action is refused, naming the field.
$PY - "$HVM_STORE/vms/a/vm.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1])); d['config']['autostop'] = 'hibernate'
json.dump(d, open(sys.argv[1], 'w'))
PYEOF
expect_fail 2 "$HVM" vm show a
last_error | grep -q "config.autostop: 'hibernate' is not save, shutdown or turn-off" || fail "validator: $(last_error)"
echo ok
