/* Unit tests of the file helpers: the hash pool (src/util/hashpool.c)
 * against OpenSSL's one-shot digest of the same bytes, and file_copy_with
 * (src/util/fileio.c) keeping content and holes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/filelock.h"
#include "util/hashpool.h"
#include "util/size.h"

static char dir[] = "/tmp/hvm-unit-util-XXXXXX";

static void digest_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* A file of size bytes, with data (a pattern from seed) only in
 * [at, at + len): the rest is a hole. The same bytes go to *mem. */
static char *make_file(const char *name, size_t size, size_t at, size_t len, unsigned seed, uint8_t **mem)
{
    char *path = path_join(dir, name);
    uint8_t *buf = calloc(1, size ? size : 1);
    for (size_t i = 0; i < len; i++)
        buf[at + i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)size), 0);
    assert_int_equal(fseek(f, (long)at, SEEK_SET), 0);
    assert_int_equal(fwrite(buf + at, 1, len, f), len);
    fclose(f);
    *mem = buf;
    return path;
}

struct seen {
    int n;
    char keys[16][16];
    char hex[16][65];
};

static void record(void *opaque, const char *key, const char *hex)
{
    struct seen *s = opaque;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
    memcpy(s->hex[s->n++], hex, 65);
}

static void pool_hashes_like_openssl_in_queue_order(void **state)
{
    (void)state;
    struct hash_pool *p = hash_pool_start(3);
    assert_non_null(p);
    char want[10][65];
    for (int i = 0; i < 10; i++) {
        char name[16], key[16];
        uint8_t *mem;
        /* sizes 0 .. ~4.5 MiB, holes before and after the data */
        size_t size = (size_t)i * 500000, at = size / 3, len = size / 4;
        snprintf(name, sizeof name, "f%d", i);
        snprintf(key, sizeof key, "k%d", i);
        char *path = make_file(name, size, at, len, (unsigned)i, &mem);
        digest_hex(mem, size, want[i]);
        assert_int_equal(hash_pool_add(p, path, key), 0);
        free(mem);
        free(path);
    }
    struct seen s = {0};
    assert_int_equal(hash_pool_finish(p, record, &s), 0);
    assert_int_equal(s.n, 10);
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_string_equal(s.keys[i], key);
        assert_string_equal(s.hex[i], want[i]);
    }
}

static void pool_reports_an_unreadable_file(void **state)
{
    (void)state;
    struct hash_pool *p = hash_pool_start(2);
    uint8_t *mem;
    char *good = make_file("good", 4096, 0, 4096, 7, &mem);
    char *missing = path_join(dir, "missing");
    assert_int_equal(hash_pool_add(p, good, "good"), 0);
    assert_int_equal(hash_pool_add(p, missing, "missing"), 0);
    struct seen s = {0};
    hvm_error_clear();
    assert_int_equal(hash_pool_finish(p, record, &s), -ENOENT);
    assert_non_null(strstr(hvm_error_message(), "missing"));
    assert_int_equal(s.n, 1); /* the good file is still delivered */
    assert_string_equal(s.keys[0], "good");
    free(mem);
    free(good);
    free(missing);
}

/* A followed file (hash_pool_follow) is hashed while its writer writes
 * it: the writer appends in uneven pieces, announcing each, with a plain
 * queued file before and after it to keep the order honest. */
