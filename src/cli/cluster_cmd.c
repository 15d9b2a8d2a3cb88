/* hvm cluster: highly available VMs on Corosync/Pacemaker in Hyper-V's
 * terms. hvm does not run a cluster of its own: each clustered VM is one
 * Pacemaker primitive "vm-NAME" of ocf:hvm:VirtualMachine (data/ocf), and
 * every verb here is a few calls of Pacemaker's own tools (crm_resource,
 * cibadmin, crm_attribute, crm_mon), shown with --verbose:
 *   preferred owners   rsc_location constraints, first owner scored highest
 *   failback           resource-stickiness 0 (immediate) or 1000 (never)
 *   restart never      on-fail=stop on the monitor operation
 *   max failures/period   migration-threshold / failure-timeout
 *   offline/online     target-role Stopped/Started
 *   maintenance        is-managed false
 *   drain/resume       the node's standby attribute
 *   move               crm_resource --move, then --clear */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "cli/cli.h"
#include "cli/cluster_cmd.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "util/error.h"
#include "util/proc.h"
#include "vm/store.h"

static bool verbose;

struct buf {
    char *data;
    size_t len, cap;
};

static int buf_add(struct buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d, b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

static void show_command(const char *const *argv)
{
    fputs("+", stderr);
    for (int i = 0; argv[i]; i++) {
        const char *s = argv[i];
        if (s[0] && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                              "-_.,/=:@+") == strlen(s))
            fprintf(stderr, " %s", s);
        else {
            fputs(" '", stderr);
            for (; *s; s++)
                *s == '\'' ? fputs("'\\''", stderr) : fputc(*s, stderr);
            fputc('\'', stderr);
        }
    }
    fputc('\n', stderr);
}

/* Runs a Pacemaker tool; *out (when not NULL) gets its standard output,
 * malloc'd. A failure is recorded as "TOOL: its last line on stderr". */
static int run_tool(const char *const *argv, char **out)
{
    if (verbose)
        show_command(argv);
    fflush(stdout), fflush(stderr);
    int code = 0;
    struct buf o = {0}, e = {0};
    int r = proc_capture(NULL, argv, &code, &o.data, &e.data);
    if (r == 0)
        e.len = strlen(e.data);
    if (r == 0 && code == 127)
        r = hvm_error(ENOENT, "%s: not found (install Debian's pacemaker-cli-utils)", argv[0]);
    else if (r == 0 && code != 0) {
        /* the last non-empty line the tool wrote on stderr says why */
        char *last = NULL;
        for (char *line = e.data ? strtok(e.data, "\n") : NULL; line; line = strtok(NULL, "\n"))
            if (line[strspn(line, " \t")])
                last = line;
        bool down = last && (strstr(last, "Init failed") || strstr(last, "not connected") ||
                             strstr(last, "Could not connect") || strstr(last, "connection refused"));
        r = hvm_error(EIO, "%s failed: %s%s", argv[0], last ? last : "no message",
                      down ? " (no Pacemaker cluster answers on this node)" : "");
    }
    if (verbose && e.len && r == 0)
        fputs(e.data, stderr);
    free(e.data);
    if (out && r == 0)
        *out = o.data ? o.data : strdup("");
    else
        free(o.data);
    return r;
}

#define TOOL(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Names that reach the CIB as XML ids and values: a VM name of the store,
 * a node name. */
static int name_check(const char *what, const char *s)
{
    if (!s[0] || strlen(s) > 64 || s[0] == '-' ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(s))
        return hvm_error(EINVAL, "%s '%s': not a name (letters, digits, '.', '_', '-')", what, s);
    return 0;
}

static char *resource_id(const char *vm)
{
    char *id;
    return asprintf(&id, "vm-%s", vm) < 0 ? NULL : id;
}

/* XML text of an attribute value (a store path may hold anything). */
static char *xml_quote(const char *s)
{
    struct buf b = {0};
    for (; *s; s++) {
        const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '"' ? "&quot;" : NULL;
        if (buf_add(&b, rep ? rep : s, rep ? strlen(rep) : 1) < 0) {
            free(b.data);
            return NULL;
        }
    }
    return b.data ? b.data : strdup("");
}

