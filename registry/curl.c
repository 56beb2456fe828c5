/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl at run time: loaded with dlopen on first use, its functions in one table, and its
 * error adapter. See internal.h for why. */
#include "registry/internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/banned.h"

#define LIBCURL_SONAME "libcurl.so.4"
#define LIBCURL_DEBIAN_PACKAGE "libcurl4"

/* Written once under load_once, read-only afterwards. */
static struct reg_curl table;
static bool loaded;
static char load_error[768];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

__attribute__((format(printf, 1, 2))) static void load_failed(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(load_error, sizeof(load_error), fmt, ap);
        va_end(ap);
        memset(&table, 0, sizeof(table));
}

static void *resolve(void *lib, const char *path, const char *name)
{
        void *fn = dlsym(lib, name);

        if (!fn)
                load_failed("load libcurl '%s': it has no %s (kiln needs libcurl %s or later)",
                            path, name, REG_CURL_MIN_VERSION_STR);
        return fn;
}

static void load(void)
{
        /* The file to load can be changed for tests; secure_getenv ignores it in a process
         * that gained privileges at exec, as the dynamic loader does with LD_PRELOAD. */
        const char *path = secure_getenv("KILN_LIBCURL");
        const curl_version_info_data *v;
        const char *why;
        CURLcode rc;
        void *lib;

        if (!path || !*path)
                path = LIBCURL_SONAME;
        /* RTLD_LOCAL keeps libcurl's symbols, and those of the libraries it brings, out of
         * the global scope, so nothing loaded later binds to them by accident. The handle
         * is never closed: curl_global_init's state lives until exit. */
        lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
                why = dlerror();
                load_failed("load libcurl '%s': %s; on Debian, install %s", path,
                            why ? why : "unknown error", LIBCURL_DEBIAN_PACKAGE);
                return;
        }
        /* The version first, so that an old libcurl is named as such rather than by the
         * first function it lacks. */
        table.version_info =
                (__typeof__(table.version_info))resolve(lib, path, "curl_version_info");
        if (!table.version_info)
                return;
        v = table.version_info(CURLVERSION_NOW);
        if (!v || v->version_num < REG_CURL_MIN_VERSION) {
                load_failed("load libcurl '%s': version %s is older than %s, which kiln needs",
                            path, v && v->version ? v->version : "unknown",
                            REG_CURL_MIN_VERSION_STR);
                return;
        }
#define REG_CURL_RESOLVE(name)                                                                     \
        table.name = (__typeof__(table.name))resolve(lib, path, "curl_" #name);                    \
        if (!table.name)                                                                           \
                return;
        REG_CURL_FUNCTIONS(REG_CURL_RESOLVE)
#undef REG_CURL_RESOLVE
        rc = table.global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK) {
                load_failed("load libcurl '%s': curl_global_init: %s", path,
                            table.easy_strerror(rc));
                return;
        }
        loaded = true;
}

const struct reg_curl *reg_curl_load(struct kerr **err)
{
        pthread_once(&load_once, load);
        if (!loaded) {
                kerr_set(err, 0, KERR_UNSUPPORTED, "%s", load_error);
                return NULL;
        }
        return &table;
}

void reg_curl_easy_free(CURL *h)
{
        if (h && loaded)
                table.easy_cleanup(h);
}

int reg_curl_error(struct kerr **err, CURLcode rc, const char *errbuf, long http_status,
                   const char *fmt, ...)
{
        _cleanup_free_ char *ctx = NULL;
        const char *why;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&ctx, fmt, ap);
        va_end(ap);
        if (n < 0)
                abort();
        if (rc != CURLE_OK) {
                why = errbuf && *errbuf ? errbuf : loaded ? table.easy_strerror(rc) : NULL;
                if (why)
                        return kerr_set(err, 0, KERR_NET, "%s: %s", ctx, why);
                return kerr_set(err, 0, KERR_NET, "%s: curl error %d", ctx, (int)rc);
        }
        if (http_status == 401 || http_status == 403)
                return kerr_set(err, 0, KERR_AUTH, "%s: HTTP status %ld", ctx, http_status);
        if (http_status == 404)
                return kerr_set(err, 0, KERR_NOTFOUND, "%s: HTTP status %ld", ctx, http_status);
        return kerr_set(err, 0, KERR_NET, "%s: HTTP status %ld", ctx, http_status);
}
