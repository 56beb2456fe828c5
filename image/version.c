/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"

#include <archive.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "common/karchive.h"
#include "common/banned.h"

const char *image_libarchive_version(struct kerr **err)
{
        const char *v, *sp;

        if (karchive_load(err) < 0)
                return NULL;
        /* "libarchive 3.6.2" -> "3.6.2" */
        v = archive_version_string();
        sp = strchr(v, ' ');

        return sp ? sp + 1 : v;
}

const char *image_zstd_version(void)
{
        return ZSTD_versionString();
}

const char *image_zlib_version(void)
{
        return zlibVersion();
}