/* --- status ------------------------------------------------------------ */

static xmlDocPtr xml_of(const char *text)
{
    return xmlReadMemory(text, (int)strlen(text), "pacemaker.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/* The nodes expr selects (relative to node, or the document), or NULL. */
static xmlXPathObjectPtr xpath(xmlXPathContextPtr x, xmlNodePtr node, const char *expr)
{
    x->node = node;
    xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, x);
    if (o && (!o->nodesetval || o->nodesetval->nodeNr == 0)) {
        xmlXPathFreeObject(o);
        return NULL;
    }
    return o;
}

/* An attribute as JSON (a string, or null when absent). */
static json_t *attr_json(xmlNodePtr n, const char *name)
{
    xmlChar *v = n ? xmlGetProp(n, (const xmlChar *)name) : NULL;
    json_t *j = v ? json_string((const char *)v) : json_null();
    xmlFree(v);
    return j;
}

/* An exit reason: Pacemaker stores it XML-escaped, and crm_mon escapes it again. */
static json_t *reason_json(xmlNodePtr n)
{
    json_t *j = attr_json(n, "exitreason");
    const char *s = json_string_value(j);
    if (!s || !strchr(s, '&'))
        return j;
    static const char *const ent[][2] = {{"&apos;", "'"}, {"&quot;", "\""}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}};
    struct buf b = {0};
    while (*s) {
        size_t k = 0;
        while (k < 5 && strncmp(s, ent[k][0], strlen(ent[k][0])) != 0)
            k++;
        if (buf_add(&b, k < 5 ? ent[k][1] : s, 1) < 0)
            break;
        s += k < 5 ? strlen(ent[k][0]) : 1;
    }
    json_decref(j);
    j = json_string(b.data ? b.data : "");
    free(b.data);
    return j;
}

static bool attr_true(xmlNodePtr n, const char *name)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    bool t = v && strcmp((const char *)v, "true") == 0;
    xmlFree(v);
    return t;
}

/* The value of nvpair NAME in the primitive's SET (instance_attributes or meta_attributes). */
static json_t *nvpair(xmlXPathContextPtr x, xmlNodePtr prim, const char *set, const char *name)
{
    char expr[256];
    snprintf(expr, sizeof expr, "%s/nvpair[@name='%s']", set, name);
    xmlXPathObjectPtr o = xpath(x, prim, expr);
    json_t *j = o ? attr_json(o->nodesetval->nodeTab[0], "value") : json_null();
    xmlXPathFreeObject(o);
    return j;
}

