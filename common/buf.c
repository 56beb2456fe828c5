/* SPDX-License-Identifier: Apache-2.0 */
#include "common/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/banned.h"

void kbuf_init(struct kbuf *b)
{
        b->data = NULL;
        b->len = 0;
        b->cap = 0;
}

void kbuf_release(struct kbuf *b)
{
        free(b->data);
        kbuf_init(b);
}

void kbuf_grow(struct kbuf *b, size_t extra)
{
        size_t need, cap;

        if (extra > SIZE_MAX - b->len - 1)
                abort();
        need = b->len + extra + 1;
        if (need <= b->cap)
                return;
        cap = b->cap ? b->cap : 64;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        b->data = realloc(b->data, cap);
        if (!b->data)
                abort();
        b->cap = cap;
}

void kbuf_append(struct kbuf *b, const void *p, size_t n)
{
        kbuf_grow(b, n);
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
}

void kbuf_puts(struct kbuf *b, const char *s)
{
        kbuf_append(b, s, strlen(s));
}

void kbuf_putc(struct kbuf *b, char c)
{
        kbuf_append(b, &c, 1);
}

void kbuf_vprintf(struct kbuf *b, const char *fmt, va_list ap)
{
        va_list cp;
        int n;

        va_copy(cp, ap);
        n = vsnprintf(NULL, 0, fmt, cp);
        va_end(cp);
        if (n < 0)
                abort();
        kbuf_grow(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
}

void kbuf_printf(struct kbuf *b, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        kbuf_vprintf(b, fmt, ap);
        va_end(ap);
}

void kbuf_truncate(struct kbuf *b, size_t len)
{
        if (len >= b->len)
                return;
        b->len = len;
        b->data[len] = '\0';
}

char *kbuf_detach(struct kbuf *b)
{
        char *s = b->data;

        if (!s) {
                s = strdup("");
                if (!s)
                        abort();
        }
        kbuf_init(b);
        return s;
}

char *kstrfmt(const char *fmt, ...)
{
        struct kbuf b = KBUF_INIT;
        va_list ap;

        va_start(ap, fmt);
        kbuf_vprintf(&b, fmt, ap);
        va_end(ap);
        return kbuf_detach(&b);
}

char *kstrdup(const char *s)
{
        char *r = strdup(s);

        if (!r)
                abort();
        return r;
}

char *kstrndup(const char *s, size_t n)
{
        char *r = strndup(s, n);

        if (!r)
                abort();
        return r;
}

void *kcalloc(size_t n, size_t size)
{
        void *p = calloc(n ? n : 1, size ? size : 1);

        if (!p)
                abort();
        return p;
}

void *kreallocarray(void *p, size_t n, size_t size)
{
        void *r;

        if (size && n > SIZE_MAX / size)
                abort();
        r = realloc(p, n && size ? n * size : 1);
        if (!r)
                abort();
        return r;
}
