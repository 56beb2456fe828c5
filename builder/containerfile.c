/* SPDX-License-Identifier: Apache-2.0 */
#include "builder/builder.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/banned.h"

#define CONTAINERFILE_MAX (16u << 20)

static int read_path(const char *path, struct kbuf *out, struct kerr **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;

        if (fd < 0)
                return kerr_set(err, errno, errno == ENOENT ? KERR_NOTFOUND : KERR_IO, "open '%s'",
                                path);
        if (fstat(fd, &st) < 0)
                return kerr_set(err, errno, KERR_IO, "stat '%s'", path);
        if (S_ISDIR(st.st_mode))
                return kerr_set(err, 0, KERR_INVALID, "'%s' is a directory, not a Containerfile",
                                path);
        return kfs_read_fd(fd, path, CONTAINERFILE_MAX, out, err);
}

int builder_read_containerfile(const char *context_dir, const char *file, char **ret_name,
                               struct kbuf *out, struct kerr **err)
{
        static const char *const defaults[] = {"Containerfile", "Dockerfile"};
        struct stat st;

        if (file && file[0] == '-' && file[1] == '\0') {
                if (kfs_read_fd(STDIN_FILENO, "<stdin>", CONTAINERFILE_MAX, out, err) < 0)
                        return -1;
                *ret_name = kstrdup("<stdin>");
                return 0;
        }
        if (file) {
                if (read_path(file, out, err) < 0)
                        return -1;
                *ret_name = kstrdup(file);
                return 0;
        }
        if (!context_dir)
                context_dir = ".";
        if (stat(context_dir, &st) < 0)
                return kerr_set(err, errno, errno == ENOENT ? KERR_NOTFOUND : KERR_IO,
                                "context directory '%s'", context_dir);
        if (!S_ISDIR(st.st_mode))
                return kerr_set(err, 0, KERR_INVALID, "context '%s' is not a directory",
                                context_dir);
        for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
                struct kbuf path = KBUF_INIT;
                int r;

                kbuf_printf(&path, "%s/%s", context_dir, defaults[i]);
                if (strcmp(context_dir, ".") == 0) {
                        kbuf_truncate(&path, 0);
                        kbuf_puts(&path, defaults[i]);
                }
                if (access(path.data, F_OK) < 0) {
                        kbuf_release(&path);
                        continue;
                }
                r = read_path(path.data, out, err);
                if (r < 0) {
                        kbuf_release(&path);
                        return -1;
                }
                *ret_name = kbuf_detach(&path);
                return 0;
        }
        return kerr_set(err, 0, KERR_NOTFOUND, "no Containerfile or Dockerfile in '%s'",
                        context_dir);
}
