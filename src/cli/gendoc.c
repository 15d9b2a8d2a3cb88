/* hvm __gendoc man [NOUN] | bash: hvm(1), hvm-NOUN(1) and the bash
 * completion, written to stdout at build time (doc/meson.build) from the
 * command table, so that they cannot drift from what the parser accepts. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"

/* ---- roff ---- */

/* Text for a roff line: backslashes escaped, the dashes of options made
 * minus signs (so that they can be searched and copied), a line break or a
 * paragraph break where the table's text has one or two newlines. */
static void roff_text(const char *s)
{
    bool line_start = true;
    for (const char *p = s; *p; p++) {
        if (*p == '\n') {
            if (p[1] == '\n') {
                fputs("\n.PP\n", stdout);
                p++;
            } else {
                fputs("\n.br\n", stdout);
            }
            line_start = true;
            continue;
        }
        if (line_start && (*p == '.' || *p == '\''))
            fputs("\\&", stdout);
        line_start = false;
        if (*p == '\\')
            fputs("\\e", stdout);
        else if (*p == '-' && (p == s || p[-1] == ' ' || p[-1] == '-' || p[-1] == '(' ||
                               p[-1] == '\n' || p[-1] == '\''))
            fputs("\\-", stdout);
        else
            fputc(*p, stdout);
    }
}

static void roff_bold(const char *s)
{
    fputs("\\fB", stdout);
    roff_text(s);
    fputs("\\fR", stdout);
}

static void roff_italic(const char *s)
{
    fputs("\\fI", stdout);
    roff_text(s);
    fputs("\\fR", stdout);
}

static void roff_option_head(const struct cli_option *o)
{
    char name[96];
    if (o->short_name) {
        snprintf(name, sizeof name, "-%c", o->short_name);
        roff_bold(name);
        fputs(", ", stdout);
    }
    snprintf(name, sizeof name, "--%s", o->name);
    roff_bold(name);
    if (o->kind != CLI_FLAG) {
        fputc(' ', stdout);
        roff_italic(cli_option_meta(o));
    }
}

static void roff_synopsis(const struct cli_noun *n, const struct cli_verb *v)
{
    char head[128];
    snprintf(head, sizeof head, "hvm %s %s", n->name, v->name);
    fputs(".PP\n.nh\n.ad l\n", stdout);
    roff_bold(head);
    for (const struct cli_positional *p = v->args; p && p->meta; p++) {
        fputs(p->optional ? " [" : " ", stdout);
        roff_italic(p->meta);
        if (p->optional)
            fputc(']', stdout);
    }
    for (const struct cli_option *o = v->opts; o && o->name; o++) {
        bool req = o->flags & CLI_REQUIRED;
        fputs(req ? " \\%" : " \\%[", stdout); /* \% first: no break inside --new-disk */
        char name[96];
        snprintf(name, sizeof name, "--%s", o->name);
        roff_bold(name);
        if (o->kind != CLI_FLAG) {
            fputs("\\ ", stdout); /* an option and its value stay on one line */
            roff_italic(cli_option_meta(o));
        }
        if (!req)
            fputs(o->flags & CLI_REPEAT ? "]..." : "]", stdout);
    }
    fputs("\n.ad b\n.hy\n", stdout);
}

static void roff_header(const char *title, const char *name, const char *summary)
{
    printf(".TH %s 1 \"\" \"hvm 0.1.0\" \"hvm manual\"\n", title);
    printf(".SH NAME\n%s \\- ", name);
    roff_text(summary);
    fputc('\n', stdout);
}

static void roff_exit_status(void)
{
    fputs(".SH EXIT STATUS\n0 success, 1 a check found problems, 2 error (one line on "
          "standard error naming the file and the problem).\n",
          stdout);
}

static int man_main(void)
{
    roff_header("HVM", "hvm", "a VHD disk and virtual machine host");
    fputs(".SH SYNOPSIS\n.B hvm\n.I noun verb\n[\\fIoptions\\fR]\n.br\n.B hvm \\-\\-help\n"
          ".SH DESCRIPTION\n",
          stdout);
    fputs("hvm keeps Microsoft VHD disks (fixed, dynamic, differencing), VMs made from "
          "read-only base images, their checkpoint trees, and runs the VMs on QEMU with hvm "
          "owning and serving every disk. Each noun has its own page, listed below.\n.PP\n",
          stdout);
    roff_text(cli_general_text);
    fputs("\n.SH COMMANDS\n", stdout);
    for (const struct cli_noun *n = cli_nouns; n->name; n++) {
        fputs(".SS ", stdout);
        roff_text(n->summary);
        printf(" (\\fBhvm\\-%s\\fR(1))\n", n->name);
        for (const struct cli_verb *v = n->verbs; v->name; v++) {
            char name[96];
            snprintf(name, sizeof name, "hvm %s %s", n->name, v->name);
            fputs(".TP\n", stdout);
            roff_bold(name);
            fputc('\n', stdout);
            roff_text(v->summary);
            fputc('\n', stdout);
        }
    }
    roff_exit_status();
    fputs(".SH ENVIRONMENT\n"
          ".TP\n.B HVM_STORE\nthe store when \\-\\-store is not given\n"
          ".TP\n.B HVM_QEMU_USER\nthe user QEMU runs as when hvm runs as root (default "
          "hvm\\-qemu)\n"
          ".TP\n.B HVM_NBD_HANDSHAKE_TIMEOUT\nseconds an NBD client has to finish the "
          "handshake (default 10)\n"
          ".TP\n.B HVM_NBD_IDLE_TIMEOUT\nseconds an NBD client may make no progress "
          "(default 0: no limit)\n"
          ".TP\n.B HVM_NBD_MAX_CLIENTS\nNBD clients served at once (default and most 16)\n",
          stdout);
    fputs(".SH SEE ALSO\n", stdout);
    for (const struct cli_noun *n = cli_nouns; n->name; n++)
        printf("\\fBhvm\\-%s\\fR(1)%s\n", n->name, n[1].name ? "," : "");
    return EXIT_OK;
}

