/* The option parser of the sdumc subcommands: lookup, strict value checks, usage text (args.h). */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const arg_spec *args_find(const arg_spec *specs, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(specs[i].name, name)) return &specs[i];
    return NULL;
}

/* Index of value among "a|b|c", or -1. */
static int choice_index(const char *choices, const char *value) {
    int idx = 0;
    size_t len = strlen(value);
    for (const char *p = choices; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, value, n)) return idx;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static int set_value(arg_spec *s, const char *v, char *err, size_t es) {
    char *end = NULL;
    errno = 0;
    /* strtoll and friends skip leading spaces and take a sign even for unsigned types (" -1" would
     * be 2^64 - 1): a number must start with a digit, a sign (signed kinds) or a dot. */
    const int numeric = s->kind == ARG_INT || s->kind == ARG_U64 || s->kind == ARG_FLOAT;
    if (numeric && !((*v >= '0' && *v <= '9') || *v == '.' || (s->kind != ARG_U64 && (*v == '-' || *v == '+')))) {
        snprintf(err, es, "--%s: '%s' is not a%s number", s->name, v, s->kind == ARG_U64 ? " non-negative whole" : "");
        return -1;
    }
    switch (s->kind) {
    case ARG_STRING:
        if (!*v) {
            snprintf(err, es, "--%s needs a non-empty value", s->name);
            return -1;
        }
        *(const char **)s->dst = v;
        return 0;
    case ARG_INT: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno || x < (long long)s->min || x > (long long)s->max) {
            snprintf(err, es, "--%s: '%s' is not an integer in [%.0f, %.0f]", s->name, v, s->min, s->max);
            return -1;
        }
        *(int *)s->dst = (int)x;
        return 0;
    }
    case ARG_U64: {
        if (*v == '-' || *v == '+') {
            snprintf(err, es, "--%s: '%s' is not a non-negative integer", s->name, v);
            return -1;
        }
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || errno) {
            snprintf(err, es, "--%s: '%s' is not a non-negative integer", s->name, v);
            return -1;
        }
        *(uint64_t *)s->dst = x;
        return 0;
    }
    case ARG_FLOAT: {
        double x = strtod(v, &end);
        if (!*end && (errno == ERANGE || (x != 0 && (float)x == 0)) && fabs(x) < 1) {
            snprintf(err, es, "--%s: '%s' is too small to be represented as a float (give 0, or at least 1.5e-45)", s->name, v);
            return -1;
        }
        if (!*v || *end || errno || !isfinite(x) || x < s->min || x > s->max) {
            snprintf(err, es, "--%s: '%s' is not a number in [%g, %g]", s->name, v, s->min, s->max);
            return -1;
        }
        *(float *)s->dst = (float)x;
        return 0;
    }
    case ARG_ONOFF:
        if (!strcmp(v, "on") || !strcmp(v, "off")) {
            *(int *)s->dst = !strcmp(v, "on");
            return 0;
        }
        snprintf(err, es, "--%s: '%s' must be on or off", s->name, v);
        return -1;
    case ARG_CHOICE: {
        int i = choice_index(s->choices, v);
        if (i < 0) {
            snprintf(err, es, "--%s: '%s' is not one of %s", s->name, v, s->choices);
            return -1;
        }
        *(int *)s->dst = i;
        return 0;
    }
    case ARG_FLAG:
        break;
    case ARG_LIST:
        if (!*v) {
            snprintf(err, es, "--%s needs a non-empty value", s->name);
            return -1;
        }
        ((const char **)s->dst)[s->seen - 1] = v;
        return 0;
    }
    return -1;
}

int args_parse(arg_spec *specs, int n, int argc, char **argv, char *err, size_t es) {
    for (int i = 0; i < n; i++) specs[i].seen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, es, "unexpected argument '%s' (options are --name value)", a);
            return -1;
        }
        arg_spec *s = NULL;
        for (int k = 0; k < n && !s; k++)
            if (!strcmp(specs[k].name, a + 2)) s = &specs[k];
        if (!s) {
            snprintf(err, es, "unknown option '%s'", a);
            return -1;
        }
        if (s->seen && s->kind != ARG_LIST) {
            snprintf(err, es, "option %s given twice", a);
            return -1;
        }
        if (s->kind == ARG_LIST && s->seen >= (int)s->max) {
            snprintf(err, es, "option %s given more than %.0f times", a, s->max);
            return -1;
        }
        s->seen++;
        if (s->kind == ARG_FLAG) {
            *(int *)s->dst = 1;
            continue;
        }
        if (i + 1 >= argc) {
            snprintf(err, es, "option %s needs a value", a);
            return -1;
        }
        if (set_value(s, argv[++i], err, es)) return -1;
    }
    return 0;
}

static int parse_number(const char *s, double *x) {
    char *end = NULL;
    errno = 0;
    *x = strtod(s, &end);
    return *s && !*end && !errno && isfinite(*x) ? 0 : -1;
}

