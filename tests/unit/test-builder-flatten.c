/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/sandbox.h"
#include "builder/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"
#include "tap.h"

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
        char cmd[4096];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        return system(cmd);
}

static char *tmp_base(void)
{
        char *b = strdup("/tmp/kiln-test-flatten-XXXXXX");

        if (!b || !mkdtemp(b))
                abort();
        return b;
}

static int dir_at(const char *base, const char *name)
{
        char p[512];

        snprintf(p, sizeof(p), "%s/%s", base, name);
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                abort();
        return open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void put(int dirfd, const char *path, const char *data, mode_t mode)
{
        char *dir = strdup(path);
        char *slash = strrchr(dir, '/');
        int fd;

        if (slash) {
                *slash = '\0';
                kfs_mkdir_p(dirfd, dir, 0755, NULL);
        }
        free(dir);
        fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || write(fd, data, strlen(data)) < 0)
                abort();
        fchmod(fd, mode);
        close(fd);
}

static char *get(int dirfd, const char *path)
{
        struct kbuf b = KBUF_INIT;

        if (kfs_read_file(dirfd, path, 0, &b, NULL) < 0) {
                kbuf_release(&b);
                return NULL;
        }
        return kbuf_detach(&b);
}

static bool has(int dirfd, const char *path)
{
        struct stat st;

        return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static struct stat stat_of(int dirfd, const char *path)
{
        struct stat st;

        memset(&st, 0xff, sizeof(st));
        fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW);
        return st;
}

static char *link_of(int dirfd, const char *path)
{
        static char buf[256];
        ssize_t n = readlinkat(dirfd, path, buf, sizeof(buf) - 1);

        if (n < 0)
                return NULL;
        buf[n] = '\0';
        return buf;
}

static int xattr_of(int dirfd, const char *path, const char *name, char *buf, size_t size)
{
        int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -1;
        n = fgetxattr(fd, name, buf, size - 1);
        close(fd);
        if (n < 0)
                return -1;
        buf[n] = '\0';
        return (int)n;
}

static void set_xattr(int dirfd, const char *path, const char *name, const void *v, size_t n)
{
        int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0 || fsetxattr(fd, name, v, n, 0) < 0)
                abort();
        close(fd);
}

/* Counts what a merged tree must never hold: whiteouts and overlay xattrs. */
static size_t overlay_marks(int dirfd)
{
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        DIR *d = fdopendir(fd);
        struct dirent *de;
        size_t n = 0;
        char v[8];

        if (fgetxattr(dirfd, "trusted.overlay.opaque", v, sizeof(v)) >= 0 ||
            fgetxattr(dirfd, "user.overlay.opaque", v, sizeof(v)) >= 0)
                n++;
        rewinddir(d);
        while ((de = readdir(d))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
                        n++;
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd, de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        n += overlay_marks(sub);
                        close(sub);
                }
        }
        closedir(d);
        return n;
}

#define CHECK_FILE(dirfd, path, want)                                                              \
        ({                                                                                         \
                char *_g = get(dirfd, path);                                                       \
                CHECK_STREQ(_g, want);                                                             \
                free(_g);                                                                          \
        })

/* The depth rule for a limit of max lowers, with steps of step layers. */
static void check_depth_rule(size_t max, size_t step)
{
        bool fits = true, steps = true, shallow = true;

        CASE("stacks that fit are left alone (max %zu)", max);
        CHECK_INTEQ(builder_flat_depth_for(0, max), 0);
        CHECK_INTEQ(builder_flat_depth_for(max, max), 0);
        CASE("deeper ones flatten whole steps (max %zu)", max);
        CHECK_INTEQ(builder_flat_depth_for(max + 1, max), step);
        CASE("what is left always fits, and steps are shared (max %zu)", max);
        for (size_t n = max + 1; n < 5000; n++) {
                size_t k = builder_flat_depth_for(n, max);

                fits &= 1 + n - k <= max;
                steps &= k % step == 0;
                /* One more layer moves the flat part only at a step's end. */
                shallow &= builder_flat_depth_for(n + 1, max) == k ||
                           builder_flat_depth_for(n + 1, max) == k + step;
        }
        CHECK(fits);
        CHECK(steps);
        CHECK(shallow);
}

