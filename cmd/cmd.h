/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

struct kerr;

/* Exit codes (podman's). */
#define KILN_EXIT_OK 0
#define KILN_EXIT_FAIL 1
#define KILN_EXIT_USAGE 2

/* Options that come before the subcommand. */
struct kiln_globals {
        const char *root; /* --root or KILN_ROOT; NULL: the default store */
};

extern struct kiln_globals kiln_globals;

/* The command works on the store: a non-root kiln enters its user namespace first. */
#define KILN_CMD_STORE (1u << 0)

struct kiln_cmd {
        const char *name;
        int (*run)(int argc, char **argv);
        unsigned flags; /* KILN_CMD_* */
        const char *summary;
        const char *usage; /* the full help text after the "Usage:" line */
        const char *synopsis;
};

const struct kiln_cmd *kiln_cmd_find(const char *name);
const struct kiln_cmd *kiln_cmds(unsigned *ret_n);

/* Prints "kiln: error: CMD: message" and the hint to run help; returns KILN_EXIT_USAGE. */
int cmd_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "kiln: error: <formatted err>"; returns KILN_EXIT_FAIL. */
int cmd_fail(const struct kerr *err);
/* Prints the help of a command to stdout. */
void cmd_print_help(const struct kiln_cmd *c);
/* Handles getopt's '?' and ':' results uniformly; returns KILN_EXIT_USAGE. */
int cmd_bad_option(const char *cmd, int opt, char **argv, int optind_now);
/* Option parsing for commands whose only option is --help: returns -1 to go on (optind is
 * past the options), or the exit code to return. */
int cmd_help_only_options(const char *cmd, int argc, char **argv);

int cmd_build(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_rmi(int argc, char **argv);
int cmd_tag(int argc, char **argv);
int cmd_version(int argc, char **argv);
