/* The worker's part of a live migration (hvm vm migrate --mode live),
 * included by worker.c, whose struct worker it shares.
 *
 * Source: migrate-start sets the downtime limit and the bandwidth and
 * starts QEMU's migration to the destination's address; migrate-status
 * reports it; migrate-release (once QEMU says completed: the guest is
 * stopped here) quits QEMU, flushes and closes every drive, so that every
 * layer's lock is given up, and the worker ends without recording a state
 * (the VM runs on); migrate-cancel ends a migration that did not get
 * there and lets the guest run on here.
 *
 * Destination: the worker starts with QEMU -S -incoming defer, its sockets
 * and lock in run.incoming/ (run/ is the source's until it has gone) and
 * its drives deferred (disk/deferred.c: nothing opened, read or written);
 * migrate-incoming gives QEMU the address to listen on; migrate-activate,
 * sent only after the source released, opens the chains for real and lets
 * the guest run; migrate-settle, after the source's worker exited, moves
 * the sockets and the lock into run/. Until activated, this worker dies
 * with the hvm that waits for the switchover (controller), taking QEMU
 * with it and recording nothing. */

static void migrate_watch_controller(struct worker *w)
{
    if (w->owner || w->controller <= 0 || kill(w->controller, 0) == 0 || errno != ESRCH)
        return;
    wlog("the migration's hvm (%d) is gone before the switchover: stopping", (int)w->controller);
    w->controller = 0;
    w->quitting = true;
    if (w->qemu > 0)
        kill(w->qemu, SIGKILL);
}

static json_t *migrate_query(struct worker *w, const char **status)
{
    json_t *st = NULL;
    if (qmp_execute(&w->qmp, "query-migrate", NULL, &st) < 0)
        return NULL;
    *status = json_string_value(json_object_get(st, "status"));
    return st;
}

static bool guest_running(struct worker *w)
{
    json_t *st;
    if (qmp_execute(&w->qmp, "query-status", NULL, &st) < 0)
        return false;
    bool running = json_is_true(json_object_get(st, "running"));
    json_decref(st);
    return running;
}

static int migrate_start(struct worker *w, json_t *req)
{
    const char *uri = json_string_value(json_object_get(req, "uri"));
    if (!uri || strncmp(uri, "tcp:", 4) != 0)
        return hvm_error(EINVAL, "migrate-start: no tcp: address");
    /* The same lost writes as a pre-copied checkpoint's (ramsize.c). */
    if (!w->precopy_exact)
        return hvm_error(ENOTSUP, "a live migration of this VM would lose guest writes (TCG, RAM "
                         "not padded: it resumed from an older state); restart it, or use "
                         "--mode quick");
    int r = qmp_execute(&w->qmp, "migrate-set-capabilities",
                        json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability",
                                  "pause-before-switchover", "state", 0), NULL);
    if (r == 0)
        r = qmp_execute(&w->qmp, "migrate-set-parameters",
                        json_pack("{s:I, s:I}", "downtime-limit",
                                  json_integer_value(json_object_get(req, "downtime_ms")),
                                  "max-bandwidth", json_integer_value(json_object_get(req, "bandwidth"))),
                        NULL);
    if (r == 0)
        r = qmp_execute(&w->qmp, "migrate", json_pack("{s:s}", "uri", uri), NULL);
    if (r == 0)
        wlog("live migration to %s started", uri);
    return r;
}

/* The guest runs on here: a migration that failed, was cancelled, or
 * completed without a destination to take it. */
static int migrate_cancel(struct worker *w)
{
    const char *status = NULL;
    json_t *st = migrate_query(w, &status);
    bool active = status && strcmp(status, "completed") != 0 && strcmp(status, "failed") != 0 &&
                  strcmp(status, "cancelled") != 0 && strcmp(status, "none") != 0;
    json_decref(st);
    if (active)
        qmp_execute(&w->qmp, "migrate_cancel", NULL, NULL);
    for (int i = 0; active && i < 500; i++) {
        st = migrate_query(w, &status);
        active = status && (strcmp(status, "cancelling") == 0 || strcmp(status, "active") == 0 ||
                            strcmp(status, "device") == 0 || strcmp(status, "setup") == 0);
        json_decref(st);
        usleep(10000);
    }
    int r = 0;
    if (!w->paused && !guest_running(w))
        r = qmp_execute(&w->qmp, "cont", NULL, NULL);
    wlog("live migration cancelled; the guest runs here");
    return r;
}

