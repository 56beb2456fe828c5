/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes variable expansion: the first byte picks the escape character, the rest is the
 * word, expanded in a small environment, split into words, scanned for references, and
 * expanded as a heredoc body. */
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/err.h"
#include "parser/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void free_words(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const vars[] = {"A=a", "EMPTY=", "PATH=/usr/bin:/bin", "SP=x y  z",
                                           "A=again"};
        const struct parser_env env = {vars, sizeof(vars) / sizeof(vars[0])};
        struct kerr *err = NULL;
        char escape, *word, *out = NULL, **v = NULL;
        size_t n = 0;

        if (size == 0)
                return 0;
        escape = (data[0] & 1) ? '`' : '\\';
        word = kstrndup((const char *)data + 1, size - 1);
        if (parser_expand_word(word, escape, &env, &out, &err) == 0)
                free(out);
        kerr_free(err);
        err = NULL;
        if (parser_expand_words(word, escape, &env, &v, &n, &err) == 0)
                free_words(v, n);
        kerr_free(err);
        err = NULL;
        v = NULL;
        n = 0;
        if (parser_expand_refs(word, escape, &v, &n, &err) == 0)
                free_words(v, n);
        kerr_free(err);
        err = NULL;
        out = NULL;
        if (parser_expand_heredoc(word, &env, &out, &err) == 0)
                free(out);
        kerr_free(err);
        free(word);
        return 0;
}
