/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builder/builder.h"
#include "cmd/cmd.h"
#include "common/buf.h"
#include "common/err.h"
#include "parser/parser.h"
#include "common/banned.h"

static void print_diags(const struct parser_file *f)
{
        for (size_t i = 0; i < f->n_diags; i++) {
                const struct parser_diag *d = &f->diags[i];

                printf("%s:%u:%u: %s: %s [%s]\n", f->name, d->pos.line, d->pos.col,
                       d->severity == PARSER_ERROR ? "error" : "warning", d->msg, d->rule);
        }
}

int cmd_check(int argc, char **argv)
{
        static const struct option opts[] = {
                {"file", required_argument, NULL, 'f'},
                {"format", required_argument, NULL, 'F'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *file = NULL, *context = NULL;
        bool json = false;
        struct kbuf data = KBUF_INIT, out = KBUF_INIT;
        struct kerr *err = NULL;
        struct parser_file *f;
        char *name = NULL;
        int opt, r;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":f:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'f':
                        file = optarg;
                        break;
                case 'F':
                        if (strcmp(optarg, "json") == 0)
                                json = true;
                        else if (strcmp(optarg, "text") == 0)
                                json = false;
                        else
                                return cmd_usage_error(
                                        "check", "unknown format '%s' (use text or json)", optarg);
                        break;
                case 'h':
                        cmd_print_help(kiln_cmd_find("check"));
                        return KILN_EXIT_OK;
                default:
                        return cmd_bad_option("check", opt, argv, optind);
                }
        }
        if (optind < argc)
                context = argv[optind++];
        if (optind < argc)
                return cmd_usage_error("check", "unexpected argument '%s'", argv[optind]);

        if (builder_read_containerfile(context, file, &name, &data, &err) < 0) {
                r = cmd_fail(err);
                kerr_free(err);
                kbuf_release(&data);
                return r;
        }
        f = parser_parse_all(name, data.data, data.len);
        parser_lint(f);
        if (json) {
                parser_file_to_json(f, &out, true);
                kbuf_putc(&out, '\n');
                fwrite(out.data, 1, out.len, stdout);
        } else {
                print_diags(f);
        }
        r = parser_file_count(f, PARSER_ERROR) ? KILN_EXIT_FAIL : KILN_EXIT_OK;
        if (fflush(stdout) != 0)
                r = KILN_EXIT_FAIL;
        parser_file_free(f);
        kbuf_release(&out);
        kbuf_release(&data);
        free(name);
        return r;
}