int args_parse_levels(const char *option, const char *s, float *out, int max, double lo, double hi, char *err,
                      size_t es) {
    if (!strcmp(s, "none")) return 0;
    char buf[512];
    if (strlen(s) >= sizeof buf) {
        snprintf(err, es, "--%s: value too long", option);
        return -1;
    }
    strcpy(buf, s);
    int n = 0;
    char *c1 = strchr(buf, ':');
    if (c1) {
        char *c2 = strchr(c1 + 1, ':');
        double a, b, step;
        if (!c2 || strchr(c2 + 1, ':')) goto bad;
        *c1 = *c2 = '\0';
        if (parse_number(buf, &a) || parse_number(c1 + 1, &b) || parse_number(c2 + 1, &step) || !(step > 0) || b < a)
            goto bad;
        for (int k = 0; a + k * step <= b + 1e-6 * step; k++) {
            if (n == max) {
                snprintf(err, es, "--%s: more than %d levels", option, max);
                return -1;
            }
            double v = a + k * step;
            if (fabs(v - b) <= 1e-6 * step) v = b;
            v = round(v * 1e9) / 1e9; /* 0.30000000000000004 -> 0.3 */
            out[n++] = (float)v;
        }
    } else {
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            double v;
            if (parse_number(tok, &v)) goto bad;
            if (n == max) {
                snprintf(err, es, "--%s: more than %d levels", option, max);
                return -1;
            }
            if (n && !((float)v > out[n - 1])) {
                snprintf(err, es, "--%s: '%s': levels must be ascending", option, s);
                return -1;
            }
            out[n++] = (float)v;
        }
        if (n == 0) goto bad;
    }
    for (int k = 0; k < n; k++)
        if (out[k] < lo || out[k] > hi) {
            snprintf(err, es, "--%s: level %g is outside [%g, %g]", option, (double)out[k], lo, hi);
            return -1;
        }
    return n;
bad:
    snprintf(err, es, "--%s: '%s' is not 'none', A:B:STEP or a comma-separated list of numbers", option, s);
    return -1;
}

int args_parse_seeds(const char *option, const char *s, uint64_t *out, int max, char *err, size_t es) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end = NULL;
        errno = 0;
        if (*p < '0' || *p > '9') goto bad;
        unsigned long long x = strtoull(p, &end, 10);
        if (errno || (*end && *end != ',')) goto bad;
        for (int k = 0; k < n; k++)
            if (out[k] == x) {
                snprintf(err, es, "--%s: seed %llu given twice", option, x);
                return -1;
            }
        if (n == max) {
            snprintf(err, es, "--%s: more than %d seeds", option, max);
            return -1;
        }
        out[n++] = x;
        p = *end ? end + 1 : end;
        if (*end && !*p) goto bad;
    }
    if (n) return n;
bad:
    snprintf(err, es, "--%s: '%s' is not a comma-separated list of non-negative integers", option, s);
    return -1;
}

void args_usage(FILE *out, const char *synopsis, const char *about, const arg_spec *specs, int n) {
    fprintf(out, "usage: %s\n%s\noptions:\n", synopsis, about);
    for (int i = 0; i < n; i++) {
        char left[64];
        const char *meta = specs[i].kind == ARG_FLAG    ? ""
                           : specs[i].kind == ARG_LIST  ? " VALUE (repeatable)"
                           : specs[i].kind == ARG_ONOFF ? " on|off"
                           : specs[i].kind == ARG_CHOICE ? " CHOICE"
                           : specs[i].kind == ARG_STRING ? " VALUE"
                                                         : " N";
        if (specs[i].kind == ARG_CHOICE)
            snprintf(left, sizeof left, "--%s %s", specs[i].name, specs[i].choices);
        else
            snprintf(left, sizeof left, "--%s%s", specs[i].name, meta);
        fprintf(out, "  %-28s %s\n", left, specs[i].help ? specs[i].help : "");
    }
}

void args_value(const arg_spec *s, char *buf, size_t size) {
    switch (s->kind) {
    case ARG_STRING: {
        const char *v = *(const char *const *)s->dst;
        snprintf(buf, size, "%s", v ? v : "");
        return;
    }
    case ARG_INT: snprintf(buf, size, "%d", *(const int *)s->dst); return;
    case ARG_U64: snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)s->dst); return;
    case ARG_FLOAT: { /* the shortest text that reads back as the same float */
        const float x = *(const float *)s->dst;
        for (int digits = 1; digits <= 9; digits++) {
            snprintf(buf, size, "%.*g", digits, (double)x);
            if ((float)strtod(buf, NULL) == x) break;
        }
        return;
    }
    case ARG_ONOFF: snprintf(buf, size, "%s", *(const int *)s->dst ? "on" : "off"); return;
    case ARG_FLAG: snprintf(buf, size, "%s", *(const int *)s->dst ? "yes" : "no"); return;
    case ARG_LIST: { /* the values given, in order, separated by '|' */
        const char *const *v = s->dst;
        size_t len = 0;
        buf[0] = '\0';
        for (int i = 0; i < s->seen && len < size; i++)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "|" : "", v[i] ? v[i] : "");
        return;
    }
    case ARG_CHOICE: {
        int idx = *(const int *)s->dst;
        const char *p = s->choices;
        for (int i = 0; i < idx && p; i++) {
            p = strchr(p, '|');
            if (p) p++;
        }
        snprintf(buf, size, "%.*s", p ? (int)strcspn(p, "|") : 0, p ? p : "");
        return;
    }
    }
    snprintf(buf, size, "?");
}
