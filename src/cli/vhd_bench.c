/* hvm vhd bench FILE: in-process read/write speed through the disk layer,
 * modeled on 'qemu-img bench'. Requests are issued one at a time (hvm's disk
 * layer is synchronous), so the qemu-img equivalent is '-d 1'. --step gives
 * exactly qemu-img bench's offsets (-S), for like-for-like comparisons. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "disk/disk.h"
#include "util/size.h"

struct bench {
    struct disk *disk;
    bool write;
    bool sequential;
    uint64_t size;   /* bytes per request */
    uint64_t count;  /* requests; with seconds > 0, the number done */
    double seconds;  /* time limit, 0 for none */
    uint64_t offset; /* first offset / start of the random range */
    uint64_t step;
    uint64_t seed;
    uint64_t align;
    uint64_t slots;  /* random: number of aligned positions */
    uint64_t rng;
    uint64_t next;   /* sequential: next offset */
};

/* splitmix64: small, fast, and the same sequence on every platform. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void offsets_reset(struct bench *b)
{
    b->rng = b->seed;
    b->next = b->offset;
}

static uint64_t offset_next(struct bench *b)
{
    if (!b->sequential)
        return b->offset + rng_next(&b->rng) % b->slots * b->align;
    uint64_t at = b->next;
    /* qemu-img bench: offset = (offset + step) % image size. */
    b->next = (b->next + b->step) % b->disk->size;
    if (b->next + b->size > b->disk->size)
        b->next = 0;
    return at;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Which layer (by depth) serves the bytes of [offset, offset+count); the
 * last slot counts bytes that are zeros in every layer. */
static int attribute(struct disk *top, uint64_t offset, uint64_t count, uint64_t *bytes,
                     unsigned layers)
{
    while (count > 0) {
        uint64_t len = count;
        struct disk *l = top;
        unsigned slot = layers;
        while (l) {
            enum disk_extent st;
            int r = disk_block_status(l, offset, len, &len, &st);
            if (r < 0)
                return r;
            if (st == DISK_EXTENT_DATA) {
                slot = l->depth;
                break;
            }
            if (st == DISK_EXTENT_ZERO)
                break;
            l = l->parent;
        }
        bytes[slot < layers ? slot : layers] += len;
        offset += len;
        count -= len;
    }
    return 0;
}

static int run(struct bench *b, uint8_t *buf, double *io_s, double *flush_s)
{
    double t0 = now(), deadline = t0 + b->seconds;
    uint64_t done = 0;
    int r = 0;
    offsets_reset(b);
    while (b->seconds > 0 || done < b->count) {
        /* Check the clock every 256 requests: cheap next to the I/O. */
        if (b->seconds > 0 && (done & 255) == 0 && now() >= deadline)
            break;
        uint64_t at = offset_next(b);
        r = b->write ? disk_pwrite(b->disk, buf, b->size, at) : disk_pread(b->disk, buf, b->size, at);
        if (r < 0)
            return r;
        done++;
    }
    double t1 = now();
    r = disk_flush(b->disk);
    double t2 = now();
    b->count = done;
    *io_s = t1 - t0;
    *flush_s = t2 - t1;
    return r;
}

static int parse_u64(const char *option, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (errno || end == text || *end || text[0] == '-')
        return cli_failf("%s: '%s' is not a number", option, text);
    *out = v;
    return EXIT_OK;
}

