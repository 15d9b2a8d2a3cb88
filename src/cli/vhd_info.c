/* hvm vhd info FILE [--chain] [--json] */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "disk/disk.h"
#include "disk/foreign.h"
#include "util/size.h"
#include "util/uuid.h"
#include "vhd/image.h"
#include "vhdx/image.h"

static json_t *uuid_json(const uint8_t id[16])
{
    char text[37];
    uuid_format(id, text);
    return json_string(text);
}

static json_t *locators_json(struct vhd *v)
{
    json_t *arr = json_array();
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        const struct vhd_locator *l = &v->header.loc[i];
        if (l->code == VHD_PLAT_NONE)
            continue;
        char code[5];
        vhd_code_string(l->code, code);
        char *value = vhd_locator_read(v, i);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:s?}", "code", code,
                                             "space", (json_int_t)vhd_locator_space_bytes(l),
                                             "length", (json_int_t)l->data_length,
                                             "offset", (json_int_t)l->data_offset,
                                             "path", value));
        free(value);
    }
    return arr;
}

static void vhdx_layer_json(struct disk *d, struct vhdx *v, json_t *o);

static json_t *layer_json(struct disk *d)
{
    struct stat st;
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(d->path));
    json_object_set_new(o, "type", json_string(d->ops->kind));
    json_object_set_new(o, "virtual_size", json_integer((json_int_t)d->size));
    if (stat(d->path, &st) == 0) {
        json_object_set_new(o, "file_size", json_integer((json_int_t)st.st_size));
        json_object_set_new(o, "allocated", json_integer((json_int_t)st.st_blocks * 512));
        json_object_set_new(o, "read_only", json_boolean(!(st.st_mode & 0222)));
    }
    struct vhdx *x = disk_vhdx_image(d);
    if (x)
        vhdx_layer_json(d, x, o);
    struct vhd *v = disk_vhd_image(d);
    if (!v)
        return o;
    const struct vhd_footer *f = &v->footer;
    char app[5] = {0};
    for (int i = 0; i < 4; i++)
        app[i] = (f->creator_app[i] >= 32 && f->creator_app[i] < 127) ? f->creator_app[i] : ' ';
    char os[5];
    vhd_code_string(f->creator_os, os);
    char ver[16];
    snprintf(ver, sizeof ver, "%u.%u", f->creator_version >> 16, f->creator_version & 0xFFFF);
    time_t ts = (time_t)f->timestamp + VHD_EPOCH_OFFSET;
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&ts));
    json_object_set_new(o, "unique_id", uuid_json(f->unique_id));
    json_object_set_new(o, "creator", json_pack("{s:s, s:s, s:s}", "application", app,
                                                "version", ver, "host_os", os));
    json_object_set_new(o, "created", json_string(when));
    json_object_set_new(o, "original_size", json_integer((json_int_t)f->original_size));
    json_object_set_new(o, "geometry", json_pack("{s:i, s:i, s:i, s:I}", "cylinders",
                                                 f->geometry.cylinders, "heads",
                                                 f->geometry.heads, "sectors_per_track",
                                                 f->geometry.sectors, "size",
                                                 (json_int_t)vhd_geometry_size(f->geometry)));
    json_object_set_new(o, "saved_state", json_boolean(f->saved_state));
    if (v->footer_from_copy)
        json_object_set_new(o, "warning", json_string("the footer at the end is damaged; the "
                                                      "copy at offset 0 was used (run repair)"));
    if (!vhd_is_sparse(v))
        return o;
    uint32_t used = 0;
    for (uint32_t b = 0; b < v->bat_entries; b++)
        used += v->bat[b] != VHD_BAT_UNUSED;
    json_object_set_new(o, "block_size", json_integer(v->block_size));
    json_object_set_new(o, "blocks", json_integer(v->bat_entries));
    json_object_set_new(o, "blocks_allocated", json_integer(used));
    if (f->type == VHD_TYPE_DIFF) {
        char *name = vhd_parent_name(v);
        json_object_set_new(o, "parent_id", uuid_json(v->header.parent_id));
        json_object_set_new(o, "parent_name", json_string(name ? name : ""));
        json_object_set_new(o, "parent_timestamp", json_integer(v->header.parent_timestamp));
        json_object_set_new(o, "locators", locators_json(v));
        if (d->parent)
            json_object_set_new(o, "parent_file", json_string(d->parent->path));
        free(name);
    }
    return o;
}

