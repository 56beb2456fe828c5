/* SPDX-License-Identifier: Apache-2.0 */
#include "common/kjson.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "tap.h"

TEST(kjson_writer_compact)
{
        struct kbuf b = KBUF_INIT;
        struct kjson_writer w;

        kjson_writer_init(&w, &b, false);
        kjson_begin_object(&w);
        kjson_kv_string(&w, "s", "a\"b\\c\n\t\x01");
        kjson_kv_int(&w, "n", -5);
        kjson_kv_bool(&w, "t", true);
        kjson_key(&w, "l");
        kjson_begin_array(&w);
        kjson_null(&w);
        kjson_string(&w, NULL);
        kjson_begin_object(&w);
        kjson_end_object(&w);
        kjson_end_array(&w);
        kjson_end_object(&w);
        kjson_writer_release(&w);
        CHECK_STREQ(
                b.data,
                "{\"s\":\"a\\\"b\\\\c\\n\\t\\u0001\",\"n\":-5,\"t\":true,\"l\":[null,null,{}]}");
        kbuf_release(&b);
}

TEST(kjson_writer_pretty)
{
        struct kbuf b = KBUF_INIT;
        struct kjson_writer w;

        kjson_writer_init(&w, &b, true);
        kjson_begin_object(&w);
        kjson_key(&w, "a");
        kjson_begin_array(&w);
        kjson_int(&w, 1);
        kjson_int(&w, 2);
        kjson_end_array(&w);
        kjson_key(&w, "e");
        kjson_begin_array(&w);
        kjson_end_array(&w);
        kjson_end_object(&w);
        kjson_writer_release(&w);
        CHECK_STREQ(b.data, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"e\": []\n}");
        kbuf_release(&b);
}

TEST(kjson_invalid_utf8_replaced)
{
        struct kbuf b = KBUF_INIT;

        kjson_quote(&b, "ok\xc3\xa9\xff\xc3", 6);
        CHECK_STREQ(b.data, "\"ok\xc3\xa9\\ufffd\\ufffd\"");
        kbuf_release(&b);
}

TEST(kjson_deep_nesting)
{
        struct kbuf b = KBUF_INIT;
        struct kjson_writer w;

        kjson_writer_init(&w, &b, false);
        for (int i = 0; i < 100; i++)
                kjson_begin_array(&w);
        for (int i = 0; i < 100; i++)
                kjson_end_array(&w);
        kjson_writer_release(&w);
        CHECK_INTEQ(b.len, 200);
        kbuf_release(&b);
}

TEST(kjson_string_arrays)
{
        static const struct {
                const char *in;
                int ret;
                enum kerr_code code;
                size_t n;
                const char *first;
        } cases[] = {
                {"[\"/bin/sh\", \"-c\"]", 0, KERR_OK, 2, "/bin/sh"},
                {"  [\"a\"]  ", 0, KERR_OK, 1, "a"},
                {"[]", 0, KERR_OK, 0, NULL},
                {"[\"\\u00e9\"]", 0, KERR_OK, 1, "\xc3\xa9"},
                {"[\"a\", 1]", -1, KERR_INVALID, 0, NULL},
                {"[\"a\"] trailing", -1, KERR_PARSE, 0, NULL},
                {"[\"a\"", -1, KERR_PARSE, 0, NULL},
                {"echo [\"a\"]", -1, KERR_PARSE, 0, NULL},
                {"{\"a\": \"b\"}", -1, KERR_PARSE, 0, NULL},
                {"['a']", -1, KERR_PARSE, 0, NULL},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char **v = NULL;
                size_t n = 99;
                struct kerr *err = NULL;
                int r;

                CASE("%s", cases[i].in);
                r = kjson_parse_string_array(cases[i].in, strlen(cases[i].in), &v, &n, &err);
                CHECK_INTEQ(r < 0 ? -1 : 0, cases[i].ret);
                if (r < 0) {
                        CHECK_INTEQ(err->code, cases[i].code);
                        kerr_free(err);
                        continue;
                }
                CHECK_INTEQ(n, cases[i].n);
                if (cases[i].first)
                        CHECK_STREQ(v[0], cases[i].first);
                CHECK_NULL(v[n]);
                for (size_t k = 0; k < n; k++)
                        free(v[k]);
                free(v);
        }
}
