/* SPDX-License-Identifier: Apache-2.0 */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

#include "tap.h"

TEST(buf_append_and_printf)
{
        struct kbuf b = KBUF_INIT;

        kbuf_puts(&b, "abc");
        kbuf_putc(&b, '-');
        kbuf_printf(&b, "%d/%s", 42, "x");
        CHECK_STREQ(b.data, "abc-42/x");
        CHECK_INTEQ(b.len, 8);
        kbuf_release(&b);
        CHECK_NULL(b.data);
}

TEST(buf_grows_past_many_doublings)
{
        struct kbuf b = KBUF_INIT;
        bool ok = true;

        for (int i = 0; i < 100000; i++)
                kbuf_putc(&b, (char)('a' + i % 26));
        CHECK_INTEQ(b.len, 100000);
        for (int i = 0; i < 100000; i++)
                if (b.data[i] != (char)('a' + i % 26))
                        ok = false;
        CHECK(ok);
        CHECK(b.data[b.len] == '\0');
        kbuf_release(&b);
}

TEST(buf_binary_and_truncate)
{
        struct kbuf b = KBUF_INIT;

        kbuf_append(&b, "a\0b", 3);
        CHECK_INTEQ(b.len, 3);
        CHECK(memcmp(b.data, "a\0b", 3) == 0);
        kbuf_truncate(&b, 1);
        CHECK_STREQ(b.data, "a");
        kbuf_truncate(&b, 10); /* longer than the buffer: no change */
        CHECK_INTEQ(b.len, 1);
        kbuf_release(&b);
}

TEST(buf_detach_empty_gives_string)
{
        struct kbuf b = KBUF_INIT;
        char *s = kbuf_detach(&b);

        CHECK_STREQ(s, "");
        free(s);
        kbuf_puts(&b, "x");
        s = kbuf_detach(&b);
        CHECK_STREQ(s, "x");
        CHECK_NULL(b.data);
        CHECK_INTEQ(b.len, 0);
        free(s);
}

TEST(strfmt_formats_into_a_new_string)
{
        char *s = kstrfmt("%s/%03d", "layer", 7);
        char *e = kstrfmt("%s", "");

        CHECK_STREQ(s, "layer/007");
        CHECK_STREQ(e, "");
        free(s);
        free(e);
}