static json_t *vhdx_guid_json(const uint8_t g[16])
{
    char text[37];
    vhdx_guid_format(g, text);
    return json_string(text);
}

/* A VHDX layer's own fields (vhdx/image.h), beside the common ones. */
static void vhdx_layer_json(struct disk *d, struct vhdx *v, json_t *o)
{
    static const char *const log_state[] = {
        [VHDX_LOG_CLEAN] = "clean",
        [VHDX_LOG_EMPTY] = "clean (log GUID set, no valid entries)",
        [VHDX_LOG_REPLAYED] = "needs replay (replayed in memory for reading)",
    };
    uint64_t used = 0;
    for (uint64_t b = 0; v->bat && b < v->data_blocks; b++) {
        unsigned st = vhdx_payload_entry(v, b) & 7;
        used += st == VHDX_BLOCK_FULLY_PRESENT || st == VHDX_BLOCK_PARTIALLY_PRESENT;
    }
    json_object_set_new(o, "format", json_string("vhdx"));
    json_object_set_new(o, "creator", json_string(v->creator));
    json_object_set_new(o, "block_size", json_integer(v->block_size));
    json_object_set_new(o, "logical_sector_size", json_integer(v->logical_sector));
    json_object_set_new(o, "physical_sector_size", json_integer(v->physical_sector));
    json_object_set_new(o, "blocks", json_integer((json_int_t)v->data_blocks));
    json_object_set_new(o, "blocks_allocated", json_integer((json_int_t)used));
    json_object_set_new(o, "leave_blocks_allocated", json_boolean(v->leave_allocated));
    json_object_set_new(o, "data_write_guid", vhdx_guid_json(v->data_write_guid));
    json_object_set_new(o, "file_write_guid", vhdx_guid_json(v->file_write_guid));
    if (v->has_page83)
        json_object_set_new(o, "page83_id", vhdx_guid_json(v->page83));
    json_object_set_new(o, "header", json_integer(v->header_index + 1));
    json_object_set_new(o, "header_sequence", json_integer((json_int_t)v->sequence));
    json_object_set_new(o, "log", json_string(log_state[v->log_state]));
    json_object_set_new(o, "log_size", json_integer(v->log_length));
    if (v->log_state == VHDX_LOG_REPLAYED)
        json_object_set_new(o, "log_entries", json_integer(v->log_entries));
    if (!v->has_parent)
        return;
    const struct vhdx_locator *l = &v->locator;
    json_object_set_new(o, "parent_linkage", json_string(l->parent_linkage));
    if (l->parent_linkage2)
        json_object_set_new(o, "parent_linkage2", json_string(l->parent_linkage2));
    if (l->relative_path)
        json_object_set_new(o, "parent_relative_path", json_string(l->relative_path));
    if (l->volume_path)
        json_object_set_new(o, "parent_volume_path", json_string(l->volume_path));
    if (l->absolute_win32_path)
        json_object_set_new(o, "parent_absolute_path", json_string(l->absolute_win32_path));
    if (d->parent)
        json_object_set_new(o, "parent_file", json_string(d->parent->path));
}

/* A qcow2, VMDK... file: what it is and how to convert it, instead of its
 * bytes described as a raw disk. The size is what its header claims. */
static json_t *foreign_json(const char *path, enum disk_foreign format, uint64_t claimed)
{
    struct stat st;
    json_t *o = json_object();
    char note[96];
    if (disk_foreign_convertible(format))
        snprintf(note, sizeof note, "not VHD; hvm vhd convert --from-format %s converts it",
                 disk_foreign_name(format));
    else
        snprintf(note, sizeof note, "not VHD; hvm does not read %s yet",
                 disk_foreign_title(format));
    json_object_set_new(o, "file", json_string(path));
    json_object_set_new(o, "format", json_string(disk_foreign_name(format)));
    json_object_set_new(o, "note", json_string(note));
    if (claimed)
        json_object_set_new(o, "virtual_size", json_integer((json_int_t)claimed));
    if (stat(path, &st) == 0) {
        json_object_set_new(o, "file_size", json_integer((json_int_t)st.st_size));
        json_object_set_new(o, "allocated", json_integer((json_int_t)st.st_blocks * 512));
        json_object_set_new(o, "read_only", json_boolean(!(st.st_mode & 0222)));
    }
    return o;
}

