#!/bin/sh
# The command table (src/cli/table.c) and what is made from it: hvm --help
# lists every noun and verb, every 'hvm NOUN VERB --help' works, usage
# errors are one line naming the verb (exit 2); the generated man pages
# render without warnings, the bash completion completes nouns, verbs,
# options, values and files; make install lays out the binary, the pages,
# the completion and the systemd units. And two fixes of the table's verbs:
# checkpoint show prints the checkpoint's space (not its RAM) as Space,
# vm show prints the kernel, initrd and command line.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
: "${BUILD:?set BUILD to the meson build folder}"
SRC=$(cd "$TESTS/.." && pwd)
DOC=$BUILD/doc
[ -f "$DOC/hvm" ] || fail "no generated completion $DOC/hvm"
command -v bash >/dev/null || skip "no bash"

# The table's nouns and verbs, as the completion (generated from it) has them.
bash -c '. "$1"; for n in $_hvm_nouns; do v=_hvm_verbs_$n; echo "$n ${!v}"; done' _ "$DOC/hvm" >table.txt
[ "$(wc -l <table.txt)" -ge 4 ] || fail "the completion lists $(wc -l <table.txt) nouns"
# The table is complete: the verbs every noun is known to have.
for want in "vhd create diff info check repair convert merge rebase set-parent compact resize serve bench" \
    "vm create list show set rename delete check serve export import move start stop turn-off pause resume save console" \
    "checkpoint take list revert apply rename show delete" "base list remove" \
    "switch create list show delete up down"; do
    noun=${want%% *}
    have=" $(grep "^$noun " table.txt) "
    for v in ${want#* }; do
        case "$have" in *" $v "*) ;; *) fail "the table has no 'hvm $noun $v'" ;; esac
    done
done

# hvm --help lists every noun and verb with its help line; hvm NOUN --help
# every verb; hvm NOUN VERB --help its usage, on stdout, nothing on stderr.
"$HVM" --help >main.txt 2>main.err
[ ! -s main.err ] || fail "hvm --help wrote to stderr"
while read -r noun verbs; do
    grep -q "^hvm $noun: " main.txt || fail "hvm --help does not list the noun $noun"
    "$HVM" "$noun" --help >noun.txt 2>noun.err || fail "hvm $noun --help exited $?"
    [ ! -s noun.err ] || fail "hvm $noun --help wrote to stderr"
    for v in $verbs; do
        # the verb's line in hvm --help, under its noun, with a help line
        awk -v n="hvm $noun:" -v v="$v" '$0 ~ "^" n {on = 1; next} /^hvm / {on = 0}
            on && $1 == v && NF > 1 {found = 1} END {exit !found}' main.txt ||
            fail "hvm --help does not list 'hvm $noun $v' with a help line"
        grep -q "^  $v " noun.txt || fail "hvm $noun --help does not list $v"
        "$HVM" "$noun" "$v" --help >verb.txt 2>verb.err || fail "hvm $noun $v --help exited $?"
        [ ! -s verb.err ] || fail "hvm $noun $v --help wrote to stderr"
        grep -q "^usage: hvm $noun $v" verb.txt || fail "hvm $noun $v --help: no usage"
        grep -q -- "--help" verb.txt || fail "hvm $noun $v --help: no options"
    done
done <table.txt

