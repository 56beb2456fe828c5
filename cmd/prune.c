/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
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
        s = image_store_open(kiln_globals.root, 0, &err);
        if (!s)
                goto fail;
        /* Builds, pulls and pushes hold a lease on the store: prune waits for them to end
         * rather than fail, and says so, since that may take as long as a build. */
        if (image_store_lock_gc(s, false, &err) < 0) {
                if (err->errnum != EWOULDBLOCK)
                        goto fail;
                kerr_free(err);
                err = NULL;
                fprintf(stderr, "kiln: prune: waiting for other kiln processes using the store "
                                "to finish\n");
                if (image_store_lock_gc(s, true, &err) < 0)
                        goto fail;
        }
        if (image_store_prune(s, &err) < 0)
                goto fail;
        image_store_free(s);
        return r;
fail:
        r = cmd_fail(err);
        kerr_free(err);
        image_store_free(s);
        return r;
}
