/* SPDX-License-Identifier: Apache-2.0 */
/* Replays every file of a fuzz corpus directory through LLVMFuzzerTestOneInput, as TAP. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;

        if (argc != 2) {
                fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
                return 2;
        }
        d = opendir(argv[1]);
        if (!d) {
                printf("not ok 1 - open corpus %s: %s\n1..1\n", argv[1], strerror(errno));
                return 1;
        }
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                names = kreallocarray(names, n + 1, sizeof(*names));
                names[n++] = kstrdup(de->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof(*names), cmp);
        for (size_t i = 0; i < n; i++) {
                struct kbuf path = KBUF_INIT, data = KBUF_INIT;
                struct kerr *err = NULL;

                kbuf_printf(&path, "%s/%s", argv[1], names[i]);
                if (kfs_read_file(-100 /* AT_FDCWD */, path.data, 0, &data, &err) < 0) {
                        char *m = kerr_format(err);
                        printf("not ok %zu - %s: %s\n", i + 1, names[i], m);
                        free(m);
                        kerr_free(err);
                        return 1;
                }
                /* A crash or sanitizer report aborts the process, failing the test. */
                LLVMFuzzerTestOneInput((const uint8_t *)data.data, data.len);
                printf("ok %zu - %s\n", i + 1, names[i]);
                kbuf_release(&path);
                kbuf_release(&data);
                free(names[i]);
        }
        printf("1..%zu\n", n);
        free(names);
        return n ? 0 : 1;
}