static json_t *vm_status(xmlXPathContextPtr cx, xmlNodePtr prim, xmlXPathContextPtr mx)
{
    xmlChar *idx = xmlGetProp(prim, (const xmlChar *)"id");
    const char *id = (const char *)idx;
    json_t *v = json_object();
    json_object_set_new(v, "name", nvpair(cx, prim, "instance_attributes", "vm"));
    json_object_set_new(v, "resource", json_string(id));
    json_object_set_new(v, "store", nvpair(cx, prim, "instance_attributes", "store"));
    json_t *off = nvpair(cx, prim, "instance_attributes", "offline_action");
    json_object_set_new(v, "offline_action", json_is_string(off) ? off : (json_decref(off), json_string("save")));
    json_t *mig = nvpair(cx, prim, "instance_attributes", "migration");
    json_object_set_new(v, "migration", json_is_string(mig) ? mig : (json_decref(mig), json_string("live")));
    json_t *target = nvpair(cx, prim, "meta_attributes", "target-role");
    json_t *managed = nvpair(cx, prim, "meta_attributes", "is-managed");
    json_t *stick = nvpair(cx, prim, "meta_attributes", "resource-stickiness");
    json_object_set_new(v, "failback", json_string(json_is_string(stick) && strcmp(json_string_value(stick), "0") == 0 ? "immediate" : "never"));
    json_decref(stick);
    xmlXPathObjectPtr onfail = xpath(cx, prim, "operations/op[@name='monitor'][@on-fail='stop']");
    json_object_set_new(v, "restart", json_string(onfail ? "never" : "always"));
    xmlXPathFreeObject(onfail);
    json_t *thr = nvpair(cx, prim, "meta_attributes", "migration-threshold");
    json_object_set_new(v, "max_failures", json_is_string(thr) ? json_integer(atoll(json_string_value(thr))) : json_null());
    json_decref(thr);
    json_t *per = nvpair(cx, prim, "meta_attributes", "failure-timeout");
    json_object_set_new(v, "period", json_is_string(per) ? json_integer(atoll(json_string_value(per))) : json_null());
    json_decref(per);

    /* preferred owners: its location constraints, highest score first */
    char expr[512];
    json_t *owners = json_array();
    snprintf(expr, sizeof expr, "//constraints/rsc_location[@rsc='%s'][@node][@score]", id);
    xmlXPathObjectPtr loc = xpath(cx, NULL, expr);
    for (int i = 0; loc && i < loc->nodesetval->nodeNr; i++) {
        xmlNodePtr l = loc->nodesetval->nodeTab[i];
        xmlChar *lid = xmlGetProp(l, (const xmlChar *)"id");
        bool ours = lid && strstr((const char *)lid, "-prefer-"); /* not --move's cli-prefer-/cli-ban- */
        bool theirs = lid && strncmp((const char *)lid, "cli-", 4) == 0;
        xmlFree(lid);
        if (!ours || theirs)
            continue;
        xmlChar *sc = xmlGetProp(l, (const xmlChar *)"score");
        long score = sc ? atol((const char *)sc) : 0;
        xmlFree(sc);
        size_t at = 0;
        while (at < json_array_size(owners) &&
               json_integer_value(json_object_get(json_array_get(owners, at), "score")) >= score)
            at++;
        json_array_insert_new(owners, at, json_pack("{s:o, s:I}", "node", attr_json(l, "node"), "score", (json_int_t)score));
    }
    xmlXPathFreeObject(loc);
    json_t *names = json_array(), *o;
    size_t i;
    json_array_foreach(owners, i, o)
        json_array_append(names, json_object_get(o, "node"));
    json_decref(owners);
    json_object_set_new(v, "preferred_owners", names);

    /* what the cluster sees now */
    snprintf(expr, sizeof expr, "//resources//resource[@id='%s']", id);
    xmlXPathObjectPtr res = xpath(mx, NULL, expr);
    xmlNodePtr r = res ? res->nodesetval->nodeTab[0] : NULL;
    const char *state = "Stopped";
    json_t *owner = json_null();
    if (r) {
        xmlXPathObjectPtr on = xpath(mx, r, "node");
        if (on) {
            json_decref(owner);
            owner = attr_json(on->nodesetval->nodeTab[0], "name");
        }
        xmlXPathFreeObject(on);
        xmlChar *role = xmlGetProp(r, (const xmlChar *)"role");
        if (attr_true(r, "failed") || attr_true(r, "blocked"))
            state = "Failed";
        else if (role && strcmp((const char *)role, "Migrating") == 0)
            state = "Migrating";
        else if (attr_true(r, "active"))
            state = role && strcmp((const char *)role, "Started") == 0 ? "Running" : (const char *)"Pending";
        xmlFree(role);
        json_object_set_new(v, "managed", json_boolean(attr_true(r, "managed")));
    } else {
        json_object_set_new(v, "managed", json_boolean(!json_is_string(managed) || strcmp(json_string_value(managed), "false") != 0));
    }
    xmlXPathFreeObject(res);
    json_t *fails = json_array();
    snprintf(expr, sizeof expr, "//failures/failure[starts-with(@op_key, '%s_')]", id);
    xmlXPathObjectPtr fx = xpath(mx, NULL, expr);
    for (int k = 0; fx && k < fx->nodesetval->nodeNr; k++) {
        xmlNodePtr f = fx->nodesetval->nodeTab[k];
        json_array_append_new(fails, json_pack("{s:o, s:o, s:o, s:o, s:o}", "node", attr_json(f, "node"), "operation",
                                               attr_json(f, "task"), "status", attr_json(f, "exitstatus"),
                                               "reason", reason_json(f), "when", attr_json(f, "last-rc-change")));
    }
    xmlXPathFreeObject(fx);
    if (strcmp(state, "Stopped") == 0 && json_array_size(fails))
        state = "Failed";
    if (strcmp(state, "Stopped") == 0 && json_is_string(target) && strcmp(json_string_value(target), "Stopped") == 0)
        state = "Offline";
    json_object_set_new(v, "state", json_string(state));
    json_object_set_new(v, "owner", owner);
    json_object_set_new(v, "target_role", json_is_string(target) ? json_incref(target) : json_string("Started"));
    json_object_set_new(v, "failures", fails);
    json_decref(target);
    json_decref(managed);
    xmlFree(idx);
    return v;
}

