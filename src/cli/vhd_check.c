/* hvm vhd check FILE [--json] and hvm vhd repair FILE */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "disk/disk.h"
#include "disk/foreign.h"
#include "disk/ops.h"
#include "util/error.h"
#include "vhd/check.h"
#include "vhd/image.h"
#include "vhdx/image.h"

/* Chain identity: open the whole chain; any failure is a problem of this disk. */
static void check_chain(const char *path, struct vhd_check_report *rep)
{
    struct disk *d;
    if (rep->unreadable || rep->n_problems)
        return;
    if (disk_open(path, DISK_OPEN_READ_ONLY, &d) < 0) {
        snprintf(rep->problems[rep->n_problems++], sizeof rep->problems[0], "%s",
                 hvm_error_message());
        return;
    }
    /* A merge killed after the parent took its new identity and before the
     * child was re-linked: the chain reads right (vhd.c accepts it for this
     * child), but the user should know the merge is not done. */
    struct vhd *cv = disk_vhd_image(d), *pv = d->parent ? disk_vhd_image(d->parent) : NULL;
    if (cv && pv && disk_merge_interrupted(cv, pv) && rep->n_notes < VHD_CHECK_MAX_ITEMS)
        snprintf(rep->notes[rep->n_notes++], sizeof rep->notes[0],
                 "its merge into %s was interrupted; run 'hvm vhd merge %s' again to finish it",
                 d->parent->path, path);
    disk_close(d);
}

static int report(const char *path, struct vhd_check_report *rep, bool as_json)
{
    int code = rep->unreadable ? EXIT_ERROR : rep->n_problems ? EXIT_PROBLEMS : EXIT_OK;
    if (as_json) {
        json_t *problems = json_array(), *notes = json_array();
        for (unsigned i = 0; i < rep->n_problems; i++)
            json_array_append_new(problems, json_string(rep->problems[i]));
        for (unsigned i = 0; i < rep->n_notes; i++)
            json_array_append_new(notes, json_string(rep->notes[i]));
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:I, s:i}", "file", path, "result",
                              code == EXIT_OK ? "clean" : code == EXIT_PROBLEMS ? "problems"
                                                                                 : "unreadable",
                              "problems", problems, "notes", notes, "leaked_bytes",
                              (json_int_t)rep->leaked_bytes, "blocks_allocated",
                              (int)rep->blocks_allocated);
        if (rep->unreadable)
            json_object_set_new(o, "error", json_string(rep->message));
        cli_print_json(o);
        return code;
    }
    if (rep->unreadable) {
        fprintf(stderr, "hvm: %s\n", rep->message);
        return code;
    }
    for (unsigned i = 0; i < rep->n_problems; i++)
        printf("%s: problem: %s\n", path, rep->problems[i]);
    for (unsigned i = 0; i < rep->n_notes; i++)
        printf("%s: note: %s\n", path, rep->notes[i]);
    if (code == EXIT_OK)
        printf("%s: clean\n", path);
    return code;
}

static void vhdx_problem(void *opaque, const char *problem)
{
    struct vhd_check_report *rep = opaque;
    if (rep->n_problems < VHD_CHECK_MAX_ITEMS)
        snprintf(rep->problems[rep->n_problems++], sizeof rep->problems[0], "%s", problem);
}

/* A VHDX: opening it checks every field it relies on (a malformed one makes
 * it unreadable, with the field named); vhdx_check adds the BAT's layout. */
static void check_vhdx(const char *path, struct vhd_check_report *rep)
{
    struct vhdx *v = NULL;
    *rep = (struct vhd_check_report){0};
    if (vhdx_open(path, false, &v) < 0 || vhdx_check(v, vhdx_problem, rep) < 0) {
        rep->unreadable = true;
        snprintf(rep->message, sizeof rep->message, "%s", hvm_error_message());
        if (v)
            vhdx_close(v);
        return;
    }
    for (uint64_t b = 0; b < v->data_blocks; b++) {
        unsigned st = vhdx_payload_entry(v, b) & 7;
        rep->blocks_allocated += st == VHDX_BLOCK_FULLY_PRESENT ||
                                 st == VHDX_BLOCK_PARTIALLY_PRESENT;
    }
    if (v->log_state == VHDX_LOG_REPLAYED)
        snprintf(rep->notes[rep->n_notes++], sizeof rep->notes[0],
                 "its log holds %u entries not yet applied to the file (a writer was "
                 "interrupted); hvm applies them in memory when reading", v->log_entries);
    vhdx_close(v);
    check_chain(path, rep);
}

int cmd_vhd_check(const struct cli_args *a)
{
    bool as_json = cli_flag(a, "json");
    const char *path = cli_pos(a, 0);
    static struct vhd_check_report rep;
    if (disk_is_vhdx(path)) {
        check_vhdx(path, &rep);
        return report(path, &rep, as_json);
    }
    if (!disk_is_vhd(path)) {
        rep = (struct vhd_check_report){.unreadable = true};
        /* A qcow2 or VMDK is named, with how to convert it. */
        enum disk_foreign foreign = DISK_FOREIGN_NONE;
        if (disk_foreign_probe(path, &foreign, NULL) == 0 && foreign != DISK_FOREIGN_NONE &&
            disk_foreign_require_vhd(path) < 0)
            snprintf(rep.message, sizeof rep.message, "%s", hvm_error_message());
        else
            snprintf(rep.message, sizeof rep.message, "%s: not a VHD file (no 'conectix' footer)",
                     path);
        return report(path, &rep, as_json);
    }
    vhd_check(path, &rep);
    check_chain(path, &rep);
    return report(path, &rep, as_json);
}

int cmd_vhd_repair(const struct cli_args *a)
{
    const char *path = cli_pos(a, 0);
    static struct vhd_check_report rep;
    if (vhd_repair(path, &rep) < 0)
        return cli_fail();
    for (unsigned i = 0; i < rep.n_notes; i++)
        printf("%s: %s\n", path, rep.notes[i]);
    if (rep.n_notes == 0)
        printf("%s: nothing to repair\n", path);
    return EXIT_OK;
}
