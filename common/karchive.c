/* SPDX-License-Identifier: Apache-2.0 */
/* libarchive at run time. Linking it would load it and the libraries it needs (libxml2,
 * ICU, libstdc++ and six more) at every start of kiln, which costs more than a warm rebuild
 * does otherwise. So it is not linked: this file defines the libarchive functions kiln
 * calls, under their own names and with their own prototypes (from <archive.h>, so that a
 * mismatch does not compile), each forwarding to the real one, which karchive_load()
 * looks up with dlopen on first use. */
#include "common/karchive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/banned.h"

/* libarchive 3 has had this soname from its start. */
#define LIBARCHIVE_SONAME "libarchive.so.13"
#define LIBARCHIVE_DEBIAN_PACKAGE "libarchive13"

/* X(return type, name, parameters, arguments) for functions that return a value, XV for
 * those that do not. archive_set_error, which is variadic, is below. */
#define KARCHIVE_FUNCTIONS(X, XV)                                                                  \
        X(struct archive *, archive_read_new, (void), ())                                          \
        X(struct archive *, archive_write_new, (void), ())                                         \
        X(struct archive_entry *, archive_entry_new, (void), ())                                   \
        X(struct archive_entry *, archive_entry_clear, (struct archive_entry * e), (e))            \
        XV(archive_entry_free, (struct archive_entry * e), (e))                                    \
        X(__LA_MODE_T, archive_entry_filetype, (struct archive_entry * e), (e))                    \
        X(la_int64_t, archive_entry_gid, (struct archive_entry * e), (e))                          \
        X(const char *, archive_entry_hardlink, (struct archive_entry * e), (e))                   \
        X(time_t, archive_entry_mtime, (struct archive_entry * e), (e))                            \
        X(int, archive_entry_mtime_is_set, (struct archive_entry * e), (e))                        \
        X(long, archive_entry_mtime_nsec, (struct archive_entry * e), (e))                         \
        X(const char *, archive_entry_pathname, (struct archive_entry * e), (e))                   \
        X(__LA_MODE_T, archive_entry_perm, (struct archive_entry * e), (e))                        \
        X(dev_t, archive_entry_rdevmajor, (struct archive_entry * e), (e))                         \
        X(dev_t, archive_entry_rdevminor, (struct archive_entry * e), (e))                         \
        XV(archive_entry_set_filetype, (struct archive_entry * e, unsigned int t), (e, t))         \
        XV(archive_entry_set_gid, (struct archive_entry * e, la_int64_t g), (e, g))                \
        XV(archive_entry_set_hardlink, (struct archive_entry * e, const char *s), (e, s))          \
        XV(archive_entry_set_mode, (struct archive_entry * e, __LA_MODE_T m), (e, m))              \
        XV(archive_entry_set_mtime, (struct archive_entry * e, time_t t, long ns), (e, t, ns))     \
        XV(archive_entry_set_pathname, (struct archive_entry * e, const char *s), (e, s))          \
        XV(archive_entry_set_perm, (struct archive_entry * e, __LA_MODE_T m), (e, m))              \
        XV(archive_entry_set_rdevmajor, (struct archive_entry * e, dev_t d), (e, d))               \
        XV(archive_entry_set_rdevminor, (struct archive_entry * e, dev_t d), (e, d))               \
        XV(archive_entry_set_size, (struct archive_entry * e, la_int64_t n), (e, n))               \
        XV(archive_entry_set_symlink, (struct archive_entry * e, const char *s), (e, s))           \
        XV(archive_entry_set_uid, (struct archive_entry * e, la_int64_t u), (e, u))                \
        X(la_int64_t, archive_entry_size, (struct archive_entry * e), (e))                         \
        X(const char *, archive_entry_symlink, (struct archive_entry * e), (e))                    \
        X(la_int64_t, archive_entry_uid, (struct archive_entry * e), (e))                          \
        XV(archive_entry_xattr_add_entry,                                                          \
           (struct archive_entry * e, const char *name, const void *value, size_t size),           \
           (e, name, value, size))                                                                 \
        X(int, archive_entry_xattr_next,                                                           \
          (struct archive_entry * e, const char **name, const void **value, size_t *size),         \
          (e, name, value, size))                                                                  \
        X(int, archive_entry_xattr_reset, (struct archive_entry * e), (e))                         \
        X(int, archive_errno, (struct archive * a), (a))                                           \
        X(const char *, archive_error_string, (struct archive * a), (a))                           \
        X(la_ssize_t, archive_read_data, (struct archive * a, void *p, size_t n), (a, p, n))       \
        X(int, archive_read_data_block,                                                            \
          (struct archive * a, const void **p, size_t *n, la_int64_t *off), (a, p, n, off))        \
        X(int, archive_read_free, (struct archive * a), (a))                                       \
        X(int, archive_read_next_header, (struct archive * a, struct archive_entry * *e), (a, e))  \
        X(int, archive_read_open,                                                                  \
          (struct archive * a, void *ctx, archive_open_callback *o, archive_read_callback *r,      \
           archive_close_callback *c),                                                             \
          (a, ctx, o, r, c))                                                                       \
        X(int, archive_read_open_fd, (struct archive * a, int fd, size_t bs), (a, fd, bs))         \
        X(int, archive_read_open_filename, (struct archive * a, const char *f, size_t bs),         \
          (a, f, bs))                                                                              \
        X(int, archive_read_support_filter_all, (struct archive * a), (a))                         \
        X(int, archive_read_support_format_gnutar, (struct archive * a), (a))                      \
        X(int, archive_read_support_format_raw, (struct archive * a), (a))                         \
        X(int, archive_read_support_format_tar, (struct archive * a), (a))                         \
        X(const char *, archive_version_string, (void), ())                                        \
        X(int, archive_write_add_filter_none, (struct archive * a), (a))                           \
        X(int, archive_write_close, (struct archive * a), (a))                                     \
        X(la_ssize_t, archive_write_data, (struct archive * a, const void *p, size_t n),           \
          (a, p, n))                                                                               \
        X(int, archive_write_free, (struct archive * a), (a))                                      \
        X(int, archive_write_header, (struct archive * a, struct archive_entry * e), (a, e))       \
        X(int, archive_write_open2,                                                                \
          (struct archive * a, void *ctx, archive_open_callback *o, archive_write_callback *w,     \
           archive_close_callback *c, archive_free_callback *f),                                   \
          (a, ctx, o, w, c, f))                                                                    \
        X(int, archive_write_open_fd, (struct archive * a, int fd), (a, fd))                       \
        X(int, archive_write_open_filename, (struct archive * a, const char *f), (a, f))           \
        X(int, archive_write_set_bytes_in_last_block, (struct archive * a, int n), (a, n))         \
        X(int, archive_write_set_bytes_per_block, (struct archive * a, int n), (a, n))             \
        X(int, archive_write_set_format_option,                                                    \
          (struct archive * a, const char *m, const char *o, const char *v), (a, m, o, v))         \
        X(int, archive_write_set_format_pax_restricted, (struct archive * a), (a))

