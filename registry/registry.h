/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The registry module: references, auth and the OCI distribution API client. So far it
 * downloads plain http(s) URLs (ADD) and reports the versions of its libraries. */

#include <stdint.h>

struct kerr;

/* Versions of the linked libcurl and OpenSSL (static strings). */
const char *registry_curl_version(void);
const char *registry_openssl_version(void);

/* Downloads url (http or https only; redirects followed, at most 10) into fd, writing at
 * most max bytes (0: no limit). *ret_size gets the byte count; *ret_mtime (may be NULL) the
 * Last-Modified time in seconds, or -1 when the server sent none. A status other than 2xx
 * fails with an error naming the URL and the status. */
int registry_http_fetch(const char *url, int fd, uint64_t max, uint64_t *ret_size,
                        int64_t *ret_mtime, struct kerr **err);
