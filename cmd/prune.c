/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/err.h"
#include "image/image.h"
#include "common/banned.h"

int cmd_prune(int argc, char **argv)
{
        static const struct option opts[] = {
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct image_store *s = NULL;
        struct kerr *err = NULL;
        int opt, r = KILN_EXIT_OK;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (opt) {
                case 'h':
                        cmd_print_help(kiln_cmd_find("prune"));
                        return KILN_EXIT_OK;
                default:
                        return cmd_bad_option("prune", opt, argv, optind);
                }
        }
        if (optind < argc)
                return cmd_usage_error("prune", "unexpected argument '%s'", argv[optind]);
        s = image_store_open(kiln_globals.root, &err);
        if (!s || image_store_prune(s, &err) < 0) {
                r = cmd_fail(err);
                kerr_free(err);
        }
        image_store_free(s);
        return r;
}