static int cluster_status_json(json_t **out)
{
    char *cib = NULL, *mon = NULL;
    int r = run_tool(TOOL("cibadmin", "--query"), &cib);
    if (r == 0)
        r = run_tool(TOOL("crm_mon", "--one-shot", "--inactive", "--output-as=xml"), &mon);
    xmlDocPtr cd = r == 0 ? xml_of(cib) : NULL, md = r == 0 ? xml_of(mon) : NULL;
    free(cib), free(mon);
    if (r == 0 && (!cd || !md))
        r = hvm_error(EPROTO, "cibadmin or crm_mon: output is not XML");
    if (r < 0) {
        xmlFreeDoc(cd), xmlFreeDoc(md);
        return r;
    }
    xmlXPathContextPtr cx = xmlXPathNewContext(cd), mx = xmlXPathNewContext(md);
    json_t *st = json_object(), *nodes = json_array(), *vms = json_array();
    xmlXPathObjectPtr dc = xpath(mx, NULL, "//summary/current_dc");
    xmlNodePtr d = dc ? dc->nodesetval->nodeTab[0] : NULL;
    json_object_set_new(st, "quorum", json_boolean(d && attr_true(d, "with_quorum")));
    json_object_set_new(st, "dc", d && attr_true(d, "present") ? attr_json(d, "name") : json_null());
    xmlXPathFreeObject(dc);
    xmlXPathObjectPtr ns = xpath(mx, NULL, "//nodes/node");
    for (int i = 0; ns && i < ns->nodesetval->nodeNr; i++) {
        xmlNodePtr n = ns->nodesetval->nodeTab[i];
        bool online = attr_true(n, "online"), standby = attr_true(n, "standby");
        const char *state = !online ? (attr_true(n, "unclean") ? "down (unclean)" : "down")
                            : standby ? "drained" : attr_true(n, "maintenance") ? "maintenance" : "up";
        json_array_append_new(nodes, json_pack("{s:o, s:s, s:b, s:b, s:b}", "name", attr_json(n, "name"), "state",
                                               state, "online", online, "drained", standby, "dc",
                                               attr_true(n, "is_dc")));
    }
    xmlXPathFreeObject(ns);
    xmlXPathObjectPtr ps = xpath(cx, NULL, "//resources//primitive[@class='ocf'][@provider='hvm'][@type='VirtualMachine']");
    for (int i = 0; ps && i < ps->nodesetval->nodeNr; i++)
        json_array_append_new(vms, vm_status(cx, ps->nodesetval->nodeTab[i], mx));
    xmlXPathFreeObject(ps);
    json_object_set_new(st, "nodes", nodes);
    json_object_set_new(st, "vms", vms);
    xmlXPathFreeContext(cx), xmlXPathFreeContext(mx);
    xmlFreeDoc(cd), xmlFreeDoc(md);
    *out = st;
    return 0;
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

int cmd_cluster_status(const struct cli_args *a)
{
    verbose = cli_flag(a, "verbose");
    json_t *st;
    if (cluster_status_json(&st) < 0)
        return cli_fail();
    if (cli_flag(a, "json"))
        return cli_print_json(st);
    printf("quorum: %s, DC: %s\n", json_is_true(json_object_get(st, "quorum")) ? "yes" : "no",
           str_or(st, "dc", "none"));
    printf("\n%-16s %s\n", "NODE", "STATE");
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(st, "nodes"), i, o)
        printf("%-16s %s%s\n", str_or(o, "name", "?"), str_or(o, "state", "?"),
               json_is_true(json_object_get(o, "dc")) ? " (DC)" : "");
    printf("\n%-16s %-9s %-12s %s\n", "VM", "STATE", "OWNER", "POLICIES");
    json_array_foreach(json_object_get(st, "vms"), i, o) {
        char pol[512];
        int n = snprintf(pol, sizeof pol, "offline=%s restart=%s failback=%s", str_or(o, "offline_action", "save"),
                         str_or(o, "restart", "always"), str_or(o, "failback", "never"));
        json_t *po = json_object_get(o, "preferred_owners");
        for (size_t k = 0; k < json_array_size(po) && n > 0 && (size_t)n < sizeof pol; k++)
            n += snprintf(pol + n, sizeof pol - (size_t)n, "%s%s", k ? "," : " preferred=",
                          json_string_value(json_array_get(po, k)));
        if (json_is_integer(json_object_get(o, "max_failures")) && n > 0 && (size_t)n < sizeof pol)
            n += snprintf(pol + n, sizeof pol - (size_t)n, " max-failures=%lld",
                          (long long)json_integer_value(json_object_get(o, "max_failures")));
        if (json_is_integer(json_object_get(o, "period")) && n > 0 && (size_t)n < sizeof pol)
            snprintf(pol + n, sizeof pol - (size_t)n, " period=%llds",
                     (long long)json_integer_value(json_object_get(o, "period")));
        printf("%-16s %-9s %-12s %s%s\n", str_or(o, "name", "?"), str_or(o, "state", "?"), str_or(o, "owner", "-"), pol,
               json_is_true(json_object_get(o, "managed")) ? "" : " (maintenance: not managed)");
        size_t k;
        json_t *f;
        json_array_foreach(json_object_get(o, "failures"), k, f) {
            const char *why = str_or(f, "reason", "");
            printf("  failed: %s on %s: %s%s%s\n", str_or(f, "operation", "?"), str_or(f, "node", "?"),
                   str_or(f, "status", "?"), why[0] ? ": " : "", why);
        }
    }
    json_decref(st);
    return EXIT_OK;
}

