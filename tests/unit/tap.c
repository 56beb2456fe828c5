/* SPDX-License-Identifier: Apache-2.0 */
#include "tap.h"

struct tap_test {
        const char *name;
        tap_fn fn;
};

static struct tap_test *tests;
static size_t n_tests;
static const char *cur_test;
static char cur_case[512];
static bool case_open, case_failed, case_skipped;
static unsigned case_checks, reported, failed_total;
static char skip_reason[256];

void tap_register(const char *name, tap_fn fn)
{
        tests = realloc(tests, (n_tests + 1) * sizeof(*tests));
        if (!tests)
                abort();
        tests[n_tests].name = name;
        tests[n_tests].fn = fn;
        n_tests++;
}

static void case_end(bool is_test_container)
{
        if (!case_open)
                return;
        case_open = false;
        /* The test's own case is dropped when its CASEs carried every check. */
        if (is_test_container && case_checks == 0 && !case_failed && !case_skipped)
                return;
        reported++;
        if (case_skipped) {
                printf("ok %u - %s # SKIP %s\n", reported, cur_case, skip_reason);
                return;
        }
        if (case_checks == 0) {
                printf("# %s: checked nothing\n", cur_case);
                case_failed = true;
        }
        if (case_failed)
                failed_total++;
        printf("%s %u - %s\n", case_failed ? "not ok" : "ok", reported, cur_case);
        fflush(stdout);
}

static bool container_case;

/* A case name is one TAP line: control characters become spaces, and '#' (which would start
 * a TAP directive) becomes a full-width number sign. */
static void set_case_name(const char *name)
{
        size_t o = 0;

        for (const char *p = name; *p && o + 4 < sizeof(cur_case); p++) {
                unsigned char c = (unsigned char)*p;

                if (c == '#') {
                        memcpy(cur_case + o, "\xef\xbc\x83", 3);
                        o += 3;
                } else {
                        cur_case[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
                }
        }
        cur_case[o] = '\0';
}

static void case_begin(const char *name, bool container)
{
        set_case_name(name);
        case_open = true;
        case_failed = false;
        case_skipped = false;
        case_checks = 0;
        container_case = container;
}

void tap_case(const char *fmt, ...)
{
        char buf[400];
        char full[512];
        va_list ap;

        case_end(container_case);
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        snprintf(full, sizeof(full), "%s: %s", cur_test, buf);
        case_begin(full, false);
}

bool tap_check(bool ok, const char *file, int line, const char *fmt, ...)
{
        va_list ap;

        case_checks++;
        if (ok)
                return true;
        case_failed = true;
        printf("# %s:%d: ", file, line);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        return false;
}

void tap_skip(const char *reason)
{
        case_skipped = true;
        snprintf(skip_reason, sizeof(skip_reason), "%s", reason);
}

int main(int argc, char **argv)
{
        const char *only = argc > 1 ? argv[1] : NULL;

        setvbuf(stdout, NULL, _IOLBF, 0);
        for (size_t i = 0; i < n_tests; i++) {
                if (only && strcmp(only, tests[i].name) != 0)
                        continue;
                cur_test = tests[i].name;
                case_begin(tests[i].name, true);
                tests[i].fn();
                case_end(container_case);
        }
        printf("1..%u\n", reported);
        free(tests);
        return failed_total ? 1 : 0;
}
