/* SPDX-License-Identifier: Apache-2.0 */
#include "parser/parser.h"
#include "parser/internal.h"

void parser_lint(struct parser_file *f)
{
        (void)f;
}
