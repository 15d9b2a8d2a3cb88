/* randio: random 4 KiB requests at queue depth 1 on a block device, for the
 * guest benchmarks of bench/runtime.sh. Busybox has no tool that does this
 * in one process, and starting a process per request under TCG costs more
 * than the request itself, which then measures process start-up.
 *
 *   randio DEVICE read|write COUNT SEED
 *
 * COUNT O_DIRECT requests of 4 KiB at random 4 KiB-aligned offsets over the
 * whole device, one after the other (the same offsets for the same seed);
 * writes are followed by one fdatasync, inside the time. Prints
 * "RANDIO read|write COUNT NANOSECONDS". Built static by build.sh. */
#define _GNU_SOURCE /* O_DIRECT */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[2], "read") != 0 && strcmp(argv[2], "write") != 0)) {
        fprintf(stderr, "usage: randio DEVICE read|write COUNT SEED\n");
        return 2;
    }
    int writing = strcmp(argv[2], "write") == 0;
    long count = atol(argv[3]);
    uint64_t seed = strtoull(argv[4], NULL, 10) | 1;
    int fd = open(argv[1], (writing ? O_RDWR : O_RDONLY) | O_DIRECT);
    uint64_t size = 0;
    void *buf = NULL;
    if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0 || size < BLOCK ||
        posix_memalign(&buf, BLOCK, BLOCK) != 0) {
        perror(argv[1]);
        return 1;
    }
    memset(buf, 0x5a, BLOCK);
    uint64_t blocks = size / BLOCK;
    int64_t t0 = now_ns();
    for (long i = 0; i < count; i++) {
        off_t at = (off_t)(next(&seed) % blocks) * BLOCK;
        ssize_t n = writing ? pwrite(fd, buf, BLOCK, at) : pread(fd, buf, BLOCK, at);
        if (n != BLOCK) {
            perror(writing ? "pwrite" : "pread");
            return 1;
        }
    }
    if (writing && fdatasync(fd) < 0) {
        perror("fdatasync");
        return 1;
    }
    printf("RANDIO %s %ld %lld\n", argv[2], count, (long long)(now_ns() - t0));
    return 0;
}
