/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

enum kerr_code {
        KERR_OK = 0,
        KERR_IO,          /* a system call failed; errnum says why */
        KERR_INVALID,     /* bad input from the user or a file */
        KERR_PARSE,       /* a file does not parse; file/line/col say where */
        KERR_NOTFOUND,    /* a name, path or digest that does not exist */
        KERR_EXISTS,      /* already there */
        KERR_UNSUPPORTED, /* the kernel or a library lacks a feature */
        KERR_NET,         /* network or protocol failure */
        KERR_AUTH,        /* credentials refused */
        KERR_DIGEST,      /* content does not match its digest */
        KERR_USAGE,       /* a command line that makes no sense */
        KERR_INTERNAL,    /* a bug or a library failure with no better class */
};

struct kerr {
        int errnum;
        enum kerr_code code;
        char *msg;
        char *file;
        unsigned line, col;
};

/* Sets *err (replacing what was there) unless err is NULL; always returns -1.
 * errnum, when not 0, is rendered as strerror after the message. */
int kerr_set(struct kerr **err, int errnum, enum kerr_code code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* As kerr_set, with a position in a file (line and col may be 0 for "unknown"). */
int kerr_set_at(struct kerr **err, enum kerr_code code, const char *file, unsigned line,
                unsigned col, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Prefixes the message of *err with context: "ctx: inner". Returns -1. When *err is
 * unset (a callee forgot to set it) an internal error is recorded instead. */
int kerr_wrap(struct kerr **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void kerr_free(struct kerr *e);
void kerr_freep(struct kerr **e);
#define _cleanup_kerr_ __attribute__((cleanup(kerr_freep)))

/* "file:line:col: message: strerror" with the parts that are set; caller frees. */
char *kerr_format(const struct kerr *e);

/* Adapters, one per dependency: they record the library's own description. libcurl's is
 * reg_curl_error() in registry/, the one module that may call libcurl (it is loaded at run
 * time there, not linked). */
struct archive;
int kerr_from_archive(struct kerr **err, struct archive *a, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* zstd_ret is a size_t result for which ZSTD_isError() is true. */
int kerr_from_zstd(struct kerr **err, size_t zstd_ret, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* jerr is jansson's json_error_t; file names what was parsed. */
struct json_error_t;
int kerr_from_json(struct kerr **err, const char *file, const struct json_error_t *jerr);
