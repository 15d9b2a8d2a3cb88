/* The one validator of vm.json: every field's type, range and shape.
 *
 * A VM folder on shared storage is written by other hosts and a bundle
 * comes from anywhere: both are untrusted input. Every open of a VM folder
 * (vm_open, vm_open_dir) and every import checks the document here before
 * any other code reads it, so that the rest of hvm may take the schema for
 * granted (a string where a string is due, an id that exists, a path that
 * stays inside the folder, a MAC that cannot add QEMU options).
 *
 * Each problem is one string naming the file and the field:
 *   "vm.json: checkpoints[3].id: expected a string"
 * The schema (which keys each object may have, and how each is checked) is
 * the tables in validate.c; a new key hvm writes goes there. */
#ifndef HVM_VM_VALIDATE_H
#define HVM_VM_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Limits of a configuration. QEMU's argument vector and the worker's drive
 * table are sized from these, so they are refused above them, not trimmed. */
#define VM_MAX_CPUS 256
#define VM_MIN_MEMORY (16ull << 20)
#define VM_MAX_MEMORY (16ull << 40)
#define VM_MAX_DRIVES 16
#define VM_MAX_SLOT 63
#define VM_MAX_NICS 8
#define VM_MAX_DVDS 4 /* IDE CD-ROMs: two channels, two units */
#define VM_MAX_CHECKPOINTS 1000
/* Past this many problems a document is garbage; the rest are not listed. */
#define VM_MAX_PROBLEMS 100

enum vm_validate_flags {
    /* A bundle's vm.json (import): its base is a file of the bundle. */
    VM_VALIDATE_BUNDLE = 1 << 0,
};

/* Appends one string per problem of doc to problems (an array), each
 * prefixed by file ("vm.json" or a full path). Returns how many. */
size_t vm_doc_problems(json_t *doc, const char *file, unsigned flags, json_t *problems);
/* The same for an open: 0, or -EINVAL with the first problem (and how many
 * more there are) as the error message. */
int vm_doc_validate(json_t *doc, const char *file);

/* A bundle's documents (import): vm.json as above with VM_VALIDATE_BUNDLE,
 * and the shape of manifest.json (the bundle's files and their checks
 * against it are bundle.c's). A NULL document (unreadable, reported
 * already) is skipped. Returns how many problems were appended. */
size_t vm_manifest_problems(json_t *manifest, json_t *problems);
size_t vm_bundle_problems(json_t *doc, json_t *manifest, json_t *problems);

/* What recovery does with a journal left in a VM folder whose vm.json has
 * generation have (see journal.c): nothing but refuse a journal of the
 * wrong shape (its next document included, checked as vm.json is), or of a
 * generation not written for this vm.json; finish the clean-up of a
 * committed one; redo an uncommitted one, or first test its guard. */
enum vm_journal_action {
    VM_JOURNAL_REFUSE,
    VM_JOURNAL_FINISH,  /* committed: delete its remove list */
    VM_JOURNAL_EXECUTE, /* not committed: run its steps, commit */
    VM_JOURNAL_GUARDED, /* not committed: execute if its guard holds, else abandon */
};
enum vm_journal_action vm_journal_decide(json_t *journal, json_int_t have, const char *file,
                                         json_t *problems);
/* The same with the first problem as the error (-EINVAL) when refused. */
int vm_journal_validate(json_t *journal, json_int_t have, const char *file,
                        enum vm_journal_action *action);

/* Shapes, for the parts of hvm that take these values from users. */
bool vm_mac_valid(const char *mac);          /* six hex pairs with colons, unicast */
bool vm_switch_name_valid(const char *name); /* [A-Za-z0-9_.-], 1-64, alnum first */
bool vm_uuid_valid(const char *id);          /* 8-4-4-4-12 hex digits */
bool vm_text_valid(const char *s, size_t max); /* 1-max bytes, no control characters */

#endif
