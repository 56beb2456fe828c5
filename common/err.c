/* SPDX-License-Identifier: Apache-2.0 */
#include "common/err.h"

#include <archive.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/buf.h"
#include "common/banned.h"

static struct kerr *kerr_alloc(void)
{
        struct kerr *e = calloc(1, sizeof(*e));

        if (!e)
                abort();
        return e;
}

__attribute__((format(printf, 1, 0))) static char *vformat(const char *fmt, va_list ap)
{
        char *s = NULL;

        if (vasprintf(&s, fmt, ap) < 0)
                abort();
        return s;
}

void kerr_free(struct kerr *e)
{
        if (!e)
                return;
        free(e->msg);
        free(e->file);
        free(e);
}

void kerr_freep(struct kerr **e)
{
        kerr_free(*e);
        *e = NULL;
}

__attribute__((format(printf, 7, 0))) static int kerr_setv(struct kerr **err, int errnum,
                                                           enum kerr_code code, const char *file,
                                                           unsigned line, unsigned col,
                                                           const char *fmt, va_list ap)
{
        struct kerr *e;

        if (!err)
                return -1;
        e = kerr_alloc();
        e->errnum = errnum;
        e->code = code;
        e->msg = vformat(fmt, ap);
        if (file) {
                e->file = strdup(file);
                if (!e->file)
                        abort();
        }
        e->line = line;
        e->col = col;
        kerr_free(*err);
        *err = e;
        return -1;
}

int kerr_set(struct kerr **err, int errnum, enum kerr_code code, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        kerr_setv(err, errnum, code, NULL, 0, 0, fmt, ap);
        va_end(ap);
        return -1;
}

int kerr_set_at(struct kerr **err, enum kerr_code code, const char *file, unsigned line,
                unsigned col, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        kerr_setv(err, 0, code, file, line, col, fmt, ap);
        va_end(ap);
        return -1;
}

int kerr_wrap(struct kerr **err, const char *fmt, ...)
{
        va_list ap;
        char *ctx, *msg = NULL;

        if (!err)
                return -1;
        va_start(ap, fmt);
        ctx = vformat(fmt, ap);
        va_end(ap);
        if (!*err) {
                kerr_set(err, 0, KERR_INTERNAL, "%s: unknown error", ctx);
                free(ctx);
                return -1;
        }
        if (asprintf(&msg, "%s: %s", ctx, (*err)->msg) < 0)
                abort();
        free(ctx);
        free((*err)->msg);
        (*err)->msg = msg;
        return -1;
}

char *kerr_format(const struct kerr *e)
{
        struct kbuf b = KBUF_INIT;

        if (!e)
                return strdup("unknown error");
        if (e->file) {
                kbuf_puts(&b, e->file);
                if (e->line) {
                        kbuf_printf(&b, ":%u", e->line);
                        if (e->col)
                                kbuf_printf(&b, ":%u", e->col);
                }
                kbuf_puts(&b, ": ");
        }
        kbuf_puts(&b, e->msg ? e->msg : "unknown error");
        if (e->errnum)
                kbuf_printf(&b, ": %s", strerror(e->errnum));
        return kbuf_detach(&b);
}

int kerr_from_archive(struct kerr **err, struct archive *a, const char *fmt, ...)
{
        va_list ap;
        char *ctx;
        const char *why = a ? archive_error_string(a) : NULL;
        int errnum = a ? archive_errno(a) : 0;

        va_start(ap, fmt);
        ctx = vformat(fmt, ap);
        va_end(ap);
        /* libarchive reports its own messages with errno set to ARCHIVE_ERRNO_MISC (-1)
         * or a format code; only a positive value is a real errno. */
        if (why)
                kerr_set(err, 0, errnum > 0 ? KERR_IO : KERR_INVALID, "%s: %s", ctx, why);
        else
                kerr_set(err, errnum > 0 ? errnum : 0, KERR_IO, "%s", ctx);
        free(ctx);
        return -1;
}

int kerr_from_zstd(struct kerr **err, size_t zstd_ret, const char *fmt, ...)
{
        va_list ap;
        char *ctx;

        va_start(ap, fmt);
        ctx = vformat(fmt, ap);
        va_end(ap);
        kerr_set(err, 0, KERR_INVALID, "%s: %s", ctx, ZSTD_getErrorName(zstd_ret));
        free(ctx);
        return -1;
}

int kerr_from_json(struct kerr **err, const char *file, const struct json_error_t *jerr)
{
        if (!jerr)
                return kerr_set(err, 0, KERR_PARSE, "%s: invalid JSON", file);
        return kerr_set_at(err, KERR_PARSE, file, jerr->line > 0 ? (unsigned)jerr->line : 0,
                           jerr->column > 0 ? (unsigned)jerr->column : 0, "invalid JSON: %s",
                           jerr->text);
}
