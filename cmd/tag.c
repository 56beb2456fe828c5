/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/err.h"
#include "image/image.h"
#include "common/banned.h"

int cmd_tag(int argc, char **argv)
{
        struct image_store *s = NULL;
        struct kerr *err = NULL;
        char id[KDIGEST_STRLEN];
        int opt, r = KILN_EXIT_OK;

        opt = cmd_help_only_options("tag", argc, argv);
        if (opt >= 0)
                return opt;
        if (argc - optind < 2)
                return cmd_usage_error("tag", "a source image and at least one new name are "
                                              "needed");
        /* Check every new name before touching the index, so a bad one changes nothing. */
        for (int i = optind + 1; i < argc; i++) {
                char *norm = image_normalize_name(argv[i], &err);
                if (!norm) {
                        r = cmd_fail(err);
                        kerr_free(err);
                        return r;
                }
                free(norm);
        }
        s = image_store_open(kiln_globals.root, 0, &err);
        if (!s || image_index_resolve(s, argv[optind], id, &err) < 0 ||
            image_index_add(s, id, (const char *const *)&argv[optind + 1],
                            (size_t)(argc - optind - 1), &err) < 0) {
                r = cmd_fail(err);
                kerr_free(err);
        }
        image_store_free(s);
        return r;
}
