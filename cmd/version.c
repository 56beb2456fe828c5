/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/kjson.h"
#include "image/image.h"
#include "registry/registry.h"
#include "sandbox/sandbox.h"
#include "version.h"
#include "common/banned.h"

int cmd_version(int argc, char **argv)
{
        char seccomp[32];

        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                cmd_print_help(kiln_cmd_find("version"));
                return KILN_EXIT_OK;
        }
        if (argc > 1) {
                if (argv[1][0] == '-')
                        return cmd_usage_error("version", "unknown flag '%s'", argv[1]);
                return cmd_usage_error("version", "unexpected argument '%s'", argv[1]);
        }
        sandbox_seccomp_version(seccomp, sizeof(seccomp));
        printf("kiln version %s\n", KILN_VERSION);
        printf("commit:      %s\n", KILN_COMMIT);
        printf("libarchive:  %s\n", image_libarchive_version());
        printf("libcurl:     %s\n", registry_curl_version());
        printf("openssl:     %s\n", registry_openssl_version());
        printf("jansson:     %s\n", kjson_library_version());
        printf("zstd:        %s\n", image_zstd_version());
        printf("zlib:        %s\n", image_zlib_version());
        printf("libseccomp:  %s\n", seccomp);
        return KILN_EXIT_OK;
}
