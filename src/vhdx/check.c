/* Consistency of an open VHDX beyond what opening it requires: blocks on
 * 1 MiB boundaries, inside the file, and never two owners for one byte
 * (two blocks, or a block and the header area, log, BAT or metadata). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/error.h"
#include "vhdx/image.h"

struct owner {
    uint64_t offset, length, entry;
};

static int owner_cmp(const void *a, const void *b)
{
    const struct owner *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const char *owner_name(const struct vhdx *v, const struct owner *o, char *buf, size_t n)
{
    if (o->entry == UINT64_MAX - 3)
        return "the header area";
    if (o->entry == UINT64_MAX - 2)
        return "the log";
    if (o->entry == UINT64_MAX - 1)
        return "the BAT region";
    if (o->entry == UINT64_MAX)
        return "the metadata region";
    bool bitmap = (o->entry + 1) % (v->chunk_ratio + 1) == 0;
    snprintf(buf, n, "BAT entry %llu (%s)", (unsigned long long)o->entry,
             bitmap ? "sector bitmap" : "payload block");
    return buf;
}

int vhdx_check(struct vhdx *v, void (*report)(void *opaque, const char *problem), void *opaque)
{
    if (!v->bat)
        return hvm_error(EINVAL, "%s: opened without its BAT", v->path);
    struct owner *o = malloc((v->bat_entries + 4) * sizeof *o);
    if (!o)
        return hvm_error(ENOMEM, "out of memory");
    size_t n = 0;
    o[n++] = (struct owner){0, VHDX_MiB, UINT64_MAX - 3};
    o[n++] = (struct owner){v->log_offset, v->log_length, UINT64_MAX - 2};
    o[n++] = (struct owner){v->bat_offset, v->bat_length, UINT64_MAX - 1};
    o[n++] = (struct owner){v->meta_offset, v->meta_length, UINT64_MAX};
    int problems = 0;
    char msg[512];
    for (uint64_t i = 0; i < v->bat_entries; i++) {
        uint64_t e = v->bat[i];
        bool bitmap = (i + 1) % (v->chunk_ratio + 1) == 0;
        unsigned state = e & 7;
        bool used = bitmap ? state == VHDX_BITMAP_PRESENT
                           : state == VHDX_BLOCK_FULLY_PRESENT ||
                                 state == VHDX_BLOCK_PARTIALLY_PRESENT;
        if (e & 0xFFFF8) {
            snprintf(msg, sizeof msg, "BAT entry %llu: reserved bits set (%#llx)",
                     (unsigned long long)i, (unsigned long long)e);
            report(opaque, msg);
            problems++;
        }
        if (used)
            o[n++] = (struct owner){(e >> 20) << 20, bitmap ? VHDX_MiB : v->block_size, i};
    }
    qsort(o, n, sizeof *o, owner_cmp);
    for (size_t i = 1; i < n; i++) {
        if (o[i].offset >= o[i - 1].offset + o[i - 1].length)
            continue;
        char a[64], b[64];
        snprintf(msg, sizeof msg, "%s at %llu overlaps %s at %llu",
                 owner_name(v, &o[i], a, sizeof a), (unsigned long long)o[i].offset,
                 owner_name(v, &o[i - 1], b, sizeof b), (unsigned long long)o[i - 1].offset);
        report(opaque, msg);
        if (++problems >= 100)
            break;
    }
    free(o);
    return problems;
}
