/* The VM store: a folder holding one self-contained folder per VM
 * (vms/<name>/) and the registry of base images (bases.json). */
#ifndef HVM_VM_STORE_H
#define HVM_VM_STORE_H

#include <jansson.h>
#include <stdbool.h>

struct store {
    char *root;
    char *vms;    /* root/vms */
    bool exists;  /* false: STORE_MAY_BE_MISSING found no store (nothing made) */
    bool created; /* STORE_CREATE made it just now */
};

/* What store_open does with a folder that is not a store (has no vms/). */
enum store_missing {
    STORE_MUST_EXIST,     /* refused: "DIR: no hvm store here (...)" */
    STORE_CREATE,         /* made (the commands that make a VM) */
    STORE_MAY_BE_MISSING, /* opened as an empty store, nothing made (a dry run) */
};
/* dir: --store, else $HVM_STORE, else /var/lib/hvm (root) or
 * ~/.local/share/hvm. */
int store_open_how(const char *dir, enum store_missing how, struct store *s);
/* store_open_how(dir, STORE_CREATE, s): for programs that make their own
 * store (the fuzz targets); the commands say what they want (src/cli). */
int store_open(const char *dir, struct store *s);
void store_close(struct store *s);

/* Folder of a VM by name (malloc'd); does not check existence. */
char *store_vm_dir(const struct store *s, const char *name);
/* Names of the VMs, sorted; NULL-terminated, malloc'd. */
int store_list(const struct store *s, char ***names);
void store_names_free(char **names);
/* Is name usable as a VM name (a folder name, no slash or comma, not "." or "..")? */
bool store_name_valid(const char *name);

/* Base registry. Paths are stored absolute (realpath). All calls take the
 * store lock for the read-modify-write. */
int store_base_add_child(struct store *s, const char *base, const char *vm_id);
int store_base_remove_child(struct store *s, const char *vm_id);
/* The registry entry of path if it is a registered base (new reference) or NULL. */
json_t *store_base_find(struct store *s, const char *path);
/* The whole registry (new reference): {"bases": [{"file", "unique_id", "children": []}]} */
json_t *store_bases(struct store *s);
/* Unregisters a base without children and lifts its read-only protection
 * (a base whose file is gone is unregistered as well). */
int store_base_remove(struct store *s, const char *path);
/* The store's own problems (registered bases whose file is gone), as an
 * array of strings; the VMs are checked one by one (vm_verify). */
json_t *store_verify(struct store *s);
/* Drops the entry of abs (a real path, the file may be gone already) if it
 * has no children; the file is not touched. */
void store_base_forget(struct store *s, const char *abs);

/* A store that lists its switches in switches.json (vm/switch.h: entries
 * {"name": "lan", ...}, or plain names "lan" as written before hvm managed
 * switches) has network adapters checked against it; one without the file
 * accepts any name. */
bool store_switch_known(struct store *s, const char *name);

/* The store lock (root/lock, exclusive, waited for at most
 * $HVM_LOCK_TIMEOUT seconds): every read-modify-write of a store-wide
 * document (bases.json, switches.json) holds it. Returns the descriptor to
 * give store_unlock (which clears the holder record), or -errno. */
int store_lock(struct store *s);
void store_unlock(int fd);

/* Writes doc as dir/name (indented, keys in order) atomically and durably
 * (util/fileio.h file_replace): every JSON document of a store and its VMs
 * is written this way, so that a crash leaves the old one or the new one. */
int store_json_replace(const char *dir, const char *name, json_t *doc);

#endif
