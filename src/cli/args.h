/* Command-line options of the sdumc subcommands: a table of specs, one parser, strict checks.
 * Every option is "--name VALUE" (or "--name" alone for a flag). A bad value (not a number, out
 * of range, not one of the choices), an unknown option, a missing value or a repeated option is
 * an error naming the option, reported before the command does anything. */
#ifndef SD_CLI_ARGS_H
#define SD_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    ARG_STRING, /* const char **            */
    ARG_INT,    /* int *, within [min, max] */
    ARG_U64,    /* uint64_t *               */
    ARG_FLOAT,  /* float *, finite, within [min, max] */
    ARG_ONOFF,  /* int *: on = 1, off = 0   */
    ARG_CHOICE, /* int *: index into choices, "a|b|c" */
    ARG_FLAG,   /* int *: set to 1 when present, takes no value */
    ARG_LIST    /* const char *[max]: the option may repeat (up to max times); `seen` counts them */
} arg_kind;

/* What an option is to `train --resume` (the flags of a spec). A train option says one or the
 * other (the command checks); the others leave 0. */
enum {
    ARG_RESULT = 1,   /* affects the result: stored in the state as given, compared on resume */
    ARG_NO_RESULT = 2 /* does not (threads, prefetch, paths of outputs, ...) */
};

typedef struct {
    const char *name; /* without the leading "--" */
    arg_kind kind;
    void *dst;
    double min, max;     /* ARG_INT, ARG_FLOAT */
    const char *choices; /* ARG_CHOICE */
    const char *help;
    int flags;           /* ARG_RESULT, ARG_NO_RESULT, or 0 */
    int seen;            /* set by the parser */
} arg_spec;

/* Parses argv[1..argc) (argv[0] is the subcommand). Returns 0 on success, 1 when --help or -h
 * was given, -1 on an error with the message in err. */
int args_parse(arg_spec *specs, int n, int argc, char **argv, char *err, size_t err_size);
/* The spec named name (NULL if none), e.g. to ask whether it was given. */
const arg_spec *args_find(const arg_spec *specs, int n, const char *name);
/* Values of list options. A level list is "none" (no value), "A:B:STEP" (A, A+STEP, ... up to B
 * inclusive, within 1e-6 of STEP) or "x,y,z" (ascending); each value in [lo, hi]. A seed list is
 * "a,b,c" of distinct non-negative integers. Return the count, or -1 with a message naming
 * `option` in err. */
int args_parse_levels(const char *option, const char *s, float *out, int max, double lo, double hi, char *err,
                      size_t err_size);
int args_parse_seeds(const char *option, const char *s, uint64_t *out, int max, char *err, size_t err_size);
void args_usage(FILE *out, const char *synopsis, const char *about, const arg_spec *specs, int n);
/* The value an option holds now (given or default), as text: the number, on/off, the choice's
 * name, the string ("" when unset), yes/no for a flag. Writes at most size bytes. */
void args_value(const arg_spec *s, char *buf, size_t size);

#endif