static int man_noun(const struct cli_noun *n)
{
    char title[64], name[64];
    snprintf(title, sizeof title, "HVM-%s", n->name);
    for (char *p = title; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    snprintf(name, sizeof name, "hvm\\-%s", n->name);
    roff_header(title, name, n->summary);
    printf(".SH SYNOPSIS\n.B hvm %s\n.I verb\n[\\fIarguments\\fR] [\\fIoptions\\fR]\n", n->name);
    fputs(".SH DESCRIPTION\n", stdout);
    roff_text(n->description ? n->description : n->summary);
    fputs("\n.PP\n", stdout);
    roff_text(cli_general_text);
    fputs("\n.SH COMMANDS\n", stdout);
    for (const struct cli_verb *v = n->verbs; v->name; v++) {
        printf(".SS hvm %s %s\n", n->name, v->name);
        roff_synopsis(n, v);
        fputs(".PP\n", stdout);
        roff_text(v->description ? v->description : v->summary);
        fputc('\n', stdout);
        for (const struct cli_option *o = v->opts; o && o->name; o++) {
            fputs(".TP\n", stdout);
            roff_option_head(o);
            fputc('\n', stdout);
            roff_text(o->help);
            fputc('\n', stdout);
        }
    }
    roff_exit_status();
    fputs(".SH SEE ALSO\n\\fBhvm\\fR(1)\n", stdout);
    return EXIT_OK;
}

/* ---- bash completion ---- */

static const char *kind_word(enum cli_kind k)
{
    switch (k) {
    case CLI_FLAG: return "flag";
    case CLI_FILE: return "file";
    case CLI_DIR: return "dir";
    case CLI_VM: return "vm";
    case CLI_ENUM: return "enum";
    default: return "text";
    }
}

/* A shell variable name part: '-' becomes '_'. */
static void ident(const char *s)
{
    for (; *s; s++)
        fputc(*s == '-' ? '_' : *s, stdout);
}

static const char bash_function[] =
    "_hvm_value() { # KIND ENUM-VARIABLE: completes cur as a value of that kind\n"
    "    case $1 in\n"
    "    file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
    "    dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- \"$cur\")) ;;\n"
    "    vm) # the VMs of the store the command line names, if it names one\n"
    "        local i store=()\n"
    "        for ((i = 3; i < COMP_CWORD; i++)); do\n"
    "            [ \"${COMP_WORDS[i]}\" = --store ] && store=(--store \"${COMP_WORDS[i + 1]}\")\n"
    "        done\n"
    "        COMPREPLY=($(compgen -W \"$(\"${COMP_WORDS[0]}\" vm list \"${store[@]}\" 2>/dev/null | "
    "awk 'NR > 1 {print $1}')\" -- \"$cur\")) ;;\n"
    "    enum) local v=$2; COMPREPLY=($(compgen -W \"${!v}\" -- \"$cur\")) ;;\n"
    "    esac\n"
    "}\n"
    "\n"
    "_hvm() {\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
    "    COMPREPLY=()\n"
    "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
    "        COMPREPLY=($(compgen -W \"$_hvm_nouns --help --version\" -- \"$cur\"))\n"
    "        return 0\n"
    "    fi\n"
    "    local noun=${COMP_WORDS[1]}\n"
    "    case \" $_hvm_nouns \" in *\" $noun \"*) ;; *) return 0 ;; esac\n"
    "    local verbs_var=_hvm_verbs_${noun//-/_}\n"
    "    if [ \"$COMP_CWORD\" -eq 2 ]; then\n"
    "        COMPREPLY=($(compgen -W \"${!verbs_var} --help\" -- \"$cur\"))\n"
    "        return 0\n"
    "    fi\n"
    "    local verb=${COMP_WORDS[2]}\n"
    "    case \" ${!verbs_var} \" in *\" $verb \"*) ;; *) return 0 ;; esac\n"
    "    local key=${noun//-/_}_${verb//-/_}\n"
    "    local opts_var=_hvm_opts_$key args_var=_hvm_args_$key\n"
    "    local opts=${!opts_var} o kind=\n"
    "    # the value of an option\n"
    "    if [[ $prev == -* ]]; then\n"
    "        for o in $opts; do [ \"${o%%:*}\" = \"$prev\" ] && kind=${o#*:}; done\n"
    "        if [ -n \"$kind\" ] && [ \"$kind\" != flag ]; then\n"
    "            _hvm_value \"$kind\" \"_hvm_enum_${key}_${prev//-/_}\"\n"
    "            return 0\n"
    "        fi\n"
    "    fi\n"
    "    if [[ $cur == -* ]]; then\n"
    "        local names=\n"
    "        for o in $opts; do names=\"$names ${o%%:*}\"; done\n"
    "        COMPREPLY=($(compgen -W \"$names\" -- \"$cur\"))\n"
    "        return 0\n"
    "    fi\n"
    "    # a positional: which one, skipping options and their values\n"
    "    local i w n=0 skip=0\n"
    "    for ((i = 3; i < COMP_CWORD; i++)); do\n"
    "        w=${COMP_WORDS[i]}\n"
    "        if [ $skip = 1 ]; then skip=0; continue; fi\n"
    "        if [[ $w == -* ]]; then\n"
    "            for o in $opts; do\n"
    "                [ \"${o%%:*}\" = \"$w\" ] && [ \"${o#*:}\" != flag ] && skip=1\n"
    "            done\n"
    "            continue\n"
    "        fi\n"
    "        n=$((n + 1))\n"
    "    done\n"
    "    local kinds=(${!args_var})\n"
    "    _hvm_value \"${kinds[n]:-}\" \"\"\n"
    "}\n"
    "complete -F _hvm hvm\n";

static int bash(void)
{
    fputs("# bash completion for hvm, generated from its command table by "
          "'hvm __gendoc bash'.\n",
          stdout);
    fputs("_hvm_nouns=\"", stdout);
    for (const struct cli_noun *n = cli_nouns; n->name; n++)
        printf("%s%s", n == cli_nouns ? "" : " ", n->name);
    fputs("\"\n", stdout);
    for (const struct cli_noun *n = cli_nouns; n->name; n++) {
        fputs("_hvm_verbs_", stdout);
        ident(n->name);
        fputs("=\"", stdout);
        for (const struct cli_verb *v = n->verbs; v->name; v++)
            printf("%s%s", v == n->verbs ? "" : " ", v->name);
        fputs("\"\n", stdout);
        for (const struct cli_verb *v = n->verbs; v->name; v++) {
            fputs("_hvm_opts_", stdout);
            ident(n->name);
            fputc('_', stdout);
            ident(v->name);
            fputs("=\"", stdout);
            for (const struct cli_option *o = v->opts; o && o->name; o++) {
                printf("--%s:%s ", o->name, kind_word(o->kind));
                if (o->short_name)
                    printf("-%c:%s ", o->short_name, kind_word(o->kind));
            }
            fputs("--help:flag\"\n_hvm_args_", stdout);
            ident(n->name);
            fputc('_', stdout);
            ident(v->name);
            fputs("=\"", stdout);
            for (const struct cli_positional *p = v->args; p && p->meta; p++)
                printf("%s%s", p == v->args ? "" : " ", kind_word(p->kind));
            fputs("\"\n", stdout);
            for (const struct cli_option *o = v->opts; o && o->name; o++) {
                if (o->kind != CLI_ENUM)
                    continue;
                for (int twice = 0; twice < 1 + (o->short_name != 0); twice++) {
                    fputs("_hvm_enum_", stdout);
                    ident(n->name);
                    fputc('_', stdout);
                    ident(v->name);
                    if (twice)
                        printf("__%c", o->short_name);
                    else {
                        fputs("___", stdout);
                        ident(o->name);
                    }
                    fputs("=\"", stdout);
                    for (const char *p = o->meta; *p; p++)
                        fputc(*p == '|' ? ' ' : *p, stdout);
                    fputs("\"\n", stdout);
                }
            }
        }
    }
    fputc('\n', stdout);
    fputs(bash_function, stdout);
    return EXIT_OK;
}

int cli_gendoc(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "man") == 0)
        return man_main();
    if (argc == 3 && strcmp(argv[1], "man") == 0) {
        for (const struct cli_noun *n = cli_nouns; n->name; n++)
            if (strcmp(n->name, argv[2]) == 0)
                return man_noun(n);
        return cli_failf("__gendoc: no noun '%s'", argv[2]);
    }
    if (argc == 2 && strcmp(argv[1], "bash") == 0)
        return bash();
    return cli_failf("usage: hvm __gendoc man [NOUN] | bash");
}
