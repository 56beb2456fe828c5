/* SPDX-License-Identifier: Apache-2.0 */
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"

#define T_CLAMP 1700000000

static int buf_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        (void)err;
        kbuf_append(ctx, p, n);
        return 0;
}

/* A fresh directory under TMPDIR; *ret_fd is an O_DIRECTORY fd of it. */
static char *scratch(int *ret_fd)
{
        const char *tmp = getenv("TMPDIR");
        struct kbuf b = KBUF_INIT;
        char *path;

        kbuf_printf(&b, "%s/kiln-tar-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        path = kbuf_detach(&b);
        if (!mkdtemp(path))
                abort();
        *ret_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (*ret_fd < 0)
                abort();
        return path;
}

static void remove_tree(const char *path)
{
        struct kbuf cmd = KBUF_INIT;

        kbuf_printf(&cmd, "rm -rf '%s'", path);
        if (system(cmd.data) != 0)
                printf("# could not remove %s\n", path);
        kbuf_release(&cmd);
}

/* Runs a shell command and returns its standard output (caller frees), or NULL. */
static char *run(const char *cmd)
{
        struct kbuf b = KBUF_INIT;
        FILE *p = popen(cmd, "re");
        char buf[4096];
        size_t k;

        if (!p)
                return NULL;
        while ((k = fread(buf, 1, sizeof(buf), p)) > 0)
                kbuf_append(&b, buf, k);
        if (pclose(p) != 0) {
                kbuf_release(&b);
                return NULL;
        }
        return kbuf_detach(&b);
}

static void put(int dfd, const char *path, const char *data, mode_t mode)
{
        int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        if (fd < 0 || kfs_write_all(fd, data, strlen(data)) < 0 || fchmod(fd, mode) < 0)
                abort();
        kfs_close(fd);
}

static bool tar_tree(int dfd, int64_t clamp, struct kbuf *out, char id[KDIGEST_STRLEN])
{
        struct image_tar_opts opts = {.clamp_mtime = clamp};
        _cleanup_kerr_ struct kerr *err = NULL;
        uint64_t size = 0;
        int r = image_layer_tar(dfd, &opts, buf_sink, out, id, &size, &err);

        if (r < 0)
                printf("# tar: %s\n", err && err->msg ? err->msg : "?");
        return r == 0 && size == out->len;
}

/* An fd holding data, for image_layer_apply. */
static int mem_fd(const void *data, size_t len)
{
        int fd = memfd_create("layer", MFD_CLOEXEC);

        if (fd < 0 || kfs_write_all(fd, data, len) < 0 || lseek(fd, 0, SEEK_SET) != 0)
                abort();
        return fd;
}

static int apply_buf(const struct kbuf *tar, int rootfd, unsigned flags, char id[KDIGEST_STRLEN],
                     struct kerr **err)
{
        _cleanup_close_ int fd = mem_fd(tar->data, tar->len);

        return image_layer_apply(fd, rootfd, flags, id, err);
}

/* The sample tree, made in one order or the reverse one. */
static void make_tree(int dfd, bool reverse)
{
        for (int step = 0; step < 2; step++) {
                if ((step == 0) != reverse) {
                        mkdirat(dfd, "etc", 0755);
                        put(dfd, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
                        symlinkat("passwd", dfd, "etc/link");
                        mkdirat(dfd, "a", 0700);
                        put(dfd, "a-c", "dash\n", 0600);
                        put(dfd, "a/z", "", 0644);
                        mkfifoat(dfd, "fifo", 0640);
                } else {
                        mkdirat(dfd, "bin", 0755);
                        put(dfd, "bin/a", "#!/bin/sh\necho a\n", 04755);
                        linkat(dfd, "bin/a", dfd, "bin/b", 0);
                        mkdirat(dfd, "dir with space", 0755);
                        put(dfd, "dir with space/f", "x", 0644);
                        mkdirat(dfd, "z", 0755);
                        mkdirat(dfd, "z/deep", 0755);
                        put(dfd, "z/deep/file", "deep", 0400);
                }
        }
        if (fchownat(dfd, "etc/passwd", 1000, 1000, 0) < 0 ||
            fchownat(dfd, "etc/link", 1000, 1000, AT_SYMLINK_NOFOLLOW) < 0)
                abort();
        /* chown cleared the set-user-id bit of bin/a; put it back */
        if (fchmodat(dfd, "bin/a", 04755, 0) < 0)
                abort();
        {
                int fd = openat(dfd, "etc/passwd", O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fsetxattr(fd, "user.kiln.test", "v1", 2, 0) < 0 ||
                    fsetxattr(fd, "user.overlay.foo", "no", 2, 0) < 0)
                        abort();
                kfs_close(fd);
        }
}

/* Each directory's names sorted bytewise, depth first (as Go's filepath.Walk): "a" sorts
 * before "a-c", so "a/z" comes before "a-c". */
static const char tree_names[] = "a/\n"
                                 "a/z\n"
                                 "a-c\n"
                                 "bin/\n"
                                 "bin/a\n"
                                 "bin/b\n"
                                 "dir with space/\n"
                                 "dir with space/f\n"
                                 "etc/\n"
                                 "etc/link\n"
                                 "etc/passwd\n"
                                 "fifo\n"
                                 "z/\n"
                                 "z/deep/\n"
                                 "z/deep/file\n";

static char *write_file(const char *dir, const char *name, const struct kbuf *b)
{
        struct kbuf p = KBUF_INIT;
        int fd;

        kbuf_printf(&p, "%s/%s", dir, name);
        fd = open(p.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || kfs_write_all(fd, b->data, b->len) < 0)
                abort();
        kfs_close(fd);
        return kbuf_detach(&p);
}

TEST(deterministic_whatever_the_creation_order)
{
        int fa, fb;
        _cleanup_free_ char *pa = scratch(&fa);
        _cleanup_free_ char *pb = scratch(&fb);
        struct kbuf ta = KBUF_INIT, ta2 = KBUF_INIT, tb = KBUF_INIT;
        char ia[KDIGEST_STRLEN], ia2[KDIGEST_STRLEN], ib[KDIGEST_STRLEN];

        make_tree(fa, false);
        make_tree(fb, true);
        CHECK(tar_tree(fa, T_CLAMP, &ta, ia));
        CHECK(tar_tree(fa, T_CLAMP, &ta2, ia2));
        CHECK(tar_tree(fb, T_CLAMP, &tb, ib));
        CHECK_STREQ(ia, ia2);
        CHECK_STREQ(ia, ib);
        CHECK(ta.len == tb.len && memcmp(ta.data, tb.data, ta.len) == 0);
        /* No padding after the two zero blocks. */
        CHECK(ta.len % 512 == 0);
        CHECK(ta.len >= 1024 && memcmp(ta.data + ta.len - 1024, (char[1024]){0}, 1024) == 0);
        kbuf_release(&ta);
        kbuf_release(&ta2);
        kbuf_release(&tb);
        kfs_close(fa);
        kfs_close(fb);
        remove_tree(pa);
        remove_tree(pb);
}

TEST(gnu_tar_reads_the_stream)
{
        int fd, sfd;
        _cleanup_free_ char *dir = scratch(&fd);
        _cleanup_free_ char *store = scratch(&sfd);
        struct kbuf t = KBUF_INIT, cmd = KBUF_INIT;
        char id[KDIGEST_STRLEN];
        _cleanup_free_ char *file = NULL, *names = NULL, *verbose = NULL, *xattrs = NULL;

        make_tree(fd, false);
        CHECK(tar_tree(fd, T_CLAMP, &t, id));
        file = write_file(store, "layer.tar", &t);
        kbuf_printf(&cmd, "tar -tf %s", file);
        names = run(cmd.data);
        CHECK_STREQ(names, tree_names);
        kbuf_truncate(&cmd, 0);
        kbuf_printf(&cmd, "TZ=UTC tar --numeric-owner -tvf %s", file);
        verbose = run(cmd.data);
        CHECK(verbose != NULL);
        if (verbose) {
                CHECK(strstr(verbose,
                             "-rw-r--r-- 1000/1000        26 2023-11-14 22:13 etc/passwd\n"));
                CHECK(strstr(
                        verbose,
                        "lrwxrwxrwx 1000/1000         0 2023-11-14 22:13 etc/link -> passwd\n"));
                CHECK(strstr(verbose, "-rwsr-xr-x 0/0              17 2023-11-14 22:13 bin/a\n"));
                CHECK(strstr(
                        verbose,
                        "hrwsr-xr-x 0/0               0 2023-11-14 22:13 bin/b link to bin/a\n"));
                CHECK(strstr(verbose, "prw-r----- 0/0               0 2023-11-14 22:13 fifo\n"));
                CHECK(strstr(verbose, "drwx------ 0/0               0 2023-11-14 22:13 a/\n"));
        }
        kbuf_truncate(&cmd, 0);
        kbuf_printf(&cmd, "tar --xattrs --xattrs-include='*' -tvvf %s 2>&1", file);
        xattrs = run(cmd.data);
        CHECK(xattrs && strstr(xattrs, "x: 2 user.kiln.test\n"));
        CHECK(xattrs && !strstr(xattrs, "user.overlay"));
        /* Owner names are never recorded, nor access or change times. */
        CHECK(!memmem(t.data, t.len, "uname", 5));
        CHECK(!memmem(t.data, t.len, "gname", 5));
        CHECK(!memmem(t.data, t.len, "atime", 5));
        CHECK(!memmem(t.data, t.len, "ctime", 5));
        kbuf_release(&t);
        kbuf_release(&cmd);
        kfs_close(fd);
        kfs_close(sfd);
        remove_tree(dir);
        remove_tree(store);
}

TEST(mtime_clamp)
{
        int fd;
        _cleanup_free_ char *dir = scratch(&fd);
        struct kbuf t1 = KBUF_INIT, t2 = KBUF_INIT;
        char i1[KDIGEST_STRLEN], i2[KDIGEST_STRLEN];
        struct timespec old[2] = {{500, 0}, {500, 0}};

        put(fd, "new", "n", 0644);
        put(fd, "old", "o", 0644);
        CHECK(utimensat(fd, "old", old, 0) == 0);
        CHECK(tar_tree(fd, 1000, &t1, i1));
        /* Without a clamp, "new" keeps today's time and the stream differs. */
        CHECK(tar_tree(fd, -1, &t2, i2));
        CHECK(strcmp(i1, i2) != 0);
        {
                int rfd;
                _cleanup_free_ char *root = scratch(&rfd);
                _cleanup_kerr_ struct kerr *err = NULL;
                struct stat st;

                CHECK(apply_buf(&t1, rfd, 0, NULL, &err) == 0);
                CHECK(fstatat(rfd, "new", &st, 0) == 0 && st.st_mtime == 1000);
                CHECK(fstatat(rfd, "old", &st, 0) == 0 && st.st_mtime == 500);
                kfs_close(rfd);
                remove_tree(root);
        }
        kbuf_release(&t1);
        kbuf_release(&t2);
        kfs_close(fd);
        remove_tree(dir);
}

TEST(round_trip_keeps_everything)
{
        int fa, fb;
        _cleanup_free_ char *pa = scratch(&fa);
        _cleanup_free_ char *pb = scratch(&fb);
        struct kbuf ta = KBUF_INIT, tb = KBUF_INIT;
        char ia[KDIGEST_STRLEN], applied[KDIGEST_STRLEN], ib[KDIGEST_STRLEN];
        _cleanup_kerr_ struct kerr *err = NULL;
        struct stat st, st2;
        char v[16];
        ssize_t k;

        make_tree(fa, false);
        CHECK(tar_tree(fa, T_CLAMP, &ta, ia));
        CHECK(apply_buf(&ta, fb, IMAGE_APPLY_OVERLAY, applied, &err) == 0);
        CHECK_STREQ(applied, ia);
        CHECK(tar_tree(fb, T_CLAMP, &tb, ib));
        CHECK_STREQ(ib, ia);

        /* owners, modes, hard links, xattrs, types */
        CHECK(fstatat(fb, "etc/passwd", &st, AT_SYMLINK_NOFOLLOW) == 0);
        CHECK_INTEQ(st.st_uid, 1000);
        CHECK_INTEQ(st.st_gid, 1000);
        CHECK_INTEQ(st.st_mode & 07777, 0644);
        CHECK(fstatat(fb, "bin/a", &st, AT_SYMLINK_NOFOLLOW) == 0);
        CHECK_INTEQ(st.st_mode & 07777, 04755);
        CHECK(fstatat(fb, "bin/b", &st2, AT_SYMLINK_NOFOLLOW) == 0);
        CHECK(st.st_ino == st2.st_ino && st.st_nlink == 2);
        CHECK(fstatat(fb, "a", &st, AT_SYMLINK_NOFOLLOW) == 0);
        CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
        CHECK_INTEQ(st.st_mtime, T_CLAMP);
        CHECK(fstatat(fb, "fifo", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO(st.st_mode));
        CHECK(fstatat(fb, "etc/link", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode));
        CHECK_INTEQ(st.st_uid, 1000);
        {
                int fd = openat(fb, "etc/passwd", O_RDONLY | O_CLOEXEC);
                k = fgetxattr(fd, "user.kiln.test", v, sizeof(v));
                CHECK(k == 2 && memcmp(v, "v1", 2) == 0);
                CHECK(fgetxattr(fd, "user.overlay.foo", v, sizeof(v)) < 0);
                kfs_close(fd);
        }
        kbuf_release(&ta);
        kbuf_release(&tb);
        kfs_close(fa);
        kfs_close(fb);
        remove_tree(pa);
        remove_tree(pb);
}

TEST(no_owners_flag)
{
        int fa, fb;
        _cleanup_free_ char *pa = scratch(&fa);
        _cleanup_free_ char *pb = scratch(&fb);
        struct kbuf ta = KBUF_INIT;
        char ia[KDIGEST_STRLEN];
        _cleanup_kerr_ struct kerr *err = NULL;
        struct stat st;

        make_tree(fa, false);
        CHECK(tar_tree(fa, T_CLAMP, &ta, ia));
        CHECK(apply_buf(&ta, fb, IMAGE_APPLY_NO_OWNERS, NULL, &err) == 0);
        CHECK(fstatat(fb, "etc/passwd", &st, 0) == 0);
        CHECK_INTEQ(st.st_uid, getuid());
        CHECK_INTEQ(st.st_mode & 07777, 0644);
        kbuf_release(&ta);
        kfs_close(fa);
        kfs_close(fb);
        remove_tree(pa);
        remove_tree(pb);
}

TEST(compressed_layers_give_the_tar_diff_id)
{
        static const enum image_compression kinds[] = {IMAGE_COMPRESSION_GZIP,
                                                       IMAGE_COMPRESSION_ZSTD};
        int fa;
        _cleanup_free_ char *pa = scratch(&fa);
        struct kbuf ta = KBUF_INIT;
        char ia[KDIGEST_STRLEN];

        make_tree(fa, false);
        CHECK(tar_tree(fa, T_CLAMP, &ta, ia));
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
                struct kbuf z = KBUF_INIT;
                _cleanup_kerr_ struct kerr *err = NULL;
                struct image_compressor *c =
                        image_compressor_new(kinds[i], 0, 2, buf_sink, &z, &err);
                int rfd;
                _cleanup_free_ char *root = scratch(&rfd);
                char got[KDIGEST_STRLEN] = "";
                struct stat st;

                CASE("compression %d", (int)kinds[i]);
                CHECK(c && image_compressor_write(c, ta.data, ta.len, &err) == 0);
                CHECK(c && image_compressor_finish(c, &err) == 0);
                image_compressor_free(c);
                CHECK(apply_buf(&z, rfd, 0, got, &err) == 0);
                CHECK_STREQ(got, ia);
                CHECK(fstatat(rfd, "z/deep/file", &st, 0) == 0 && st.st_size == 4);
                kbuf_release(&z);
                kfs_close(rfd);
                remove_tree(root);
        }
        kbuf_release(&ta);
        kfs_close(fa);
        remove_tree(pa);
}

static bool is_whiteout(int dfd, const char *name)
{
        struct stat st;

        return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) &&
               st.st_rdev == makedev(0, 0);
}

static bool is_opaque(int dfd, const char *name)
{
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char v[4];
        bool ok;

        if (fd < 0)
                return false;
        ok = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
        kfs_close(fd);
        return ok;
}

TEST(whiteouts_and_opaque_dirs)
{
        int fa, fb, fc;
        _cleanup_free_ char *pa = scratch(&fa);
        _cleanup_free_ char *pb = scratch(&fb);
        _cleanup_free_ char *pc = scratch(&fc);
        struct kbuf ta = KBUF_INIT, tb = KBUF_INIT, cmd = KBUF_INIT;
        char ia[KDIGEST_STRLEN], ib[KDIGEST_STRLEN];
        _cleanup_kerr_ struct kerr *err = NULL;
        _cleanup_free_ char *file = NULL, *names = NULL;
        struct stat st;

        /* An upper dir: "gone" and "etc/old" deleted, "opq" replaced wholesale. */
        CHECK(mknodat(fa, "gone", S_IFCHR | 0, makedev(0, 0)) == 0);
        mkdirat(fa, "etc", 0755);
        CHECK(mknodat(fa, "etc/old", S_IFCHR | 0, makedev(0, 0)) == 0);
        mkdirat(fa, "opq", 0750);
        put(fa, "opq/new", "new", 0644);
        {
                int d = openat(fa, "opq", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                CHECK(fsetxattr(d, "trusted.overlay.opaque", "y", 1, 0) == 0);
                kfs_close(d);
        }
        CHECK(tar_tree(fa, T_CLAMP, &ta, ia));
        file = write_file(pc, "layer.tar", &ta);
        kbuf_printf(&cmd, "tar -tf %s", file);
        names = run(cmd.data);
        CHECK_STREQ(names, "etc/\netc/.wh.old\n.wh.gone\nopq/\nopq/.wh..wh..opq\nopq/new\n");

        /* Applied as a layer dir: overlay whiteouts again, and the same stream. */
        CHECK(apply_buf(&ta, fb, IMAGE_APPLY_OVERLAY, NULL, &err) == 0);
        CHECK(is_whiteout(fb, "gone"));
        CHECK(is_whiteout(fb, "etc/old"));
        CHECK(is_opaque(fb, "opq"));
        CHECK(tar_tree(fb, T_CLAMP, &tb, ib));
        CHECK_STREQ(ib, ia);

        /* Flattened onto a rootfs: whiteouts delete, the opaque dir loses the lower files. */
        put(fc, "gone", "lower", 0644);
        mkdirat(fc, "etc", 0755);
        mkdirat(fc, "etc/old", 0755);
        put(fc, "etc/old/f", "lower", 0644);
        put(fc, "etc/keep", "lower", 0644);
        mkdirat(fc, "opq", 0755);
        put(fc, "opq/lower", "lower", 0644);
        mkdirat(fc, "opq/sub", 0755);
        put(fc, "opq/sub/f", "lower", 0644);
        CHECK(apply_buf(&ta, fc, 0, NULL, &err) == 0);
        CHECK(fstatat(fc, "gone", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        CHECK(fstatat(fc, "etc/old", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        CHECK(fstatat(fc, "etc/keep", &st, 0) == 0);
        CHECK(fstatat(fc, "opq/lower", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        CHECK(fstatat(fc, "opq/sub", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        CHECK(fstatat(fc, "opq/new", &st, 0) == 0 && st.st_size == 3);
        CHECK(!is_opaque(fc, "opq"));
        CHECK(fstatat(fc, "opq", &st, 0) == 0 && (st.st_mode & 07777) == 0750);

        kbuf_release(&ta);
        kbuf_release(&tb);
        kbuf_release(&cmd);
        kfs_close(fa);
        kfs_close(fb);
        kfs_close(fc);
        remove_tree(pa);
        remove_tree(pb);
        remove_tree(pc);
}

/* ---- hostile layers, made with python's tarfile ---- */

static const char pyscript[] =
        "import io, sys, tarfile\n"
        "case, out = sys.argv[1], sys.argv[2]\n"
        "t = tarfile.open(out, 'w', format=tarfile.PAX_FORMAT)\n"
        "def f(name, data=b'evil'):\n"
        "    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644\n"
        "    t.addfile(ti, io.BytesIO(data))\n"
        "def ln(name, target, kind=tarfile.SYMTYPE):\n"
        "    ti = tarfile.TarInfo(name); ti.type = kind; ti.linkname = target\n"
        "    t.addfile(ti)\n"
        "def d(name):\n"
        "    ti = tarfile.TarInfo(name); ti.type = tarfile.DIRTYPE; ti.mode = 0o755\n"
        "    t.addfile(ti)\n"
        "outside = sys.argv[3]\n"
        "if case == 'dotdot': f('../../evil')\n"
        "elif case == 'dotdot-inner': d('a'); f('a/../../evil')\n"
        "elif case == 'absolute': f('/abs-evil')\n"
        "elif case == 'symlink-abs': ln('a', outside); f('a/secret')\n"
        "elif case == 'symlink-etc': d('etc'); ln('a', '/etc'); f('a/passwd')\n"
        "elif case == 'symlink-up': ln('a', '../../..'); f('a/x')\n"
        "elif case == 'symlink-dir-up': ln('a', '../../outside'); f('a/secret')\n"
        "elif case == 'hardlink-up': ln('h', '../../outside/secret', tarfile.LNKTYPE)\n"
        "elif case == 'hardlink-abs': ln('h', outside + '/secret', tarfile.LNKTYPE)\n"
        "elif case == 'hardlink-via-symlink':\n"
        "    ln('s', outside); ln('h', 's/secret', tarfile.LNKTYPE)\n"
        "elif case == 'symlink-then-dir': ln('a', outside); d('a'); f('a/secret')\n"
        "elif case == 'long': d('d'); f('d/' + 'x' * 150, b'long')\n"
        "elif case == 'opaque-order':\n"
        "    d('o'); f('o/mine', b'mine'); f('o/.wh..wh..opq', b'')\n"
        "t.close()\n";

struct hostile {
        const char *name;
        bool refused;
        const char *message; /* a part of the error, when refused */
        const char *inside;  /* a file that must exist in the root afterwards */
};

static const struct hostile hostiles[] = {
        {"dotdot", true, "layer entry '../../evil' leaves the root", NULL},
        {"dotdot-inner", true, "layer entry 'a/../../evil' leaves the root", NULL},
        {"absolute", true, "layer entry '/abs-evil' leaves the root", NULL},
        {"symlink-abs", true, "layer entry 'a/secret'", NULL},
        {"symlink-etc", false, NULL, "etc/passwd"},
        {"symlink-up", false, NULL, "x"},
        /* resolved inside the root, where the target does not exist */
        {"symlink-dir-up", true, "layer entry 'a/secret'", NULL},
        {"hardlink-up", true, "layer entry 'h' links to '../../outside/secret', outside the root",
         NULL},
        {"hardlink-abs", true, "layer entry 'h' links to", NULL},
        {"hardlink-via-symlink", true, "layer entry 'h'", NULL},
        {"symlink-then-dir", false, NULL, "a/secret"},
        {"long", false, NULL,
         "d/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
};

/* A listing of everything under dfd with sizes and link counts. */
static char *snapshot(const char *path)
{
        struct kbuf cmd = KBUF_INIT;
        char *out;

        kbuf_printf(&cmd, "cd %s && find . -printf '%%p %%y %%s %%n %%U\\n' | sort", path);
        out = run(cmd.data);
        kbuf_release(&cmd);
        return out;
}

TEST(hostile_layers_stay_inside)
{
        int tfd;
        _cleanup_free_ char *top = scratch(&tfd);
        struct kbuf b = KBUF_INIT;
        _cleanup_free_ char *script = NULL, *outside = NULL;
        struct kbuf empty = KBUF_INIT;

        /* top/outside/secret is what an escape would reach; roots are top/r/N/root, so
         * "../../evil" from a root lands in top/r. */
        kbuf_append(&empty, pyscript, strlen(pyscript));
        script = write_file(top, "mk.py", &empty);
        kbuf_release(&empty);
        mkdirat(tfd, "outside", 0755);
        put(tfd, "outside/secret", "secret", 0600);
        mkdirat(tfd, "r", 0755);
        kbuf_printf(&b, "%s/outside", top);
        outside = kbuf_detach(&b);

        for (size_t i = 0; i < ARRAY_SIZE(hostiles); i++) {
                const struct hostile *h = &hostiles[i];
                _cleanup_free_ char *before = NULL, *after = NULL, *cmd = NULL, *dir = NULL;
                _cleanup_free_ char *tarpath = NULL;
                _cleanup_kerr_ struct kerr *err = NULL;
                _cleanup_close_ int rootfd = -1, lfd = -1;
                struct stat st;
                int r;

                CASE("%s", h->name);
                kbuf_printf(&b, "%s/r/%zu", top, i);
                dir = kbuf_detach(&b);
                CHECK(mkdir(dir, 0755) == 0);
                kbuf_printf(&b, "%s/root", dir);
                CHECK(mkdir(b.data, 0755) == 0);
                rootfd = open(b.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                kbuf_truncate(&b, 0);
                kbuf_printf(&b, "%s/layer-%zu.tar", top, i);
                tarpath = kbuf_detach(&b);
                kbuf_printf(&b, "python3 %s %s %s %s", script, h->name, tarpath, outside);
                cmd = kbuf_detach(&b);
                CHECK(system(cmd) == 0);
                before = snapshot(top);
                lfd = open(tarpath, O_RDONLY | O_CLOEXEC);
                r = image_layer_apply(lfd, rootfd, 0, NULL, &err);
                after = snapshot(top);
                /* the only change anywhere is inside the root */
                CHECK(before && after);
                if (before && after) {
                        struct kbuf f = KBUF_INIT;
                        _cleanup_free_ char *a2 = NULL, *filt = NULL;

                        kbuf_printf(&f,
                                    "cd %s && find . -path ./r/%zu/root -prune -o -printf "
                                    "'%%p %%y %%s %%n %%U\\n' | sort",
                                    top, i);
                        filt = kbuf_detach(&f);
                        a2 = run(filt);
                        CHECK(a2 != NULL);
                        /* Every line outside the root was there before, unchanged. */
                        for (char *l = a2; l && *l;) {
                                char *nl = strchr(l, '\n');
                                size_t len = nl ? (size_t)(nl - l) : strlen(l);
                                _cleanup_free_ char *line = kstrndup(l, len);
                                bool seen = strstr(before, line) != NULL;

                                if (!seen && strncmp(line, "./r/", 4) != 0)
                                        printf("# new outside the root: %s\n", line);
                                CHECK(seen || strncmp(line, "./r ", 4) == 0 ||
                                      strncmp(line, "./r/", 4) == 0);
                                l = nl ? nl + 1 : l + len;
                        }
                }
                CHECK(fstatat(tfd, "r/evil", &st, AT_SYMLINK_NOFOLLOW) < 0);
                CHECK(fstatat(tfd, "r/abs-evil", &st, AT_SYMLINK_NOFOLLOW) < 0);
                CHECK(fstatat(tfd, "outside/secret", &st, 0) == 0 && st.st_nlink == 1 &&
                      st.st_size == 6);
                CHECK(fstatat(tfd, "outside/x", &st, AT_SYMLINK_NOFOLLOW) < 0);
                if (h->refused) {
                        CHECK(r < 0);
                        CHECK(err && strstr(err->msg, h->message));
                        if (err && h->message[0] && strstr(h->message, "leaves"))
                                CHECK(err->code == KERR_INVALID);
                        if (err && !strstr(err->msg, h->message))
                                printf("# %s\n", err->msg);
                } else {
                        CHECK(r == 0);
                        if (r < 0)
                                printf("# %s\n", err && err->msg ? err->msg : "?");
                        CHECK(fstatat(rootfd, h->inside, &st, AT_SYMLINK_NOFOLLOW) == 0);
                }
        }
        kbuf_release(&b);
        kfs_close(tfd);
        remove_tree(top);
}

TEST(opaque_marker_keeps_this_layers_files)
{
        int tfd;
        _cleanup_free_ char *top = scratch(&tfd);
        struct kbuf b = KBUF_INIT;
        _cleanup_free_ char *script = NULL, *tarpath = NULL;
        _cleanup_kerr_ struct kerr *err = NULL;
        _cleanup_close_ int lfd = -1, rootfd = -1;
        struct stat st;

        kbuf_append(&b, pyscript, strlen(pyscript));
        script = write_file(top, "mk.py", &b);
        kbuf_release(&b);
        mkdirat(tfd, "root", 0755);
        mkdirat(tfd, "root/o", 0755);
        put(tfd, "root/o/lower", "lower", 0644);
        rootfd = openat(tfd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        kbuf_printf(&b, "%s/l.tar", top);
        tarpath = kbuf_detach(&b);
        kbuf_printf(&b, "python3 %s opaque-order %s /nonexistent", script, tarpath);
        CHECK(system(b.data) == 0);
        kbuf_release(&b);
        lfd = open(tarpath, O_RDONLY | O_CLOEXEC);
        CHECK(image_layer_apply(lfd, rootfd, 0, NULL, &err) == 0);
        CHECK(fstatat(rootfd, "o/mine", &st, 0) == 0);
        CHECK(fstatat(rootfd, "o/lower", &st, 0) < 0 && errno == ENOENT);
        kfs_close(tfd);
        remove_tree(top);
}

TEST(corrupt_streams_fail)
{
        int rfd;
        _cleanup_free_ char *root = scratch(&rfd);
        struct kbuf junk = KBUF_INIT;
        _cleanup_kerr_ struct kerr *err = NULL;

        kbuf_puts(&junk, "\x1f\x8b\x08\x00garbage that is not gzip at all");
        CHECK(apply_buf(&junk, rfd, 0, NULL, &err) < 0);
        CHECK(err && err->msg && strstr(err->msg, "read layer"));
        kbuf_release(&junk);
        kfs_close(rfd);
        remove_tree(root);
}

TEST(gnu_tar_layers_apply_with_the_right_diff_id)
{
        int tfd, rfd;
        _cleanup_free_ char *top = scratch(&tfd);
        _cleanup_free_ char *root = scratch(&rfd);
        struct kbuf cmd = KBUF_INIT;
        _cleanup_free_ char *want = NULL;
        _cleanup_kerr_ struct kerr *err = NULL;
        _cleanup_close_ int lfd = -1;
        char got[KDIGEST_STRLEN] = "";
        struct stat st;

        /* GNU tar pads to 10240 bytes past the end-of-archive blocks: the diff_id covers
         * those zeros too, as it is the sha256 of the whole uncompressed stream. */
        mkdirat(tfd, "src", 0755);
        mkdirat(tfd, "src/usr", 0755);
        put(tfd, "src/usr/hello", "hello\n", 0755);
        kbuf_printf(&cmd,
                    "cd %s && tar --format=gnu -C src -czf l.tgz usr && gzip -dc l.tgz | "
                    "sha256sum | cut -c1-64",
                    top);
        want = run(cmd.data);
        CHECK(want && strlen(want) == 65);
        kbuf_truncate(&cmd, 0);
        kbuf_printf(&cmd, "%s/l.tgz", top);
        lfd = open(cmd.data, O_RDONLY | O_CLOEXEC);
        CHECK(lfd >= 0);
        CHECK(image_layer_apply(lfd, rfd, 0, got, &err) == 0);
        CHECK(want && strncmp(got + 7, want, 64) == 0);
        CHECK(fstatat(rfd, "usr/hello", &st, 0) == 0 && (st.st_mode & 07777) == 0755);
        kbuf_release(&cmd);
        kfs_close(tfd);
        kfs_close(rfd);
        remove_tree(top);
        remove_tree(root);
}
