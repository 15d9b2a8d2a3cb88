/* libFuzzer target: the replay decision for a journal given as bytes
 * (vm_journal_decide: refuse, finish, execute, or test the guard; the
 * decision vm_journal_recover acts on, before it checks the files the
 * journal names), against
 * a vm.json of generation 1, 7 or near the top of the range. Only the decision:
 * replaying acts on files. A journal not refused must have a next document
 * that is a valid vm.json of its generation. Nothing may crash, leak,
 * overflow or allocate without bound. */
#include <stdint.h>
#include <stdlib.h>

#include "util/error.h"
#include "vm/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const json_int_t haves[] = {1, 7, ((json_int_t)1 << 62) - 1};
    json_t *journal = json_loadb((const char *)data, size, 0, NULL);
    for (size_t i = 0; i < sizeof haves / sizeof *haves; i++) {
        json_t *list = json_array();
        enum vm_journal_action a = vm_journal_decide(journal, haves[i], "journal", list);
        if ((a == VM_JOURNAL_REFUSE) != (json_array_size(list) > 0))
            abort(); /* refused exactly when there is a problem to tell */
        if (a != VM_JOURNAL_REFUSE) {
            json_t *next = json_object_get(journal, "next");
            json_t *l2 = json_array();
            if (vm_doc_problems(next, "vm.json", 0, l2) ||
                json_integer_value(json_object_get(next, "generation")) !=
                    json_integer_value(json_object_get(journal, "generation")))
                abort();
            json_decref(l2);
        }
        json_decref(list);
        enum vm_journal_action b;
        vm_journal_validate(journal, haves[i], "journal", &b);
        if (a != b)
            abort();
    }
    json_decref(journal);
    hvm_error_clear();
    return 0;
}