/* --- changes ----------------------------------------------------------- */

/* Waits (up to the verb's --timeout, default 120 s) for the cluster to
 * carry out what was just asked. */
static int settle(const struct cli_args *a)
{
    char t[48];
    snprintf(t, sizeof t, "--timeout=%llds", cli_int_or(a, "timeout", 120));
    return run_tool(TOOL("crm_resource", "--wait", t), NULL);
}

static int set_meta(const char *id, const char *name, const char *value)
{
    return run_tool(TOOL("crm_resource", "--resource", id, "--meta", "--set-parameter", name,
                         "--parameter-value", value), NULL);
}

/* The resource of VM (positional 0), checked to exist in the CIB. */
static int resource_of(const struct cli_args *a, char **id)
{
    const char *vm = cli_pos(a, 0);
    if (name_check("VM", vm) < 0 || !(*id = resource_id(vm)))
        return -EINVAL;
    char *out = NULL;
    int r = run_tool(TOOL("crm_resource", "--list-raw"), &out);
    if (r == 0) {
        bool found = false;
        for (char *line = strtok(out, "\n"); line && !found; line = strtok(NULL, "\n"))
            found = strcmp(line + strspn(line, " "), *id) == 0;
        if (!found)
            r = hvm_error(ENOENT, "VM '%s' is not in the cluster (no resource %s; see hvm cluster add)", vm, *id);
    }
    free(out);
    if (r < 0) {
        free(*id);
        *id = NULL;
    }
    return r;
}

static int done(int r, char *id, const char *fmt, const char *a1, const char *a2)
{
    if (r == 0)
        printf(fmt, a1, a2);
    free(id);
    return r < 0 ? cli_fail() : EXIT_OK;
}