static void pool_follows_a_file_as_it_is_written(void **state)
{
    (void)state;
    struct hash_pool *p = hash_pool_start(2);
    assert_non_null(p);
    uint8_t *before, *after;
    char *first = make_file("first", 70000, 0, 70000, 1, &before);
    char *last = make_file("last", 9000, 100, 800, 2, &after);
    assert_int_equal(hash_pool_add(p, first, "first"), 0);
    struct hash_job *j = hash_pool_follow(p, "followed");
    assert_non_null(j);
    assert_int_equal(hash_pool_add(p, last, "last"), 0);

    size_t size = 3 * 1000 * 1000 + 17;
    uint8_t *mem = malloc(size);
    for (size_t i = 0; i < size; i++)
        mem[i] = (uint8_t)(i * 13 + (i >> 11));
    char *path = path_join(dir, "followed");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    for (size_t at = 0, piece = 1; at < size; piece = piece * 3 + 1) {
        size_t n = piece < size - at ? piece : size - at;
        assert_int_equal(pwrite(fd, mem + at, n, (off_t)at), (ssize_t)n);
        at += n;
        hash_follow_advance(j, path, at);
    }
    close(fd);
    hash_follow_end(j, size, 0);

    char want[3][65];
    digest_hex(before, 70000, want[0]);
    digest_hex(mem, size, want[1]);
    digest_hex(after, 9000, want[2]);
    struct seen s = {0};
    assert_int_equal(hash_pool_finish(p, record, &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[1], "followed");
    for (int i = 0; i < 3; i++)
        assert_string_equal(s.hex[i], want[i]);
    free(mem);
    free(before);
    free(after);
    free(path);
    free(first);
    free(last);
}

/* A copy that fails gives no hash and its error; one whose file cannot be
 * opened names the file; the other files are still delivered. */
static void pool_reports_failed_followed_copies(void **state)
{
    (void)state;
    struct hash_pool *p = hash_pool_start(1);
    struct hash_job *failed = hash_pool_follow(p, "failed");
    struct hash_job *gone = hash_pool_follow(p, "gone");
    uint8_t *mem;
    char *good = make_file("good2", 4096, 0, 4096, 5, &mem);
    assert_int_equal(hash_pool_add(p, good, "good"), 0);
    char *path = path_join(dir, "half");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(write(fd, mem, 100), 100);
    close(fd);
    hash_follow_advance(failed, path, 100);
    hash_follow_end(failed, 100, hvm_error(EIO, "%s: the copy failed", path));
    char *missing = path_join(dir, "no-such-copy");
    hash_follow_advance(gone, missing, 10);
    hash_follow_end(gone, 10, 0);
    struct seen s = {0};
    hvm_error_clear();
    assert_int_equal(hash_pool_finish(p, record, &s), -EIO);
    assert_non_null(strstr(hvm_error_message(), "the copy failed"));
    assert_int_equal(s.n, 1);
    assert_string_equal(s.keys[0], "good");
    free(mem);
    free(good);
    free(path);
    free(missing);
}

static void copy_keeps_bytes_and_holes(void **state)
{
    (void)state;
    uint8_t *mem;
    size_t size = 8 << 20;
    char *from = make_file("sparse", size, 3 << 20, 1 << 20, 3, &mem);
    char *to = path_join(dir, "copy");
    struct file_copy_options o = {.no_sync = true};
    assert_int_equal(file_copy_with(from, to, &o), 0);
    FILE *f = fopen(to, "r");
    uint8_t *back = malloc(size + 1);
    assert_int_equal(fread(back, 1, size + 1, f), size);
    fclose(f);
    assert_memory_equal(back, mem, size);
    struct stat st;
    assert_int_equal(stat(to, &st), 0);
    assert_true((uint64_t)st.st_blocks * 512 < (2u << 20)); /* the holes stayed holes */
    free(back);
    free(mem);
    free(from);
    free(to);
}

static void touch(const char *name)
{
    char *path = path_join(dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    free(path);
}

static bool exists(const char *name)
{
    char *path = path_join(dir, name);
    bool yes = access(path, F_OK) == 0;
    free(path);
    return yes;
}

static void stale_temporaries_of_dead_writers_go(void **state)
{
    (void)state;
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    char gone[64], alive[64], nested[96], nested_alive[96];
    snprintf(gone, sizeof gone, "d.vhd.creating.%d", (int)dead);
    snprintf(alive, sizeof alive, "d.vhd.creating.%d", (int)getpid());
    /* A temporary's own temporary (convert creates its output under a
     * temporary name, and create under another): the dead writer's goes. */
    snprintf(nested, sizeof nested, "d.vhd.creating.%d.converting.%d", (int)dead, (int)dead);
    snprintf(nested_alive, sizeof nested_alive, "d.vhd.creating.%d.converting.1",
             (int)getpid());
    touch(gone);
    touch(alive);
    touch(nested);
    touch(nested_alive);
    touch("d.vhd.creating.12x");   /* not a PID */
    touch("e.vhd.creating.1");     /* another file's */
    touch("d.vhd");
    char *target = path_join(dir, "d.vhd");
    path_remove_stale(target, ".creating.");
    assert_false(exists(gone));
    assert_false(exists(nested));
    assert_true(exists(alive));
    assert_true(exists(nested_alive));
    assert_true(exists("d.vhd.creating.12x"));
    assert_true(exists("e.vhd.creating.1"));
    assert_true(exists("d.vhd"));
    /* A folder left by a dead writer goes too, with its content. */
    char sub[80];
    snprintf(sub, sizeof sub, "%s/x", gone);
    char *p = path_join(dir, gone);
    assert_int_equal(mkdir(p, 0755), 0);
    touch(sub);
    path_remove_stale(target, ".creating.");
    assert_false(exists(gone));
    free(p);
    free(target);
}

/* Can another process take the lock byte of path in mode type (F_RDLCK,
 * F_WRLCK) right now? Asked from a fork with a descriptor of its own and
 * plain fcntl (the fork's copy of our lock records would answer for us). */
static bool other_can_lock(const char *path, short type)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_RDWR);
        struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = FILE_LOCK_BYTE,
                           .l_len = 1};
        _exit(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void locks_combine_in_process_and_conflict_across(void **state)
{
    (void)state;
    touch("lk");
    char *path = path_join(dir, "lk");
    /* Read as a parent, then written by this same process through another
     * descriptor (merge does this): no self-conflict, one exclusive lock. */
    int ro = open(path, O_RDONLY), rw = open(path, O_RDWR);
    struct file_lock *shared, *excl;
    assert_int_equal(file_lock_take(ro, path, FILE_LOCK_SHARED, &shared), 0);
    assert_true(other_can_lock(path, F_RDLCK));
    assert_false(other_can_lock(path, F_WRLCK));
    assert_int_equal(file_lock_take(rw, path, FILE_LOCK_EXCLUSIVE, &excl), 0);
    assert_false(other_can_lock(path, F_RDLCK));
    /* The holders' descriptors may close first: the lock stays. */
    close(rw);
    close(ro);
    assert_false(other_can_lock(path, F_RDLCK));
    file_lock_release(excl); /* down to shared, never unlocked in between */
    assert_true(other_can_lock(path, F_RDLCK));
    assert_false(other_can_lock(path, F_WRLCK));
    file_lock_release(shared);
    assert_true(other_can_lock(path, F_WRLCK));

    /* Held by another process: refused at once, naming the file and how. */
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_RDONLY);
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET,
                           .l_start = FILE_LOCK_BYTE, .l_len = 1};
        char c = fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(1);
        _exit(0);
    }
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    rw = open(path, O_RDWR);
    assert_int_equal(file_lock_take(rw, path, FILE_LOCK_EXCLUSIVE, &excl), -EBUSY);
    assert_non_null(strstr(hvm_error_message(), "in use by another process"));
    bool by_writer = true;
    assert_string_equal(file_lock_refused(&by_writer), path);
    assert_false(by_writer);
    assert_int_equal(file_lock_take(rw, path, FILE_LOCK_SHARED, &shared), 0); /* readers share */
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    file_lock_release(shared);
    close(rw);
    for (int i = 0; i < 2; i++) {
        close(go[i]);
        close(ready[i]);
    }
    free(path);
}

