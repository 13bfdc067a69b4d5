/* The command-line option parser (src/cli/args.c, used by every subcommand but simulate-text):
 * the input is split at NUL bytes into argv[1..]; the spec table has every kind of option. */
#include <math.h>

#include "cli/args.h"
#include "fuzz_util.h"

enum { ARGS_MAX = 64 };

static int fuzz_args(const uint8_t *data, size_t size) {
    /* argv strings: a NUL-terminated copy of the input, cut at each NUL. */
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL);
    if (size) memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[ARGS_MAX + 2];
    int argc = 0;
    argv[argc++] = "train";
    for (size_t i = 0; i < size && argc <= ARGS_MAX;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;

    const char *data_dir = NULL;
    int epochs = -7, mia = -7, select = -7, quiet = 0;
    uint64_t seed = 42;
    float lr = -7.0f;
    arg_spec specs[] = {
        {"data", ARG_STRING, &data_dir, 0, 0, NULL, "dataset folder", 0, 0},
        {"epochs", ARG_INT, &epochs, 1, 100000, NULL, "epochs", 0, 0},
        {"seed", ARG_U64, &seed, 0, 0, NULL, "seed", 0, 0},
        {"lr", ARG_FLOAT, &lr, 1e-8, 1.0, NULL, "learning rate", 0, 0},
        {"mia", ARG_ONOFF, &mia, 0, 0, NULL, "MIA", 0, 0},
        {"select", ARG_CHOICE, &select, 0, 0, "full|miss|mean|last", "model selection", 0, 0},
        {"quiet", ARG_FLAG, &quiet, 0, 0, NULL, "no progress", 0, 0},
    };
    enum { N = (int)(sizeof specs / sizeof specs[0]) };
    char err[256];
    err[0] = '\0';
    int rc = args_parse(specs, N, argc, argv, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == 1 || rc == -1);
    if (rc == -1) FUZZ_CHECK(err[0] != '\0' && strlen(err) < sizeof err);
    if (rc == 0) {
        /* Every value set lies in its range; unset ones kept the default. */
        const arg_spec *e = args_find(specs, N, "epochs");
        FUZZ_CHECK(e->seen ? epochs >= 1 && epochs <= 100000 : epochs == -7);
        FUZZ_CHECK(args_find(specs, N, "lr")->seen ? isfinite(lr) && lr >= 1e-8f && lr <= 1.0f : lr == -7.0f);
        FUZZ_CHECK(args_find(specs, N, "mia")->seen ? mia == 0 || mia == 1 : mia == -7);
        FUZZ_CHECK(args_find(specs, N, "select")->seen ? select >= 0 && select <= 3 : select == -7);
        FUZZ_CHECK(!args_find(specs, N, "data")->seen || (data_dir && *data_dir));
        FUZZ_CHECK(quiet == args_find(specs, N, "quiet")->seen);
        FUZZ_CHECK(args_find(specs, N, "nope") == NULL);
    }
    free(buf);
    return rc == 0 ? 0 : 1;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_args(data, size);
    return 0;
}
#endif
