/* The one parser of hvm's command line: hvm NOUN VERB [ARGS] [OPTIONS],
 * checked against the command table (table.c). Like getopt_long, which
 * the verbs used before: options and positionals may be mixed, "--opt v"
 * and "--opt=v", an unambiguous prefix of a long name, "--" ends options.
 * Every usage error is one line naming the verb, exit status 2. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"

static const char *const help_words[] = {"--help", "-h", "help", NULL};

static bool is_help(const char *s)
{
    for (int i = 0; help_words[i]; i++)
        if (strcmp(s, help_words[i]) == 0)
            return true;
    return false;
}

int cli_verb_error(const struct cli_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hvm: %s %s: ", a->noun->name, a->verb->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'hvm %s %s --help')\n", a->noun->name, a->verb->name);
    va_end(ap);
    return EXIT_ERROR;
}

static int n_options(const struct cli_verb *v)
{
    int n = 0;
    while (v->opts && v->opts[n].name)
        n++;
    return n;
}

/* Index of option name in v, or -1; a bug of the program when missing. */
static int option_index(const struct cli_verb *v, const char *name)
{
    for (int i = 0; v->opts && v->opts[i].name; i++)
        if (strcmp(v->opts[i].name, name) == 0)
            return i;
    fprintf(stderr, "hvm: internal error: verb '%s' has no option --%s\n", v->name, name);
    abort();
}

bool cli_flag(const struct cli_args *a, const char *name)
{
    return a->val[option_index(a->verb, name)].count > 0;
}

const char *cli_text(const struct cli_args *a, const char *name)
{
    return a->val[option_index(a->verb, name)].text;
}

uint64_t cli_size_or(const struct cli_args *a, const char *name, uint64_t fallback)
{
    const struct cli_value *v = &a->val[option_index(a->verb, name)];
    return v->count ? v->size : fallback;
}

long long cli_int_or(const struct cli_args *a, const char *name, long long fallback)
{
    const struct cli_value *v = &a->val[option_index(a->verb, name)];
    return v->count ? v->number : fallback;
}

int cli_all(const struct cli_args *a, const char *name, const char *const **values)
{
    const struct cli_value *v = &a->val[option_index(a->verb, name)];
    *values = v->all;
    return v->count;
}

const char *cli_pos(const struct cli_args *a, int i)
{
    return i >= 0 && i < a->npos ? a->pos[i] : NULL;
}

/* The value of an option checked by its kind and recorded. */
static int take_value(struct cli_args *a, const struct cli_option *o, struct cli_value *v,
                      const char *text)
{
    char opt[80];
    snprintf(opt, sizeof opt, "--%s", o->name);
    switch (o->kind) {
    case CLI_SIZE:
        if (cli_size(opt, text, &v->size))
            return EXIT_ERROR;
        break;
    case CLI_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (errno || end == text || *end)
            return cli_verb_error(a, "%s: '%s' is not a whole number", opt, text);
        v->number = n;
        break;
    }
    case CLI_ENUM: {
        /* "a|b|c": the value must be one of them. */
        size_t len = strlen(text);
        const char *p = o->meta;
        bool found = false;
        while (*p && !found) {
            size_t n = strcspn(p, "|");
            found = n == len && strncmp(p, text, n) == 0;
            p += n + (p[n] == '|');
        }
        if (!found) {
            char list[256] = "";
            size_t k = 0, count = 1;
            for (p = o->meta; *p; p++)
                count += *p == '|';
            p = o->meta;
            for (size_t i = 0; i < count; i++) {
                size_t n = strcspn(p, "|");
                k += (size_t)snprintf(list + k, sizeof list - k, "%s%.*s",
                                      i == 0 ? "" : i + 1 == count ? " or " : ", ", (int)n, p);
                if (k >= sizeof list)
                    break;
                p += n + (p[n] == '|');
            }
            return cli_verb_error(a, "%s: '%s' is not %s", opt, text, list);
        }
        break;
    }
    default:
        break;
    }
    if (o->flags & CLI_REPEAT) {
        if (v->count == CLI_MAX_REPEAT)
            return cli_verb_error(a, "%s: at most %d times", opt, CLI_MAX_REPEAT);
        v->all[v->count] = text;
    }
    v->text = text;
    v->count++;
    return EXIT_OK;
}

/* Finds a long option by its name or an unambiguous prefix of it. */
static const struct cli_option *find_long(struct cli_args *a, const char *name, size_t len,
                                          int *err)
{
    const struct cli_option *hit = NULL;
    int hits = 0;
    for (const struct cli_option *o = a->verb->opts; o && o->name; o++) {
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
        if (strncmp(o->name, name, len) == 0) {
            hit = o;
            hits++;
        }
    }
    if (hits == 1)
        return hit;
    if (hits > 1) {
        char list[512] = "";
        size_t k = 0;
        for (const struct cli_option *o = a->verb->opts; o->name && k < sizeof list; o++)
            if (strncmp(o->name, name, len) == 0)
                k += (size_t)snprintf(list + k, sizeof list - k, "%s--%s", k ? ", " : "", o->name);
        *err = cli_verb_error(a, "option '--%.*s' is ambiguous (%s)", (int)len, name, list);
    } else {
        *err = cli_verb_error(a, "unknown option '--%.*s'", (int)len, name);
    }
    return NULL;
}

