/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

enum klog_level {
        KLOG_ERROR = 0,
        KLOG_WARN,
        KLOG_INFO,
        KLOG_DEBUG,
};

/* Messages go to stderr as "kiln: LEVEL: message". The default level is warn. */
void klog_set_level(enum klog_level level);
enum klog_level klog_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int klog_parse_level(const char *s, enum klog_level *ret_level);
bool klog_enabled(enum klog_level level);
void klog(enum klog_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define klog_error(...) klog(KLOG_ERROR, __VA_ARGS__)
#define klog_warn(...) klog(KLOG_WARN, __VA_ARGS__)
#define klog_info(...) klog(KLOG_INFO, __VA_ARGS__)
#define klog_debug(...) klog(KLOG_DEBUG, __VA_ARGS__)