int cmd_cluster_add(const struct cli_args *a)
{
    verbose = cli_flag(a, "verbose");
    const char *vm = cli_pos(a, 0);
    const char *offline = cli_text(a, "offline-action") ? cli_text(a, "offline-action") : "save";
    const char *migration = cli_text(a, "migration") ? cli_text(a, "migration") : "live";
    const char *failback = cli_text(a, "failback") ? cli_text(a, "failback") : "never";
    const char *restart = cli_text(a, "restart") ? cli_text(a, "restart") : "always";
    const char *owners = cli_text(a, "preferred-owners");
    long long max_failures = cli_int_or(a, "max-failures", -1), period = cli_int_or(a, "period", -1);
    long long shutdown = cli_int_or(a, "shutdown-timeout", 60);
    if ((max_failures >= 0) != (period >= 0))
        return cli_verb_error(a, "--max-failures and --period go together");
    if (max_failures == 0 || period == 0 || shutdown < 1)
        return cli_verb_error(a, "--max-failures, --period and --shutdown-timeout must be at least 1");
    if (name_check("VM", vm) < 0)
        return cli_fail();
    struct store s;
    if (vm_cli_open_store(cli_text(a, "store"), &s) != EXIT_OK)
        return EXIT_ERROR;
    char root[PATH_MAX], *cfg = NULL;
    bool ok = realpath(s.root, root) != NULL;
    if (!ok)
        hvm_error(errno, "%s: %s", s.root, strerror(errno));
    store_close(&s);
    if (!ok)
        return cli_fail();
    struct stat sb;
    if (asprintf(&cfg, "%s/vms/%s/vm.json", root, vm) < 0)
        return cli_failf("out of memory");
    ok = stat(cfg, &sb) == 0;
    free(cfg);
    if (!ok)
        return cli_failf("VM '%s' not found in store %s", vm, root);

    /* preferred owners: N1,N2,... checked before anything changes */
    char *list = owners ? strdup(owners) : NULL, *nodes[16];
    int nn = 0;
    for (char *n = list ? strtok(list, ",") : NULL; n; n = strtok(NULL, ",")) {
        if (name_check("node", n) < 0 || nn == 16) {
            free(list);
            return nn == 16 ? cli_failf("--preferred-owners: at most 16 nodes") : cli_fail();
        }
        nodes[nn++] = n;
    }

    /* Pre-flight: the agent's own validate-all on this node (VM, shared store, parameters). */
    char o_vm[128], o_store[PATH_MAX + 8], o_off[64], o_mig[64], o_sd[64];
    snprintf(o_vm, sizeof o_vm, "vm=%s", vm);
    snprintf(o_store, sizeof o_store, "store=%s", root);
    snprintf(o_off, sizeof o_off, "offline_action=%s", offline);
    snprintf(o_mig, sizeof o_mig, "migration=%s", migration);
    snprintf(o_sd, sizeof o_sd, "shutdown_timeout=%lld", shutdown);
    int r = run_tool(TOOL("crm_resource", "--validate", "--class", "ocf", "--provider", "hvm", "--agent",
                          "VirtualMachine", "--option", o_vm, "--option", o_store, "--option", o_off,
                          "--option", o_mig, "--option", o_sd), NULL);
    if (r < 0) {
        free(list);
        return cli_failf("cluster add %s: ocf:hvm:VirtualMachine refuses it: %s", vm, hvm_error_message());
    }

    char *id = resource_id(vm), *qstore = xml_quote(root), *xml = NULL;
    char meta[512] = "";
    int m = snprintf(meta, sizeof meta,
                     "<nvpair id=\"%s-target-role\" name=\"target-role\" value=\"Stopped\"/>"
                     "<nvpair id=\"%s-allow-migrate\" name=\"allow-migrate\" value=\"true\"/>"
                     "<nvpair id=\"%s-stickiness\" name=\"resource-stickiness\" value=\"%s\"/>",
                     id, id, id, strcmp(failback, "immediate") == 0 ? "0" : "1000");
    if (max_failures > 0 && m > 0 && (size_t)m < sizeof meta)
        snprintf(meta + m, sizeof meta - (size_t)m,
                 "<nvpair id=\"%s-threshold\" name=\"migration-threshold\" value=\"%lld\"/>"
                 "<nvpair id=\"%s-failure-timeout\" name=\"failure-timeout\" value=\"%lld\"/>",
                 id, max_failures, id, period);
    /* stop's timeout leaves the offline action its shutdown_timeout and turn-off its margin */
    if (!id || !qstore ||
        asprintf(&xml,
                 "<primitive id=\"%s\" class=\"ocf\" provider=\"hvm\" type=\"VirtualMachine\">"
                 "<instance_attributes id=\"%s-params\">"
                 "<nvpair id=\"%s-vm\" name=\"vm\" value=\"%s\"/>"
                 "<nvpair id=\"%s-store\" name=\"store\" value=\"%s\"/>"
                 "<nvpair id=\"%s-offline\" name=\"offline_action\" value=\"%s\"/>"
                 "<nvpair id=\"%s-migration\" name=\"migration\" value=\"%s\"/>"
                 "<nvpair id=\"%s-shutdown\" name=\"shutdown_timeout\" value=\"%lld\"/>"
                 "</instance_attributes>"
                 "<meta_attributes id=\"%s-meta\">%s</meta_attributes>"
                 "<operations>"
                 "<op id=\"%s-monitor\" name=\"monitor\" interval=\"5s\" timeout=\"30s\"%s/>"
                 "<op id=\"%s-start\" name=\"start\" interval=\"0s\" timeout=\"120s\"/>"
                 "<op id=\"%s-stop\" name=\"stop\" interval=\"0s\" timeout=\"%llds\"/>"
                 "<op id=\"%s-migrate-to\" name=\"migrate_to\" interval=\"0s\" timeout=\"120s\"/>"
                 "<op id=\"%s-migrate-from\" name=\"migrate_from\" interval=\"0s\" timeout=\"120s\"/>"
                 "</operations></primitive>",
                 id, id, id, vm, id, qstore, id, offline, id, migration, id, shutdown, id, meta, id,
                 strcmp(restart, "never") == 0 ? " on-fail=\"stop\"" : "", id, id, shutdown + 30, id, id) < 0) {
        free(id), free(qstore), free(list);
        return cli_failf("out of memory");
    }
    free(qstore);
    /* Stopped until its constraints exist (they must name an existing
     * resource): then it starts on its first preferred owner. */
    r = run_tool(TOOL("cibadmin", "--create", "--scope", "resources", "--xml-text", xml), NULL);
    for (int i = 0; r == 0 && i < nn; i++) {
        char *c = NULL;
        if (asprintf(&c, "<rsc_location id=\"%s-prefer-%s\" rsc=\"%s\" node=\"%s\" score=\"%d\"/>", id, nodes[i],
                     id, nodes[i], 100 * (nn - i)) < 0)
            r = hvm_error(ENOMEM, "out of memory");
        else
            r = run_tool(TOOL("cibadmin", "--create", "--scope", "constraints", "--xml-text", c), NULL);
        free(c);
    }
    if (r == 0)
        r = set_meta(id, "target-role", "Started");
    free(xml), free(list);
    return done(r, id, "VM '%s' is in the cluster (resource %s)\n", vm, id);
}