/* Sizes are decimal digits and one binary unit: what strtod or strtoull
 * would also take (exponents, hex, spaces, signs, "inf") is refused, so
 * that "1e6" is an error instead of a million bytes. */
/* Does any process still hold the deleted file path open? */
static bool deleted_file_held(const char *path)
{
    char want[PATH_MAX + 16], link[PATH_MAX + 32], got[PATH_MAX + 16];
    snprintf(want, sizeof want, "%s (deleted)", path);
    DIR *procs = opendir("/proc");
    struct dirent *p;
    bool held = false;
    while (!held && procs && (p = readdir(procs))) {
        if (p->d_name[0] < '0' || p->d_name[0] > '9')
            continue;
        snprintf(link, sizeof link, "/proc/%s/fd", p->d_name);
        DIR *fds = opendir(link);
        struct dirent *f;
        while (!held && fds && (f = readdir(fds))) {
            snprintf(link, sizeof link, "/proc/%s/fd/%s", p->d_name, f->d_name);
            ssize_t n = readlink(link, got, sizeof got - 1);
            if (n > 0) {
                got[n] = 0;
                held = strcmp(got, want) == 0;
            }
        }
        if (fds)
            closedir(fds);
    }
    if (procs)
        closedir(procs);
    return held;
}

static void detached_unlink_frees_later_and_keeps_no_lock(void **state)
{
    (void)state;
    char *big = path_join(dir, "big"), *lk = path_join(dir, "lk-detach");
    touch("lk-detach");
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    static uint8_t chunk[1 << 20];
    memset(chunk, 7, sizeof chunk);
    for (int i = 0; i < 20; i++)
        assert_int_equal(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    assert_int_equal(fsync(fd), 0);
    close(fd);
    int lfd = open(lk, O_RDWR);
    struct file_lock *l;
    assert_int_equal(file_lock_take(lfd, lk, FILE_LOCK_EXCLUSIVE, &l), 0);
    assert_int_equal(unlink_detached(AT_FDCWD, big), 0);
    assert_int_equal(access(big, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    /* The process that frees the file holds nothing of ours. */
    file_lock_release(l);
    close(lfd);
    assert_true(other_can_lock(lk, F_WRLCK));
    /* And it lets go of the file soon. */
    int waited = 0;
    while (deleted_file_held(big) && waited++ < 200)
        usleep(100 * 1000);
    assert_false(deleted_file_held(big));
    /* A missing file is an error naming it. */
    assert_int_equal(unlink_detached(AT_FDCWD, big), -ENOENT);
    free(big);
    free(lk);
}

static void sizes_are_digits_and_a_binary_unit(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"0", 0}, {"1", 1}, {"4096", 4096}, {"0010", 10}, {"512B", 512}, {"512b", 512},
        {"1K", 1024}, {"1k", 1024}, {"1KB", 1024}, {"1kb", 1024}, {"1KiB", 1024},
        {"1kib", 1024}, {"10M", 10ull << 20}, {"10MB", 10ull << 20}, {"10MiB", 10ull << 20},
        {"20G", 20ull << 30}, {"20gb", 20ull << 30}, {"20GIB", 20ull << 30},
        {"2T", 2ull << 40}, {"2TiB", 2ull << 40},
        {"9223372036854775807", 9223372036854775807ull}, {"8388607T", 8388607ull << 40},
    };
    static const char *bad[] = {
        "", "G", "B", "KB", "-1", "-1G", "+1G", " 1G", "1G ", "1 G", "1e6", "1E6", "1e3K",
        "0x100000", "0X10", "0b101", "inf", "nan", "1X", "1P", "1E", "1GG", "1GBB", "1GiBB",
        "1iB", "1Bi", "1Gi", "1GxB", "1G extra", "1.5", "1.5B", "1.5G", "0.5K", "0.25M", "1.0K", ".5G", "1.G", "1..5G",
        "1.3K", "0.1G", "1.0000001G", "1,5G", "1_000", "10m\n",
    };
    static const char *too_large[] = {
        "9223372036854775808", "99999999999999999999", "8388608T", "99999999999T",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t got = 42;
        int r = size_parse(good[i].text, &got);
        if (r != 0 || got != good[i].bytes)
            fail_msg("size_parse(\"%s\"): r=%d got %llu, expected %llu", good[i].text, r,
                     (unsigned long long)got, (unsigned long long)good[i].bytes);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t got = 42;
        int r = size_parse(bad[i], &got);
        if (r != -EINVAL || got != 42)
            fail_msg("size_parse(\"%s\"): r=%d got %llu, expected -EINVAL", bad[i], r,
                     (unsigned long long)got);
    }
    for (size_t i = 0; i < sizeof too_large / sizeof too_large[0]; i++) {
        uint64_t got = 42;
        int r = size_parse(too_large[i], &got);
        if (r != -ERANGE || got != 42)
            fail_msg("size_parse(\"%s\"): r=%d got %llu, expected -ERANGE", too_large[i], r,
                     (unsigned long long)got);
    }
    uint64_t got = 42;
    assert_int_equal(size_parse(NULL, &got), -EINVAL);
    assert_int_equal(got, 42);
}

static int cleanup(void **state)
{
    (void)state;
    path_remove_tree(dir);
    return 0;
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_hashes_like_openssl_in_queue_order),
        cmocka_unit_test(pool_reports_an_unreadable_file),
        cmocka_unit_test(pool_follows_a_file_as_it_is_written),
        cmocka_unit_test(pool_reports_failed_followed_copies),
        cmocka_unit_test(copy_keeps_bytes_and_holes),
        cmocka_unit_test(stale_temporaries_of_dead_writers_go),
        cmocka_unit_test(locks_combine_in_process_and_conflict_across),
        cmocka_unit_test(sizes_are_digits_and_a_binary_unit),
        cmocka_unit_test(detached_unlink_frees_later_and_keeps_no_lock),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