static int migrate_release(struct worker *w)
{
    const char *status = NULL;
    json_t *st = migrate_query(w, &status);
    bool done = status && strcmp(status, "completed") == 0;
    json_decref(st);
    if (!done)
        return hvm_error(EBUSY, "the migration has not completed (%s)", status ? status : "?");
    /* From here on the destination owns the VM: nothing is recorded. */
    double t0 = now_ms();
    w->owner = false;
    w->quitting = true;
    /* Its state is on the destination and it writes nothing of ours (the
     * disks are this worker's): killed, it runs no more instruction, and
     * the drives need not wait for the teardown of its memory (the main
     * loop reaps it). */
    kill(w->qemu, SIGKILL);
    /* Flushed and closed: every layer's lock is given up before the reply
     * lets the destination open them. */
    close_drives(w);
    wlog("live migration completed: QEMU quit and the drives released in %.0f ms", now_ms() - t0);
    return 0;
}

static int migrate_activate(struct worker *w)
{
    double t0 = now_ms();
    int r = 0;
    for (int i = 0; i < w->n_drives && r == 0; i++)
        r = disk_deferred_activate(w->drives[i].disk, 0);
    if (r < 0)
        return r;
    record_drives(w);
    /* The incoming state must be complete: QEMU leaves "inmigrate". */
    for (int i = 0; i < 1000; i++) {
        json_t *st;
        if ((r = qmp_execute(&w->qmp, "query-status", NULL, &st)) < 0)
            return r;
        const char *s = json_string_value(json_object_get(st, "status"));
        bool ready = s && strcmp(s, "inmigrate") != 0;
        json_decref(st);
        if (ready)
            break;
        usleep(5000);
    }
    w->owner = true;
    w->controller = 0;
    if ((r = qmp_execute(&w->qmp, "cont", NULL, NULL)) == 0)
        wlog("live migration: activated in %.0f ms, the guest runs here", now_ms() - t0);
    return r;
}

/* The source's worker has exited (its run/ files are gone or stale): the
 * sockets and the lock take their places under run/. */
static int migrate_settle(struct worker *w)
{
    if (strcmp(w->run, "run") == 0)
        return 0;
    /* Everything the run keeps there (the lock, sockets, drives.json, the
     * adapters' taps.json...), whatever other parts of the worker add. */
    char *from_dir = NULL;
    if (asprintf(&from_dir, "%s/run.incoming", w->dir) < 0)
        return hvm_error(ENOMEM, "out of memory");
    DIR *d = opendir(from_dir);
    if (!d) {
        int r = hvm_error(errno, "%s: %s", from_dir, strerror(errno));
        free(from_dir);
        return r;
    }
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *from = NULL, *to = NULL;
        if (asprintf(&from, "%s/%s", from_dir, e->d_name) < 0 ||
            asprintf(&to, "%s/run/%s", w->dir, e->d_name) < 0)
            r = hvm_error(ENOMEM, "out of memory");
        else if (rename(from, to) < 0 && errno != ENOENT)
            r = hvm_error(errno, "%s: %s", to, strerror(errno));
        free(from);
        free(to);
    }
    closedir(d);
    if (r == 0) {
        w->run = "run";
        rmdir(from_dir);
    }
    free(from_dir);
    return r;
}

static json_t *migrate_handle(struct worker *w, const char *op, json_t *req)
{
    int r;
    if (strcmp(op, "migrate-status") == 0) {
        const char *status = NULL;
        json_t *st = migrate_query(w, &status);
        if (!st)
            return json_pack("{s:b, s:s}", "ok", 0, "error", hvm_error_message());
        return json_pack("{s:b, s:o, s:b}", "ok", 1, "migration", st, "running", guest_running(w));
    } else if (strcmp(op, "migrate-incoming") == 0) {
        const char *uri = json_string_value(json_object_get(req, "uri"));
        r = uri && strncmp(uri, "tcp:", 4) == 0
                ? qmp_execute(&w->qmp, "migrate-incoming", json_pack("{s:s}", "uri", uri), NULL)
                : hvm_error(EINVAL, "migrate-incoming: no tcp: address");
    } else if (strcmp(op, "migrate-start") == 0) {
        r = migrate_start(w, req);
    } else if (strcmp(op, "migrate-cancel") == 0) {
        r = migrate_cancel(w);
    } else if (strcmp(op, "migrate-release") == 0) {
        r = migrate_release(w);
    } else if (strcmp(op, "migrate-activate") == 0) {
        r = migrate_activate(w);
    } else if (strcmp(op, "migrate-settle") == 0) {
        r = migrate_settle(w);
    } else {
        return json_pack("{s:b, s:s}", "ok", 0, "error", "unknown op");
    }
    if (r < 0)
        return json_pack("{s:b, s:s}", "ok", 0, "error", hvm_error_message());
    return json_pack("{s:b}", "ok", 1);
}
