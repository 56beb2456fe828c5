/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/err.h"
#include "common/idmap.h"
#include "common/log.h"
#include "image/image.h"
#include "sandbox/sandbox.h"
#include "common/banned.h"

struct kiln_globals kiln_globals;

/* The user namespace a non-root kiln runs in, for the life of the process. */
static struct sandbox_userns userns;
static char *default_root;

static const struct kiln_cmd commands[] = {
        {
                .name = "build",
                .run = cmd_build,
                .flags = KILN_CMD_STORE,
                .summary = "build an image from a Containerfile",
                .synopsis = "kiln build [OPTIONS] [CONTEXT]",
                .usage = "Builds the target stage of the Containerfile (CONTEXT/Containerfile, "
                         "then\n"
                         "CONTEXT/Dockerfile; CONTEXT defaults to '.') into the store. RUN steps\n"
                         "run in a rootless sandbox over the stage's layers.\n"
                         "\n"
                         "Options:\n"
                         "  -f, --file FILE          the Containerfile ('-' reads standard input)\n"
                         "  -t, --tag NAME           name the image (repeatable)\n"
                         "      --build-arg K[=V]    set a build argument (repeatable)\n"
                         "      --target STAGE       build this stage instead of the last one\n"
                         "      --label K=V          add a label to the image (repeatable)\n"
                         "      --format FORMAT      the manifest format kiln push uses by\n"
                         "                           default: oci (default) or docker\n"
                         "      --annotation K=V     an annotation for the image's manifests\n"
                         "      --iidfile FILE       write the image id to FILE\n"
                         "      --ignorefile FILE    use FILE instead of .containerignore\n"
                         "      --timestamp SECONDS  set every time in the image (also\n"
                         "                           SOURCE_DATE_EPOCH) for reproducible digests\n"
                         "      --network MODE       RUN's network: host (default) or none\n"
                         "      --cap-add CAP        add a capability for RUN (repeatable)\n"
                         "      --cap-drop CAP       drop a capability for RUN (repeatable)\n"
                         "      --security-opt OPT   seccomp=unconfined|FILE for RUN\n"
                         "      --secret id=ID,src=FILE|env=VAR\n"
                         "                           a secret for RUN --mount=type=secret\n"
                         "      --layers[=BOOL]      use and fill the step cache (default true);\n"
                         "                           --layers=false neither reads nor writes it\n"
                         "      --no-cache           look nothing up in the step cache; what is\n"
                         "                           built is still recorded for later builds\n"
                         "      --jobs N             build up to N independent stages at once\n"
                         "                           (default: the number of CPUs; 0: no limit)\n"
                         "  -q, --quiet              print only the image id\n"
                         "  -h, --help               show this help\n",
        },
        {
                .name = "check",
                .run = cmd_check,
                .summary = "parse and lint a Containerfile",
                .synopsis = "kiln check [-f FILE] [--format text|json] [CONTEXT]",
                .usage = "Parses the Containerfile and reports problems as\n"
                         "FILE:LINE:COL: error|warning: MESSAGE [RULE].\n"
                         "Exits 1 when there is an error, 0 otherwise.\n"
                         "\n"
                         "Options:\n"
                         "  -f, --file FILE      the Containerfile ('-' reads standard input);\n"
                         "                       default: CONTEXT/Containerfile, then "
                         "CONTEXT/Dockerfile\n"
                         "      --format FORMAT  text (default) or json: the stages and "
                         "instructions\n"
                         "                       with positions and flags, and the "
                         "diagnostics\n"
                         "  -h, --help           show this help\n",
        },
        {
                .name = "help",
                .run = cmd_help,
                .summary = "show help for kiln or one of its commands",
                .synopsis = "kiln help [COMMAND]",
                .usage = "",
        },
        {
                .name = "images",
                .run = cmd_images,
                .flags = KILN_CMD_STORE,
                .summary = "list the images in the store",
                .synopsis = "kiln images [--format table|json] [-q]",
                .usage = "Lists each name of each image, newest first; an image without a name\n"
                         "shows as <none> <none>.\n"
                         "\n"
                         "Options:\n"
                         "      --format FORMAT  table (default) or json\n"
                         "  -q, --quiet          print the short image ids only\n"
                         "  -h, --help           show this help\n",
        },
        {
                .name = "inspect",
                .run = cmd_inspect,
                .flags = KILN_CMD_STORE,
                .summary = "show the details of an image as JSON",
                .synopsis = "kiln inspect NAME|ID",
                .usage =
                        "Prints the image's id, names, config, layers (diff ids, chain ids, sizes\n"
                        "and known compressed blobs) and manifests as JSON. An image is named as\n"
                        "in 'kiln tag', or by its id or an id prefix of at least 3 hex digits.\n"
                        "\n"
                        "Options:\n"
                        "  -h, --help  show this help\n",
        },
        {
                .name = "prune",
                .run = cmd_prune,
                .flags = KILN_CMD_STORE,
                .summary = "remove untagged images and unused blobs and layers",
                .synopsis = "kiln prune",
                .usage = "Removes the images that have no name, then every blob and layer that no\n"
                         "remaining image uses. Waits for running builds, pulls and pushes on\n"
                         "the same store to finish first.\n"
                         "\n"
                         "Options:\n"
                         "  -h, --help  show this help\n",
        },
        {
                .name = "pull",
                .run = cmd_pull,
                .flags = KILN_CMD_STORE,
                .summary = "import an image from an OCI layout or archive",
                .synopsis = "kiln pull SOURCE",
                .usage = "SOURCE is oci:DIR[:TAG], oci-archive:FILE[:TAG] or\n"
                         "docker-archive:FILE[:REF]. Registries are not supported yet.\n",
        },
        {
                .name = "push",
                .run = cmd_push,
                .flags = KILN_CMD_STORE,
                .summary = "export an image to an OCI layout or archive",
                .synopsis = "kiln push [OPTIONS] NAME DESTINATION",
                .usage = "DESTINATION is oci:DIR[:TAG], oci-archive:FILE[:TAG] or\n"
                         "docker-archive:FILE[:REF]. Registries are not supported yet.\n"
                         "\n"
                         "Options:\n"
                         "      --format FORMAT              oci (default) or docker\n"
                         "      --compression-format FORMAT  gzip (default), zstd or none\n"
                         "      --compression-level N        the compressor's level\n"
                         "      --digestfile FILE            write the manifest digest to FILE\n"
                         "  -q, --quiet                      print nothing on success\n"
                         "  -h, --help                       show this help\n",
        },
        {
                .name = "rmi",
                .run = cmd_rmi,
                .flags = KILN_CMD_STORE,
                .summary = "remove image names or images",
                .synopsis = "kiln rmi NAME|ID...",
                .usage =
                        "By name: removes the name, and the image once it has no name left. By\n"
                        "id: removes the image with all its names. Blobs and layers that no other\n"
                        "image uses go with it.\n"
                        "\n"
                        "Options:\n"
                        "  -h, --help  show this help\n",
        },
        {
                .name = "tag",
                .run = cmd_tag,
                .flags = KILN_CMD_STORE,
                .summary = "add names to an image",
                .synopsis = "kiln tag IMAGE NAME...",
                .usage =
                        "Adds each NAME to IMAGE (a name, an id or an id prefix). A name without\n"
                        "a registry is local: 'hello' means 'localhost/hello:latest'. A name held\n"
                        "by another image moves to this one.\n"
                        "\n"
                        "Options:\n"
                        "  -h, --help  show this help\n",
        },
        {
                .name = "version",
                .run = cmd_version,
                .summary = "show the version, commit and library versions",
                .synopsis = "kiln version",
                .usage = "",
        },
};

