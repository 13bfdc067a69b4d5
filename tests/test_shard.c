/* Shares of a folder's utterances (src/llm/shard.h): --shard parsing, the length-balanced
 * assignment, and the transcripts parts: union, seed, merge (sorted, parts newest, removed after,
 * stale temporaries removed, only when complete if asked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "io/npy.h"
#include "llm/shard.h"
#include "llm/utterances.h"

static void test_parse(void) {
    sd_shard s;
    sd_error err;
    EXPECT(!sd_shard_parse("2/5", &s, &err) && s.index == 2 && s.count == 5, "2/5");
    EXPECT(!sd_shard_parse("0/1", &s, &err) && s.index == 0 && s.count == 1, "0/1");
    const char *bad[] = {"5/5", "-1/3", "1", "1/", "/3", "a/b", "1/3x", "0/0", "1/2/3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(sd_shard_parse(bad[i], &s, &err) == SD_E_ARG, "'%s' accepted", bad[i]);
}

/* Longest first to the least loaded: every worker's load within the longest item of the lightest,
 * every item assigned once, and the same result for the same input. */
static void test_assign_balanced(void) {
    enum { N = 200 };
    int64_t cost[N];
    int owner[N], again[N];
    for (int i = 0; i < N; i++) cost[i] = 10 + (i * 7919) % 997;
    sd_error err;
    for (int w = 1; w <= 7; w++) {
        EXPECT(!sd_shard_assign(cost, N, w, owner, &err) && !sd_shard_assign(cost, N, w, again, &err), "assign");
        int64_t load[7] = {0}, longest = 0;
        for (int i = 0; i < N; i++) {
            EXPECT(owner[i] >= 0 && owner[i] < w && owner[i] == again[i], "item %d: worker %d", i, owner[i]);
            load[owner[i]] += cost[i] + 1;
            longest = cost[i] + 1 > longest ? cost[i] + 1 : longest;
        }
        int64_t lo = load[0], hi = load[0];
        for (int j = 1; j < w; j++) {
            lo = load[j] < lo ? load[j] : lo;
            hi = load[j] > hi ? load[j] : hi;
        }
        EXPECT(hi - lo <= longest, "%d workers: loads %lld..%lld differ by more than the longest item %lld", w,
               (long long)lo, (long long)hi, (long long)longest);
    }
    /* More workers than items: each item alone, the rest idle. */
    EXPECT(!sd_shard_assign(cost, 3, 5, owner, &err) && owner[0] != owner[1] && owner[1] != owner[2] &&
               owner[0] != owner[2], "3 items on 5 workers");
}

/* Groups (text-features' passes) stay whole: over the workers, every item once, and a worker holds
 * all of a group's items or none; without groups, the plain assignment. */
static void test_select_groups(void) {
    enum { N = 50, W = 3 };
    int64_t cost[N];
    size_t group[N], seen[N] = {0};
    for (int i = 0; i < N; i++) {
        cost[i] = 1 + (i * 13) % 17;
        group[i] = (size_t)(i / 4 + (i > 30)); /* groups of 4, one of 5 */
    }
    sd_error err;
    int whole = 1;
    for (int w = 0; w < W; w++) {
        sd_shard s = {w, W};
        size_t *mine = NULL, n = 0;
        EXPECT(!sd_shard_select_groups(cost, group, N, &s, &mine, &n, &err), "select: %s", err.msg);
        for (size_t k = 0; k < n; k++) {
            seen[mine[k]]++;
            for (int j = 0; j < N; j++) /* every item of the group is here too */
                if (group[j] == group[mine[k]]) {
                    int here = 0;
                    for (size_t q = 0; q < n; q++) here |= mine[q] == (size_t)j;
                    whole &= here;
                }
        }
        free(mine);
    }
    int once = 1;
    for (int i = 0; i < N; i++) once &= seen[i] == 1;
    EXPECT(once && whole, "items assigned more than once or groups split");
    size_t *a = NULL, *b = NULL, na = 0, nb = 0;
    sd_shard s = {1, W};
    int owner[N];
    EXPECT(!sd_shard_select_groups(cost, NULL, N, &s, &a, &na, &err) && !sd_shard_assign(cost, N, W, owner, &err),
           "select");
    for (int i = 0; i < N; i++) nb += owner[i] == 1;
    EXPECT(na == nb, "no groups: %zu items, the assignment gives %zu", na, nb);
    free(a);
    free(b);
}