# Usage errors: one line naming the verb, exit 2.
usage_error() { # TEXT CMD...: exit 2, one line that names the verb and says TEXT
    text=$1; shift
    expect_fail 2 "$HVM" "$@"
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err"; fail "$*: not one line"; }
    grep -q "^hvm: $1 $2: " "$T/.err" || fail "$*: the verb is not named: $(last_error)"
    grep -q -- "$text" "$T/.err" || fail "$*: does not say '$text': $(last_error)"
}
usage_error "unknown option '--bogus'" vhd create x.vhd --size 1M --bogus
usage_error "unknown option '-Z'" vhd info x.vhd -Z
usage_error "missing VM" vm show
usage_error "missing CHECKPOINT" checkpoint show vm1
usage_error "unexpected argument 'extra'" vm list extra
usage_error "--socket is required" vhd serve x.vhd
usage_error "--timeout needs a value" vm stop vm1 --timeout
usage_error "--timeout: 'soon' is not a whole number" vm stop vm1 --timeout soon
usage_error "--accel: 'fast' is not kvm, tcg or auto" vm start vm1 --accel fast
usage_error "--force takes no value" vhd merge x.vhd --force=yes
usage_error "ambiguous" vm set vm1 --re 1
expect_fail 2 "$HVM" vhd frobnicate
grep -q "unknown verb 'hvm vhd frobnicate'" .err || fail "unknown verb: $(last_error)"
expect_fail 2 "$HVM" nosuchnoun
# getopt_long's ways stay: --opt=value, an unambiguous prefix, options
# before positionals, "--" before a positional that starts with a dash.
"$HVM" vhd create --size=1M p1.vhd
"$HVM" vhd create --si 1M -- -dash.vhd
"$HVM" vhd create -s 1M -t fixed p2.vhd
[ "$("$HVM" vhd info p2.vhd --json | json_get /dev/stdin "d['type']")" = fixed ] || fail "-t fixed"
[ -f ./-dash.vhd ] || fail "-- did not end the options"

# The man pages: hvm(1) and one per noun, rendering without a warning.
pages="hvm.1"
while read -r noun verbs; do pages="$pages hvm-$noun.1"; done <table.txt
for p in $pages; do
    [ -s "$DOC/$p" ] || fail "no generated page $p (a noun missing from doc/meson.build?)"
    out=$(MANWIDTH=80 man -l "$DOC/$p" 2>&1 >/dev/null) || fail "man -l $p failed: $out"
    [ -z "$out" ] || fail "man -l $p: $out"
    if command -v groff >/dev/null; then
        out=$(groff -man -ww -z "$DOC/$p" 2>&1)
        [ -z "$out" ] || fail "groff -ww $p: $out"
    fi
    MANWIDTH=80 man -l "$DOC/$p" 2>/dev/null >page.txt
    grep -q "^NAME" page.txt || fail "$p: no NAME section"
done
MANWIDTH=80 man -l "$DOC/hvm-vhd.1" 2>/dev/null >page.txt
grep -q "hvm vhd create" page.txt || fail "hvm-vhd(1) lacks create"
grep -q -- "--block-size" page.txt || fail "hvm-vhd(1) lacks --block-size"
MANWIDTH=80 man -l "$DOC/hvm.1" 2>/dev/null >page.txt
grep -q "hvm vm console" page.txt || fail "hvm(1) lacks vm console"

# The bash completion.
complete_hvm() { # WORDS...: what completing the last word offers
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _hvm; echo "${COMPREPLY[*]}"' _ "$DOC/hvm" "$@"
}
[ "$(complete_hvm hvm v)" = "vhd vm" ] || fail "hvm v<TAB>: $(complete_hvm hvm v)"
[ "$(complete_hvm hvm vhd cr)" = "create" ] || fail "hvm vhd cr<TAB>: $(complete_hvm hvm vhd cr)"
[ "$(complete_hvm hvm vhd create --s)" = "--size" ] || fail "hvm vhd create --s<TAB>: $(complete_hvm hvm vhd create --s)"
[ "$(complete_hvm hvm vhd create x.vhd --type "")" = "dynamic fixed" ] || fail "--type <TAB>: $(complete_hvm hvm vhd create x.vhd --type "")"
[ "$(complete_hvm hvm checkpoint re)" = "revert rename" ] || fail "hvm checkpoint re<TAB>"
[ "$(complete_hvm hvm vm start x --accel a)" = "auto" ] || fail "--accel a<TAB>"
mkdir comp && : >comp/disk-one.vhd && : >comp/disk-two.vhd
[ "$(cd comp && complete_hvm hvm vhd info disk-o)" = "disk-one.vhd" ] || fail "vhd info FILE<TAB>"
# the second positional of diff after an option and its value is a file too
[ "$(cd comp && complete_hvm hvm vhd diff --no-protect disk-one.vhd disk-t)" = "disk-two.vhd" ] ||
    fail "vhd diff PARENT CHILD<TAB>"
