/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the layer applier: the input is a (possibly compressed) tar applied onto a fresh
 * directory, both as a layer dir (whiteouts kept) and flattened. Whatever it holds, nothing
 * may appear beside that directory in its parent, which is checked after every run. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64];

static void rm_rf(const char *path)
{
        image_store_rmtree(path, NULL);
}

static void apply_once(const uint8_t *data, size_t size, unsigned flags)
{
        char root[96];
        int mfd, rfd;
        struct kerr *err = NULL;

        snprintf(root, sizeof(root), "%s/root", base);
        rm_rf(root);
        if (mkdir(root, 0755) < 0)
                abort();
        rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        mfd = memfd_create("layer", MFD_CLOEXEC);
        if (rfd < 0 || mfd < 0 || kfs_write_all(mfd, data, size) < 0 || lseek(mfd, 0, SEEK_SET) < 0)
                abort();
        (void)image_layer_apply(mfd, rfd, flags | IMAGE_APPLY_NO_OWNERS, NULL, &err);
        kerr_free(err);
        kfs_close(mfd);
        kfs_close(rfd);
}

static void cleanup(void)
{
        rm_rf(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct dirent *de;
        DIR *d;
        int n = 0;

        if (!base[0]) {
                snprintf(base, sizeof(base), "/tmp/kiln-fuzz-tar-XXXXXX");
                if (!mkdtemp(base))
                        abort();
                atexit(cleanup);
        }
        apply_once(data, size, IMAGE_APPLY_OVERLAY);
        apply_once(data, size, 0);
        /* Only root/ may exist in base. */
        d = opendir(base);
        if (!d)
                abort();
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                    strcmp(de->d_name, "root"))
                        n++;
        closedir(d);
        if (n != 0) {
                fprintf(stderr, "a layer wrote outside its root\n");
                abort();
        }
        return 0;
}
