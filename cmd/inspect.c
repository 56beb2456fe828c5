/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/buf.h"
#include "common/err.h"
#include "image/image.h"
#include "common/banned.h"

int cmd_inspect(int argc, char **argv)
{
        struct image_store *s = NULL;
        struct kerr *err = NULL;
        struct kbuf out = KBUF_INIT;
        char id[KDIGEST_STRLEN];
        int opt, r = KILN_EXIT_OK;

        opt = cmd_help_only_options("inspect", argc, argv);
        if (opt >= 0)
                return opt;
        if (optind >= argc)
                return cmd_usage_error("inspect", "an image name or id is needed");
        if (optind + 1 < argc)
                return cmd_usage_error("inspect", "unexpected argument '%s'", argv[optind + 1]);
        s = image_store_open(kiln_globals.root, 0, &err);
        if (!s || image_index_resolve(s, argv[optind], id, &err) < 0 ||
            image_inspect_json(s, id, &out, &err) < 0) {
                r = cmd_fail(err);
                kerr_free(err);
        } else {
                kbuf_putc(&out, '\n');
                fwrite(out.data, 1, out.len, stdout);
        }
        kbuf_release(&out);
        image_store_free(s);
        return r;
}