int cmd_cluster_remove(const struct cli_args *a)
{
    verbose = cli_flag(a, "verbose");
    char *id, xp[256];
    if (resource_of(a, &id) < 0)
        return cli_fail();
    /* unmanaged first: a deleted primitive that runs would be stopped as an orphan */
    int r = set_meta(id, "is-managed", "false");
    snprintf(xp, sizeof xp, "//constraints/rsc_location[@rsc='%s']", id);
    if (r == 0)
        r = run_tool(TOOL("cibadmin", "--delete-all", "--xpath", xp, "--force"), NULL);
    snprintf(xp, sizeof xp, "//resources/primitive[@id='%s']", id);
    if (r == 0)
        r = run_tool(TOOL("cibadmin", "--delete-all", "--xpath", xp, "--force"), NULL);
    if (r == 0)
        r = run_tool(TOOL("crm_resource", "--cleanup", "--resource", id), NULL);
    return done(r, id, "VM '%s' left the cluster (it stays as it is: %s)\n", cli_pos(a, 0), "running or not");
}

int cmd_cluster_move(const struct cli_args *a)
{
    verbose = cli_flag(a, "verbose");
    char *id;
    const char *node = cli_pos(a, 1);
    if (name_check("node", node) < 0 || resource_of(a, &id) < 0)
        return cli_fail();
    bool quick = cli_flag(a, "quick");
    /* a meta attribute (no restart when it changes) the agent's migrate_to reads */
    int r = quick ? set_meta(id, "hvm-migration", "quick") : 0;
    if (r == 0)
        r = run_tool(TOOL("crm_resource", "--move", "--resource", id, "--node", node), NULL);
    if (r == 0)
        r = settle(a);
    char *out = NULL;
    if (r == 0 && (r = run_tool(TOOL("crm_resource", "--locate", "--resource", id), &out)) == 0) {
        char want[128];
        snprintf(want, sizeof want, "running on: %s\n", node);
        if (!strstr(out, want))
            r = hvm_error(EIO, "VM '%s' did not move to %s: %s", cli_pos(a, 0), node, out);
    }
    free(out);
    /* the move's constraint goes in any case: stickiness keeps the VM where it is */
    int c = run_tool(TOOL("crm_resource", "--clear", "--resource", id), NULL);
    if (quick)
        run_tool(TOOL("crm_resource", "--resource", id, "--meta", "--delete-parameter", "hvm-migration"), NULL);
    return done(r < 0 ? r : c, id, "VM '%s' runs on %s\n", cli_pos(a, 0), node);
}

