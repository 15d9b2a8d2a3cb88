/* The DHCP server of a bridge: one dnsmasq process, started by hvm and
 * left running as a daemon (it must outlive the command that brings the
 * switch up), found again through its pid file. Only DHCP: --port=0 turns
 * its DNS server off, and --bind-interfaces with --interface keeps it off
 * every interface but the bridge, so that it never answers on the host's
 * other networks nor clashes with another DHCP server of the host. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/services.h"
#include "util/error.h"
#include "util/fileio.h"

static char *dir_file(const char *dir, const char *name)
{
    return path_join(dir, name);
}

/* Is pid a dnsmasq started with this pid file? (A pid file may outlive its
 * process, and the pid be reused by another.) */
static bool is_our_dnsmasq(int pid, const char *pidfile)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    bool named = strstr(path_basename(buf), "dnsmasq") != NULL;
    char want[4200];
    snprintf(want, sizeof want, "--pid-file=%s", pidfile);
    bool ours = false;
    for (char *p = buf; p < buf + n; p += strlen(p) + 1)
        ours |= strcmp(p, want) == 0;
    return named && ours;
}

int net_dhcp_pid(const char *dir)
{
    char *pidfile = dir_file(dir, "dnsmasq.pid");
    if (!pidfile)
        return hvm_error(ENOMEM, "out of memory");
    FILE *f = fopen(pidfile, "re");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1 || pid <= 1 || !is_our_dnsmasq(pid, pidfile))
            pid = 0;
        fclose(f);
    }
    free(pidfile);
    return pid;
}

static const char *dnsmasq_path(void)
{
    return access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
}

int net_dhcp_start(const struct net_dhcp_config *c)
{
    if (net_dhcp_pid(c->dir) > 0)
        return 0;
    char *pidfile = dir_file(c->dir, "dnsmasq.pid"), *leases = dir_file(c->dir, "leases");
    char *hosts = dir_file(c->dir, "hosts"), *log = dir_file(c->dir, "dnsmasq.log");
    char *args[24];
    char a_pid[4200], a_lease[4200], a_hosts[4200], a_log[4200], a_if[64], a_range[64],
        a_router[64];
    int r = 0, n = 0, err[2] = {-1, -1};
    if (!pidfile || !leases || !hosts || !log) {
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    /* The hosts file must exist: dnsmasq refuses a missing one. */
    struct stat st;
    if (stat(hosts, &st) < 0 && (r = file_replace(hosts, "", 0)) < 0)
        goto out;
    unlink(pidfile);
    snprintf(a_pid, sizeof a_pid, "--pid-file=%s", pidfile);
    snprintf(a_lease, sizeof a_lease, "--dhcp-leasefile=%s", leases);
    snprintf(a_hosts, sizeof a_hosts, "--dhcp-hostsfile=%s", hosts);
    snprintf(a_log, sizeof a_log, "--log-facility=%s", log);
    snprintf(a_if, sizeof a_if, "--interface=%s", c->bridge);
    snprintf(a_range, sizeof a_range, "--dhcp-range=%s,%s,1h", c->range_start, c->range_end);
    args[n++] = (char *)"dnsmasq";
    args[n++] = (char *)"--conf-file=/dev/null"; /* not the host's /etc/dnsmasq.conf */
    args[n++] = (char *)"--port=0";
    args[n++] = (char *)"--bind-interfaces";
    args[n++] = a_if;
    args[n++] = (char *)"--except-interface=lo";
    args[n++] = a_range;
    args[n++] = (char *)"--dhcp-authoritative";
    args[n++] = a_lease;
    args[n++] = a_hosts;
    args[n++] = a_pid;
    args[n++] = a_log;
    args[n++] = (char *)"--log-dhcp";
    if (c->router) {
        snprintf(a_router, sizeof a_router, "--dhcp-option=option:router,%s", c->router);
        args[n++] = a_router;
    } else {
        /* No gateway: the host is not the VMs' way out. */
        args[n++] = (char *)"--dhcp-option=option:router";
    }
    args[n] = NULL;
    if (pipe2(err, O_CLOEXEC) < 0) {
        r = hvm_error(errno, "pipe: %s", strerror(errno));
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        r = hvm_error(errno, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(err[1], 2);
        /* Its own session: a Ctrl-C at the terminal of the command that
         * started it does not reach the switch's server. */
        setsid();
        execvp(dnsmasq_path(), args);
        dprintf(2, "cannot run dnsmasq: %s (install Debian's dnsmasq-base)\n", strerror(errno));
        _exit(127);
    }
    close(err[1]);
    err[1] = -1;
    /* dnsmasq checks its options and binds its sockets before it forks
     * into the background, and its parent exits with the status of that
     * start (dnsmasq(8), EXIT CODES): 0 means the daemon serves. */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char msg[1024] = "";
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    ssize_t got = read(err[0], msg, sizeof msg - 1);
    msg[got > 0 ? got : 0] = 0;
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = *(p + 1) ? ' ' : 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        r = hvm_error(EIO, "dnsmasq for %s did not start (exit %d): %s", c->bridge,
                      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                      msg[0] ? msg : "no message");
        goto out;
    }
    /* The pid file is written by the daemon, perhaps after its parent exits. */
    for (int i = 0; i < 200 && net_dhcp_pid(c->dir) == 0; i++)
        usleep(10000);
    if (net_dhcp_pid(c->dir) == 0)
        r = hvm_error(EIO, "dnsmasq for %s started but is not running (see %s)", c->bridge, log);
out:
    if (err[0] >= 0)
        close(err[0]);
    if (err[1] >= 0)
        close(err[1]);
    free(pidfile);
    free(leases);
    free(hosts);
    free(log);
    return r;
}

int net_dhcp_stop(const char *dir)
{
    int pid = net_dhcp_pid(dir);
    if (pid <= 0)
        return pid;
    if (kill(pid, SIGTERM) < 0 && errno != ESRCH)
        return hvm_error(errno, "dnsmasq (pid %d): %s", pid, strerror(errno));
    for (int i = 0; i < 500 && kill(pid, 0) == 0; i++)
        usleep(10000);
    if (kill(pid, 0) == 0)
        kill(pid, SIGKILL);
    char *pidfile = dir_file(dir, "dnsmasq.pid");
    if (pidfile)
        unlink(pidfile);
    free(pidfile);
    return 0;
}

int net_dhcp_reload(const char *dir)
{
    int pid = net_dhcp_pid(dir);
    if (pid > 0 && kill(pid, SIGHUP) < 0)
        return hvm_error(errno, "dnsmasq (pid %d): %s", pid, strerror(errno));
    return pid < 0 ? pid : 0;
}

json_t *net_dhcp_leases(const char *dir)
{
    json_t *out = json_array();
    char *path = dir_file(dir, "leases");
    FILE *f = path ? fopen(path, "re") : NULL;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        /* "EXPIRY MAC ADDRESS HOSTNAME CLIENT-ID" (hostname "*" when none). */
        long long expires;
        char mac[64], addr[64], host[256];
        if (sscanf(line, "%lld %63s %63s %255s", &expires, mac, addr, host) != 4)
            continue;
        json_t *l = json_pack("{s:s, s:s, s:I}", "mac", mac, "address", addr, "expires",
                              (json_int_t)expires);
        if (strcmp(host, "*") != 0)
            json_object_set_new(l, "hostname", json_string(host));
        json_array_append_new(out, l);
    }
    if (f)
        fclose(f);
    free(path);
    return out;
}