/* The real functions, written once under load_once, read-only afterwards. */
static struct {
#define KARCHIVE_SLOT(ret, name, params, args) ret(*name) params;
#define KARCHIVE_SLOT_V(name, params, args) void(*name) params;
        KARCHIVE_FUNCTIONS(KARCHIVE_SLOT, KARCHIVE_SLOT_V)
#undef KARCHIVE_SLOT
#undef KARCHIVE_SLOT_V
        void (*archive_set_error)(struct archive *, int, const char *, ...);
} real;
static bool loaded;
static char load_error[768];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
        /* The file can be changed for tests; secure_getenv ignores it in a process that
         * gained privileges at exec, as the dynamic loader does with LD_PRELOAD. */
        const char *path = secure_getenv("KILN_LIBARCHIVE");
        const char *why;
        void *lib;

        if (!path || !*path)
                path = LIBARCHIVE_SONAME;
        /* RTLD_LOCAL: nothing loaded later binds to libarchive's symbols (or its
         * libraries') by accident. The handle is kept until exit. */
        lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
                why = dlerror();
                snprintf(load_error, sizeof(load_error),
                         "load libarchive '%s': %s; on Debian, install %s", path,
                         why ? why : "unknown error", LIBARCHIVE_DEBIAN_PACKAGE);
                return;
        }
#define KARCHIVE_RESOLVE(name)                                                                     \
        real.name = (__typeof__(real.name))dlsym(lib, #name);                                      \
        if (!real.name) {                                                                          \
                snprintf(                                                                          \
                        load_error, sizeof(load_error),                                            \
                        "load libarchive '%s': it has no %s (kiln needs libarchive 3.6 or later)", \
                        path, #name);                                                              \
                return;                                                                            \
        }
#define KARCHIVE_RESOLVE_X(ret, name, params, args) KARCHIVE_RESOLVE(name)
#define KARCHIVE_RESOLVE_XV(name, params, args) KARCHIVE_RESOLVE(name)
        KARCHIVE_FUNCTIONS(KARCHIVE_RESOLVE_X, KARCHIVE_RESOLVE_XV)
        KARCHIVE_RESOLVE(archive_set_error)
#undef KARCHIVE_RESOLVE_X
#undef KARCHIVE_RESOLVE_XV
#undef KARCHIVE_RESOLVE
        loaded = true;
}

int karchive_load(struct kerr **err)
{
        pthread_once(&load_once, load);
        if (!loaded)
                return kerr_set(err, 0, KERR_UNSUPPORTED, "%s", load_error);
        return 0;
}

/* Every call but the first of a program goes straight through: the callers load libarchive
 * (and handle the failure) before they make an archive, so a call without it is a bug. */
static void need(const char *name)
{
        if (__builtin_expect(loaded, 1))
                return;
        pthread_once(&load_once, load);
        if (loaded)
                return;
        dprintf(STDERR_FILENO, "kiln: internal error: %s called without libarchive: %s\n", name,
                load_error);
        abort();
}

#define KARCHIVE_WRAP(ret, name, params, args)                                                     \
        ret name params                                                                            \
        {                                                                                          \
                need(#name);                                                                       \
                return real.name args;                                                             \
        }
#define KARCHIVE_WRAP_V(name, params, args)                                                        \
        void name params                                                                           \
        {                                                                                          \
                need(#name);                                                                       \
                real.name args;                                                                    \
        }
KARCHIVE_FUNCTIONS(KARCHIVE_WRAP, KARCHIVE_WRAP_V)
#undef KARCHIVE_WRAP
#undef KARCHIVE_WRAP_V

void archive_set_error(struct archive *a, int errnum, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        need("archive_set_error");
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        real.archive_set_error(a, errnum, "%s", msg);
}
