/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The registry module: references, auth and the OCI distribution API client. So far it
 * downloads plain http(s) URLs (ADD) and reports the versions of its libraries. */

#include <stdint.h>

struct kerr;

/* The version of libcurl (a static string), loading it as a download would; NULL with a
 * KERR_UNSUPPORTED error when it cannot be loaded. */
const char *registry_curl_version(struct kerr **err);
/* The TLS library libcurl uses, as libcurl names it ("OpenSSL/3.0.15"), or NULL with an
 * error when libcurl cannot be loaded or has none. */
const char *registry_tls_version(struct kerr **err);

/* Downloads url (http or https only; redirects followed, at most 10) into fd, writing at
 * most max bytes (0: no limit). *ret_size gets the byte count; *ret_mtime (may be NULL) the
 * Last-Modified time in seconds, or -1 when the server sent none. A status other than 2xx
 * fails with an error naming the URL and the status; KERR_UNSUPPORTED when libcurl, loaded
 * on the first download, cannot be. */
int registry_http_fetch(const char *url, int fd, uint64_t max, uint64_t *ret_size,
                        int64_t *ret_mtime, struct kerr **err);
