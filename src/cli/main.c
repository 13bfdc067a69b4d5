/* sdumc command line: main() only dispatches to one function per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "sdumc %s: multimodal sentiment analysis robust to a missing transcript\n"
            "usage: sdumc <command> [options]\n"
            "commands:\n"
            "  version        print version and build configuration\n"
            "Run 'sdumc <command> --help' for a command's options.\n",
            SDUMC_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) return cli_version(argc - 1, argv + 1);
    fprintf(stderr, "sdumc: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