/* Parses argv (argv[0] is the verb) into a. Returns EXIT_OK, EXIT_ERROR
 * after a message, or -1 when --help was asked for (and printed). */
static int parse_verb(struct cli_args *a, int argc, char **argv)
{
    const struct cli_verb *v = a->verb;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const struct cli_option *o = NULL;
        const char *inline_value = NULL;
        if (!options_done && strcmp(s, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)) {
            cli_help_verb(a->noun, v);
            return -1;
        }
        if (!options_done && s[0] == '-' && s[1] == '-') {
            const char *name = s + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            int err = EXIT_ERROR;
            o = find_long(a, name, len, &err);
            if (!o)
                return err;
            inline_value = eq ? eq + 1 : NULL;
        } else if (!options_done && s[0] == '-' && s[1]) {
            for (const struct cli_option *p = v->opts; p && p->name && !o; p++)
                if (p->short_name && p->short_name == s[1])
                    o = p;
            if (!o)
                return cli_verb_error(a, "unknown option '%s'", s);
            inline_value = s[2] ? s + 2 : NULL;
        } else {
            if (a->npos == CLI_MAX_POSITIONALS)
                return cli_verb_error(a, "too many arguments");
            a->pos[a->npos++] = s;
            continue;
        }
        struct cli_value *val = &a->val[o - v->opts];
        if (o->kind == CLI_FLAG) {
            if (inline_value)
                return cli_verb_error(a, "--%s takes no value", o->name);
            val->count++;
            continue;
        }
        if (!inline_value) {
            if (i + 1 >= argc)
                return cli_verb_error(a, "--%s needs a value (%s)", o->name, cli_option_meta(o));
            inline_value = argv[++i];
        }
        int r = take_value(a, o, val, inline_value);
        if (r != EXIT_OK)
            return r;
    }
    int want = 0, need = 0;
    for (const struct cli_positional *p = v->args; p && p->meta; p++) {
        size_t len = strlen(p->meta);
        want = len > 3 && strcmp(p->meta + len - 3, "...") == 0 ? CLI_MAX_POSITIONALS : want + 1;
        need += !p->optional;
    }
    if (a->npos < need)
        return cli_verb_error(a, "missing %s", v->args[a->npos].meta);
    if (a->npos > want)
        return cli_verb_error(a, "unexpected argument '%s'", a->pos[want]);
    for (int i = 0; v->opts && v->opts[i].name; i++)
        if ((v->opts[i].flags & CLI_REQUIRED) && a->val[i].count == 0)
            return cli_verb_error(a, "--%s is required", v->opts[i].name);
    return EXIT_OK;
}

int cli_run(int argc, char **argv)
{
    if (argc < 2)
        return cli_failf("missing noun (see 'hvm --help')");
    if (is_help(argv[1])) {
        cli_help_main();
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("hvm 0.1.0\n");
        return EXIT_OK;
    }
    if (strcmp(argv[1], "migrate-receive") == 0)
        return cli_migrate_receive(argc - 1, argv + 1);
    if (strcmp(argv[1], "__gendoc") == 0)
        return cli_gendoc(argc - 1, argv + 1);
    const struct cli_noun *n = cli_nouns;
    while (n->name && strcmp(n->name, argv[1]) != 0)
        n++;
    if (!n->name)
        return cli_failf("unknown noun '%s' (see 'hvm --help')", argv[1]);
    if (argc < 3)
        return cli_failf("%s: missing verb (see 'hvm %s --help')", n->name, n->name);
    if (is_help(argv[2])) {
        cli_help_noun(n);
        return EXIT_OK;
    }
    const struct cli_verb *v = n->verbs;
    while (v->name && strcmp(v->name, argv[2]) != 0)
        v++;
    if (!v->name)
        return cli_failf("unknown verb 'hvm %s %s' (see 'hvm %s --help')", n->name, argv[2],
                         n->name);
    if (n_options(v) > CLI_MAX_OPTIONS) {
        fprintf(stderr, "hvm: internal error: verb '%s' has too many options\n", v->name);
        abort();
    }
    static struct cli_args a; /* large; one per process */
    memset(&a, 0, sizeof a);
    a.noun = n;
    a.verb = v;
    int r = parse_verb(&a, argc - 2, argv + 2);
    if (r < 0)
        return EXIT_OK;
    if (r != EXIT_OK)
        return r;
    return v->run(&a);
}
