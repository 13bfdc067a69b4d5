/* One entry point per subcommand; each gets argv starting at the subcommand name. */
#ifndef SD_CLI_H
#define SD_CLI_H

int cli_version(int argc, char **argv);

#endif