static int set_role(const struct cli_args *a, const char *name, const char *value, const char *fmt)
{
    verbose = cli_flag(a, "verbose");
    char *id;
    if (resource_of(a, &id) < 0)
        return cli_fail();
    int r = set_meta(id, name, value);
    if (r == 0 && !cli_flag(a, "no-wait"))
        r = settle(a);
    return done(r, id, fmt, cli_pos(a, 0), "");
}

int cmd_cluster_offline(const struct cli_args *a)
{
    return set_role(a, "target-role", "Stopped", "VM '%s' is offline%s\n");
}

int cmd_cluster_online(const struct cli_args *a)
{
    return set_role(a, "target-role", "Started", "VM '%s' is online%s\n");
}

int cmd_cluster_maintenance(const struct cli_args *a)
{
    bool on = strcmp(cli_pos(a, 1), "on") == 0;
    if (!on && strcmp(cli_pos(a, 1), "off") != 0)
        return cli_verb_error(a, "'%s': on or off", cli_pos(a, 1));
    return set_role(a, "is-managed", on ? "false" : "true",
                    on ? "VM '%s' is in maintenance: the cluster leaves it alone%s\n"
                       : "VM '%s' is managed by the cluster again%s\n");
}

static int standby(const struct cli_args *a, const char *value, const char *fmt)
{
    verbose = cli_flag(a, "verbose");
    const char *node = cli_pos(a, 0);
    if (name_check("node", node) < 0)
        return cli_fail();
    int r = run_tool(TOOL("crm_attribute", "--type", "nodes", "--node", node, "--name", "standby", "--update", value), NULL);
    if (r == 0 && !cli_flag(a, "no-wait"))
        r = settle(a);
    return done(r, NULL, fmt, node, "");
}

int cmd_cluster_drain(const struct cli_args *a)
{
    return standby(a, "on", "node %s is drained: it runs no clustered VM%s\n");
}

int cmd_cluster_resume(const struct cli_args *a)
{
    return standby(a, "off", "node %s takes VMs again%s\n");
}

/* Fences NODE through the cluster's configured fence devices, as the
 * cluster itself would on losing it: proves that fencing works. */
int cmd_cluster_fence_test(const struct cli_args *a)
{
    verbose = cli_flag(a, "verbose");
    const char *node = cli_pos(a, 0);
    if (name_check("node", node) < 0)
        return cli_fail();
    if (!cli_flag(a, "yes"))
        return cli_verb_error(a, "this powers off or reboots %s: give --yes", node);
    char t[48];
    snprintf(t, sizeof t, "--timeout=%lld", cli_int_or(a, "timeout", 120));
    int r = run_tool(TOOL("stonith_admin", "--reboot", node, t), NULL);
    return done(r, NULL, "node %s was fenced%s\n", node, "");
}
