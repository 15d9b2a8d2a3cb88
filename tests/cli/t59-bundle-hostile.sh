#!/bin/sh
# Hostile bundles and VM folders (issue 11). A bundle is data from another
# host and a VM folder on shared storage is written by other hosts: neither
# may make hvm act outside the store. A canary folder outside the store
# shows that nothing there is created or removed.
# - a journal in a bundle (with its correct hash in the manifest) is refused
#   by import in every mode, and nothing replays it;
# - a journal written into a VM folder whose steps or removals name a path
#   outside (absolute, "..", through a symlink) is not replayed: every
#   command, vm check included, stops naming the file; vm list shows the VM
#   Unreadable;
# - a lock or run/ in a bundle is refused; other files the manifest lists
#   are left out with a note (refused in register mode);
# - a 5,000-deep folder is refused with a clear error (no stack overflow);
# - kernel/initrd host paths (/etc/shadow) are dropped with a note, in now
#   and in checkpoints; a kernel and initrd that travel in the bundle (boot/)
#   are imported and referenced inside the VM folder;
# - copy mode renews every MAC, those of checkpoints' adapters included.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

mkdir canary
echo "do not remove" >canary/victim
canary_state() { (cd canary && find . | sort && cat victim); }
canary_before=$(canary_state)
canary_intact() { # WHAT
    [ "$(canary_state)" = "$canary_before" ] || fail "$1: the canary folder outside the store changed: $(cd canary && find .)"
}
no_sanitizer() { # FILE
    grep -q "AddressSanitizer\|runtime error" "$1" && { cat "$1" >&2; fail "sanitizer report"; }
    return 0
}
json_edit() { # FILE PYTHON-STATEMENTS (d is the document, written back)
    $PY - "$1" "$2" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(d, open(sys.argv[1], "w"), indent=2)
PYEOF
}
manifest_add() { # BUNDLE REL...: list files (size, SHA-256) in the manifest
    $PY - "$@" <<'PYEOF'
import hashlib, json, os, sys
root = sys.argv[1]
m = json.load(open(os.path.join(root, "manifest.json")))
for rel in sys.argv[2:]:
    p = os.path.join(root, rel)
    m["files"] = [f for f in m["files"] if f["path"] != rel]
    m["files"].append({"path": rel, "size": os.path.getsize(p),
                       "sha256": hashlib.sha256(open(p, "rb").read()).hexdigest()})
json.dump(m, open(os.path.join(root, "manifest.json"), "w"), indent=2)
PYEOF
}

# A VM with direct kernel boot, two adapters in a checkpoint and one now.
head -c 4096 /dev/urandom >vmlinuz
head -c 2048 /dev/urandom >initrd.img
"$HVM" vm create v --new-disk 16M --nic lan --nic lan >/dev/null
"$HVM" vm set v --kernel vmlinuz --initrd initrd.img --cmdline "console=ttyS0"
"$HVM" checkpoint take v two-nics >/dev/null
mac2=$(json_get "$HVM_STORE/vms/v/vm.json" "d['config']['nics'][1]['mac']")
"$HVM" vm set v --remove-nic "$mac2"
"$HVM" vm export v b >/dev/null
old_macs=$(json_get b/vm.json "' '.join(sorted({n['mac'] for c in [d['config']] + [x['config'] for x in d['checkpoints']] for n in c['nics']}))")
[ "$(echo "$old_macs" | wc -w)" = 2 ] || fail "setup: expected two MACs, got '$old_macs'"