int cmd_vhd_bench(const struct cli_args *a)
{
    struct bench b = {.size = 4096, .count = 75000, .seed = 1};
    bool have_count = cli_text(a, "count") != NULL, depth_info = cli_flag(a, "depth-info");
    bool json = cli_flag(a, "json");
    uint64_t fill = 0xa5;
    const char *v;
    b.write = cli_flag(a, "write");
    b.sequential = (v = cli_text(a, "pattern")) && strcmp(v, "seq") == 0;
    b.size = cli_size_or(a, "size", b.size);
    if ((v = cli_text(a, "count")) && parse_u64("--count", v, &b.count))
        return EXIT_ERROR;
    if ((v = cli_text(a, "seconds"))) {
        char *end;
        b.seconds = strtod(v, &end);
        if (end == v || *end || !(b.seconds > 0))
            return cli_failf("--seconds: '%s' is not a positive number", v);
    }
    b.offset = cli_size_or(a, "offset", 0);
    if (cli_flag(a, "step")) {
        b.step = cli_size_or(a, "step", 0);
        b.sequential = true;
    }
    if ((v = cli_text(a, "seed")) && parse_u64("--seed", v, &b.seed))
        return EXIT_ERROR;
    if ((v = cli_text(a, "fill"))) {
        if (parse_u64("--fill", v, &fill))
            return EXIT_ERROR;
        if (fill > 255)
            return cli_failf("--fill: a byte value is 0 to 255");
    }
    if (have_count && b.seconds > 0)
        return cli_verb_error(a, "--count and --seconds exclude each other");
    if (b.size == 0 || b.size > (256u << 20))
        return cli_failf("--size: must be 1 byte to 256 MiB");
    if (!have_count && b.seconds == 0 && b.count == 0)
        b.count = 75000;
    if (b.step == 0)
        b.step = b.size;

    const char *path = cli_pos(a, 0);
    if (disk_open(path, b.write ? 0 : DISK_OPEN_READ_ONLY, &b.disk) < 0)
        return cli_fail();
    int rc = EXIT_ERROR;
    uint8_t *buf = NULL;
    uint64_t *served = NULL;
    unsigned layers = 0;
    for (struct disk *l = b.disk; l; l = l->parent)
        layers++;
    if (b.offset >= b.disk->size || b.disk->size - b.offset < b.size) {
        cli_failf("%s: a %" PRIu64 "-byte request at offset %" PRIu64 " does not fit in %" PRIu64
                  " bytes", path, b.size, b.offset, b.disk->size);
        goto out;
    }
    /* Random offsets are aligned to the request size when it is a power of
     * two (as a guest's would be), else to sectors. */
    b.align = (b.size & (b.size - 1)) == 0 ? b.size : 512;
    b.slots = (b.disk->size - b.offset - b.size) / b.align + 1;

    size_t alloc = (size_t)((b.size + 4095) / 4096 * 4096);
    buf = aligned_alloc(4096, alloc);
    served = calloc(layers + 1, sizeof *served);
    if (!buf || !served) {
        cli_failf("out of memory");
        goto out;
    }
    memset(buf, (int)fill, alloc);

    double io_s, flush_s;
    if (run(&b, buf, &io_s, &flush_s) < 0) {
        cli_fail();
        goto out;
    }
    if (depth_info && !b.write) {
        offsets_reset(&b);
        for (uint64_t i = 0; i < b.count; i++)
            if (attribute(b.disk, offset_next(&b), b.size, served, layers) < 0) {
                cli_fail();
                goto out;
            }
    }

    double secs = io_s + flush_s;
    double ops_s = secs > 0 ? (double)b.count / secs : 0;
    double mib_s = secs > 0 ? (double)b.count * (double)b.size / secs / (1 << 20) : 0;
    const char *mode = b.write ? "write" : "read";
    const char *pattern = b.sequential ? "seq" : "rand";
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "file", json_string(path));
        json_object_set_new(o, "mode", json_string(mode));
        json_object_set_new(o, "pattern", json_string(pattern));
        json_object_set_new(o, "size", json_integer((json_int_t)b.size));
        if (b.sequential)
            json_object_set_new(o, "step", json_integer((json_int_t)b.step));
        else
            json_object_set_new(o, "seed", json_integer((json_int_t)b.seed));
        json_object_set_new(o, "ops", json_integer((json_int_t)b.count));
        json_object_set_new(o, "seconds", json_real(secs));
        json_object_set_new(o, "io_seconds", json_real(io_s));
        json_object_set_new(o, "flush_seconds", json_real(flush_s));
        json_object_set_new(o, "ops_per_second", json_real(ops_s));
        json_object_set_new(o, "mib_per_second", json_real(mib_s));
        json_object_set_new(o, "layers", json_integer(layers));
        if (depth_info) {
            json_t *arr = json_array();
            for (struct disk *l = b.disk; l; l = l->parent) {
                json_t *e = json_pack("{s:i, s:s, s:s}", "depth", (int)l->depth, "type",
                                      l->ops->kind, "file", l->path);
                if (!b.write)
                    json_object_set_new(e, "bytes_served",
                                        json_integer((json_int_t)served[l->depth]));
                json_array_append_new(arr, e);
            }
            json_object_set_new(o, "chain", arr);
            if (!b.write)
                json_object_set_new(o, "bytes_zero", json_integer((json_int_t)served[layers]));
        }
        cli_print_json(o);
    } else {
        char sz[32];
        printf("%s %s, %s requests of %s, %u layer%s\n", mode, path, pattern,
               size_format(b.size, sz, sizeof sz), layers, layers == 1 ? "" : "s");
        printf("ops      %" PRIu64 "\n", b.count);
        printf("seconds  %.3f (I/O %.3f, flush %.3f)\n", secs, io_s, flush_s);
        printf("ops/s    %.0f\n", ops_s);
        printf("MiB/s    %.1f\n", mib_s);
        if (depth_info) {
            uint64_t total = b.count * b.size;
            for (struct disk *l = b.disk; l; l = l->parent) {
                printf("layer %u  %-12s %s", l->depth, l->ops->kind, l->path);
                if (!b.write && total)
                    printf("  served %.1f%%", 100.0 * (double)served[l->depth] / (double)total);
                putchar('\n');
            }
            if (!b.write && total)
                printf("zeros    %.1f%% (no layer holds them)\n",
                       100.0 * (double)served[layers] / (double)total);
        }
    }
    rc = EXIT_OK;
out:
    free(served);
    free(buf);
    disk_close(b.disk);
    return rc;
}
