/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/kjson.h"
#include "image/image.h"
#include "registry/registry.h"
#include "sandbox/sandbox.h"
#include "version.h"
#include "common/banned.h"

int cmd_version(int argc, char **argv)
{
        _cleanup_kerr_ struct kerr *err = NULL, *la_err = NULL;
        char seccomp[32], *why;
        const char *curl, *la;

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
        /* libcurl is loaded on first use; a kiln without it still runs everything but
         * downloads, so its absence is a line here, not a failure. */
        curl = registry_curl_version(&err);
        printf("kiln version %s\n", KILN_VERSION);
        printf("commit:      %s\n", KILN_COMMIT);
        la = image_libarchive_version(&la_err);
        if (la) {
                printf("libarchive:  %s\n", la);
        } else {
                why = kerr_format(la_err);
                printf("libarchive:  not available (%s)\n", why);
                free(why);
        }
        if (curl) {
                printf("libcurl:     %s\n", curl);
        } else {
                why = kerr_format(err);
                printf("libcurl:     not available (%s)\n", why);
                free(why);
        }
        if (curl) {
                const char *tls = registry_tls_version(&err);

                printf("tls:         %s\n", tls ? tls : "none (libcurl was built without it)");
        }
        printf("nettle:      %s\n", kdigest_library_version());
        printf("jansson:     %s\n", kjson_library_version());
        printf("zstd:        %s\n", image_zstd_version());
        printf("zlib:        %s\n", image_zlib_version());
        printf("libseccomp:  %s\n", seccomp);
        return KILN_EXIT_OK;
}
