/* SPDX-License-Identifier: Apache-2.0 */
#include "registry/registry.h"

#include <stddef.h>

#include "common/err.h"
#include "registry/internal.h"
#include "common/banned.h"

const char *registry_curl_version(struct kerr **err)
{
        const struct reg_curl *curl = reg_curl_load(err);

        return curl ? curl->version_info(CURLVERSION_NOW)->version : NULL;
}

const char *registry_tls_version(struct kerr **err)
{
        const struct reg_curl *curl = reg_curl_load(err);
        const char *v = curl ? curl->version_info(CURLVERSION_NOW)->ssl_version : NULL;

        if (curl && !v)
                kerr_set(err, 0, KERR_UNSUPPORTED, "libcurl was built without TLS");
        return v;
}
