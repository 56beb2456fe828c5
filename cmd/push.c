/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

#include "cmd/cmd.h"
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"
#include "common/banned.h"

int cmd_push(int argc, char **argv)
{
        enum { OPT_FORMAT = 256, OPT_COMPRESSION, OPT_LEVEL, OPT_DIGESTFILE };
        static const struct option opts[] = {
                {"format", required_argument, NULL, OPT_FORMAT},
                {"compression-format", required_argument, NULL, OPT_COMPRESSION},
                {"compression-level", required_argument, NULL, OPT_LEVEL},
                {"digestfile", required_argument, NULL, OPT_DIGESTFILE},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct image_export_opts eo = {.compression = IMAGE_COMPRESSION_GZIP};
        struct image_record *recs = NULL;
        struct image_kv *ann = NULL;
        size_t n_recs = 0;
        bool format_given = false;
        const char *digestfile = NULL, *name, *dest;
        struct image_store *s = NULL;
        struct kerr *err = NULL;
        char id[KDIGEST_STRLEN], manifest[KDIGEST_STRLEN];
        char *end = NULL;
        bool quiet = false;
        int opt, r = KILN_EXIT_FAIL;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
                switch (opt) {
                case OPT_FORMAT:
                        format_given = true;
                        if (strcmp(optarg, "oci") == 0)
                                eo.format = IMAGE_FORMAT_OCI;
                        else if (strcmp(optarg, "docker") == 0 || strcmp(optarg, "v2s2") == 0)
                                eo.format = IMAGE_FORMAT_DOCKER;
                        else
                                return cmd_usage_error("push",
                                                       "unknown format '%s' (use oci or "
                                                       "docker)",
                                                       optarg);
                        break;
                case OPT_COMPRESSION:
                        if (strcmp(optarg, "gzip") == 0)
                                eo.compression = IMAGE_COMPRESSION_GZIP;
                        else if (strcmp(optarg, "zstd") == 0)
                                eo.compression = IMAGE_COMPRESSION_ZSTD;
                        else if (strcmp(optarg, "none") == 0)
                                eo.compression = IMAGE_COMPRESSION_NONE;
                        else
                                return cmd_usage_error("push",
                                                       "unknown compression format '%s' (use "
                                                       "gzip, zstd or none)",
                                                       optarg);
                        break;
                case OPT_LEVEL:
                        eo.level = (int)strtol(optarg, &end, 10);
                        if (!*optarg || *end || eo.level < 0 || eo.level > 22)
                                return cmd_usage_error(
                                        "push", "--compression-level '%s' is not a level", optarg);
                        break;
                case OPT_DIGESTFILE:
                        digestfile = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        cmd_print_help(kiln_cmd_find("push"));
                        return KILN_EXIT_OK;
                default:
                        return cmd_bad_option("push", opt, argv, optind);
                }
        }
        if (optind >= argc)
                return cmd_usage_error("push", "missing the image to push");
        name = argv[optind++];
        dest = optind < argc ? argv[optind++] : name;
        if (optind < argc)
                return cmd_usage_error("push", "unexpected argument '%s'", argv[optind]);
        if (!image_is_transport(dest)) {
                kerr_set(&err, 0, KERR_UNSUPPORTED,
                         "push to '%s': only oci:, oci-archive: and docker-archive: destinations "
                         "are supported so far (registries are not)",
                         dest);
                goto out;
        }
        s = image_store_open(kiln_globals.root, IMAGE_STORE_LEASE, &err);
        if (!s || image_index_resolve(s, name, id, &err) < 0 ||
            image_index_list(s, &recs, &n_recs, &err) < 0)
                goto out;
        /* What the build asked for (--format, --annotation) applies unless overridden. */
        for (size_t i = 0; i < n_recs; i++) {
                const struct image_record *rec = &recs[i];

                if (strcmp(rec->id, id) != 0)
                        continue;
                if (!format_given && rec->format && strcmp(rec->format, "docker") == 0)
                        eo.format = IMAGE_FORMAT_DOCKER;
                ann = kcalloc(rec->n_annotations + 1, sizeof(*ann));
                for (size_t k = 0; k < rec->n_annotations; k++) {
                        const char *kv = rec->annotations[k];
                        const char *eq = strchr(kv, '=');
                        size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);

                        ann[k].key = kstrndup(kv, klen);
                        ann[k].value = (char *)(eq ? eq + 1 : "");
                }
                eo.annotations = ann;
                eo.n_annotations = rec->n_annotations;
        }
        if (image_export(s, id, dest, &eo, manifest, &err) < 0)
                goto out;
        if (!quiet)
                printf("Wrote %s to %s (manifest %s)\n", name, dest, manifest);
        if (digestfile &&
            kfs_write_atomic(AT_FDCWD, digestfile, manifest, strlen(manifest), 0644, &err) < 0) {
                kerr_wrap(&err, "write --digestfile");
                goto out;
        }
        r = KILN_EXIT_OK;
out:
        if (r != KILN_EXIT_OK)
                r = cmd_fail(err);
        kerr_free(err);
        for (size_t k = 0; k < eo.n_annotations; k++)
                free(ann[k].key);
        free(ann);
        image_records_free(recs, n_recs);
        image_store_free(s);
        return r;
}

int cmd_pull(int argc, char **argv)
{
        static const struct option opts[] = {
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct image_store *s = NULL;
        struct kerr *err = NULL;
        char id[KDIGEST_STRLEN];
        int opt, r = KILN_EXIT_FAIL;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
                switch (opt) {
                case 'q':
                        break;
                case 'h':
                        cmd_print_help(kiln_cmd_find("pull"));
                        return KILN_EXIT_OK;
                default:
                        return cmd_bad_option("pull", opt, argv, optind);
                }
        }
        if (optind >= argc)
                return cmd_usage_error("pull", "missing the image to pull");
        if (optind + 1 < argc)
                return cmd_usage_error("pull", "unexpected argument '%s'", argv[optind + 1]);
        if (!image_is_transport(argv[optind])) {
                kerr_set(&err, 0, KERR_UNSUPPORTED,
                         "pull '%s': only oci:, oci-archive: and docker-archive: sources are "
                         "supported so far (registries are not)",
                         argv[optind]);
                goto out;
        }
        s = image_store_open(kiln_globals.root, IMAGE_STORE_LEASE, &err);
        if (!s || image_import(s, argv[optind], id, &err) < 0)
                goto out;
        printf("%s\n", id + 7);
        r = KILN_EXIT_OK;
out:
        if (r != KILN_EXIT_OK)
                r = cmd_fail(err);
        kerr_free(err);
        image_store_free(s);
        return r;
}
