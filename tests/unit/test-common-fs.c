/* SPDX-License-Identifier: Apache-2.0 */
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "tap.h"

static char tmpl[64];

static int make_root(void)
{
        snprintf(tmpl, sizeof(tmpl), "/tmp/kiln-test-fs-XXXXXX");
        if (!mkdtemp(tmpl))
                abort();
        return open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void remove_root(void)
{
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
        if (system(cmd) != 0)
                abort();
}

TEST(fs_mkdir_p_and_atomic_write)
{
        int root = make_root();
        struct kbuf b = KBUF_INIT;
        struct kerr *err = NULL;
        struct stat st;

        CHECK(kfs_mkdir_p(root, "a/b/c/", 0755, NULL) == 0);
        CHECK(kfs_mkdir_p(root, "a/b/c", 0755, NULL) == 0); /* existing is fine */
        CHECK(kfs_write_atomic(root, "a/b/c/f", "hello", 5, 0640, NULL) == 0);
        CHECK(kfs_write_atomic(root, "a/b/c/f", "bye", 3, 0640, NULL) == 0);
        CHECK(kfs_read_file(root, "a/b/c/f", 0, &b, NULL) == 0);
        CHECK_STREQ(b.data, "bye");
        CHECK(fstatat(root, "a/b/c/f", &st, 0) == 0 && (st.st_mode & 0777) == 0640);
        kbuf_release(&b);
        /* a file in the way of a directory */
        CHECK(kfs_mkdir_p(root, "a/b/c/f/g", 0755, &err) < 0);
        CHECK_INTEQ(err->errnum, ENOTDIR);
        kerr_free(err);
        err = NULL;
        /* a size limit */
        CHECK(kfs_read_file(root, "a/b/c/f", 2, &b, &err) < 0);
        CHECK_INTEQ(err->code, KERR_INVALID);
        kerr_free(err);
        kbuf_release(&b);
        close(root);
        remove_root();
}

TEST(fs_atomic_write_leaves_no_temp_files)
{
        int root = make_root();
        char cmd[160];

        for (int i = 0; i < 20; i++)
                CHECK(kfs_write_atomic(root, "x", "data", 4, 0644, NULL) == 0);
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", tmpl);
        CHECK(system(cmd) == 0);
        close(root);
        remove_root();
}

TEST(fs_open_in_root_stays_inside)
{
        int root = make_root();
        int fd;
        struct kbuf b = KBUF_INIT;
        struct kerr *err = NULL;

        CHECK(kfs_mkdir_p(root, "etc", 0755, NULL) == 0);
        CHECK(kfs_write_atomic(root, "etc/passwd", "inside\n", 7, 0644, NULL) == 0);
        CHECK(symlinkat("/etc/passwd", root, "abs") == 0);
        CHECK(symlinkat("../../../../../../etc/passwd", root, "rel") == 0);

        /* An absolute symlink resolves inside the root. */
        fd = kfs_open_in_root(root, "abs", O_RDONLY, 0, 0, NULL);
        CHECK(fd >= 0);
        CHECK(kfs_read_fd(fd, "abs", 0, &b, NULL) == 0);
        CHECK_STREQ(b.data, "inside\n");
        kfs_close(fd);
        kbuf_release(&b);

        /* So do ".." chains, in symlinks and in the path itself. */
        fd = kfs_open_in_root(root, "rel", O_RDONLY, 0, 0, NULL);
        CHECK(fd >= 0);
        CHECK(kfs_read_fd(fd, "rel", 0, &b, NULL) == 0);
        CHECK_STREQ(b.data, "inside\n");
        kfs_close(fd);
        kbuf_release(&b);
        fd = kfs_open_in_root(root, "../../../../etc/passwd", O_RDONLY, 0, 0, NULL);
        CHECK(fd >= 0);
        CHECK(kfs_read_fd(fd, "dotdot", 0, &b, NULL) == 0);
        CHECK_STREQ(b.data, "inside\n");
        kfs_close(fd);
        kbuf_release(&b);

        /* Symlinks can be refused altogether. */
        CHECK(kfs_open_in_root(root, "abs", O_RDONLY, 0, KFS_RESOLVE_NO_SYMLINKS, &err) < 0);
        CHECK_INTEQ(err->errnum, ELOOP);
        kerr_free(err);
        err = NULL;

        /* O_CLOEXEC is always set. */
        fd = kfs_open_in_root(root, "etc/passwd", O_RDONLY, 0, 0, NULL);
        CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
        kfs_close(fd);
        close(root);
        remove_root();
}

TEST(fs_open_in_root_without_openat2_fails_clearly)
{
        int root = make_root();
        struct kerr *err = NULL;

        kfs_set_openat2_disabled(true);
        CHECK(kfs_open_in_root(root, "x", O_RDONLY, 0, 0, &err) < 0);
        kfs_set_openat2_disabled(false);
        CHECK_INTEQ(err->code, KERR_UNSUPPORTED);
        CHECK(strstr(err->msg, "openat2") != NULL);
        CHECK(strstr(err->msg, "'x'") != NULL);
        kerr_free(err);
        close(root);
        remove_root();
}

TEST(fs_read_write_all_through_pipe)
{
        int p[2];
        char out[100000];
        static char in[100000];
        pid_t pid;

        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (char)i;
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        pid = fork();
        if (pid == 0) {
                close(p[0]);
                _exit(kfs_write_all(p[1], in, sizeof(in)) == 0 ? 0 : 1);
        }
        close(p[1]);
        CHECK(kfs_read_all(p[0], out, sizeof(out)) == (ssize_t)sizeof(out));
        CHECK(memcmp(in, out, sizeof(in)) == 0);
        CHECK(kfs_read_all(p[0], out, 10) == 0); /* end of file */
        close(p[0]);
        CHECK(waitpid(pid, NULL, 0) == pid);
}
