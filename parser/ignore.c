/* SPDX-License-Identifier: Apache-2.0 */
#include "parser/parser.h"
#include "parser/internal.h"

struct parser_ignore *parser_ignore_parse(const char *name, const char *data, size_t len,
                                          struct kerr **err)
{
        (void)name;
        (void)data;
        (void)len;
        (void)err;
        return NULL;
}

bool parser_ignore_match(const struct parser_ignore *ig, const char *path)
{
        (void)ig;
        (void)path;
        return false;
}

void parser_ignore_free(struct parser_ignore *ig)
{
        (void)ig;
}