[ "$(cd comp && complete_hvm hvm vm serve x --socket disk-t)" = "disk-two.vhd" ] || fail "--socket PATH<TAB>"

# make install: the binary, the man pages, the completion, the systemd units.
make -s -C "$SRC" install BUILD="$BUILD" PREFIX=/usr/local DESTDIR="$T/x" >install.log 2>&1 ||
    { cat install.log; fail "make install failed"; }
R=$T/x/usr/local
[ -x "$R/bin/hvm" ] || fail "make install: no bin/hvm"
for p in $pages; do
    [ -f "$R/share/man/man1/$p" ] || fail "make install: no share/man/man1/$p"
done
[ -f "$R/share/bash-completion/completions/hvm" ] || fail "make install: no bash completion"
for u in "$SRC"/data/systemd/*.service "$SRC"/data/systemd/*.timer; do
    [ -f "$u" ] || continue
    [ -f "$R/lib/systemd/system/$(basename "$u")" ] || fail "make install: no unit $(basename "$u")"
done
"$R/bin/hvm" --version >/dev/null || fail "the installed hvm does not run"

# checkpoint show: Space is the checkpoint's space, RAM its memory.
"$HVM" vm create c --new-disk 16M --memory 256M >/dev/null
"$HVM" checkpoint take c one >/dev/null
"$HVM" checkpoint show c one >show.txt
"$HVM" checkpoint show c one --json >show.json
grep -q "^RAM: *256 MiB$" show.txt || fail "checkpoint show RAM: $(cat show.txt)"
space=$(json_get show.json "d['space']")
want=$($PY -c "
import sys
b = int(sys.argv[1]); u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; v = float(b); i = 0
while v >= 1024 and i < 4: v /= 1024; i += 1
print('%d B' % b if i == 0 else '%.4g %s' % (v, u[i]))" "$space")
grep -q "^Space: *$want$" show.txt || fail "checkpoint show Space is not $want ($space bytes): $(grep Space show.txt)"

# VM names complete from the store (hvm vm list; here $HVM_STORE, or --store).
[ "$(complete_hvm "$HVM" vm show "")" = "c" ] || fail "vm show <TAB>: $(complete_hvm "$HVM" vm show "")"
[ "$(store=$HVM_STORE; export HVM_STORE=$T/none; complete_hvm "$HVM" checkpoint list --store "$store" "")" = "c" ] ||
    fail "checkpoint list --store DIR <TAB>"

# vm show: the kernel, initrd and command line of direct kernel boot.
: >vmlinuz && : >initrd.img
"$HVM" vm set c --kernel vmlinuz --initrd initrd.img --cmdline "console=ttyS0 quiet"
"$HVM" vm show c >show.txt
"$HVM" vm show c --json >show.json
grep -q "^Kernel: *$T/vmlinuz$" show.txt || fail "vm show Kernel: $(cat show.txt)"
grep -q "^Initrd: *$T/initrd.img$" show.txt || fail "vm show Initrd"
grep -q "^Cmdline: *console=ttyS0 quiet$" show.txt || fail "vm show Cmdline"
[ "$(json_get show.json "d['kernel']")" = "$T/vmlinuz" ] || fail "vm show --json kernel"
[ "$(json_get show.json "d['initrd']")" = "$T/initrd.img" ] || fail "vm show --json initrd"
[ "$(json_get show.json "d['cmdline']")" = "console=ttyS0 quiet" ] || fail "vm show --json cmdline"
"$HVM" vm set c --kernel "" --initrd "" --cmdline ""
"$HVM" vm show c >show.txt
grep -q "^Kernel: *(none)$" show.txt || fail "vm show: a cleared kernel"
[ "$("$HVM" vm show c --json | json_get /dev/stdin "d['kernel']")" = None ] || fail "vm show --json: a cleared kernel is not null"
echo "t15 ok"
