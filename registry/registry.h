/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The registry module: references, auth and the OCI distribution API client. So far it
 * reports the versions of the libraries it is built on. */

/* Versions of the linked libcurl and OpenSSL (static strings). */
const char *registry_curl_version(void);
const char *registry_openssl_version(void);
