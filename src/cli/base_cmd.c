/* hvm base list | remove: the store's registry of base images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "util/fileio.h"
#include "vm/store.h"

/* {id: name} of the store's VMs, read without locking (a listing only). */
static json_t *vm_names_by_id(struct store *s)
{
    json_t *map = json_object();
    char **names;
    if (store_list(s, &names) < 0)
        return map;
    for (size_t i = 0; names[i]; i++) {
        char *dir = store_vm_dir(s, names[i]);
        char *cfg = dir ? path_join(dir, "vm.json") : NULL;
        json_t *doc = cfg ? json_load_file(cfg, 0, NULL) : NULL;
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (id)
            json_object_set_new(map, id, json_string(names[i]));
        json_decref(doc);
        free(cfg);
        free(dir);
    }
    store_names_free(names);
    return map;
}

int cmd_base_list(const struct cli_args *a)
{
    const char *store_dir = cli_text(a, "store");
    bool as_json = cli_flag(a, "json");
    struct store s;
    if (vm_cli_open_listed_store(store_dir, &s))
        return EXIT_ERROR;
    json_t *reg = store_bases(&s);
    json_t *names = vm_names_by_id(&s);
    store_close(&s);
    size_t i, k;
    json_t *b, *c;
    /* A base whose file is gone (deleted by hand) is marked: its VMs are
     * broken, or without VMs its entry only waits for 'hvm base remove'. */
    json_array_foreach(json_object_get(reg, "bases"), i, b) {
        const char *file = json_string_value(json_object_get(b, "file"));
        json_object_set_new(b, "missing", json_boolean(file && access(file, F_OK) != 0));
    }
    if (as_json) {
        json_decref(names);
        return cli_print_json(reg);
    }
    json_array_foreach(json_object_get(reg, "bases"), i, b) {
        json_t *children = json_object_get(b, "children");
        size_t n = json_array_size(children);
        printf("%s  (%zu VM%s%s", json_string_value(json_object_get(b, "file")), n,
               n == 1 ? "" : "s", n ? ":" : "");
        /* By name; an id no VM of the store has any more stays an id. */
        json_array_foreach(children, k, c) {
            const char *name = json_string_value(json_object_get(names, json_string_value(c)));
            printf("%s %s", k ? "," : "", name ? name : json_string_value(c));
        }
        printf(")%s\n", json_is_true(json_object_get(b, "missing"))
                             ? n ? "  MISSING: the file is gone"
                                 : "  MISSING: the file is gone ('hvm base remove' drops the entry)"
                             : "");
    }
    json_decref(names);
    json_decref(reg);
    return EXIT_OK;
}

int cmd_base_remove(const struct cli_args *a)
{
    const char *store_dir = cli_text(a, "store");
    struct store s;
    if (vm_cli_open_store(store_dir, &s))
        return EXIT_ERROR;
    int r = store_base_remove(&s, cli_pos(a, 0));
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}
