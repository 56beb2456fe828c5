/* SPDX-License-Identifier: Apache-2.0 */
#include "parser/parser.h"
#include "parser/internal.h"

void parser_file_to_json(const struct parser_file *f, struct kbuf *out, bool pretty)
{
        (void)f;
        (void)out;
        (void)pretty;
}
