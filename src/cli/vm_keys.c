/* hvm vm send-keys: key presses for the VM's keyboard (QMP send-key, one
 * command per chord, through the worker). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "runtime/runtime.h"
#include "util/error.h"
#include "vm/vm.h"

#define TEXT_MAX 256
#define CHORD_MAX 8

/* QEMU's key codes are lower-case letters, digits and '_' (QKeyCode). */
static bool qcode_valid(const char *s, size_t n)
{
    if (n == 0 || n > 24)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* "ctrl-alt-delete" -> ["ctrl", "alt", "delete"]. */
static int chord_parse(const char *key, json_t *chords)
{
    json_t *chord = json_array();
    for (const char *p = key;;) {
        size_t n = strcspn(p, "-");
        if (!qcode_valid(p, n) || json_array_size(chord) == CHORD_MAX) {
            json_decref(chord);
            return hvm_error(EINVAL, "'%s' is not a key (QEMU key codes such as ret, a, f2, "
                             "joined by '-': ctrl-alt-delete)", key);
        }
        json_array_append_new(chord, json_stringn(p, n));
        if (!p[n])
            break;
        p += n + 1;
    }
    json_array_append_new(chords, chord);
    return 0;
}

/* One character of the US layout: its key code and whether shift is held. */
static const char *char_qcode(char c, bool *shift)
{
    static const char plain[] = "-=[];'`\\,./";
    static const char *const plain_codes[] = {"minus", "equal", "bracket_left", "bracket_right",
                                              "semicolon", "apostrophe", "grave_accent",
                                              "backslash", "comma", "dot", "slash"};
    static const char shifted[] = "_+{}:\"~|<>?!@#$%^&*()";
    static const char *const shifted_codes[] = {
        "minus", "equal", "bracket_left", "bracket_right", "semicolon", "apostrophe",
        "grave_accent", "backslash", "comma", "dot", "slash", "1", "2", "3", "4", "5", "6",
        "7", "8", "9", "0"};
    static const char letters[26][2] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
                                        "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z"};
    static const char digits[10][2] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    *shift = false;
    if (c >= 'a' && c <= 'z')
        return letters[c - 'a'];
    if (c >= 'A' && c <= 'Z') {
        *shift = true;
        return letters[c - 'A'];
    }
    if (c >= '0' && c <= '9')
        return digits[c - '0'];
    if (c == ' ')
        return "spc";
    if (c == '\n')
        return "ret";
    if (c == '\t')
        return "tab";
    const char *p;
    if (c && (p = strchr(plain, c)))
        return plain_codes[p - plain];
    if (c && (p = strchr(shifted, c))) {
        *shift = true;
        return shifted_codes[p - shifted];
    }
    return NULL;
}

/* The text with "\n" (backslash, n) read as Enter, as a shell argument
 * cannot easily hold a newline. */
static int text_parse(const char *text, json_t *chords)
{
    if (strlen(text) > TEXT_MAX)
        return hvm_error(EINVAL, "--text: at most %d characters (give several commands)", TEXT_MAX);
    for (const char *p = text; *p; p++) {
        char c = *p;
        if (c == '\\' && p[1] == 'n')
            c = '\n', p++;
        bool shift;
        const char *code = char_qcode(c, &shift);
        if (!code) {
            if ((unsigned char)c >= 32 && (unsigned char)c < 127)
                return hvm_error(EINVAL, "--text: no key for '%c'", c);
            return hvm_error(EINVAL, "--text: no key for the character 0x%02x (US layout, "
                             "printable ASCII)", (unsigned char)c);
        }
        json_array_append_new(chords, shift ? json_pack("[s, s]", "shift", code)
                                            : json_pack("[s]", code));
    }
    return 0;
}

int cmd_vm_send_keys(const struct cli_args *a)
{
    json_t *chords = json_array();
    int r = 0;
    for (int i = 1; r == 0 && cli_pos(a, i); i++)
        r = chord_parse(cli_pos(a, i), chords);
    if (r == 0 && cli_text(a, "text"))
        r = text_parse(cli_text(a, "text"), chords);
    if (r == 0 && json_array_size(chords) == 0) {
        json_decref(chords);
        return cli_verb_error(a, "give a KEY or --text");
    }
    if (r < 0) {
        json_decref(chords);
        return cli_fail();
    }
    struct store s;
    struct vm *vm;
    if (vm_cli_open(cli_text(a, "store"), cli_pos(a, 0), &s, &vm)) {
        json_decref(chords);
        return EXIT_ERROR;
    }
    size_t n = json_array_size(chords);
    if (!runtime_alive(vm)) {
        r = hvm_error(EINVAL, "VM '%s' is %s, not running", vm->name, vm_state(vm));
        json_decref(chords);
    } else {
        r = runtime_request(vm, json_pack("{s:s, s:o}", "op", "send-keys", "chords", chords), NULL);
    }
    vm_close(vm);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("sent %zu key%s to VM '%s'\n", n, n == 1 ? "" : "s", cli_pos(a, 0));
    return EXIT_OK;
}
