/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

/* A growable byte buffer, always NUL-terminated once anything was added.
 * Allocation failure aborts. */
struct kbuf {
        char *data;
        size_t len, cap;
};

#define KBUF_INIT                                                                                  \
        {                                                                                          \
                NULL, 0, 0                                                                         \
        }

void kbuf_init(struct kbuf *b);
void kbuf_release(struct kbuf *b);
void kbuf_grow(struct kbuf *b, size_t extra);
void kbuf_append(struct kbuf *b, const void *p, size_t n);
void kbuf_puts(struct kbuf *b, const char *s);
void kbuf_putc(struct kbuf *b, char c);
void kbuf_printf(struct kbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kbuf_vprintf(struct kbuf *b, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
void kbuf_truncate(struct kbuf *b, size_t len);
/* Returns the contents (an empty string when nothing was added) and resets b; caller frees. */
char *kbuf_detach(struct kbuf *b);
/* The formatted string, newly allocated (caller frees); aborts on OOM. */
char *kstrfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Returns a copy of s, aborting on OOM. */
char *kstrdup(const char *s);
char *kstrndup(const char *s, size_t n);
/* calloc/realloc that abort on OOM and on overflow of n * size. */
void *kcalloc(size_t n, size_t size);
void *kreallocarray(void *p, size_t n, size_t size);
