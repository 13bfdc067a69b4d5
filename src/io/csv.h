/* Minimal CSV: one line split into fields in place (RFC 4180 quotes, "" for a quote inside a
 * quoted field; spaces around unquoted fields trimmed). Lines are split by the caller. */
#ifndef SD_IO_CSV_H
#define SD_IO_CSV_H

/* Splits line in place; stores at most maxf field pointers; returns the field count. */
int sd_csv_split(char *line, char **fields, int maxf);
/* Index of the header field equal to name among n fields, or -1. */
int sd_csv_column(char *const *fields, int n, const char *name);

#endif
