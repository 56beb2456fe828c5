/* SPDX-License-Identifier: Apache-2.0 */
#include "common/utf8.h"

#include "common/buf.h"
#include "common/banned.h"

size_t kutf8_decode(const char *s, size_t n, uint32_t *ret_cp)
{
        const unsigned char *u = (const unsigned char *)s;
        uint32_t cp, min;
        size_t w;

        if (u[0] < 0x80) {
                *ret_cp = u[0];
                return 1;
        }
        if (u[0] >= 0xC2 && u[0] <= 0xDF) {
                w = 2;
                cp = u[0] & 0x1F;
                min = 0x80;
        } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
                w = 3;
                cp = u[0] & 0x0F;
                min = 0x800;
        } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
                w = 4;
                cp = u[0] & 0x07;
                min = 0x10000;
        } else {
                *ret_cp = KUTF8_ERROR;
                return 1;
        }
        if (w > n)
                goto invalid;
        for (size_t i = 1; i < w; i++) {
                if ((u[i] & 0xC0) != 0x80)
                        goto invalid;
                cp = (cp << 6) | (u[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                goto invalid;
        *ret_cp = cp;
        return w;
invalid:
        *ret_cp = KUTF8_ERROR;
        return 1;
}

bool kutf8_valid_at(const char *s, size_t n, size_t *ret_width)
{
        uint32_t cp;
        size_t w = kutf8_decode(s, n, &cp);

        *ret_width = w;
        /* A real U+FFFD is three bytes wide; the error value is one. */
        return cp != KUTF8_ERROR || w == 3;
}

void kutf8_put(struct kbuf *b, uint32_t cp)
{
        char s[4];

        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                cp = KUTF8_ERROR;
        if (cp < 0x80) {
                kbuf_putc(b, (char)cp);
        } else if (cp < 0x800) {
                s[0] = (char)(0xC0 | (cp >> 6));
                s[1] = (char)(0x80 | (cp & 0x3F));
                kbuf_append(b, s, 2);
        } else if (cp < 0x10000) {
                s[0] = (char)(0xE0 | (cp >> 12));
                s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                s[2] = (char)(0x80 | (cp & 0x3F));
                kbuf_append(b, s, 3);
        } else {
                s[0] = (char)(0xF0 | (cp >> 18));
                s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                s[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                s[3] = (char)(0x80 | (cp & 0x3F));
                kbuf_append(b, s, 4);
        }
}

bool kutf8_is_space(uint32_t cp)
{
        switch (cp) {
        case '\t':
        case '\n':
        case '\v':
        case '\f':
        case '\r':
        case ' ':
        case 0x85:
        case 0xA0:
        case 0x1680:
        case 0x2028:
        case 0x2029:
        case 0x202F:
        case 0x205F:
        case 0x3000:
                return true;
        default:
                return cp >= 0x2000 && cp <= 0x200A;
        }
}
