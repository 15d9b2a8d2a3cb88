/* The --help texts, made from the command table. */
#include <stdio.h>
#include <string.h>

#include "cli/table.h"

#define WIDTH 78

const char *cli_option_meta(const struct cli_option *o)
{
    return o->kind == CLI_FLAG ? "" : o->meta ? o->meta : "VALUE";
}

static size_t append(char *buf, size_t size, size_t at, const char *fmt, const char *a,
                     const char *b)
{
    if (at >= size)
        return at;
    int n = snprintf(buf + at, size - at, fmt, a, b);
    return n < 0 ? at : at + (size_t)n;
}

void cli_synopsis(const struct cli_noun *n, const struct cli_verb *v, char *buf, size_t size)
{
    size_t k = append(buf, size, 0, "hvm %s %s", n->name, v->name);
    for (const struct cli_positional *p = v->args; p && p->meta; p++)
        k = append(buf, size, k, p->optional ? " [%s]%s" : " %s%s", p->meta, "");
    for (const struct cli_option *o = v->opts; o && o->name; o++) {
        const char *meta = cli_option_meta(o);
        bool req = o->flags & CLI_REQUIRED;
        k = append(buf, size, k, req ? " --%s" : " [--%s", o->name, "");
        if (meta[0])
            k = append(buf, size, k, " %s%s", meta, "");
        if (!req)
            k = append(buf, size, k, "]%s%s", o->flags & CLI_REPEAT ? "..." : "", "");
    }
}

/* Prints text word-wrapped at WIDTH: the first line after 'first' columns
 * already used, following lines indented by 'indent'. */
static void wrap(const char *text, int first, int indent)
{
    int col = first;
    bool word_on_line = false;
    for (const char *p = text; *p;) {
        if (*p == '\n') { /* a line break; two make a paragraph break */
            fputc('\n', stdout);
            p++;
            col = 0;
            word_on_line = false;
            if (*p && *p != '\n') {
                printf("%*s", indent, "");
                col = indent;
            }
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t len = strcspn(p, " \n");
        if (word_on_line && col + 1 + (int)len > WIDTH) {
            printf("\n%*s", indent, "");
            col = indent;
            word_on_line = false;
        }
        if (word_on_line) {
            fputc(' ', stdout);
            col++;
        }
        fwrite(p, 1, len, stdout);
        col += (int)len;
        p += len;
        word_on_line = true;
    }
    if (word_on_line)
        fputc('\n', stdout);
}

/* The synopsis wrapped at option boundaries, continuation lines indented. */
static void print_synopsis(const struct cli_noun *n, const struct cli_verb *v)
{
    char syn[2048];
    cli_synopsis(n, v, syn, sizeof syn);
    int indent = (int)(strlen("usage: hvm   ") + strlen(n->name) + strlen(v->name));
    fputs("usage: ", stdout);
    int col = 7;
    const char *p = syn;
    bool first = true;
    while (*p) {
        /* Units: "[...]" groups, or words. */
        const char *q = p;
        if (*q == '[') {
            int depth = 0;
            do {
                depth += (*q == '[') - (*q == ']');
                q++;
            } while (*q && depth > 0);
            while (*q && *q != ' ')
                q++;
        } else if (*q == '-' && q[1] == '-') {
            /* a required option and its value stay together */
            q += strcspn(q, " ");
            if (*q == ' ' && q[1] && q[1] != '[' && q[1] != '-')
                q += 1 + strcspn(q + 1, " ");
        } else {
            q += strcspn(q, " ");
        }
        int len = (int)(q - p);
        if (!first && col + 1 + len > WIDTH) {
            printf("\n%*s", indent, "");
            col = indent;
        } else if (!first) {
            fputc(' ', stdout);
            col++;
        }
        fwrite(p, 1, (size_t)len, stdout);
        col += len;
        first = false;
        p = q;
        while (*p == ' ')
            p++;
    }
    fputc('\n', stdout);
}

void cli_help_verb(const struct cli_noun *n, const struct cli_verb *v)
{
    print_synopsis(n, v);
    if (v->description) {
        fputc('\n', stdout);
        wrap(v->description, 0, 0);
    }
    fputs("\noptions:\n", stdout);
    for (const struct cli_option *o = v->opts; o && o->name; o++) {
        char head[128];
        const char *meta = cli_option_meta(o);
        if (o->short_name)
            snprintf(head, sizeof head, "  -%c, --%s%s%s", o->short_name, o->name,
                     meta[0] ? " " : "", meta);
        else
            snprintf(head, sizeof head, "  --%s%s%s", o->name, meta[0] ? " " : "", meta);
        int len = (int)strlen(head);
        if (len > 26) {
            printf("%s\n%*s", head, 28, "");
        } else {
            printf("%-28s", head);
        }
        wrap(o->help, 28, 28);
    }
    printf("%-28s%s\n", "  -h, --help", "this help");
}

void cli_help_noun(const struct cli_noun *n)
{
    printf("usage: hvm %s <verb> [options]\n\n", n->name);
    if (n->description) {
        wrap(n->description, 0, 0);
        fputc('\n', stdout);
    }
    fputs("verbs:\n", stdout);
    for (const struct cli_verb *v = n->verbs; v->name; v++) {
        printf("  %-12s", v->name);
        wrap(v->summary, 14, 15);
    }
    printf("\n'hvm %s <verb> --help' describes a verb.\n", n->name);
}

void cli_help_main(void)
{
    fputs("usage: hvm <noun> <verb> [options]\n\n", stdout);
    for (const struct cli_noun *n = cli_nouns; n->name; n++) {
        printf("hvm %s: %s\n", n->name, n->summary);
        for (const struct cli_verb *v = n->verbs; v->name; v++) {
            printf("  %-12s", v->name);
            wrap(v->summary, 14, 15);
        }
        fputc('\n', stdout);
    }
    wrap(cli_general_text, 0, 0);
}
