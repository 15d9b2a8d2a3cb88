/* A test helper (not a cmocka test): writes into a disk through hvm's disk
 * layer, so that the CLI tests can put data into differencing disks (which
 * no other tool here writes correctly) and interrupt writes with kill -9.
 *
 *   diskio write IMG OFFSET SRC [SRC_OFFSET [LEN]]   copy bytes of SRC into IMG
 *   diskio fill IMG OFFSET LEN BYTE                  write LEN bytes of BYTE
 *   diskio random IMG RAW SEED COUNT MAXLEN [ALIGN]  the same COUNT random writes
 *                                                    (any alignment, or multiples
 *                                                    of ALIGN) into IMG and the
 *                                                    plain file RAW
 *   diskio read IMG OUT                              IMG's whole content into OUT
 *   diskio discard IMG OFFSET LEN
 *
 * Exit 0 on success, 2 with "diskio: <message>" on error. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "util/error.h"
#include "util/fileio.h"

static int die(const char *what)
{
    const char *m = hvm_error_message();
    fprintf(stderr, "diskio: %s%s%s\n", what, m[0] ? ": " : "", m);
    /* A helper: skip the leak report of what an error path left open. */
    fflush(stderr);
    _exit(2);
}

static uint64_t num(const char *s)
{
    return strtoull(s, NULL, 0);
}

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int do_write(int argc, char **argv)
{
    struct disk *d;
    if (argc < 5)
        return die("write IMG OFFSET SRC [SRC_OFFSET [LEN]]");
    uint64_t off = num(argv[3]), soff = argc > 5 ? num(argv[5]) : 0;
    int fd = open(argv[4], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return die(argv[4]);
    uint64_t len = argc > 6 ? num(argv[6]) : (uint64_t)st.st_size - soff;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || file_pread(fd, argv[4], buf, len, soff) < 0)
        return die("read source");
    close(fd);
    if (disk_open(argv[2], 0, &d) < 0)
        return die("open");
    /* In pieces, so that a kill -9 lands between writes as well as in them. */
    for (uint64_t done = 0; done < len;) {
        uint64_t n = len - done < (1u << 20) ? len - done : (1u << 20);
        if (disk_pwrite(d, buf + done, n, off + done) < 0)
            return die("write");
        done += n;
    }
    if (disk_flush(d) < 0)
        return die("flush");
    disk_close(d);
    free(buf);
    return 0;
}

static int do_fill(int argc, char **argv)
{
    struct disk *d;
    if (argc != 6)
        return die("fill IMG OFFSET LEN BYTE");
    uint64_t off = num(argv[3]), len = num(argv[4]);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return die("out of memory");
    memset(buf, (int)num(argv[5]), len);
    if (disk_open(argv[2], 0, &d) < 0)
        return die("open");
    if (disk_pwrite(d, buf, len, off) < 0 || disk_flush(d) < 0)
        return die("write");
    disk_close(d);
    free(buf);
    return 0;
}

static int do_random(int argc, char **argv)
{
    struct disk *d;
    if (argc != 7 && argc != 8)
        return die("random IMG RAW SEED COUNT MAXLEN [ALIGN]");
    uint64_t x = num(argv[4]) * 2654435761u + 88172645463325252ull;
    uint64_t count = num(argv[5]), maxlen = num(argv[6]);
    uint64_t align = argc == 8 ? num(argv[7]) : 1;
    int rfd = open(argv[3], O_RDWR);
    if (rfd < 0)
        return die(argv[3]);
    if (disk_open(argv[2], 0, &d) < 0)
        return die("open");
    uint8_t *buf = malloc(maxlen + 512 + align);
    if (!buf)
        return die("out of memory");
    for (uint64_t i = 0; i < count; i++) {
        uint64_t len = 1 + rnd(&x) % maxlen;
        /* Mostly aligned, sometimes not; sometimes zeros. */
        if (rnd(&x) % 3 == 0)
            len = (len + 511) / 512 * 512;
        if (len > d->size)
            len = d->size;
        uint64_t off = rnd(&x) % (d->size - len + 1);
        if (rnd(&x) % 3 == 0)
            off &= ~511ull;
        if (align > 1) {
            off = off / align * align;
            len = (len + align - 1) / align * align;
            if (len > d->size - off)
                len = d->size - off;
        }
        if (rnd(&x) % 5 == 0) {
            memset(buf, 0, len);
        } else {
            uint8_t v = (uint8_t)rnd(&x);
            for (uint64_t k = 0; k < len; k++)
                buf[k] = (uint8_t)(v + k * 7 + (k >> 9));
        }
        if (disk_pwrite(d, buf, len, off) < 0)
            return die("write");
        if (file_pwrite(rfd, argv[3], buf, len, off) < 0)
            return die("write raw");
        if (rnd(&x) % 8 == 0 && disk_flush(d) < 0)
            return die("flush");
    }
    if (disk_flush(d) < 0)
        return die("flush");
    disk_close(d);
    close(rfd);
    free(buf);
    return 0;
}

static int do_read(int argc, char **argv)
{
    struct disk *d;
    if (argc != 4)
        return die("read IMG OUT");
    if (disk_open(argv[2], DISK_OPEN_READ_ONLY, &d) < 0)
        return die("open");
    int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint8_t *buf = malloc(1u << 20);
    if (fd < 0 || !buf)
        return die(argv[3]);
    for (uint64_t off = 0; off < d->size;) {
        uint64_t n = d->size - off < (1u << 20) ? d->size - off : (1u << 20);
        if (disk_pread(d, buf, n, off) < 0)
            return die("read");
        if (file_pwrite(fd, argv[3], buf, n, off) < 0)
            return die("write");
        off += n;
    }
    close(fd);
    free(buf);
    disk_close(d);
    return 0;
}

static int do_discard(int argc, char **argv)
{
    struct disk *d;
    if (argc != 5)
        return die("discard IMG OFFSET LEN");
    if (disk_open(argv[2], 0, &d) < 0)
        return die("open");
    if (disk_discard(d, num(argv[4]), num(argv[3])) < 0 || disk_flush(d) < 0)
        return die("discard");
    disk_close(d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return die("usage: diskio write|fill|random|read|discard ...");
    if (strcmp(argv[1], "write") == 0)
        return do_write(argc, argv);
    if (strcmp(argv[1], "fill") == 0)
        return do_fill(argc, argv);
    if (strcmp(argv[1], "random") == 0)
        return do_random(argc, argv);
    if (strcmp(argv[1], "read") == 0)
        return do_read(argc, argv);
    if (strcmp(argv[1], "discard") == 0)
        return do_discard(argc, argv);
    return die("unknown command");
}