TEST(flat_depth)
{
        check_depth_rule(BUILDER_FLAT_MAX_LOWERS, BUILDER_FLAT_STEP);
        CHECK_INTEQ(builder_flat_depth_for(520, BUILDER_FLAT_MAX_LOWERS), 448);
        CHECK_INTEQ(builder_flat_depth_for(600, BUILDER_FLAT_MAX_LOWERS), 512);
        CASE("a limit above 128 still flattens at 128 (the new mount API's 500)");
        CHECK_INTEQ(builder_flat_depth_for(129, 500), BUILDER_FLAT_STEP);
        /* mount(2) before Linux 6.8 takes one page of options. */
        check_depth_rule(SANDBOX_LEGACY_MAX_LOWERS, SANDBOX_LEGACY_MAX_LOWERS / 2);
        CASE("the limit here is the sandbox's, at most 128");
        CHECK_INTEQ(builder_flat_max_lowers(),
                    sandbox_overlay_max_lowers() < BUILDER_FLAT_MAX_LOWERS
                            ? sandbox_overlay_max_lowers()
                            : BUILDER_FLAT_MAX_LOWERS);
}

/* Two layers in overlay format, as RUN and COPY leave them, and an outside directory that
 * a symlink in them points to. */
static void make_layers(const char *base, int l1, int l2)
{
        static const char cap[20] = {0x00, 0x00, 0x00, 0x02, 0x00, 0x20}; /* cap_net_raw */
        struct timespec ts[2] = {{.tv_sec = 1000000}, {.tv_sec = 1000000}};

        /* The bottom layer. */
        put(l1, "a/x", "x\n", 0644);
        put(l1, "a/gone", "gone\n", 0644);
        put(l1, "d/old/f", "old\n", 0644);
        put(l1, "hl1", "linked\n", 0640);
        if (linkat(l1, "hl1", l1, "hl2", 0) < 0)
                abort();
        put(l1, "suid", "#!/bin/sh\n", 04755);
        put(l1, "cap", "cap\n", 0755);
        set_xattr(l1, "cap", "security.capability", cap, sizeof(cap));
        set_xattr(l1, "cap", "user.note", "kept", 4);
        put(l1, "tofile/sub", "was a dir\n", 0644);
        put(l1, "todir", "was a file\n", 0644);
        if (symlinkat("/", l1, "escape") < 0 || symlinkat("../../../..", l1, "climb") < 0)
                abort();
        if (fchownat(l1, "a/x", 123, 456, 0) < 0 || fchownat(l1, "a", 7, 8, 0) < 0)
                abort();
        if (mknodat(l1, "fifo", S_IFIFO | 0600, 0) < 0 ||
            mknodat(l1, "pipe", S_IFIFO | 0640, 0) < 0 || symlinkat("a/x", l1, "rel") < 0 ||
            fchownat(l1, "rel", 5, 6, AT_SYMLINK_NOFOLLOW) < 0)
                abort();
        set_xattr(l1, "d", "user.dir", "bottom", 6);
        /* The top layer: deletions, an opaque directory, types changed, writes below
         * names that were symlinks. */
        if (mkdirat(l2, "a", 0750) < 0 || fchownat(l2, "a", 9, 10, 0) < 0)
                abort();
        if (mknodat(l2, "a/gone", S_IFCHR, makedev(0, 0)) < 0)
                abort();
        put(l2, "a/new", "new\n", 0644);
        put(l2, "d/old/g", "new only\n", 0644);
        set_xattr(l2, "d/old", "user.overlay.opaque", "y", 1);
        set_xattr(l2, "d", "user.other", "top", 3);
        put(l2, "tofile", "now a file\n", 0644);
        put(l2, "todir/f", "now a dir\n", 0644);
        put(l2, "escape/etc/evil", "must stay in the tree\n", 0644);
        put(l2, "climb/evil", "must stay in the tree\n", 0644);
        if (mknodat(l2, "fifo", S_IFCHR, makedev(0, 0)) < 0)
                abort();
        utimensat(l2, "a", ts, AT_SYMLINK_NOFOLLOW);
        (void)base;
}

