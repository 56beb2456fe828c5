/* SPDX-License-Identifier: Apache-2.0 */
#include "registry/registry.h"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "common/banned.h"

const char *registry_curl_version(void)
{
        return curl_version_info(CURLVERSION_NOW)->version;
}

const char *registry_openssl_version(void)
{
        return OpenSSL_version(OPENSSL_VERSION);
}
