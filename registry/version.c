/* SPDX-License-Identifier: Apache-2.0 */
#include "registry/registry.h"

#include <openssl/crypto.h>
#include <stddef.h>

#include "registry/internal.h"
#include "common/banned.h"

const char *registry_curl_version(struct kerr **err)
{
        const struct reg_curl *curl = reg_curl_load(err);

        return curl ? curl->version_info(CURLVERSION_NOW)->version : NULL;
}

const char *registry_openssl_version(void)
{
        return OpenSSL_version(OPENSSL_VERSION);
}