static void check_tree(int out, int l1, bool linked)
{
        struct stat x = stat_of(out, "a/x"), h1 = stat_of(out, "hl1"), h2 = stat_of(out, "hl2");
        struct stat a = stat_of(out, "a");
        char v[64];

        CASE("files of both layers");
        CHECK_FILE(out, "a/x", "x\n");
        CHECK_FILE(out, "a/new", "new\n");
        CASE("a whiteout deletes");
        CHECK(!has(out, "a/gone"));
        CHECK(!has(out, "fifo"));
        CASE("an opaque directory holds only the new");
        CHECK(!has(out, "d/old/f"));
        CHECK_FILE(out, "d/old/g", "new only\n");
        CASE("no whiteout, no overlay xattr is left");
        CHECK_INTEQ(overlay_marks(out), 0);
        CASE("a directory takes the top layer's owner, mode, times and xattrs");
        CHECK_INTEQ(a.st_uid, 9);
        CHECK_INTEQ(a.st_gid, 10);
        CHECK_INTEQ(a.st_mode & 07777, 0750);
        CHECK_INTEQ(a.st_mtim.tv_sec, 1000000);
        CHECK(xattr_of(out, "d", "user.dir", v, sizeof(v)) < 0);
        CHECK(xattr_of(out, "d", "user.other", v, sizeof(v)) == 3 && strcmp(v, "top") == 0);
        CASE("files keep owners, modes, set-id bits, capabilities, xattrs");
        CHECK_INTEQ(x.st_uid, 123);
        CHECK_INTEQ(x.st_gid, 456);
        CHECK_INTEQ(stat_of(out, "suid").st_mode & 07777, 04755);
        CHECK(xattr_of(out, "cap", "security.capability", v, sizeof(v)) == 20);
        CHECK(xattr_of(out, "cap", "user.note", v, sizeof(v)) == 4 && strcmp(v, "kept") == 0);
        CASE("hard links stay hard links");
        CHECK(h1.st_ino == h2.st_ino);
        CHECK_INTEQ(h1.st_mode & 07777, 0640);
        CASE("types replaced both ways");
        CHECK_FILE(out, "tofile", "now a file\n");
        CHECK_FILE(out, "todir/f", "now a dir\n");
        CASE("fifos and symlinks, with their owners");
        CHECK(S_ISFIFO(stat_of(out, "pipe").st_mode));
        CHECK_INTEQ(stat_of(out, "pipe").st_mode & 07777, 0640);
        CHECK_STREQ(link_of(out, "rel"), "a/x");
        CHECK_INTEQ(stat_of(out, "rel").st_uid, 5);
        CASE("symlinks are kept and never followed");
        CHECK_STREQ(link_of(out, "climb") ? "link" : "dir", "dir");
        CHECK_FILE(out, "escape/etc/evil", "must stay in the tree\n");
        CHECK_FILE(out, "climb/evil", "must stay in the tree\n");
        CASE("files are the layers' own or copies of them");
        if (linked)
                CHECK(x.st_ino == stat_of(l1, "a/x").st_ino);
        else
                CHECK(x.st_ino != stat_of(l1, "a/x").st_ino);
}

static void flatten_case(bool copy)
{
        char *base = tmp_base();
        int l1 = dir_at(base, "l1"), l2 = dir_at(base, "l2"), out = dir_at(base, "out");
        int fds[2] = {l1, l2};
        struct kerr *err = NULL;
        int r;

        if (geteuid() != 0) {
                sh("rm -rf '%s'", base);
                free(base);
                SKIP("owners and whiteouts need root");
        }
        make_layers(base, l1, l2);
        r = builder_flatten(fds, 2, out, copy ? BUILDER_FLATTEN_COPY : 0, &err);
        CASE("flattens");
        CHECK(r == 0);
        if (err)
                tap_check(false, __FILE__, __LINE__, "%s", err->msg);
        check_tree(out, l1, !copy);
        CASE("nothing is written outside the tree");
        CHECK(access("/etc/evil", F_OK) < 0);
        kerr_free(err);
        close(l1);
        close(l2);
        close(out);
        sh("rm -rf '%s'", base);
        free(base);
}

TEST(flatten_links)
{
        flatten_case(false);
}

TEST(flatten_copies)
{
        flatten_case(true);
}

/* An inode at the file system's limit of links: the link fails, the file is copied, and
 * the names already linked to the inode move to the copy. */
TEST(flatten_link_limit)
{
        char *base = tmp_base();
        int l1 = dir_at(base, "l1"), side = dir_at(base, "side"), out = dir_at(base, "out");
        struct kerr *err = NULL;
        char name[32];
        long n = 0;
        struct stat a, b;

        put(l1, "a", "many\n", 0644);
        /* Fill the inode's links up to the limit, keeping room for one. */
        for (; n < 200000; n++) {
                snprintf(name, sizeof(name), "%ld", n);
                if (linkat(l1, "a", side, name, 0) < 0)
                        break;
        }
        if (n == 200000 || errno != EMLINK) {
                close(l1);
                close(side);
                close(out);
                sh("rm -rf '%s'", base);
                free(base);
                SKIP("no link limit within reach on this file system");
        }
        snprintf(name, sizeof(name), "%ld", n - 1);
        unlinkat(side, name, 0);
        unlinkat(side, "0", 0);
        /* a and b in the layer, and one link left to give. */
        if (linkat(l1, "a", l1, "b", 0) < 0)
                abort();
        CASE("flattens");
        CHECK(builder_flatten(&l1, 1, out, 0, &err) == 0);
        a = stat_of(out, "a");
        b = stat_of(out, "b");
        CASE("both names are one copy");
        CHECK(a.st_ino == b.st_ino);
        CHECK(a.st_ino != stat_of(l1, "a").st_ino);
        CHECK_FILE(out, "b", "many\n");
        kerr_free(err);
        close(l1);
        close(side);
        close(out);
        sh("rm -rf '%s'", base);
        free(base);
}