const struct kiln_cmd *kiln_cmds(unsigned *ret_n)
{
        *ret_n = sizeof(commands) / sizeof(commands[0]);
        return commands;
}

const struct kiln_cmd *kiln_cmd_find(const char *name)
{
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

int cmd_usage_error(const char *cmd, const char *fmt, ...)
{
        va_list ap;

        fputs("kiln: error: ", stderr);
        if (cmd)
                fprintf(stderr, "%s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nRun 'kiln %s%s--help' for usage.\n", cmd ? cmd : "", cmd ? " " : "");
        return KILN_EXIT_USAGE;
}

int cmd_fail(const struct kerr *err)
{
        char *msg = kerr_format(err);

        fprintf(stderr, "kiln: error: %s\n", msg);
        free(msg);
        return KILN_EXIT_FAIL;
}

int cmd_bad_option(const char *cmd, int opt, char **argv, int optind_now)
{
        const char *arg = optind_now > 0 ? argv[optind_now - 1] : "?";

        if (opt == ':')
                return cmd_usage_error(cmd, "flag '%s' needs a value", arg);
        if (optopt)
                return cmd_usage_error(cmd, "unknown flag '-%c'", optopt);
        return cmd_usage_error(cmd, "unknown flag '%s'", arg);
}

int cmd_help_only_options(const char *cmd, int argc, char **argv)
{
        static const struct option opts[] = {
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                if (opt == 'h') {
                        cmd_print_help(kiln_cmd_find(cmd));
                        return KILN_EXIT_OK;
                }
                return cmd_bad_option(cmd, opt, argv, optind);
        }
        return -1;
}

/* Without root, store commands run as uid 0 of a user namespace, so that files keep the
 * owners they have in the image. The default store is picked first: inside, euid is 0 and
 * would choose /var/lib/kiln. */
static int enter_userns(void)
{
        _cleanup_kerr_ struct kerr *err = NULL;
        int r;

        if (geteuid() == 0)
                return 0;
        if (!kiln_globals.root) {
                default_root = image_store_default_root();
                kiln_globals.root = default_root;
        }
        r = sandbox_userns_enter(&userns, &err);
        if (r < 0) {
                kerr_wrap(&err, "run without root");
                return cmd_fail(err);
        }
        if (userns.warning)
                fprintf(stderr, "kiln: warning: %s\n", userns.warning);
        kidmap_set_hint(userns.hint);
        return 0;
}

static void print_main_help(FILE *out)
{
        unsigned n;
        const struct kiln_cmd *c = kiln_cmds(&n);

        fputs("kiln: build, run and ship OCI container images without root or a daemon\n"
              "\n"
              "Usage: kiln [GLOBAL OPTIONS] COMMAND [ARGS...]\n"
              "\n"
              "Commands:\n",
              out);
        for (unsigned i = 0; i < n; i++)
                fprintf(out, "  %-10s %s\n", c[i].name, c[i].summary);
        fputs("\n"
              "Global options:\n"
              "      --root DIR         the image store (default: /var/lib/kiln as root,\n"
              "                         $XDG_DATA_HOME/kiln otherwise; also KILN_ROOT)\n"
              "      --log-level LEVEL  error, warn (default), info or debug\n"
              "  -h, --help             show this help\n"
              "  -v, --version          show the version\n"
              "\n"
              "Run 'kiln help COMMAND' for the options of a command.\n",
              out);
}

void cmd_print_help(const struct kiln_cmd *c)
{
        printf("Usage: %s\n\n%s\n", c->synopsis, c->summary);
        if (c->usage[0])
                printf("\n%s", c->usage);
}

int cmd_help(int argc, char **argv)
{
        const struct kiln_cmd *c;

        if (argc > 2)
                return cmd_usage_error("help", "too many arguments");
        if (argc < 2) {
                print_main_help(stdout);
                return KILN_EXIT_OK;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                cmd_print_help(kiln_cmd_find("help"));
                return KILN_EXIT_OK;
        }
        c = kiln_cmd_find(argv[1]);
        if (!c)
                return cmd_usage_error("help", "unknown command '%s'", argv[1]);
        cmd_print_help(c);
        return KILN_EXIT_OK;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},
                {"log-level", required_argument, NULL, 'l'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'v'},
                {0},
        };
        const struct kiln_cmd *c;
        const char *env_root = getenv("KILN_ROOT");
        int opt, r;

        /* File names are bytes, and layers carry them as UTF-8 (pax) where they are not
         * ASCII: libarchive converts through the locale's charset, so make it UTF-8
         * whatever the environment says. */
        if (!setlocale(LC_CTYPE, "C.UTF-8"))
                setlocale(LC_CTYPE, "C.utf8");
        if (env_root && *env_root)
                kiln_globals.root = env_root;
        opterr = 0;
        /* "+" stops at the first non-option: the subcommand parses the rest. */
        while ((opt = getopt_long(argc, argv, "+:hv", opts, NULL)) != -1) {
                enum klog_level level;

                switch (opt) {
                case 'r':
                        if (!optarg[0])
                                return cmd_usage_error(NULL, "--root needs a directory");
                        kiln_globals.root = optarg;
                        break;
                case 'l':
                        if (klog_parse_level(optarg, &level) < 0)
                                return cmd_usage_error(NULL,
                                                       "unknown log level '%s' (use error, "
                                                       "warn, info or debug)",
                                                       optarg);
                        klog_set_level(level);
                        break;
                case 'h':
                        print_main_help(stdout);
                        return KILN_EXIT_OK;
                case 'v':
                        return cmd_version(1, (char *[]){(char *)"version", NULL});
                default:
                        return cmd_bad_option(NULL, opt, argv, optind);
                }
        }
        if (optind >= argc) {
                print_main_help(stderr);
                return KILN_EXIT_USAGE;
        }
        c = kiln_cmd_find(argv[optind]);
        if (!c)
                return cmd_usage_error(NULL, "unknown command '%s'", argv[optind]);
        argv += optind;
        argc -= optind;
        if (c->flags & KILN_CMD_STORE) {
                r = enter_userns();
                if (r != 0)
                        return r;
        }
        /* Each command parses its own options from a fresh getopt state. */
        optind = 0;
        r = c->run(argc, argv);
        kidmap_set_hint(NULL);
        sandbox_userns_release(&userns);
        if (default_root) {
                kiln_globals.root = NULL;
                free(default_root);
        }
        return r;
}
