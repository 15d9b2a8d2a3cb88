#!/bin/sh
# vm send-keys: --text is typed on the VM's keyboard with the US layout (the
# guest reads the line from its first virtual terminal: capitals, shifted
# punctuation, Enter), and KEYs (chords such as shift-h, then single keys)
# arrive in order. Bad keys are refused before anything is
# sent; an Off VM is refused.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

guest_vm k shell --new-disk 16M
expect_fail 2 "$HVM" vm send-keys k ret
last_error | grep -q "not running" || fail "send-keys to an Off VM: $(last_error)"
"$HVM" vm start k --accel "$ACCEL"
console_mark k
wait_console k "HVM-GUEST READY" 60

expect_fail 2 "$HVM" vm send-keys k Ret
last_error | grep -q "'Ret' is not a key" || fail "unclear key error: $(last_error)"
expect_fail 2 "$HVM" vm send-keys k ctrl--a
expect_fail 2 "$HVM" vm send-keys k --text "$(printf 'caf\303\251')"
last_error | grep -q "no key for" || fail "unclear --text error: $(last_error)"
expect_fail 2 "$HVM" vm send-keys k

# The guest waits for a line on tty1 (the VGA console, where the keyboard
# types) and prints it on the serial console.
(sleep 1; printf '(read l < /dev/tty1; echo "TYPED=[$l]" > /dev/console) &\r'; sleep 2; printf '\035') |
    "$HVM" vm console k > /dev/null
"$HVM" vm send-keys k --text 'Hello, World! a_b+c "q" ~/x\n' > out.txt
grep -q "^sent 28 keys to VM 'k'$" out.txt || { cat out.txt; fail "send-keys says: $(cat out.txt)"; }
wait_console k 'TYPED=\[Hello, World! a_b\+c "q" ~/x\]' 20

# KEYs: chords (shift held with h) and single keys, in order.
(sleep 1; printf '(read l < /dev/tty1; echo "KEYS=[$l]" > /dev/console) &\r'; sleep 2; printf '\035') |
    "$HVM" vm console k > /dev/null
"$HVM" vm send-keys k shift-h i spc shift-1 ret > /dev/null
wait_console k 'KEYS=\[Hi !\]' 20
"$HVM" vm turn-off k
wait_state k Off 20
