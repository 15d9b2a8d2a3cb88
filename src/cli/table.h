/* The command table: every noun, verb, positional argument and option of
 * hvm in one place (table.c), read by the one parser (parse.c), the help
 * (help.c) and the generated man pages and bash completion (gendoc.c), so
 * that what --help, the manual and the completion say is what the parser
 * accepts. Adding a verb is one entry in its noun's verb list; adding an
 * option is one entry in its verb's option list. */
#ifndef HVM_CLI_TABLE_H
#define HVM_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What an argument is: how it is checked, shown and completed. */
enum cli_kind {
    CLI_FLAG,  /* an option without a value */
    CLI_TEXT,  /* any text */
    CLI_FILE,  /* a file (completion: file names) */
    CLI_DIR,   /* a folder (completion: folder names) */
    CLI_VM,    /* a VM of the store (completion: hvm vm list) */
    CLI_NAME,  /* a new name, a checkpoint name or id */
    CLI_SIZE,  /* bytes with binary suffixes: 512M, 20G (checked when parsed) */
    CLI_INT,   /* a whole number (checked when parsed) */
    CLI_ENUM,  /* one of the values in meta, "a|b|c" (checked when parsed) */
};

enum {
    CLI_REQUIRED = 1, /* the option must be given */
    CLI_REPEAT = 2,   /* may be given several times; every value is kept */
};

struct cli_option {
    const char *name;  /* long name, without "--" */
    char short_name;   /* 0: none */
    enum cli_kind kind;
    const char *meta;  /* the value's name in the help (SIZE, FILE); CLI_ENUM: "a|b|c" */
    const char *help;  /* one line */
    unsigned flags;
};

struct cli_positional {
    const char *meta; /* FILE, VM, CHECKPOINT */
    enum cli_kind kind;
    bool optional;    /* only the last ones may be optional; a last one whose
                       * meta ends in "..." may be given any number of times */
};

struct cli_args;
struct cli_verb {
    const char *name;
    int (*run)(const struct cli_args *a);
    const char *summary;                /* one line, for the lists */
    const struct cli_positional *args;  /* {NULL}-terminated; NULL: none */
    const struct cli_option *opts;      /* {NULL}-terminated; NULL: none; --help is implicit */
    const char *description;            /* paragraphs separated by "\n\n"; wrapped when shown */
};

struct cli_noun {
    const char *name;
    const char *summary;
    const char *description;
    const struct cli_verb *verbs; /* {NULL}-terminated */
};

/* Every noun, {NULL}-terminated (table.c). */
extern const struct cli_noun cli_nouns[];
/* The paragraph of 'hvm --help' and hvm(1) after the nouns. */
extern const char cli_general_text[];

#define CLI_MAX_POSITIONALS 32
#define CLI_MAX_OPTIONS 32
#define CLI_MAX_REPEAT 32

/* One option's values after parsing. */
struct cli_value {
    int count;          /* times given */
    const char *text;   /* the last value */
    uint64_t size;      /* CLI_SIZE: the last value in bytes */
    long long number;   /* CLI_INT: the last value */
    const char *all[CLI_MAX_REPEAT]; /* CLI_REPEAT: every value */
};

/* What the parser hands a verb: its positionals and option values. */
struct cli_args {
    const struct cli_noun *noun;
    const struct cli_verb *verb;
    int npos;
    const char *pos[CLI_MAX_POSITIONALS];
    struct cli_value val[CLI_MAX_OPTIONS];
};

/* Runs hvm with main's arguments: finds the verb, parses its arguments
 * against the table, runs it. Returns the exit status. */
int cli_run(int argc, char **argv);

/* Option values by long name (a name the verb does not have is a bug of
 * the program: it aborts). */
bool cli_flag(const struct cli_args *a, const char *name);
const char *cli_text(const struct cli_args *a, const char *name);      /* NULL: not given */
uint64_t cli_size_or(const struct cli_args *a, const char *name, uint64_t fallback);
long long cli_int_or(const struct cli_args *a, const char *name, long long fallback);
/* CLI_REPEAT: number of values, *values the list. */
int cli_all(const struct cli_args *a, const char *name, const char *const **values);
/* Positional i, NULL when absent. */
const char *cli_pos(const struct cli_args *a, int i);
/* A usage error of this verb: prints "hvm: NOUN VERB: <message> (see 'hvm
 * NOUN VERB --help')" on one line and returns EXIT_ERROR. */
int cli_verb_error(const struct cli_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* help.c: the --help texts on stdout. */
void cli_help_main(void);
void cli_help_noun(const struct cli_noun *n);
void cli_help_verb(const struct cli_noun *n, const struct cli_verb *v);
/* Writes "hvm NOUN VERB ARGS [OPTIONS]" (the synopsis) into buf. */
void cli_synopsis(const struct cli_noun *n, const struct cli_verb *v, char *buf, size_t size);
/* The value part of an option as shown: "SIZE", "dynamic|fixed", "" for a flag. */
const char *cli_option_meta(const struct cli_option *o);

/* gendoc.c: hvm __gendoc man [NOUN] | bash: the manual pages and the bash
 * completion, written at build time from this table. */
int cli_gendoc(int argc, char **argv);

#endif