static void print_layer(json_t *o, const char *indent)
{
    char sz[32];
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        if (strcmp(key, "locators") == 0) {
            size_t i;
            json_t *l;
            json_array_foreach(val, i, l)
                printf("%slocator %-10s %s (space %lld, at %lld)\n", indent,
                       json_string_value(json_object_get(l, "code")),
                       json_string_value(json_object_get(l, "path"))
                           ? json_string_value(json_object_get(l, "path")) : "(unreadable)",
                       (long long)json_integer_value(json_object_get(l, "space")),
                       (long long)json_integer_value(json_object_get(l, "offset")));
            continue;
        }
        if (strcmp(key, "note") == 0)
            continue; /* beside format */
        printf("%s%-18s ", indent, key);
        if (strcmp(key, "format") == 0 && json_object_get(o, "note"))
            printf("%s (%s)\n", json_string_value(val),
                   json_string_value(json_object_get(o, "note")));
        else if (json_is_string(val))
            printf("%s\n", json_string_value(val));
        else if (json_is_boolean(val))
            printf("%s\n", json_is_true(val) ? "yes" : "no");
        else if (json_is_integer(val) && (strstr(key, "size") || strcmp(key, "allocated") == 0))
            printf("%lld (%s)\n", (long long)json_integer_value(val),
                   size_format((uint64_t)json_integer_value(val), sz, sizeof sz));
        else if (json_is_integer(val))
            printf("%lld\n", (long long)json_integer_value(val));
        else if (strcmp(key, "creator") == 0)
            printf("%s %s (%s)\n", json_string_value(json_object_get(val, "application")),
                   json_string_value(json_object_get(val, "version")),
                   json_string_value(json_object_get(val, "host_os")));
        else if (strcmp(key, "geometry") == 0)
            printf("%lld/%lld/%lld (CHS size %lld)\n",
                   (long long)json_integer_value(json_object_get(val, "cylinders")),
                   (long long)json_integer_value(json_object_get(val, "heads")),
                   (long long)json_integer_value(json_object_get(val, "sectors_per_track")),
                   (long long)json_integer_value(json_object_get(val, "size")));
        else
            printf("\n");
    }
}

int cmd_vhd_info(const struct cli_args *a)
{
    bool chain = cli_flag(a, "chain"), as_json = cli_flag(a, "json");
    const char *file = cli_pos(a, 0);
    struct disk *d = NULL;
    unsigned flags = DISK_OPEN_READ_ONLY | (chain ? 0 : DISK_OPEN_NO_PARENT);
    enum disk_foreign foreign = DISK_FOREIGN_NONE;
    uint64_t claimed = 0;
    if (!disk_is_vhd(file) && !disk_is_vhdx(file) && disk_foreign_probe(file, &foreign, &claimed) < 0)
        return cli_fail();
    if (!foreign && disk_open(file, flags, &d) < 0)
        return cli_fail();
    json_t *out;
    if (foreign) {
        json_t *one = foreign_json(file, foreign, claimed);
        out = chain ? json_pack("{s:[o]}", "chain", one) : one;
    } else if (chain) {
        json_t *layers = json_array();
        for (struct disk *l = d; l; l = l->parent)
            json_array_append_new(layers, layer_json(l));
        out = json_pack("{s:o}", "chain", layers);
    } else {
        out = layer_json(d);
    }
    disk_close(d);
    if (as_json)
        return cli_print_json(out);
    if (chain) {
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(out, "chain"), i, l) {
            printf("%slayer %zu: %s\n", i ? "\n" : "", i,
                   json_string_value(json_object_get(l, "file")));
            print_layer(l, "  ");
        }
    } else {
        print_layer(out, "");
    }
    json_decref(out);
    return EXIT_OK;
}
