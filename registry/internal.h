/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Cross-file internals of the registry module. Nothing outside registry/ includes this,
 * except the unit tests. */

#include <curl/curl.h>

#include "common/cleanup.h"

struct kerr;

/* ---- curl.c: libcurl, loaded on first use ----
 *
 * kiln does not link libcurl: its ~25 libraries (TLS, Kerberos, LDAP, HTTP/2, ...) cost
 * more start-up time than the rest of kiln, and most commands never download. curl.c
 * dlopens it the first time a caller asks for it and resolves the functions below into a
 * table; every call into libcurl goes through that table. Each field has the type of the
 * function of the same name in curl's headers (variadic ones included), so a call through
 * the table is checked as a direct call would be, except for curl's typecheck-gcc.h, which
 * only works on the macros of the real names: check setopt/getinfo argument types by eye.
 *
 * X(name) is curl_<name>. The list covers what the distribution API client needs: easy
 * handles for the requests, one multi handle driving them (HTTP/2 multiplexing, connection
 * reuse), a share handle for DNS, TLS sessions and connections across multi handles, slists
 * for headers, response headers by name, and the URL API to resolve the Location of uploads
 * and to add the digest query. A function missing from the loaded library fails the load,
 * so add only what kiln calls. */
#define REG_CURL_FUNCTIONS(X)                                                                      \
        X(global_init)                                                                             \
        X(version_info)                                                                            \
        X(free)                                                                                    \
        X(easy_init)                                                                               \
        X(easy_cleanup)                                                                            \
        X(easy_reset)                                                                              \
        X(easy_setopt)                                                                             \
        X(easy_getinfo)                                                                            \
        X(easy_perform)                                                                            \
        X(easy_pause)                                                                              \
        X(easy_header)                                                                             \
        X(easy_strerror)                                                                           \
        X(multi_init)                                                                              \
        X(multi_cleanup)                                                                           \
        X(multi_setopt)                                                                            \
        X(multi_add_handle)                                                                        \
        X(multi_remove_handle)                                                                     \
        X(multi_perform)                                                                           \
        X(multi_poll)                                                                              \
        X(multi_wakeup)                                                                            \
        X(multi_info_read)                                                                         \
        X(multi_strerror)                                                                          \
        X(share_init)                                                                              \
        X(share_cleanup)                                                                           \
        X(share_setopt)                                                                            \
        X(share_strerror)                                                                          \
        X(slist_append)                                                                            \
        X(slist_free_all)                                                                          \
        X(url)                                                                                     \
        X(url_cleanup)                                                                             \
        X(url_set)                                                                                 \
        X(url_get)

/* The oldest libcurl kiln accepts: CURLOPT_PROTOCOLS_STR (7.85.0), which http.c relies on
 * to refuse redirects to other protocols, and curl_easy_header out of its experimental
 * state (7.84.0). */
#define REG_CURL_MIN_VERSION 0x075500
#define REG_CURL_MIN_VERSION_STR "7.85.0"

struct reg_curl {
#define REG_CURL_FIELD(name) __typeof__(curl_##name) *name;
        REG_CURL_FUNCTIONS(REG_CURL_FIELD)
#undef REG_CURL_FIELD
};

/* The table, after loading libcurl (KILN_LIBCURL, when set, names the file instead of
 * libcurl.so.4: a hook for tests) and curl_global_init on the first call; thread-safe.
 * NULL with a KERR_UNSUPPORTED error naming the library, dlerror() and the Debian package
 * when it cannot be loaded; the answer never changes within a process. */
const struct reg_curl *reg_curl_load(struct kerr **err);

/* libcurl's error adapter (the one for libcurl that common/err.c would hold, here because
 * only registry/ may call libcurl): rc is the transfer's result, errbuf its
 * CURLOPT_ERRORBUFFER (may be NULL or empty), http_status 0 when there was no response.
 * 401/403 become KERR_AUTH, 404 KERR_NOTFOUND, the rest KERR_NET. Returns -1. Only after a
 * successful reg_curl_load(). */
int reg_curl_error(struct kerr **err, CURLcode rc, const char *errbuf, long http_status,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* curl_easy_cleanup through the table, for _cleanup_(reg_curl_easy_freep). Only a loaded
 * table hands out handles, so the table is there when one is freed. */
void reg_curl_easy_free(CURL *h);
DEFINE_CLEANUP(CURL *, reg_curl_easy_free)