static void digest_of(const char *text, char d[KDIGEST_STRLEN])
{
        if (kdigest_buf(text, strlen(text), d, NULL) < 0)
                abort();
}

/* builder_flat_lowers over a store: the flat tree made once, reused, and gone with its
 * layers when prune collects them. */
TEST(flat_lowers_store)
{
        char *base = tmp_base();
        char root[512], chain[KDIGEST_STRLEN] = "", d[KDIGEST_STRLEN];
        char **chains = calloc(200, sizeof(*chains)), **lowers = NULL;
        struct kerr *err = NULL;
        struct image_store *s;
        size_t n_lowers = 0;
        struct stat st1, st2;
        char *flat;

        snprintf(root, sizeof(root), "%s/store", base);
        s = image_store_open(root, IMAGE_STORE_LEASE, &err);
        if (!s)
                abort();
        for (int i = 0; i < 200; i++) {
                char text[32], *dir = NULL;
                int dfd;

                snprintf(text, sizeof(text), "layer %d", i);
                if (image_store_mkdtemp(s, &dir, NULL) < 0)
                        abort();
                dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                snprintf(text, sizeof(text), "f/%d", i);
                put(dfd, text, "x\n", 0644);
                if (i == 70)
                        /* A whiteout inside the part that is flattened. */
                        mknodat(dfd, "f/3", S_IFCHR, makedev(0, 0));
                close(dfd);
                snprintf(text, sizeof(text), "layer %d", i);
                digest_of(text, d);
                if (image_layer_commit(s, chain, d, 10, dir, chain, NULL) < 0)
                        abort();
                chains[i] = strdup(chain);
                free(dir);
        }
        CASE("a stack that fits is the layers' diff dirs");
        CHECK(builder_flat_lowers(s, (const char *const *)chains, 100, &lowers, &n_lowers, &err) ==
              0);
        CHECK_INTEQ(n_lowers, 100);
        CHECK(lowers && strstr(lowers[0], "/diff") != NULL);
        for (size_t i = 0; i < n_lowers; i++)
                free(lowers[i]);
        free(lowers);
        CASE("a deeper one has its bottom flattened");
        CHECK(builder_flat_lowers(s, (const char *const *)chains, 200, &lowers, &n_lowers, &err) ==
              0);
        CHECK_INTEQ(n_lowers, 200 - 128 + 1);
        flat = image_layer_flat_path(s, chains[127]);
        CHECK_STREQ(lowers[0], flat);
        CHECK(lowers[n_lowers] == NULL);
        {
                int ffd = open(flat, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                CHECK(ffd >= 0);
                CHECK(has(ffd, "f/0") && has(ffd, "f/127") && !has(ffd, "f/128"));
                CHECK(!has(ffd, "f/3"));
                CHECK_INTEQ(overlay_marks(ffd), 0);
                close(ffd);
        }
        for (size_t i = 0; i < n_lowers; i++)
                free(lowers[i]);
        free(lowers);
        CASE("the flat tree is made once");
        stat(flat, &st1);
        CHECK(builder_flat_lowers(s, (const char *const *)chains, 199, &lowers, &n_lowers, &err) ==
              0);
        stat(flat, &st2);
        CHECK_INTEQ(n_lowers, 199 - 128 + 1);
        CHECK(st1.st_ino == st2.st_ino);
        for (size_t i = 0; i < n_lowers; i++)
                free(lowers[i]);
        free(lowers);
        CASE("opened for a view: the flat tree, then the layers above it");
        {
                int *fds = NULL;
                size_t n_fds = 0;
                struct stat a, b;

                CHECK(builder_flat_open(s, (const char *const *)chains, 199, &fds, &n_fds, &err) ==
                      0);
                CHECK_INTEQ(n_fds, 199 - 128 + 1);
                CHECK(fds && fstat(fds[0], &a) == 0 && a.st_ino == st1.st_ino);
                CHECK(fds && has(fds[1], "f/128") && fstat(fds[1], &b) == 0);
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
                free(fds);
        }
        CASE("nothing is left in tmp/");
        {
                char t[600];
                snprintf(t, sizeof(t), "test -z \"$(ls -A '%s/tmp')\"", root);
                CHECK(sh("%s", t) == 0);
        }
        image_store_free(s);
        CASE("prune takes it with its layers");
        s = image_store_open(root, 0, &err);
        CHECK(s && image_store_prune(s, &err) == 0);
        CHECK(access(flat, F_OK) < 0);
        image_store_free(s);
        free(flat);
        for (int i = 0; i < 200; i++)
                free(chains[i]);
        free(chains);
        kerr_free(err);
        sh("rm -rf '%s'", base);
        free(base);
}
