/* hvm vhd convert of a qcow2, VMDK, VDI or QED image into a VHD, streamed:
 * hvm creates the VHD and serves it on a private Unix socket with its own
 * NBD server, and qemu-img writes the image's disk into it. Only the
 * image's data crosses, once, and no raw temporary is needed (the disk
 * layer's disk_convert_from goes through one, since it cannot serve NBD;
 * it is the way when there is no place for a socket).
 * Here in cli/ because it joins the disk and nbd modules. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/vhd_import.h"
#include "disk/foreign.h"
#include "disk/ops.h"
#include "nbd/server.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vhd/image.h"

static void *serve(void *server)
{
    nbd_server_run(server);
    return NULL;
}

/* A new private folder for the socket, under TMPDIR rather than beside
 * DST: a socket path has at most 107 bytes. false if there is none. */
static bool socket_folder(char *dir, size_t size)
{
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    struct sockaddr_un un;
    if (snprintf(dir, size, "%s/hvm-convert.XXXXXX", tmpdir) >= (int)size ||
        strlen(dir) + sizeof "/nbd.sock" > sizeof un.sun_path)
        return false;
    return mkdtemp(dir) != NULL;
}

/* qemu-img writes src's disk into d through a server on a socket in dir,
 * which goes again with the socket. */
static int fill(const char *src, enum disk_foreign foreign, struct disk *d, const char *dir,
                const struct disk_progress *pr)
{
    char sock[PATH_MAX + 16];
    snprintf(sock, sizeof sock, "%s/nbd.sock", dir);
    struct nbd_server *s = NULL;
    struct nbd_server_options o = {.read_only = false};
    pthread_t thread;
    int r = nbd_server_new(d, &o, &s);
    if (r == 0)
        r = nbd_server_listen_path(s, sock);
    if (r == 0 && (r = -pthread_create(&thread, NULL, serve, s)) < 0)
        r = hvm_error(-r, "pthread_create: %s", strerror(-r));
    if (r == 0) {
        r = disk_foreign_write_nbd(src, foreign, sock, pr);
        nbd_server_stop(s);
        pthread_join(thread, NULL);
    }
    nbd_server_free(s); /* removes the socket */
    return r;
}

int cli_convert_foreign(const char *src, enum disk_foreign foreign, const char *dst,
                        enum disk_format format, uint32_t block_size,
                        const struct disk_progress *pr)
{
    struct vhd_create_params p = {
        .type = format == DISK_FORMAT_FIXED ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC,
        .block_size = block_size,
    };
    struct disk *d = NULL;
    char *tmp = NULL;
    char dir[PATH_MAX];
    int r;
    if (access(dst, F_OK) == 0)
        return hvm_error(EEXIST, "%s: already exists", dst);
    if (!socket_folder(dir, sizeof dir)) {
        /* No place for a socket: through a raw temporary beside DST. */
        struct disk_source_format from = {DISK_FROM_FOREIGN, foreign};
        return disk_convert_from(src, &from, dst, format, block_size, pr);
    }
    if ((r = disk_foreign_virtual_size(src, foreign, &p.size)) < 0)
        goto out;
    p.size = (p.size + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
    /* Refuse an impossible size or block size under DST's name. */
    if ((r = vhd_create_check(dst, &p)) < 0)
        goto out;
    path_remove_stale(dst, ".converting.");
    if (asprintf(&tmp, "%s.converting.%d", dst, (int)getpid()) < 0) {
        tmp = NULL;
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    /* A new VHD reads as zeros, which qemu-img is told, so that it writes
     * only data and a dynamic result stays sparse. */
    if ((r = vhd_create(tmp, &p)) == 0 && (r = disk_open(tmp, 0, &d)) == 0) {
        r = fill(src, foreign, d, dir, pr);
        int f = disk_flush(d);
        if (r == 0)
            r = f;
        disk_close(d);
    }
    /* Only a complete copy goes into place; link() will not replace a file
     * that appeared meanwhile. */
    if (r == 0 && link(tmp, dst) < 0)
        r = hvm_error(errno, "%s: %s", dst, errno == EEXIST ? "already exists" : strerror(errno));
    unlink(tmp);
    if (r == 0)
        r = path_sync_dir(dst);
out:
    rmdir(dir);
    free(tmp);
    return r;
}
