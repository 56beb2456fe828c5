/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the ignore-file matcher: the input is an ignore file, a NUL byte, then paths one
 * per line that are matched against it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "parser/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *p = (const char *)data;
        const char *nul = memchr(p, '\0', size);
        size_t plen = nul ? (size_t)(nul - p) : size;
        struct kerr *err = NULL;
        struct parser_ignore *ig = parser_ignore_parse("fuzz", p, plen, &err);
        const char *rest, *end = p + size;

        if (!ig) {
                kerr_free(err);
                return 0;
        }
        rest = nul ? nul + 1 : end;
        while (rest < end) {
                const char *nl = memchr(rest, '\n', (size_t)(end - rest));
                size_t len = nl ? (size_t)(nl - rest) : (size_t)(end - rest);
                char *path = kstrndup(rest, len);

                (void)parser_ignore_match(ig, path);
                free(path);
                rest += len + 1;
        }
        parser_ignore_free(ig);
        return 0;
}
