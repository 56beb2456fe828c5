/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the Containerfile parser, the linter and the JSON writer. */
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "parser/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct parser_file *f = parser_parse_all("fuzz", (const char *)data, size);
        struct kbuf out = KBUF_INIT;

        parser_lint(f);
        parser_file_to_json(f, &out, false);
        kbuf_release(&out);
        parser_file_free(f);
        return 0;
}
