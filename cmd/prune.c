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
        struct image_store *s = NULL;
        struct kerr *err = NULL;
        int opt, r = KILN_EXIT_OK;

        opt = cmd_help_only_options("prune", argc, argv);
        if (opt >= 0)
                return opt;
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
