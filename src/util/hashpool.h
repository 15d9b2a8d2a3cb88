/* SHA-256 of many files on worker threads, so that hashing (the manifest
 * of an export, the check of an import or a move) runs beside copying
 * instead of after it: on two cores that hides most of its cost. */
#ifndef HVM_UTIL_HASHPOOL_H
#define HVM_UTIL_HASHPOOL_H

#include <stdint.h>

struct hash_pool;

/* Starts threads workers (at least one). NULL when out of memory. */
struct hash_pool *hash_pool_start(unsigned threads);
/* Queues path for hashing under key (both copied). */
int hash_pool_add(struct hash_pool *p, const char *path, const char *key);
/* A file being written (a copy), hashed by a pool thread that follows the
 * writer: hashing overlaps the copy instead of coming after it. Queued in
 * order with the others; every one must be ended before hash_pool_finish. */
struct hash_job;
struct hash_job *hash_pool_follow(struct hash_pool *p, const char *key);
/* Bytes [0, upto) of the file at path are written and final; the hasher
 * opens path for reading the first time. */
void hash_follow_advance(struct hash_job *j, const char *path, uint64_t upto);
/* The file is complete at size bytes; r < 0: the copy failed, no hash. */
void hash_follow_end(struct hash_job *j, uint64_t size, int r);

/* Waits for every queued file, calls done(opaque, key, hex) for each file
 * hashed, in the order they were queued, stops the workers and frees the
 * pool. Returns 0 or the first file's error (its message set). */
int hash_pool_finish(struct hash_pool *p, void (*done)(void *opaque, const char *key, const char *hex),
                     void *opaque);

#endif
