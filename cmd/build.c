/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder/builder.h"
#include "cmd/cmd.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"
#include "common/banned.h"

struct list {
        const char **v;
        size_t n;
};

static void list_add(struct list *l, const char *s)
{
        l->v = kreallocarray(l->v, l->n + 1, sizeof(*l->v));
        l->v[l->n++] = s;
}

static void print_progress(void *ctx, const char *line)
{
        (void)ctx;
        printf("%s\n", line);
        fflush(stdout);
}

static int parse_timestamp(const char *s, int64_t *ret)
{
        char *end = NULL;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || !*s || *end || v < 0)
                return -1;
        *ret = v;
        return 0;
}

/* --jobs N: 0 means no limit, as in podman; without the flag, one job per CPU. */
static int parse_jobs(const char *s, unsigned *ret)
{
        char *end = NULL;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || !*s || *end || s[0] == '-' || v > 1u << 20)
                return -1;
        *ret = v ? (unsigned)v : UINT_MAX;
        return 0;
}

/* A boolean flag's value as Go's strconv.ParseBool reads it (podman's flags are Go's); a
 * flag given without one is true. */
static int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
        static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};

        if (!s) {
                *ret = true;
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
                if (strcmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -1;
}

int cmd_build(int argc, char **argv)
{
        enum {
                OPT_FORMAT = 200,
                OPT_ANNOTATION,
                OPT_BUILD_ARG = 256,
                OPT_TARGET,
                OPT_LABEL,
                OPT_IIDFILE,
                OPT_IGNOREFILE,
                OPT_TIMESTAMP,
                OPT_LAYERS,
                OPT_NO_CACHE,
                OPT_NETWORK,
                OPT_CAP_ADD,
                OPT_CAP_DROP,
                OPT_SECURITY_OPT,
                OPT_SECRET,
                OPT_JOBS
        };
        static const struct option opts[] = {
                {"file", required_argument, NULL, 'f'},
                {"tag", required_argument, NULL, 't'},
                {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
                {"target", required_argument, NULL, OPT_TARGET},
                {"label", required_argument, NULL, OPT_LABEL},
                {"format", required_argument, NULL, OPT_FORMAT},
                {"annotation", required_argument, NULL, OPT_ANNOTATION},
                {"iidfile", required_argument, NULL, OPT_IIDFILE},
                {"ignorefile", required_argument, NULL, OPT_IGNOREFILE},
                {"timestamp", required_argument, NULL, OPT_TIMESTAMP},
                {"layers", optional_argument, NULL, OPT_LAYERS},
                {"no-cache", optional_argument, NULL, OPT_NO_CACHE},
                {"network", required_argument, NULL, OPT_NETWORK},
                {"cap-add", required_argument, NULL, OPT_CAP_ADD},
                {"cap-drop", required_argument, NULL, OPT_CAP_DROP},
                {"security-opt", required_argument, NULL, OPT_SECURITY_OPT},
                {"secret", required_argument, NULL, OPT_SECRET},
                {"jobs", required_argument, NULL, OPT_JOBS},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct list tags = {0}, args = {0}, labels = {0}, annots = {0};
        struct list caps_add = {0}, caps_drop = {0};
        struct builder_secret *secrets = NULL;
        size_t n_secrets = 0;
        struct builder_opts o = {.timestamp = -1};
        const char *iidfile = NULL, *sde = getenv("SOURCE_DATE_EPOCH");
        bool quiet = false, layers = true;
        struct kerr *err = NULL;
        struct image_store *s = NULL;
        char id[KDIGEST_STRLEN];
        int opt, r = KILN_EXIT_FAIL;

        if (sde && *sde && parse_timestamp(sde, &o.timestamp) < 0)
                return cmd_usage_error("build",
                                       "SOURCE_DATE_EPOCH '%s' is not a number of "
                                       "seconds",
                                       sde);
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":f:t:qh", opts, NULL)) != -1) {
                switch (opt) {
                case 'f':
                        o.file = optarg;
                        break;
                case 't':
                        list_add(&tags, optarg);
                        break;
                case OPT_BUILD_ARG:
                        list_add(&args, optarg);
                        break;
                case OPT_TARGET:
                        o.target = optarg;
                        break;
                case OPT_FORMAT:
                        if (strcmp(optarg, "oci") != 0 && strcmp(optarg, "docker") != 0)
                                return cmd_usage_error(
                                        "build", "unknown format '%s' (use oci or docker)", optarg);
                        o.format = optarg;
                        break;
                case OPT_ANNOTATION:
                        if (!strchr(optarg, '=') || optarg[0] == '=')
                                return cmd_usage_error("build", "--annotation '%s' is not K=V",
                                                       optarg);
                        list_add(&annots, optarg);
                        break;
                case OPT_LABEL:
                        list_add(&labels, optarg);
                        break;
                case OPT_IIDFILE:
                        iidfile = optarg;
                        break;
                case OPT_IGNOREFILE:
                        o.ignorefile = optarg;
                        break;
                case OPT_TIMESTAMP:
                        if (parse_timestamp(optarg, &o.timestamp) < 0)
                                return cmd_usage_error("build",
                                                       "--timestamp '%s' is not a "
                                                       "number of seconds",
                                                       optarg);
                        break;
                case OPT_LAYERS:
                        if (parse_bool(optarg, &layers) < 0)
                                return cmd_usage_error(
                                        "build", "--layers '%s' is not true or false", optarg);
                        break;
                case OPT_NO_CACHE:
                        if (parse_bool(optarg, &o.no_cache) < 0)
                                return cmd_usage_error(
                                        "build", "--no-cache '%s' is not true or false", optarg);
                        break;
                case OPT_NETWORK:
                        if (strcmp(optarg, "host") != 0 && strcmp(optarg, "none") != 0)
                                return cmd_usage_error(
                                        "build",
                                        "--network '%s' is not supported (use host or none)",
                                        optarg);
                        o.network = optarg;
                        break;
                case OPT_CAP_ADD:
                        list_add(&caps_add, optarg);
                        break;
                case OPT_CAP_DROP:
                        list_add(&caps_drop, optarg);
                        break;
                case OPT_SECURITY_OPT:
                        if (strncmp(optarg, "seccomp=", 8) == 0) {
                                o.seccomp = optarg + 8;
                        } else if (strcmp(optarg, "no-new-privileges") != 0 &&
                                   strcmp(optarg, "no-new-privileges=true") != 0) {
                                /* RUN always has no_new_privs; other options kiln lacks. */
                                return cmd_usage_error("build",
                                                       "--security-opt '%s' is not supported "
                                                       "(seccomp=unconfined|FILE, "
                                                       "no-new-privileges)",
                                                       optarg);
                        }
                        break;
                case OPT_SECRET: {
                        struct builder_secret sec;
                        if (builder_secret_parse(optarg, &sec, &err) < 0) {
                                r = cmd_usage_error("build", "%s", err->msg);
                                goto out;
                        }
                        secrets = kreallocarray(secrets, n_secrets + 1, sizeof(*secrets));
                        secrets[n_secrets++] = sec;
                        break;
                }
                case OPT_JOBS:
                        if (parse_jobs(optarg, &o.jobs) < 0)
                                return cmd_usage_error(
                                        "build", "--jobs '%s' is not a number of stages", optarg);
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        cmd_print_help(kiln_cmd_find("build"));
                        return KILN_EXIT_OK;
                default:
                        return cmd_bad_option("build", opt, argv, optind);
                }
        }
        if (optind < argc)
                o.context_dir = argv[optind++];
        if (optind < argc)
                return cmd_usage_error("build", "unexpected argument '%s'", argv[optind]);
        o.tags = tags.v;
        o.n_tags = tags.n;
        o.build_args = args.v;
        o.n_build_args = args.n;
        o.annotations = annots.v;
        o.n_annotations = annots.n;
        o.labels = labels.v;
        o.n_labels = labels.n;
        o.no_layers = !layers;
        if (caps_add.n) {
                list_add(&caps_add, NULL);
                o.cap_add = caps_add.v;
        }
        if (caps_drop.n) {
                list_add(&caps_drop, NULL);
                o.cap_drop = caps_drop.v;
        }
        o.secrets = secrets;
        o.n_secrets = n_secrets;
        o.run_stdout = quiet ? 2 : 1;
        o.run_stderr = 2;
        if (!quiet)
                o.progress = print_progress;

        s = image_store_open(kiln_globals.root, IMAGE_STORE_LEASE, &err);
        if (!s || builder_build(s, &o, id, &err) < 0)
                goto out;
        if (!quiet)
                for (size_t i = 0; i < tags.n; i++) {
                        char *n = image_normalize_name(tags.v[i], NULL);
                        printf("Successfully tagged %s\n", n ? n : tags.v[i]);
                        free(n);
                }
        printf("%s\n", id + 7);
        if (iidfile && kfs_write_atomic(AT_FDCWD, iidfile, id, strlen(id), 0644, &err) < 0) {
                kerr_wrap(&err, "write --iidfile");
                goto out;
        }
        r = KILN_EXIT_OK;
out:
        if (r == KILN_EXIT_FAIL)
                r = cmd_fail(err);
        kerr_free(err);
        image_store_free(s);
        free(tags.v);
        free(args.v);
        free(labels.v);
        free(annots.v);
        free(caps_add.v);
        free(caps_drop.v);
        for (size_t i = 0; i < n_secrets; i++)
                builder_secret_release(&secrets[i]);
        free(secrets);
        return r;
}