static void write_csv(const char *dir, const char *file, const char *text) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    EXPECT(!sd_test_write_file(path, text, strlen(text)), "write %s", path);
}

static int exists(const char *dir, const char *file) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    struct stat st;
    return stat(path, &st) == 0;
}

static char *read_text(const char *dir, const char *file) {
    char path[700];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return sd_test_read_file(path, &n);
}

static void test_transcripts_parts(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/out", sd_test_tmpdir());
    mkdir(dir, 0755);
    sd_error err;
    /* transcripts.csv from an earlier run, and parts of a 2-worker run (one row rewritten by a part). */
    write_csv(dir, "transcripts.csv", "name,text\n\"c\",\"old c\"\n\"a\",\"a text\"\n");
    write_csv(dir, "transcripts.shard-0-of-2.csv", "name,text\n\"c\",\"new c\"\n");
    write_csv(dir, "transcripts.shard-1-of-2.csv", "name,text\n\"b\",\"b, with a comma\"\n");
    write_csv(dir, "b.npy.tmp.Ab12Cd", "x");
    sd_transcripts t;
    EXPECT(!sd_shard_transcripts_read(dir, &t, &err), "read: %s", err.msg);
    EXPECT(t.n == 3 && !strcmp(t.name[0], "a") && !strcmp(t.name[1], "b") && !strcmp(t.name[2], "c") &&
               !strcmp(t.text[2], "new c"),
           "union: %zu rows, sorted with the part's row for c", t.n);
    sd_transcripts_free(&t);

    /* Worker 1 of 3 owns b and c: its part starts with their rows. */
    char *mine[] = {"b", "c"};
    sd_shard s = {1, 3};
    EXPECT(!sd_shard_transcripts_seed(dir, &s, mine, 2, &err), "seed: %s", err.msg);
    char *part = read_text(dir, "transcripts.shard-1-of-3.csv");
    EXPECT(part && !strcmp(part, "name,text\nb,\"b, with a comma\"\nc,new c\n"), "seeded part: %s", part);
    free(part);

    /* Required names without their .npy: no merge, nothing removed. */
    char *names[] = {"a", "b", "c"};
    int merged = -1;
    EXPECT(!sd_shard_transcripts_merge(dir, names, 3, &merged, &err) && merged == 0 &&
               exists(dir, "transcripts.shard-0-of-2.csv"),
           "merged while incomplete");
    for (int i = 0; i < 3; i++) {
        char path[700];
        float x = 1.0f;
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
        EXPECT(!sd_npy_write(path, &x, 1, 1, 1, SD_DTYPE_F32, &err), "npy: %s", err.msg);
    }
    EXPECT(!sd_shard_transcripts_merge(dir, names, 3, &merged, &err) && merged == 1, "merge: %s", err.msg);
    char *csv = read_text(dir, "transcripts.csv");
    EXPECT(csv && !strcmp(csv, "name,text\na,a text\nb,\"b, with a comma\"\nc,new c\n"),
           "merged: %s", csv);
    free(csv);
    EXPECT(!exists(dir, "transcripts.shard-0-of-2.csv") && !exists(dir, "transcripts.shard-1-of-2.csv") &&
               !exists(dir, "transcripts.shard-1-of-3.csv") && !exists(dir, "b.npy.tmp.Ab12Cd") &&
               exists(dir, "a.npy"),
           "parts or the stale temporary left, or an output removed");
    /* The path of each worker's transcripts. */
    sd_shard one = {0, 1};
    char *p1 = sd_shard_transcripts_path(dir, &one), *p3 = sd_shard_transcripts_path(dir, &s);
    EXPECT(p1 && strstr(p1, "/transcripts.csv") && p3 && strstr(p3, "/transcripts.shard-1-of-3.csv"), "%s %s", p1, p3);
    free(p1);
    free(p3);
    EXPECT(sd_shard_count_present(dir, names, 3) == 3, "present");
}

int main(void) {
    sd_test_run("shard_parse", test_parse);
    sd_test_run("shard_assign_balanced", test_assign_balanced);
    sd_test_run("shard_select_groups", test_select_groups);
    sd_test_run("shard_transcripts_parts", test_transcripts_parts);
    return sd_test_finish();
}
