/* File helpers that retry short transfers and report errors with the path. */
#ifndef HVM_UTIL_FILEIO_H
#define HVM_UTIL_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Zeros to write, send or hash from, instead of each user allocating its
 * own (in .bss: it costs no file space and no memory until read). */
#define ZERO_BUFFER_SIZE (1u << 20)
extern const uint8_t zero_buffer[ZERO_BUFFER_SIZE];

/* Full pread/pwrite: 0 on success; a short read past EOF is -EIO. */
int file_pread(int fd, const char *path, void *buf, size_t count, uint64_t offset);
int file_pwrite(int fd, const char *path, const void *buf, size_t count, uint64_t offset);
/* Full preadv/pwritev of n (at most IOV_MAX) pieces; a short read past
 * EOF is -EIO. */
struct iovec;
int file_preadv(int fd, const char *path, const struct iovec *iov, int n, uint64_t offset);
int file_pwritev(int fd, const char *path, const struct iovec *iov, int n, uint64_t offset);
int file_sync(int fd, const char *path);
int file_size(int fd, const char *path, uint64_t *size);

/* Writes data to path atomically: temp file, fsync, rename, fsync of the folder. */
int file_replace(const char *path, const void *data, size_t len);

/* Directory part of path (malloc'd) and the joined "dir/name" (malloc'd). */
char *path_dirname(const char *path);
char *path_join(const char *dir, const char *name);
const char *path_basename(const char *path);

/* fsync the folder that holds path, so that a create or rename is durable. */
int path_sync_dir(const char *path);
/* The next data extent of fd at or after at, below size: [*data, *end);
 * *data == size when only a hole is left. Where the file system cannot
 * tell (no SEEK_DATA), everything from at is data. */
void file_next_data(int fd, uint64_t at, uint64_t size, uint64_t *data, uint64_t *end);
/* Renames from to to (a finished temporary into its place) and makes the
 * rename durable (path_sync_dir of to). */
int path_rename_durable(const char *from, const char *to);

/* Copies a file (sparse-aware, preserving holes) to a new path via a
 * temporary name and rename; progress is optional. */
int file_copy(const char *from, const char *to);
struct file_copy_options {
    void (*progress)(void *opaque, uint64_t done, uint64_t total);
    void *opaque;
    bool no_sync;     /* the caller syncs the whole file system once at the end */
    /* Called once the copy is open (upto 0) and after each piece: bytes
     * [0, upto) of the copy, under its temporary name path, are final.
     * Takes the same opaque as progress. */
    void (*written)(void *opaque, const char *path, uint64_t upto);
};
int file_copy_with(const char *from, const char *to, const struct file_copy_options *o);
int file_copy_progress(const char *from, const char *to,
                       void (*progress)(void *, uint64_t, uint64_t), void *opaque);

/* unlinkat(dir, name, 0), except that freeing a large file's blocks is left
 * to a detached process: the name is gone (durably once the caller syncs the
 * folder) before this returns, the space a moment later. On a file system
 * mounted with -o discard, freeing a fragmented image costs seconds. */
int unlink_detached(int dir, const char *name);

/* Removes a file or a folder with everything in it (symlinks are removed,
 * never followed). Missing is not an error. Large files are freed by
 * unlink_detached. */
int path_remove_tree(const char *path);
/* A killed writer leaves its work beside PATH under a temporary name,
 * PATH + infix + its PID (e.g. "disk.vhd.creating.1234"), and perhaps a
 * temporary of that one (PATH + infix + PID + "." + more): removes those
 * (files or folders) of processes that no longer run. */
void path_remove_stale(const char *path, const char *infix);
/* Creates a folder and its missing parents. */
int path_mkdirs(const char *path);
/* Is rel a safe relative path: not absolute, no "..", no empty parts? */
bool path_is_safe_relative(const char *rel);

#endif
