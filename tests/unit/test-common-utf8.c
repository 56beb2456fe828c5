/* SPDX-License-Identifier: Apache-2.0 */
#include "common/utf8.h"

#include <string.h>

#include "common/buf.h"
#include "tap.h"

TEST(utf8_decode_like_go)
{
        static const struct {
                const char *in;
                size_t n;
                uint32_t cp;
                size_t width;
        } cases[] = {
                {"a", 1, 'a', 1},
                {"\xc3\xa9", 2, 0xe9, 2},
                {"\xe2\x82\xac", 3, 0x20ac, 3},
                {"\xf0\x9f\x98\x80", 4, 0x1f600, 4},
                {"\xef\xbf\xbd", 3, 0xfffd, 3},          /* a real U+FFFD */
                {"\xc3", 1, KUTF8_ERROR, 1},             /* truncated */
                {"\xc0\xaf", 2, KUTF8_ERROR, 1},         /* overlong "/" */
                {"\xed\xa0\x80", 3, KUTF8_ERROR, 1},     /* a surrogate */
                {"\xf4\x90\x80\x80", 4, KUTF8_ERROR, 1}, /* past U+10FFFF */
                {"\x80", 1, KUTF8_ERROR, 1},             /* a lone continuation byte */
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint32_t cp = 0;
                size_t w;
                bool valid;

                CASE("decode case %zu", i);
                CHECK_INTEQ(kutf8_decode(cases[i].in, cases[i].n, &cp), cases[i].width);
                CHECK_INTEQ(cp, cases[i].cp);
                valid = kutf8_valid_at(cases[i].in, cases[i].n, &w);
                CHECK(valid == (cases[i].cp != KUTF8_ERROR || cases[i].width == 3));
        }
}

TEST(utf8_put_round_trips_and_replaces)
{
        static const uint32_t cps[] = {0x24, 0xe9, 0x20ac, 0x1f600};
        struct kbuf b = KBUF_INIT;
        uint32_t cp;

        for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
                kbuf_truncate(&b, 0);
                kutf8_put(&b, cps[i]);
                CHECK(kutf8_decode(b.data, b.len, &cp) == b.len);
                CHECK_INTEQ(cp, cps[i]);
        }
        kbuf_truncate(&b, 0);
        kutf8_put(&b, 0xd800);
        kutf8_put(&b, 0x110000);
        CHECK_STREQ(b.data, "\xef\xbf\xbd\xef\xbf\xbd");
        kbuf_release(&b);
}

TEST(utf8_space_is_go_unicode_space)
{
        CHECK(kutf8_is_space(' ') && kutf8_is_space('\t') && kutf8_is_space('\v'));
        CHECK(kutf8_is_space(0x85) && kutf8_is_space(0xa0) && kutf8_is_space(0x3000));
        CHECK(kutf8_is_space(0x2000) && kutf8_is_space(0x200a));
        CHECK(!kutf8_is_space(0x200b) && !kutf8_is_space('x') && !kutf8_is_space(KUTF8_ERROR));
}
