/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A small TAP producer. TEST(name) registers a test; CASE(fmt, ...) inside it starts a
 * separately reported case (for tables); CHECK* record failures without stopping; SKIP
 * ends the current test as skipped. A case that checks nothing is reported as failed. */

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*tap_fn)(void);
void tap_register(const char *name, tap_fn fn);
void tap_case(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool tap_check(bool ok, const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void tap_skip(const char *reason);

#define TEST(name)                                                                                 \
        static void name(void);                                                                    \
        __attribute__((constructor)) static void tap_reg_##name(void)                              \
        {                                                                                          \
                tap_register(#name, name);                                                         \
        }                                                                                          \
        static void name(void)

#define CASE(...) tap_case(__VA_ARGS__)

#define CHECK(cond) tap_check(!!(cond), __FILE__, __LINE__, "%s", #cond)

#define CHECK_STREQ(a, b)                                                                          \
        ({                                                                                         \
                const char *_a = (a), *_b = (b);                                                   \
                tap_check(_a &&_b &&strcmp(_a, _b) == 0, __FILE__, __LINE__,                       \
                          "%s == %s: got '%s', want '%s'", #a, #b, _a ? _a : "(null)",             \
                          _b ? _b : "(null)");                                                     \
        })

#define CHECK_NULL(a)                                                                              \
        ({                                                                                         \
                const void *_p = (a);                                                              \
                tap_check(_p == NULL, __FILE__, __LINE__, "%s is not NULL", #a);                   \
        })

#define CHECK_INTEQ(a, b)                                                                          \
        ({                                                                                         \
                long long _x = (long long)(a), _y = (long long)(b);                                \
                tap_check(_x == _y, __FILE__, __LINE__, "%s == %s: got %lld, want %lld", #a, #b,   \
                          _x, _y);                                                                 \
        })

#define SKIP(reason)                                                                               \
        do {                                                                                       \
                tap_skip(reason);                                                                  \
                return;                                                                            \
        } while (0)
