/* SPDX-License-Identifier: Apache-2.0 */
/* Puts a small image into the store for the integration tests, until `kiln build` can:
 *
 *     mkimage [--layer TEXT]... [--created RFC3339] [--arch ARCH] [NAME...]
 *
 * Each --layer is a layer holding one file with TEXT (its diff id is the sha256 of TEXT, so
 * equal texts at equal depths share a layer); the config records them and the created
 * time. The store is $KILN_ROOT. Prints the image id. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/kjson.h"
#include "image/image.h"

static int fail(struct kerr *err)
{
        fprintf(stderr, "mkimage: %s\n", err ? err->msg : "failed");
        kerr_free(err);
        return 1;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"layer", required_argument, NULL, 'l'},
                {"created", required_argument, NULL, 'c'},
                {"arch", required_argument, NULL, 'a'},
                {0},
        };
        const char *layers[64];
        size_t n_layers = 0;
        const char *created = "2024-01-01T00:00:00Z", *arch = "amd64";
        struct kbuf cfg = KBUF_INIT;
        struct kerr *err = NULL;
        struct image_store *s;
        char chain[KDIGEST_STRLEN] = "", id[KDIGEST_STRLEN];
        int opt;

        while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (opt) {
                case 'l':
                        if (n_layers == 64)
                                return 2;
                        layers[n_layers++] = optarg;
                        break;
                case 'c':
                        created = optarg;
                        break;
                case 'a':
                        arch = optarg;
                        break;
                default:
                        return 2;
                }
        }
        s = image_store_open(getenv("KILN_ROOT"), IMAGE_STORE_LEASE, &err);
        if (!s)
                return fail(err);
        kbuf_puts(&cfg, "{\"architecture\":");
        kjson_quote(&cfg, arch, strlen(arch));
        kbuf_puts(&cfg, ",\"config\":{\"Env\":[\"PATH=/usr/bin:/bin\"]},\"created\":");
        kjson_quote(&cfg, created, strlen(created));
        kbuf_puts(&cfg, ",\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[");
        for (size_t i = 0; i < n_layers; i++) {
                char *dir = NULL, *path = NULL, diff_id[KDIGEST_STRLEN];
                size_t len = strlen(layers[i]);

                if (image_store_mkdtemp(s, &dir, &err) < 0)
                        return fail(err);
                if (asprintf(&path, "%s/file", dir) < 0)
                        return 1;
                if (kfs_write_atomic(AT_FDCWD, path, layers[i], len, 0644, &err) < 0 ||
                    kdigest_buf(layers[i], len, diff_id, &err) < 0 ||
                    image_layer_commit(s, chain, diff_id, 1000 * (len + 1), dir, chain, &err) < 0)
                        return fail(err);
                kbuf_printf(&cfg, "%s\"%s\"", i ? "," : "", diff_id);
                free(path);
                free(dir);
        }
        kbuf_puts(&cfg, "],\"type\":\"layers\"}}");
        if (image_blob_put(s, cfg.data, cfg.len, id, &err) < 0 ||
            image_index_add(s, id, (const char *const *)&argv[optind], (size_t)(argc - optind),
                            &err) < 0)
                return fail(err);
        printf("%s\n", id);
        kbuf_release(&cfg);
        image_store_free(s);
        return 0;
}
