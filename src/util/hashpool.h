/* SHA-256 of many files on worker threads, so that hashing (the manifest
 * of an export, the check of an import or a move) runs beside copying
 * instead of after it: on two cores that hides most of its cost. */
#ifndef HVM_UTIL_HASHPOOL_H
#define HVM_UTIL_HASHPOOL_H

struct hash_pool;

/* Starts threads workers (at least one). NULL when out of memory. */
struct hash_pool *hash_pool_start(unsigned threads);
/* Queues path for hashing under key (both copied). */
int hash_pool_add(struct hash_pool *p, const char *path, const char *key);
/* Waits for every queued file, calls done(opaque, key, hex) for each file
 * hashed, in the order they were queued, stops the workers and frees the
 * pool. Returns 0 or the first file's error (its message set). */
int hash_pool_finish(struct hash_pool *p, void (*done)(void *opaque, const char *key, const char *hex),
                     void *opaque);

#endif
