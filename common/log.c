/* SPDX-License-Identifier: Apache-2.0 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/banned.h"

static enum klog_level current_level = KLOG_WARN;

static const char *const level_names[] = {
        [KLOG_ERROR] = "error",
        [KLOG_WARN] = "warn",
        [KLOG_INFO] = "info",
        [KLOG_DEBUG] = "debug",
};

void klog_set_level(enum klog_level level)
{
        current_level = level;
}

enum klog_level klog_get_level(void)
{
        return current_level;
}

int klog_parse_level(const char *s, enum klog_level *ret_level)
{
        for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
                if (strcmp(s, level_names[i]) == 0) {
                        *ret_level = (enum klog_level)i;
                        return 0;
                }
        }
        if (strcmp(s, "warning") == 0) {
                *ret_level = KLOG_WARN;
                return 0;
        }
        return -1;
}

bool klog_enabled(enum klog_level level)
{
        return level <= current_level;
}

void klog(enum klog_level level, const char *fmt, ...)
{
        struct kbuf b = KBUF_INIT;
        va_list ap;

        if (!klog_enabled(level))
                return;
        kbuf_printf(&b, "kiln: %s: ", level == KLOG_WARN ? "warning" : level_names[level]);
        va_start(ap, fmt);
        kbuf_vprintf(&b, fmt, ap);
        va_end(ap);
        kbuf_putc(&b, '\n');
        /* One write per message so lines from parallel work do not interleave. */
        fwrite(b.data, 1, b.len, stderr);
        fflush(stderr);
        kbuf_release(&b);
}
