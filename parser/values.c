/* SPDX-License-Identifier: Apache-2.0 */
/* Scalar values written in Containerfiles, read with the rules of the Go functions buildkit
 * uses for them (time.ParseDuration, strconv, go-units), so that a value docker accepts is
 * accepted here and one it refuses is refused. */
#include "parser/parser.h"
#include "parser/internal.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/banned.h"

#define BIT63 ((uint64_t)1 << 63)

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static int leading_int(const char **s, uint64_t *ret)
{
        uint64_t x = 0;
        const char *p = *s;

        for (; is_digit(*p); p++) {
                if (x > BIT63 / 10)
                        return -1;
                x = x * 10 + (uint64_t)(*p - '0');
                if (x > BIT63)
                        return -1;
        }
        *s = p;
        *ret = x;
        return 0;
}

static void leading_fraction(const char **s, uint64_t *ret, double *ret_scale)
{
        uint64_t x = 0;
        double scale = 1;
        bool overflow = false;
        const char *p = *s;

        for (; is_digit(*p); p++) {
                uint64_t y;

                if (overflow)
                        continue;
                if (x > (BIT63 - 1) / 10) {
                        overflow = true;
                        continue;
                }
                y = x * 10 + (uint64_t)(*p - '0');
                if (y > BIT63) {
                        overflow = true;
                        continue;
                }
                x = y;
                scale *= 10;
        }
        *s = p;
        *ret = x;
        *ret_scale = scale;
}

static uint64_t duration_unit(const char *u, size_t n)
{
        static const struct {
                const char *name;
                uint64_t ns;
        } units[] = {
                {"ns", 1ULL},           {"us", 1000ULL},
                {"\xC2\xB5s", 1000ULL}, /* U+00B5 micro sign */
                {"\xCE\xBCs", 1000ULL}, /* U+03BC greek mu */
                {"ms", 1000000ULL},     {"s", 1000000000ULL},
                {"m", 60000000000ULL},  {"h", 3600000000000ULL},
        };

        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
                        return units[i].ns;
        return 0;
}

int parser_parse_duration(const char *s, long long *ret_ns)
{
        uint64_t d = 0;
        bool neg = false;

        if (*s == '-' || *s == '+') {
                neg = *s == '-';
                s++;
        }
        if (strcmp(s, "0") == 0) {
                *ret_ns = 0;
                return 0;
        }
        if (!*s)
                return -1;
        while (*s) {
                uint64_t v, f = 0, unit;
                double scale = 1;
                const char *start = s, *u;
                bool pre, post = false;

                if (!(*s == '.' || is_digit(*s)))
                        return -1;
                if (leading_int(&s, &v) < 0)
                        return -1;
                pre = s != start;
                if (*s == '.') {
                        const char *fs = ++s;

                        leading_fraction(&s, &f, &scale);
                        post = s != fs;
                }
                if (!pre && !post)
                        return -1;
                u = s;
                while (*s && *s != '.' && !is_digit(*s))
                        s++;
                if (s == u)
                        return -1;
                unit = duration_unit(u, (size_t)(s - u));
                if (unit == 0)
                        return -1;
                if (v > BIT63 / unit)
                        return -1;
                v *= unit;
                if (f > 0) {
                        v += (uint64_t)((double)f * ((double)unit / scale));
                        if (v > BIT63)
                                return -1;
                }
                d += v;
                if (d > BIT63)
                        return -1;
        }
        if (neg) {
                *ret_ns = d == BIT63 ? INT64_MIN : -(long long)d;
                return 0;
        }
        if (d > BIT63 - 1)
                return -1;
        *ret_ns = (long long)d;
        return 0;
}

int parser_parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
        static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};

        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                if (strcmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -1;
}

int parser_parse_uint32(const char *s, unsigned base, long long *ret)
{
        uint64_t v = 0;

        if (!*s)
                return -1;
        for (; *s; s++) {
                unsigned dgt;

                if (!is_digit(*s))
                        return -1;
                dgt = (unsigned)(*s - '0');
                if (dgt >= base)
                        return -1;
                v = v * base + dgt;
                if (v > UINT32_MAX)
                        return -1;
        }
        *ret = (long long)v;
        return 0;
}

int parser_parse_int32(const char *s, long long *ret)
{
        bool neg = false;
        uint64_t v = 0;

        if (*s == '+' || *s == '-') {
                neg = *s == '-';
                s++;
        }
        if (!*s)
                return -1;
        for (; *s; s++) {
                if (!is_digit(*s))
                        return -1;
                v = v * 10 + (uint64_t)(*s - '0');
                if (v > (uint64_t)INT32_MAX + 1)
                        return -1;
        }
        if (!neg && v > INT32_MAX)
                return -1;
        *ret = neg ? -(long long)v : (long long)v;
        return 0;
}

int parser_parse_ram_size(const char *s, long long *ret)
{
        static const char units[] = "kmgtp";
        const char *p = s, *sfx;
        double size = 0, frac = 0.1;
        bool digits = false;

        for (; is_digit(*p); p++) {
                size = size * 10 + (*p - '0');
                digits = true;
        }
        if (*p == '.') {
                for (p++; is_digit(*p); p++) {
                        size += (*p - '0') * frac;
                        frac /= 10;
                        digits = true;
                }
        }
        if (!digits)
                return -1;
        if (*p == ' ')
                p++;
        sfx = p;
        if (*sfx) {
                const char *u = strchr(units, tolower((unsigned char)sfx[0]));
                size_t n = strlen(sfx);

                if (n > 3)
                        return -1;
                if (tolower((unsigned char)sfx[0]) == 'b') {
                        if (n > 1)
                                return -1;
                } else if (u && *u) {
                        for (long i = 0; i <= u - units; i++)
                                size *= 1024;
                        if (n == 2 && tolower((unsigned char)sfx[1]) != 'b')
                                return -1;
                        if (n == 3 && strcasecmp(sfx + 1, "ib") != 0)
                                return -1;
                } else {
                        return -1;
                }
        }
        if (size >= 9223372036854775808.0)
                return -1;
        *ret = (long long)size;
        return 0;
}

const char *parser_suggest(const char *val, const char *const *options, size_t n)
{
        const char *match = NULL;
        unsigned mindist = 3;

        for (size_t i = 0; i < n; i++) {
                unsigned dist;

                if (strcasecmp(val, options[i]) == 0)
                        return NULL;
                dist = parser_edit_distance(val, options[i]);
                if (dist < mindist) {
                        match = options[i];
                        mindist = dist;
                }
        }
        return match;
}