# The kernel and initrd travel in the bundle and come back inside the folder.
grep -q "$T" b/vm.json && fail "the bundle's vm.json names host paths"
k=$(json_get b/vm.json "d['config']['boot']['kernel']")
case "$k" in boot/*) ;; *) fail "the bundle's kernel is '$k', not under boot/" ;; esac
cmp -s "b/$k" vmlinuz || fail "the bundle's kernel differs"
"$HVM" vm import b --mode copy --name c1 2>import.err
no_sanitizer import.err
vj=$HVM_STORE/vms/c1/vm.json
for key in kernel initrd; do
    f=$(json_get "$vj" "d['config']['boot']['$key']")
    case "$f" in boot/*) ;; *) fail "imported $key is '$f', not inside the VM folder" ;; esac
    [ -f "$HVM_STORE/vms/c1/$f" ] || fail "imported $key $f is missing"
done
cmp -s "$HVM_STORE/vms/c1/$(json_get "$vj" "d['config']['boot']['initrd']")" initrd.img || fail "imported initrd differs"
[ "$(json_get "$vj" "d['config']['boot']['cmdline']")" = "console=ttyS0" ] || fail "cmdline lost"
# Copy mode: every MAC new, the checkpoint's second adapter included; one
# adapter keeps one identity between now and the checkpoint.
for m in $(json_get "$vj" "' '.join(n['mac'] for c in [d['config']] + [x['config'] for x in d['checkpoints']] for n in c['nics'])"); do
    echo "$old_macs" | grep -q "$m" && fail "copy mode kept MAC $m"
    echo "$m" | grep -Eq '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' || fail "copy mode: bad MAC $m"
done
[ "$(json_get "$vj" "d['config']['nics'][0]['mac'] == d['checkpoints'][0]['config']['nics'][0]['mac']")" = True ] ||
    fail "copy mode: the same adapter got two MACs"
[ "$(json_get "$vj" "len({n['mac'] for c in [d['config']] + [x['config'] for x in d['checkpoints']] for n in c['nics']})")" = 2 ] ||
    fail "copy mode: two adapters do not have two MACs"
vm_check c1
cp -a b pristine
bad() { rm -rf "$1"; cp -a pristine "$1"; }
refused() { # BUNDLE TEXT [import options]: exit 2, TEXT among the problems, nothing imported
    _b=$1 _txt=$2; shift 2
    _before=$(ls -a "$HVM_STORE/vms")
    expect_fail 2 "$HVM" vm import "$_b" "$@"
    grep -q "^  - .*$_txt" "$T/.err" || fail "$_b $*: '$_txt' not among the problems: $(last_error)"
    [ "$(ls -a "$HVM_STORE/vms")" = "$_before" ] || fail "$_b $*: the store changed"
    return 0
}

# 1. The attack of the issue: a journal in the bundle, listed in the
# manifest with its hash, that copies a host file out and deletes one.
bad bj
gen=$(json_get bj/vm.json "d['generation']")
$PY - bj "$T/canary" "$gen" <<'PYEOF'
import json, os, sys
root, canary, gen = sys.argv[1], sys.argv[2], int(sys.argv[3])
nxt = json.load(open(os.path.join(root, "vm.json")))
nxt["generation"] = gen + 1
j = {"op": "x", "generation": gen + 1, "next": nxt,
     "steps": [{"do": "copy", "from": "/etc/hostname", "to": canary + "/created"}],
     "remove": [canary + "/victim"]}
json.dump(j, open(os.path.join(root, "journal"), "w"))
PYEOF
manifest_add bj journal
refused bj "journal.*refused" --mode copy --name j1
refused bj "journal.*refused" --dry-run --mode copy --name j1
refused bj "journal.*refused" --mode register --name j2
"$HVM" vm list >list.out 2>&1
no_sanitizer list.out
canary_intact "import of a bundle with a journal"
[ -f bj/journal ] || fail "import changed the bundle"
# ... and unlisted, it is refused all the same.
bad bj2; cp bj/journal bj2/journal
refused bj2 "journal.*refused" --mode copy --name j3
canary_intact "import of a bundle with an unlisted journal"

# 2. lock and run/ are refused too.
bad bl; : >bl/lock; manifest_add bl lock
refused bl "lock.*refused" --mode copy --name l1
bad br; mkdir br/run; echo '{"drives": []}' >br/run/drives.json; manifest_add br run/drives.json
refused br "run.*refused" --mode copy --name r1

# 3. Other files the manifest lists: left out with a note; in register mode
# (the folder used in place) refused.
bad be; echo "hello" >be/notes.txt; cp "be/$(json_get be/vm.json "d['config']['drives'][0]['file']")" be/disks/stray.vhd
manifest_add be notes.txt disks/stray.vhd
"$HVM" vm import be --mode copy --name e1 2>import.err
no_sanitizer import.err
grep -q "note: notes.txt .*not imported" import.err || fail "no note for notes.txt: $(cat import.err)"
grep -q "note: disks/stray.vhd .*not imported" import.err || fail "no note for disks/stray.vhd: $(cat import.err)"
[ ! -e "$HVM_STORE/vms/e1/notes.txt" ] && [ ! -e "$HVM_STORE/vms/e1/disks/stray.vhd" ] || fail "an extra file was copied"
vm_check e1
refused be "notes.txt.*may not hold it" --mode register --name e2 --store "$T/store-reg"

# 4. A 5,000-deep folder: refused with a clear error, no stack overflow.
bad bd
$PY - bd <<'PYEOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for _ in range(5000):
    os.mkdir("d", dir_fd=fd)
    nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = nfd
os.close(fd)
PYEOF
refused bd "nested more than 16 deep" --dry-run --mode copy --name d1
refused bd "nested more than 16 deep" --mode copy --name d1

# 5. Kernel and initrd paths of the host: dropped with a note, in now and
# in the checkpoint, never in the new vm.json.
bad bk
json_edit bk/vm.json "
d['config']['boot']['kernel'] = '/etc/shadow'
d['config']['boot']['initrd'] = '/etc/passwd'
d['checkpoints'][0]['config']['boot']['kernel'] = '/etc/shadow'
d['checkpoints'][0]['config']['boot']['initrd'] = '../../../etc/shadow'
"
manifest_add bk vm.json
"$HVM" vm import bk --mode copy --name k1 2>import.err
no_sanitizer import.err
grep -q "note: vm.json: config.boot.kernel '/etc/shadow' .*not imported" import.err || fail "no note for the kernel: $(cat import.err)"
grep -q "note: vm.json: config.boot.initrd '/etc/passwd' .*not imported" import.err || fail "no note for the initrd: $(cat import.err)"
grep -q "note: vm.json: checkpoints\[0\].config.boot.kernel '/etc/shadow'" import.err || fail "no note for the checkpoint's kernel: $(cat import.err)"
grep -q "note: vm.json: checkpoints\[0\].config.boot.initrd '../../../etc/shadow'" import.err || fail "no note for the checkpoint's initrd"
grep -q "etc/shadow\|etc/passwd" "$HVM_STORE/vms/k1/vm.json" && fail "a host path reached the new vm.json"
[ "$(json_get "$HVM_STORE/vms/k1/vm.json" "d['config']['boot']['cmdline']")" = "console=ttyS0" ] || fail "cmdline lost with the kernel"
# register mode drops them as well, before registering
# (without the boot files nothing names any more: in place, they could not
# be left out)
bad bk2; cp bk/vm.json bk2/vm.json; rm -r bk2/boot
json_edit bk/manifest.json "d['files'] = [f for f in d['files'] if not f['path'].startswith('boot/')]"
cp bk/manifest.json bk2/manifest.json
"$HVM" vm import bk2 --mode register --store "$T/store-reg" 2>import.err || { cat import.err >&2; fail "register of bk2"; }
grep -q "etc/shadow\|etc/passwd" bk2/vm.json && fail "register mode kept a host path"
canary_intact "the bundles"

# 6. A journal written straight into a VM folder, naming paths outside it:
# never replayed, every command stops naming the file; vm check lists it
# among its problems (exit 1, text and --json) and changes nothing.
"$HVM" vm create w --new-disk 1M >/dev/null
wdir=$HVM_STORE/vms/w
wgen=$(json_get "$wdir/vm.json" "d['generation']")
w_before=$(cat "$wdir/vm.json")
write_journal() { # STEPS-JSON REMOVE-JSON
    $PY - "$wdir" "$wgen" "$1" "$2" <<'PYEOF'
import json, os, sys
root, gen, steps, remove = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
nxt = json.load(open(os.path.join(root, "vm.json")))
nxt["generation"] = gen + 1
json.dump({"op": "x", "generation": gen + 1, "next": nxt, "steps": steps, "remove": remove},
          open(os.path.join(root, "journal"), "w"))
PYEOF
}
journal_refused() { # WHAT
    for cmd in "vm show w" "checkpoint list w" "vm start w"; do
        expect_fail 2 "$HVM" $cmd
        last_error | grep -q "$wdir/journal: .*not replayed" || fail "$1: $cmd: no clear refusal: $(last_error)"
    done
    set +e
    "$HVM" vm check w >check.out 2>check.err; rc=$?
    "$HVM" vm check w --json >check.json 2>>check.err; rcj=$?
    set -e
    no_sanitizer check.err
    [ "$rc" = 1 ] && [ "$rcj" = 1 ] || fail "$1: vm check exited $rc/$rcj, not 1 (problems): $(cat check.err)"
    grep -q "^w: problem: $wdir/journal: .*not replayed" check.out || fail "$1: vm check: $(cat check.out)"
    [ "$(json_get check.json "[d['result'], len([p for p in d['problems'] if 'journal was not replayed' in p]) > 0]")" = "['problems', True]" ] ||
        fail "$1: vm check --json: $(cat check.json)"
    "$HVM" vm list --json >list.json 2>list.err
    no_sanitizer list.err
    [ "$(json_get list.json "[x['state'] for x in d if x['name'] == 'w']")" = "['Unreadable']" ] ||
        fail "$1: vm list: $(cat list.json)"
    canary_intact "$1"
    [ -f "$wdir/journal" ] || fail "$1: the journal was removed"
    [ "$(cat "$wdir/vm.json")" = "$w_before" ] || fail "$1: vm.json changed"
}
write_journal "[{\"do\": \"copy\", \"from\": \"/etc/hostname\", \"to\": \"$T/canary/created\"}]" "[\"$T/canary/victim\"]"
journal_refused "an absolute step"
write_journal "[]" "[\"../../../canary/victim\"]"
journal_refused "a '..' removal"
write_journal "[{\"do\": \"copy\", \"from\": \"vm.json\", \"to\": \"disks/../../../../canary/created\"}]" "[]"
journal_refused "a '..' step"
ln -s "$T/canary" "$wdir/disks/esc"
write_journal "[{\"do\": \"copy\", \"from\": \"vm.json\", \"to\": \"disks/esc/created\"}]" "[\"disks/esc/victim\"]"
journal_refused "a step through a symlink"
ln -sf "$T/canary/victim" "$wdir/checkpoints/link"
write_journal "[{\"do\": \"diff\", \"parent\": \"checkpoints/link\", \"child\": \"disks/new.vhd\"}]" "[]"
journal_refused "a step reading through a symlink"
write_journal "[{\"do\": \"rebase\", \"child\": \"disks/x.vhd\", \"onto\": \"/etc/passwd\"}]" "[]"
journal_refused "a rebase onto a host file"
write_journal "[{\"do\": 7}]" "{}"
journal_refused "a journal of the wrong shape"
# Once the journal is gone (an operator looked at it), the VM opens again.
rm "$wdir/journal" "$wdir/disks/esc" "$wdir/checkpoints/link"
vm_check w
canary_intact "the end"
echo ok
