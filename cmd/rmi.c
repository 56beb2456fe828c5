/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/err.h"
#include "image/image.h"
#include "common/banned.h"

/* The record holding name (normalised), or NULL. */
static const struct image_record *find_name(const struct image_record *v, size_t n,
                                            const char *name)
{
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < v[i].n_names; j++)
                        if (strcmp(v[i].names[j], name) == 0)
                                return &v[i];
        return NULL;
}

/* By name: untag, and remove the image once no name is left. By id: remove the image
 * with all its names (as podman does for an image with one name). */
static int remove_one(struct image_store *s, const char *arg, struct kerr **err)
{
        struct image_record *v = NULL;
        const struct image_record *r;
        char id[KDIGEST_STRLEN];
        char *norm = image_normalize_name(arg, NULL);
        size_t n = 0;
        int ret = -1;

        if (image_index_list(s, &v, &n, err) < 0)
                goto out;
        r = norm ? find_name(v, n, norm) : NULL;
        if (r) {
                bool removed = false;

                memcpy(id, r->id, KDIGEST_STRLEN);
                if (image_index_untag(s, norm, err) < 0)
                        goto out;
                printf("Untagged: %s\n", norm);
                /* Whether a name is left is decided under the index lock: the image may have
                 * been named meanwhile (a build that hit the cache names the image it built
                 * before). */
                if (image_index_remove_unnamed(s, id, &removed, err) < 0)
                        goto out;
                if (removed)
                        printf("Deleted: %s\n", id + 7);
                ret = 0;
                goto out;
        } else {
                if (image_index_resolve(s, arg, id, err) < 0)
                        goto out;
                for (size_t i = 0; i < n; i++)
                        if (strcmp(v[i].id, id) == 0)
                                for (size_t j = 0; j < v[i].n_names; j++)
                                        printf("Untagged: %s\n", v[i].names[j]);
        }
        if (image_index_remove(s, id, err) < 0)
                goto out;
        printf("Deleted: %s\n", id + 7);
        ret = 0;
out:
        image_records_free(v, n);
        free(norm);
        return ret;
}

int cmd_rmi(int argc, char **argv)
{
        struct image_store *s;
        struct kerr *err = NULL;
        int opt, r = KILN_EXIT_OK;

        opt = cmd_help_only_options("rmi", argc, argv);
        if (opt >= 0)
                return opt;
        if (optind >= argc)
                return cmd_usage_error("rmi", "at least one image name or id is needed");
        s = image_store_open(kiln_globals.root, 0, &err);
        if (!s) {
                r = cmd_fail(err);
                kerr_free(err);
                return r;
        }
        /* Each argument is tried; the exit status says whether any failed. */
        for (int i = optind; i < argc; i++) {
                if (remove_one(s, argv[i], &err) < 0) {
                        r = cmd_fail(err);
                        kerr_free(err);
                        err = NULL;
                }
        }
        image_store_free(s);
        return r;
}
