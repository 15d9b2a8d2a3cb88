/* hvm web serve: the web console (src/web). This file turns the options
 * into a web_config (token, TLS files, web root), prints where the console
 * is and serves until SIGINT or SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "util/error.h"
#include "util/fileio.h"
#include "web/web.h"

#ifndef HVM_WEB_DIR
#define HVM_WEB_DIR "/usr/local/share/hvm/web"
#endif

/* A whole small file (a PEM, a token), NUL-terminated. */
static char *slurp(const char *path, const char *what)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        hvm_error(errno, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n == (1 << 20) - 1) {
        free(buf);
        hvm_error(EINVAL, "%s %s: empty or larger than 1 MiB", what, path);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static int new_token(char out[49])
{
    unsigned char raw[24];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return hvm_error(errno, "getrandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof raw; i++)
        sprintf(out + 2 * i, "%02x", raw[i]);
    return 0;
}

/* --token-file F: the token in F (one line of at least 16 printable
 * characters), or a new one written into F (0600) when F does not exist. */
static char *token_from_file(const char *path)
{
    char tok[49];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (new_token(tok) < 0) {
            close(fd), unlink(path);
            return NULL;
        }
        tok[48] = '\n';
        bool ok = write(fd, tok, 49) == 49 && fsync(fd) == 0;
        close(fd);
        tok[48] = 0;
        if (!ok) {
            unlink(path);
            hvm_error(EIO, "--token-file %s: cannot write it", path);
            return NULL;
        }
        return strdup(tok);
    }
    if (errno != EEXIST) {
        hvm_error(errno, "--token-file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *t = slurp(path, "--token-file");
    if (!t)
        return NULL;
    t[strcspn(t, "\r\n")] = 0;
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i++)
        if (t[i] <= ' ' || t[i] == 0x7f)
            n = 0;
    if (n < 16) {
        free(t);
        hvm_error(EINVAL, "--token-file %s: the token must be one line of at least 16 printable "
                          "characters without spaces", path);
        return NULL;
    }
    return t;
}

/* The front end: --root, else web/ beside the binary (the build tree),
 * else the installed share/hvm/web. */
static char *web_root(const char *given)
{
    if (given)
        return realpath(given, NULL);
    char exe[PATH_MAX], path[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        snprintf(path, sizeof path, "%s/web/index.html", dirname(exe));
        if (access(path, R_OK) == 0) {
            path[strlen(path) - strlen("/index.html")] = 0;
            return strdup(path);
        }
    }
    return strdup(HVM_WEB_DIR);
}

int cmd_web_serve(const struct cli_args *a)
{
    const char *cert = cli_text(a, "tls-cert"), *key = cli_text(a, "tls-key");
    if (!cert != !key)
        return cli_verb_error(a, "--tls-cert and --tls-key go together");
    struct store s;
    if (vm_cli_open_listed_store(cli_text(a, "store"), &s))
        return EXIT_ERROR;
    struct web_config c = {
        .listen = cli_text(a, "listen") ? cli_text(a, "listen") : "127.0.0.1:8480",
        /* the running binary itself, even if its file is replaced meanwhile */
        .exe = "/proc/self/exe",
    };
    char *store = s.exists ? strdup(s.root) : NULL;
    store_close(&s);
    c.store = store;
    char *root = web_root(cli_text(a, "root"));
    char *cert_pem = NULL, *key_pem = NULL, *token = NULL, *url = NULL;
    char tok[49];
    int rc = EXIT_ERROR;
    if (!root) {
        cli_failf("--root %s: %s", cli_text(a, "root"), strerror(errno));
        goto out;
    }
    c.root = root;
    if (cert && (!(cert_pem = slurp(cert, "--tls-cert")) || !(key_pem = slurp(key, "--tls-key")))) {
        cli_fail();
        goto out;
    }
    c.tls_cert = cert_pem, c.tls_key = key_pem;
    if (cli_text(a, "token-file")) {
        if (!(token = token_from_file(cli_text(a, "token-file")))) {
            cli_fail();
            goto out;
        }
        c.token = token;
    } else {
        if (new_token(tok) < 0) {
            cli_fail();
            goto out;
        }
        c.token = tok;
    }
    /* Blocked before the server's threads start, so that they inherit the
     * mask and only sigwait below sees these. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct web_server *w;
    if (web_start(&c, &w, &url) < 0) {
        cli_fail();
        goto out;
    }
    if (access(c.root, R_OK) != 0)
        fprintf(stderr, "hvm: web: %s: %s; the API works, the pages do not\n", c.root,
                strerror(errno));
    printf("hvm web: listening on %s\n", url ? url : c.listen);
    if (token)
        printf("hvm web: the access token is in %s\n", cli_text(a, "token-file"));
    else if (url && strncmp(url, "unix:", 5) != 0)
        printf("hvm web: open %s/#token=%s\n", url, c.token);
    else
        printf("hvm web: access token %s\n", c.token);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    web_stop(w);
    rc = EXIT_OK;
out:
    free(url), free(root), free(store), free(cert_pem), free(key_pem), free(token);
    return rc;
}
