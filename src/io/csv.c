/* Minimal CSV: splitting one line into fields (RFC 4180 quotes) and finding a column by name. */
#include "io/csv.h"

#include <string.h>

int sd_csv_split(char *line, char **f, int maxf) {
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            start = out = p;
            for (;;) {
                if (!*p) break;
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',') p++;
            out = p;
            while (out > start && (out[-1] == ' ' || out[-1] == '\t')) out--;
        }
        char sep = *p;
        *out = '\0';
        if (n < maxf) f[n] = start;
        n++;
        if (sep != ',') break;
        p++;
    }
    return n;
}

int sd_csv_column(char *const *fields, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(fields[i], name)) return i;
    return -1;
}
