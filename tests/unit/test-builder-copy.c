/* SPDX-License-Identifier: Apache-2.0 */
#include "builder/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "tap.h"

/* A fixture: a build context, two lower layers (l1 below l2) and an upper dir. */
struct fx {
        char base[64];
        int ctx, l1, l2, up;
        struct builder_context *c;
        struct builder_rootfs *r;
        struct kerr *err;
};

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

static int opendir_at(const char *base, const char *name)
{
        char p[256];

        snprintf(p, sizeof(p), "%s/%s", base, name);
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                abort();
        return open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void fx_init(struct fx *f)
{
        memset(f, 0, sizeof(*f));
        snprintf(f->base, sizeof(f->base), "/tmp/kiln-test-copy-XXXXXX");
        if (!mkdtemp(f->base))
                abort();
        f->ctx = opendir_at(f->base, "ctx");
        f->l1 = opendir_at(f->base, "l1");
        f->l2 = opendir_at(f->base, "l2");
        f->up = opendir_at(f->base, "up");
}

/* Opens the context and the view; call after the trees are made. */
static void fx_open(struct fx *f, const char *ignorefile)
{
        char p[256];
        int lowers[2] = {f->l1, f->l2};

        snprintf(p, sizeof(p), "%s/ctx", f->base);
        f->c = builder_context_open(p, ignorefile, &f->err);
        f->r = builder_rootfs_new(lowers, 2, f->up, &f->err);
        if (!f->c || !f->r)
                abort();
}

static void fx_free(struct fx *f)
{
        builder_context_free(f->c);
        builder_rootfs_free(f->r);
        close(f->ctx);
        close(f->l1);
        close(f->l2);
        close(f->up);
        kerr_free(f->err);
        sh("rm -rf '%s'", f->base);
}

/* Writes a file (parents created) under dirfd. */
static void put(int dirfd, const char *path, const char *data, mode_t mode)
{
        char *dir = strdup(path);
        char *slash = strrchr(dir, '/');

        if (slash) {
                *slash = '\0';
                kfs_mkdir_p(dirfd, dir, 0755, NULL);
        }
        free(dir);
        int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
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

static mode_t mode_of(int dirfd, const char *path)
{
        struct stat st;
        if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return (mode_t)-1;
        return st.st_mode;
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

#define CHECK_FILE(dirfd, path, want)                                                              \
        ({                                                                                         \
                char *_g = get(dirfd, path);                                                       \
                CHECK_STREQ(_g, want);                                                             \
                free(_g);                                                                          \
        })

static int copy_full(struct fx *f, const struct builder_copy_opts *o, bool from_rootfs)
{
        struct builder_copy_src src = {0};

        if (from_rootfs)
                src.rootfs = f->r;
        else
                src.context = f->c;
        kerr_free(f->err);
        f->err = NULL;
        return builder_copy(f->r, &src, o, &f->err);
}

/* COPY srcs... dest with defaults. */
static int copy(struct fx *f, const char *dest, const char *s1, const char *s2)
{
        const char *srcs[2] = {s1, s2};
        struct builder_copy_opts o = {
                .srcs = srcs, .n_srcs = s2 ? 2 : 1, .dest = dest, .mtime_clamp = -1};
        return copy_full(f, &o, false);
}

static bool err_has(struct fx *f, const char *s)
{
        return f->err && f->err->msg && strstr(f->err->msg, s);
}

TEST(path_clean_and_join)
{
        char *p;

        CASE("clean");
        CHECK_STREQ(p = builder_path_clean("a/../b/"), "/b"), free(p);
        CHECK_STREQ(p = builder_path_clean("../../x"), "/x"), free(p);
        CHECK_STREQ(p = builder_path_clean(""), "/"), free(p);
        CHECK_STREQ(p = builder_path_clean("./a//b/."), "/a/b"), free(p);
        CASE("join");
        CHECK_STREQ(p = builder_path_join("/app", "x/y"), "/app/x/y"), free(p);
        CHECK_STREQ(p = builder_path_join("/app", "/abs"), "/abs"), free(p);
        CHECK_STREQ(p = builder_path_join("/app", "."), "/app"), free(p);
}

TEST(glob_match)
{
        CASE("star and question");
        CHECK(builder_glob_match("*.txt", "a.txt") == 1);
        CHECK(builder_glob_match("*.txt", ".txt") == 1);
        CHECK(builder_glob_match("a?c", "abc") == 1);
        CHECK(builder_glob_match("a?c", "ac") == 0);
        CHECK(builder_glob_match("*", "a/b") == 0);
        CASE("classes and escapes");
        CHECK(builder_glob_match("[a-c]x", "bx") == 1);
        CHECK(builder_glob_match("[^a-c]x", "bx") == 0);
        CHECK(builder_glob_match("[^a-c]x", "dx") == 1);
        CHECK(builder_glob_match("\\*", "*") == 1);
        CHECK(builder_glob_match("\\*", "a") == 0);
        CHECK(builder_glob_match("[", "a") == -1);
        CHECK(builder_glob_match("a\\", "a") == -1);
        CHECK(builder_glob_match("[é]", "é") == 1);
}

TEST(copy_file_to_file)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "a.txt", "hello\n", 0640);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/dst.txt", "a.txt", NULL) == 0);
        CHECK_FILE(f.up, "dst.txt", "hello\n");
        CHECK_INTEQ(mode_of(f.up, "dst.txt") & 07777, 0640);
        CHECK_INTEQ(stat_of(f.up, "dst.txt").st_uid, 0);
        fx_free(&f);
}

TEST(copy_file_to_dir_slash)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "a.txt", "A", 0644);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/opt/app/", "a.txt", NULL) == 0);
        CHECK_FILE(f.up, "opt/app/a.txt", "A");
        CASE("created parents are 0755 root");
        CHECK_INTEQ(mode_of(f.up, "opt") & 07777, 0755);
        CHECK_INTEQ(mode_of(f.up, "opt/app") & 07777, 0755);
        CHECK_INTEQ(stat_of(f.up, "opt/app").st_uid, 0);
        fx_free(&f);
}

TEST(copy_file_into_existing_lower_dir)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "a.txt", "A", 0644);
        kfs_mkdir_p(f.l1, "srv", 0700, NULL);
        fchownat(f.l1, "srv", 12, 34, 0);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/srv", "a.txt", NULL) == 0);
        CHECK_FILE(f.up, "srv/a.txt", "A");
        CASE("copy-up keeps mode and owner");
        CHECK_INTEQ(mode_of(f.up, "srv") & 07777, 0700);
        CHECK_INTEQ(stat_of(f.up, "srv").st_uid, 12);
        CHECK_INTEQ(stat_of(f.up, "srv").st_gid, 34);
        fx_free(&f);
}

TEST(copy_dir_contents)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "src/x", "X", 0644);
        put(f.ctx, "src/sub/y", "Y", 0600);
        symlinkat("x", f.ctx, "src/lnk");
        fx_open(&f, NULL);
        CHECK(copy(&f, "/dst", "src", NULL) == 0);
        CHECK_FILE(f.up, "dst/x", "X");
        CHECK_FILE(f.up, "dst/sub/y", "Y");
        CHECK(!has(f.up, "dst/src"));
        CASE("symlinks inside are copied as symlinks");
        CHECK(S_ISLNK(mode_of(f.up, "dst/lnk")));
        CHECK_STREQ(link_of(f.up, "dst/lnk"), "x");
        CHECK_INTEQ(mode_of(f.up, "dst/sub/y") & 07777, 0600);
        fx_free(&f);
}

TEST(copy_dot_to_dir)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "one", "1", 0644);
        put(f.ctx, "d/two", "2", 0644);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/app/", ".", NULL) == 0);
        CHECK_FILE(f.up, "app/one", "1");
        CHECK_FILE(f.up, "app/d/two", "2");
        fx_free(&f);
}

TEST(copy_glob)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "a.txt", "a", 0644);
        put(f.ctx, "b.txt", "b", 0644);
        put(f.ctx, "c.md", "c", 0644);
        put(f.ctx, "d/e.txt", "e", 0644);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/g/", "*.txt", NULL) == 0);
        CHECK_FILE(f.up, "g/a.txt", "a");
        CHECK_FILE(f.up, "g/b.txt", "b");
        CHECK(!has(f.up, "g/c.md"));
        CHECK(!has(f.up, "g/e.txt"));
        CASE("glob in a directory component");
        CHECK(copy(&f, "/h/", "?/*.txt", NULL) == 0);
        CHECK_FILE(f.up, "h/e.txt", "e");
        CASE("glob matching nothing is an error");
        CHECK(copy(&f, "/g/", "*.nope", NULL) < 0);
        CHECK(err_has(&f, "*.nope"));
        CHECK_INTEQ(f.err->code, KERR_NOTFOUND);
        CASE("several matches need a directory destination");
        CHECK(copy(&f, "/g", "*.txt", NULL) < 0);
        CHECK(err_has(&f, "destination must be a directory and end with a /"));
        fx_free(&f);
}

TEST(copy_multiple_sources)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "a", "a", 0644);
        put(f.ctx, "b", "b", 0644);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/m/", "a", "b") == 0);
        CHECK_FILE(f.up, "m/a", "a");
        CHECK_FILE(f.up, "m/b", "b");
        CASE("without trailing slash");
        CHECK(copy(&f, "/n", "a", "b") < 0);
        CHECK(err_has(&f, "When using COPY with more than one source file, the destination must "
                          "be a directory and end with a /"));
        CHECK(!has(f.up, "n"));
        CASE("dot is a directory");
        CHECK(copy(&f, ".", "a", "b") == 0);
        CHECK_FILE(f.up, "a", "a");
        fx_free(&f);
}

TEST(copy_workdir_relative)
{
        struct fx f;
        const char *srcs[] = {"a"};
        struct builder_copy_opts o = {
                .srcs = srcs, .n_srcs = 1, .dest = "sub/", .workdir = "/work", .mtime_clamp = -1};

        fx_init(&f);
        put(f.ctx, "a", "a", 0644);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "work/sub/a", "a");
        CASE("dot is the workdir");
        o.dest = ".";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "work/a", "a");
        fx_free(&f);
}

TEST(copy_through_absolute_symlink_stays_inside)
{
        struct fx f;
        char host[128];

        fx_init(&f);
        put(f.ctx, "a", "inside", 0644);
        /* /escape -> <base>/host in the lower layer: an absolute target that would leave the
         * rootfs on the host. */
        snprintf(host, sizeof(host), "%s/host", f.base);
        mkdir(host, 0755);
        symlinkat(host, f.l1, "escape");
        symlinkat("/etc/../../", f.l1, "up2");
        fx_open(&f, NULL);
        CHECK(copy(&f, "/escape/", "a", NULL) == 0);
        char hp[160];
        snprintf(hp, sizeof(hp), "%s/a", host);
        CHECK(access(hp, F_OK) != 0);
        char inside[200];
        snprintf(inside, sizeof(inside), "%s/a", host + 1);
        CHECK_FILE(f.up, inside, "inside");
        CASE("dotdot in a target stops at the root");
        CHECK(copy(&f, "/up2/b", "a", NULL) == 0);
        CHECK_FILE(f.up, "b", "inside");
        fx_free(&f);
}

TEST(copy_follows_relative_symlink_dest_dir)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "a", "A", 0644);
        kfs_mkdir_p(f.l1, "usr/lib", 0755, NULL);
        symlinkat("usr/lib", f.l1, "lib");
        fx_open(&f, NULL);
        CHECK(copy(&f, "/lib/", "a", NULL) == 0);
        CHECK_FILE(f.up, "usr/lib/a", "A");
        CHECK(!has(f.up, "lib"));
        fx_free(&f);
}

TEST(copy_chown_by_name)
{
        struct fx f;
        const char *srcs[] = {"d"};
        struct builder_copy_opts o = {
                .srcs = srcs, .n_srcs = 1, .dest = "/o/", .chown = "app", .mtime_clamp = -1};

        fx_init(&f);
        put(f.ctx, "d/f", "f", 0644);
        put(f.l1, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/h:/bin/sh\n",
            0644);
        put(f.l1, "etc/group", "root:x:0:\nstaff:x:50:\napp:x:1001:\n", 0644);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_INTEQ(stat_of(f.up, "o/f").st_uid, 1000);
        CHECK_INTEQ(stat_of(f.up, "o/f").st_gid, 1001);
        CASE("dirs COPY creates get the owner");
        CHECK_INTEQ(stat_of(f.up, "o").st_uid, 1000);
        CASE("user:group by name");
        o.chown = "app:staff";
        o.dest = "/p/";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_INTEQ(stat_of(f.up, "p/f").st_gid, 50);
        CASE("unknown user");
        o.chown = "nobody";
        CHECK(copy_full(&f, &o, false) < 0);
        CHECK(err_has(&f, "'nobody'"));
        CASE("unknown group");
        o.chown = "app:wheel";
        CHECK(copy_full(&f, &o, false) < 0);
        CHECK(err_has(&f, "'wheel'"));
        fx_free(&f);
}

TEST(copy_chown_numeric_and_chmod)
{
        struct fx f;
        const char *srcs[] = {"a"};
        struct builder_copy_opts o = {.srcs = srcs,
                                      .n_srcs = 1,
                                      .dest = "/n/a",
                                      .chown = "42",
                                      .chmod = "0750",
                                      .mtime_clamp = -1};

        fx_init(&f);
        put(f.ctx, "a", "a", 0644);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_INTEQ(stat_of(f.up, "n/a").st_uid, 42);
        CHECK_INTEQ(stat_of(f.up, "n/a").st_gid, 42);
        CHECK_INTEQ(mode_of(f.up, "n/a") & 07777, 0750);
        CASE("uid:gid numbers without passwd");
        o.chown = "7:8";
        o.dest = "/n/b";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_INTEQ(stat_of(f.up, "n/b").st_gid, 8);
        CASE("bad chmod");
        o.chmod = "9z";
        CHECK(copy_full(&f, &o, false) < 0);
        CHECK(err_has(&f, "'9z'"));
        fx_free(&f);
}

TEST(copy_dir_top_is_a_plain_dir)
{
        struct fx f;
        const char *srcs[] = {"priv"};
        struct builder_copy_opts o = {.srcs = srcs,
                                      .n_srcs = 1,
                                      .dest = "/p1",
                                      .chown = "5:6",
                                      .chmod = "0711",
                                      .mtime_clamp = -1};

        fx_init(&f);
        put(f.ctx, "priv/x", "X", 0644);
        CHECK(fchmodat(f.ctx, "priv", 0700, 0) == 0);
        fx_open(&f, NULL);
        CASE("without a slash the top is made 0755, owned as --chown says");
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_INTEQ(mode_of(f.up, "p1") & 07777, 0755);
        CHECK_INTEQ(stat_of(f.up, "p1").st_uid, 5);
        CHECK_INTEQ(stat_of(f.up, "p1").st_gid, 6);
        CHECK_INTEQ(mode_of(f.up, "p1/x") & 07777, 0711);
        CASE("as with a slash");
        o.dest = "/p2/";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_INTEQ(mode_of(f.up, "p2") & 07777, 0755);
        CHECK_INTEQ(stat_of(f.up, "p2").st_uid, 5);
        CASE("without --chmod the source directory's mode is not taken either");
        o.dest = "/p3";
        o.chmod = NULL;
        o.chown = NULL;
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_INTEQ(mode_of(f.up, "p3") & 07777, 0755);
        CHECK_INTEQ(stat_of(f.up, "p3").st_uid, 0);
        fx_free(&f);
}

TEST(copy_exclude)
{
        struct fx f;
        const char *srcs[] = {"src"};
        const char *ex[] = {"*.log", "sub/skip"};
        struct builder_copy_opts o = {.srcs = srcs,
                                      .n_srcs = 1,
                                      .dest = "/e/",
                                      .excludes = ex,
                                      .n_excludes = 2,
                                      .mtime_clamp = -1};

        fx_init(&f);
        put(f.ctx, "src/keep", "k", 0644);
        put(f.ctx, "src/x.log", "l", 0644);
        put(f.ctx, "src/sub/skip", "s", 0644);
        put(f.ctx, "src/sub/ok", "o", 0644);
        put(f.ctx, "top.log", "t", 0644);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK(has(f.up, "e/keep"));
        CHECK(!has(f.up, "e/x.log"));
        CHECK(!has(f.up, "e/sub/skip"));
        CHECK(has(f.up, "e/sub/ok"));
        CASE("exclude filters glob matches");
        srcs[0] = "*";
        o.dest = "/f/";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK(!has(f.up, "f/top.log"));
        CHECK(has(f.up, "f/keep"));
        fx_free(&f);
}

TEST(copy_parents)
{
        struct fx f;
        const char *srcs[] = {"x/y/a.txt", "x/*/b.txt"};
        struct builder_copy_opts o = {
                .srcs = srcs, .n_srcs = 2, .dest = "/p/", .parents = true, .mtime_clamp = -1};

        fx_init(&f);
        put(f.ctx, "x/y/a.txt", "a", 0644);
        put(f.ctx, "x/z/b.txt", "b", 0644);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "p/x/y/a.txt", "a");
        CHECK_FILE(f.up, "p/x/z/b.txt", "b");
        CASE("the /./ pivot");
        srcs[0] = "x/./y/a.txt";
        o.n_srcs = 1;
        o.dest = "/q/";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "q/y/a.txt", "a");
        fx_free(&f);
}

static bool have_tool(const char *t)
{
        return sh("command -v %s >/dev/null 2>&1", t) == 0;
}

TEST(add_tar_extracts)
{
        struct fx f;
        const char *srcs[] = {"a.tar.gz"};
        struct builder_copy_opts o = {
                .add = true, .srcs = srcs, .n_srcs = 1, .dest = "/x", .mtime_clamp = -1};

        fx_init(&f);
        CHECK(sh("cd %s && mkdir -p t/d && echo hi > t/d/f && ln -s f t/d/l && chmod 0600 t/d/f && "
                 "tar -C t --owner=5 --group=6 --numeric-owner -czf ctx/a.tar.gz d && "
                 "cp ctx/a.tar.gz ctx/plain.gz.txt",
                 f.base) == 0);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "x/d/f", "hi\n");
        CHECK_INTEQ(mode_of(f.up, "x/d/f") & 07777, 0600);
        CHECK_INTEQ(stat_of(f.up, "x/d/f").st_uid, 5);
        CHECK_STREQ(link_of(f.up, "x/d/l"), "f");
        CASE("detected by content, not by name");
        srcs[0] = "plain.gz.txt";
        o.dest = "/y/";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "y/d/f", "hi\n");
        CASE("COPY does not extract");
        o.add = false;
        o.dest = "/z/";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK(S_ISREG(mode_of(f.up, "z/plain.gz.txt")));
        fx_free(&f);
}

TEST(add_tar_zstd_and_plain)
{
        struct fx f;
        const char *srcs[] = {"a.tar.zst"};
        struct builder_copy_opts o = {
                .add = true, .srcs = srcs, .n_srcs = 1, .dest = "/z/", .mtime_clamp = -1};

        fx_init(&f);
        if (!have_tool("zstd")) {
                fx_free(&f);
                SKIP("zstd not installed");
        }
        CHECK(sh("cd %s && mkdir t && echo z > t/zz && tar -C t -cf ctx/a.tar zz && "
                 "zstd -q ctx/a.tar -o ctx/a.tar.zst && echo text > ctx/notar",
                 f.base) == 0);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "z/zz", "z\n");
        CASE("uncompressed tar");
        srcs[0] = "a.tar";
        o.dest = "/u";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "u/zz", "z\n");
        CASE("a plain file is copied");
        srcs[0] = "notar";
        o.dest = "/n/";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "n/notar", "text\n");
        fx_free(&f);
}

TEST(add_tar_hostile_entries)
{
        struct fx f;
        const char *srcs[] = {"evil.tar"};
        struct builder_copy_opts o = {
                .add = true, .srcs = srcs, .n_srcs = 1, .dest = "/x/", .mtime_clamp = -1};

        fx_init(&f);
        CHECK(sh("cd %s && python3 -c \"\nimport tarfile, io\nt = tarfile.open('ctx/evil.tar', "
                 "'w')\ni = tarfile.TarInfo('../../escape')\ni.size = 1\nt.addfile(i, "
                 "io.BytesIO(b'x'))\nt.close()\n\" && python3 -c \"\nimport tarfile, io\nt = "
                 "tarfile.open('ctx/link.tar', 'w')\ni = tarfile.TarInfo('l')\ni.type = "
                 "tarfile.SYMTYPE\ni.linkname = '/'\nt.addfile(i)\ni = "
                 "tarfile.TarInfo('l/etc/owned')\ni.size = 1\nt.addfile(i, "
                 "io.BytesIO(b'x'))\nt.close()\n\"",
                 f.base) == 0);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) < 0);
        CHECK(err_has(&f, "../../escape"));
        CHECK(!has(f.up, "escape"));
        CASE("through a symlink entry");
        srcs[0] = "link.tar";
        CHECK(copy_full(&f, &o, false) < 0);
        CHECK(!has(f.up, "etc/owned"));
        fx_free(&f);
}

TEST(copy_heredoc)
{
        struct fx f;
        struct builder_copy_heredoc h = {"script.sh", "echo hi\n", 8};
        struct builder_copy_opts o = {
                .heredocs = &h, .n_heredocs = 1, .dest = "/usr/bin/", .mtime_clamp = 100};

        fx_init(&f);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "usr/bin/script.sh", "echo hi\n");
        CHECK_INTEQ(mode_of(f.up, "usr/bin/script.sh") & 07777, 0644);
        CHECK_INTEQ(stat_of(f.up, "usr/bin/script.sh").st_mtime, 100);
        CASE("heredoc to a file path with chmod");
        o.dest = "/run.sh";
        o.chmod = "755";
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_FILE(f.up, "run.sh", "echo hi\n");
        CHECK_INTEQ(mode_of(f.up, "run.sh") & 07777, 0755);
        fx_free(&f);
}

TEST(copy_ignorefile)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, ".containerignore", "secret*\n*.tmp\n!keep.tmp\n", 0644);
        put(f.ctx, "secret.txt", "s", 0644);
        put(f.ctx, "a.tmp", "t", 0644);
        put(f.ctx, "keep.tmp", "k", 0644);
        put(f.ctx, "ok", "o", 0644);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/i/", ".", NULL) == 0);
        CHECK(has(f.up, "i/ok"));
        CHECK(has(f.up, "i/keep.tmp"));
        CHECK(!has(f.up, "i/secret.txt"));
        CHECK(!has(f.up, "i/a.tmp"));
        CASE("a glob never matches ignored files");
        CHECK(copy(&f, "/j/", "*.tmp", NULL) == 0);
        CHECK(has(f.up, "j/keep.tmp"));
        CHECK(!has(f.up, "j/a.tmp"));
        CASE("an ignored file named directly");
        CHECK(copy(&f, "/k/", "secret.txt", NULL) < 0);
        CHECK(err_has(&f, "'secret.txt'"));
        CHECK(err_has(&f, "excluded by .containerignore"));
        CHECK_INTEQ(f.err->code, KERR_NOTFOUND);
        fx_free(&f);
}

TEST(copy_dockerignore_fallback)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, ".dockerignore", "x\n", 0644);
        put(f.ctx, "x", "x", 0644);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/d/", "x", NULL) < 0);
        CHECK(err_has(&f, "excluded by .dockerignore"));
        fx_free(&f);
}

TEST(copy_outside_context)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "a", "a", 0644);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/d/", "../x", NULL) < 0);
        CHECK(err_has(&f, "forbidden path outside the build context: '../x'"));
        CASE("sub/../../x");
        CHECK(copy(&f, "/d/", "sub/../../x", NULL) < 0);
        CHECK(err_has(&f, "forbidden path outside the build context"));
        CASE("missing source");
        CHECK(copy(&f, "/d/", "nope", NULL) < 0);
        CHECK(err_has(&f, "'nope'"));
        CHECK_INTEQ(f.err->code, KERR_NOTFOUND);
        fx_free(&f);
}

TEST(copy_context_symlink_stays_inside)
{
        struct fx f;

        fx_init(&f);
        symlinkat("/etc/passwd", f.ctx, "pw");
        symlinkat("../../../../etc/passwd", f.ctx, "pw2");
        fx_open(&f, NULL);
        CHECK(copy(&f, "/d/", "pw", NULL) < 0);
        CHECK_INTEQ(f.err->code, KERR_NOTFOUND);
        CHECK(!has(f.up, "d/pw"));
        CASE("the context's own etc/passwd is what it reads");
        put(f.ctx, "etc/passwd", "ctx-passwd\n", 0644);
        CHECK(copy(&f, "/d/", "pw", NULL) == 0);
        CHECK_FILE(f.up, "d/pw", "ctx-passwd\n");
        CHECK(copy(&f, "/e/", "pw2", NULL) == 0);
        CHECK_FILE(f.up, "e/pw2", "ctx-passwd\n");
        fx_free(&f);
}

TEST(copy_replaces_lower_file_and_whiteout)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "a", "new", 0644);
        put(f.l1, "etc/conf", "old", 0644);
        put(f.l1, "gone", "old", 0644);
        mknodat(f.up, "gone", S_IFCHR | 0, makedev(0, 0));
        fx_open(&f, NULL);
        CHECK(copy(&f, "/etc/conf", "a", NULL) == 0);
        CHECK_FILE(f.up, "etc/conf", "new");
        CHECK_FILE(f.l1, "etc/conf", "old");
        CASE("a whiteout in the upper dir is replaced");
        CHECK(copy(&f, "/gone", "a", NULL) == 0);
        CHECK(S_ISREG(mode_of(f.up, "gone")));
        CHECK_FILE(f.up, "gone", "new");
        fx_free(&f);
}

TEST(copy_dir_over_whiteout_is_opaque)
{
        struct fx f;
        char v[4] = {0};

        fx_init(&f);
        put(f.ctx, "src/n", "n", 0644);
        put(f.l1, "data/old", "o", 0644);
        mknodat(f.up, "data", S_IFCHR | 0, makedev(0, 0));
        fx_open(&f, NULL);
        CHECK(copy(&f, "/data/", "src", NULL) == 0);
        CHECK(S_ISDIR(mode_of(f.up, "data")));
        char p[128];
        snprintf(p, sizeof(p), "%s/up/data", f.base);
        CHECK(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1 ||
              getxattr(p, "user.overlay.opaque", v, sizeof(v)) == 1);
        CHECK(v[0] == 'y');
        CASE("the merged view no longer shows the old file");
        char **names = NULL;
        size_t n = 0;
        CHECK(builder_rootfs_readdir(f.r, "/data", &names, &n, NULL) == 0);
        CHECK_INTEQ(n, 1);
        CHECK_STREQ(n ? names[0] : NULL, "n");
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        fx_free(&f);
}

TEST(merged_view)
{
        struct fx f;
        struct stat st;
        struct kbuf b = KBUF_INIT;
        char **names = NULL;
        size_t n = 0;

        fx_init(&f);
        put(f.l1, "d/a", "l1a", 0644);
        put(f.l1, "d/b", "l1b", 0644);
        put(f.l1, "d/c", "l1c", 0644);
        put(f.l2, "d/a", "l2a", 0644);
        mknodat(f.l2, "d/b", S_IFCHR | 0, makedev(0, 0));
        put(f.l1, "o/x", "x", 0644);
        put(f.l2, "o/y", "y", 0644);
        char op[128];
        snprintf(op, sizeof(op), "%s/l2/o", f.base);
        setxattr(op, "trusted.overlay.opaque", "y", 1, 0);
        put(f.l1, "f/inner", "i", 0644);
        put(f.l2, "f", "file", 0644);
        fx_open(&f, NULL);
        CASE("topmost wins");
        CHECK(builder_rootfs_read_file(f.r, "/d/a", 0, &b, NULL) == 0);
        CHECK_STREQ(b.data, "l2a");
        kbuf_release(&b);
        CASE("whiteout hides");
        CHECK(builder_rootfs_stat(f.r, "/d/b", false, &st, NULL, &f.err) < 0);
        CHECK_INTEQ(f.err->code, KERR_NOTFOUND);
        CHECK(builder_rootfs_readdir(f.r, "/d", &names, &n, NULL) == 0);
        CHECK_INTEQ(n, 2);
        CHECK_STREQ(names[0], "a");
        CHECK_STREQ(names[1], "c");
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        CASE("opaque directory hides lower contents");
        CHECK(builder_rootfs_readdir(f.r, "/o", &names, &n, NULL) == 0);
        CHECK_INTEQ(n, 1);
        CHECK_STREQ(n ? names[0] : NULL, "y");
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        kerr_free(f.err);
        f.err = NULL;
        CHECK(builder_rootfs_stat(f.r, "/o/x", false, &st, NULL, &f.err) < 0);
        CASE("a file above hides a directory below");
        CHECK(builder_rootfs_stat(f.r, "/f", false, &st, NULL, NULL) == 0);
        CHECK(S_ISREG(st.st_mode));
        CHECK(builder_rootfs_read_file(f.r, "/f/inner", 0, &b, NULL) < 0);
        kbuf_release(&b);
        fx_free(&f);
}

static void mark_opaque(const struct fx *f, const char *rel)
{
        char p[256];

        snprintf(p, sizeof(p), "%s/%s", f->base, rel);
        if (setxattr(p, "trusted.overlay.opaque", "y", 1, 0) < 0)
                setxattr(p, "user.overlay.opaque", "y", 1, 0);
}

TEST(prune_upper_keeps_only_changes)
{
        struct fx f;
        struct builder_rootfs *lowers = NULL;
        int fds[2];
        bool xattrs;
        char p[256];

        fx_init(&f);
        fds[0] = f.l1;
        fds[1] = f.l2;
        kfs_mkdir_p(f.l1, "same/deeper", 0755, NULL);
        kfs_mkdir_p(f.l1, "empty", 0755, NULL);
        put(f.l1, "full/x", "x", 0644);
        put(f.l2, "kept/old", "o", 0644);
        kfs_mkdir_p(f.l1, "mode", 0755, NULL);
        kfs_mkdir_p(f.l1, "owner", 0755, NULL);
        kfs_mkdir_p(f.l2, "attr", 0755, NULL);
        /* What a step leaves: directories copied up with nothing changed below them, ... */
        kfs_mkdir_p(f.up, "same/deeper", 0755, NULL);
        kfs_mkdir_p(f.up, "empty", 0755, NULL);
        mark_opaque(&f, "up/empty");
        /* ... and changes. */
        kfs_mkdir_p(f.up, "full", 0755, NULL);
        mark_opaque(&f, "up/full");
        put(f.up, "kept/new", "n", 0644);
        kfs_mkdir_p(f.up, "mode", 0700, NULL);
        fchmodat(f.up, "mode", 0700, 0);
        kfs_mkdir_p(f.up, "owner", 0755, NULL);
        fchownat(f.up, "owner", 1000, 1000, AT_SYMLINK_NOFOLLOW);
        kfs_mkdir_p(f.up, "new", 0755, NULL);
        kfs_mkdir_p(f.up, "attr", 0755, NULL);
        snprintf(p, sizeof(p), "%s/up/attr", f.base);
        xattrs = setxattr(p, "user.k", "v", 1, 0) == 0;
        lowers = builder_rootfs_new(fds, 2, -1, &f.err);
        CHECK(lowers && builder_rootfs_prune_upper(lowers, f.up, &f.err) == 0);
        CASE("an unchanged copied-up directory goes, its unchanged parent too");
        CHECK(!has(f.up, "same"));
        CASE("an opaque directory over an empty one goes");
        CHECK(!has(f.up, "empty"));
        CASE("what changes something stays");
        CHECK(has(f.up, "full"));
        CHECK(has(f.up, "kept/new"));
        CHECK(has(f.up, "mode"));
        CHECK(has(f.up, "owner"));
        CHECK(has(f.up, "new"));
        /* Where the file system takes user xattrs. */
        if (xattrs)
                CHECK(has(f.up, "attr"));
        builder_rootfs_free(lowers);
        fx_free(&f);
}

TEST(copy_from_rootfs)
{
        struct fx f;
        const char *srcs[] = {"/d"};
        struct builder_copy_opts o = {.srcs = srcs, .n_srcs = 1, .dest = "/out", .mtime_clamp = -1};

        fx_init(&f);
        put(f.l1, "d/a", "l1a", 0644);
        put(f.l1, "d/gone", "g", 0644);
        put(f.l2, "d/a", "l2a", 0600);
        fchownat(f.l2, "d/a", 77, 88, 0);
        mknodat(f.l2, "d/gone", S_IFCHR | 0, makedev(0, 0));
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, true) == 0);
        CHECK_FILE(f.up, "out/a", "l2a");
        CHECK(!has(f.up, "out/gone"));
        CASE("owners are kept from another stage");
        CHECK_INTEQ(stat_of(f.up, "out/a").st_uid, 77);
        CHECK_INTEQ(stat_of(f.up, "out/a").st_gid, 88);
        fx_free(&f);
}

TEST(copy_tree_from_rootfs_layers)
{
        struct fx f;
        const char *srcs[] = {"/t"};
        struct builder_copy_opts o = {.srcs = srcs, .n_srcs = 1, .dest = "/out", .mtime_clamp = -1};
        char op[160];

        fx_init(&f);
        put(f.l1, "t/keep/k", "k", 0644);
        put(f.l1, "t/op/old", "old", 0644);
        put(f.l1, "t/shadow/inner", "i", 0644);
        put(f.l2, "t/op/new", "new", 0644);
        put(f.l2, "t/keep/k2", "k2", 0644);
        put(f.l2, "t/shadow", "now a file", 0644);
        symlinkat("keep/k", f.l2, "t/ln");
        snprintf(op, sizeof(op), "%s/l2/t/op", f.base);
        setxattr(op, "trusted.overlay.opaque", "y", 1, 0);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, true) == 0);
        CASE("directories merge across layers");
        CHECK_FILE(f.up, "out/keep/k", "k");
        CHECK_FILE(f.up, "out/keep/k2", "k2");
        CASE("an opaque directory hides what is below it");
        CHECK_FILE(f.up, "out/op/new", "new");
        CHECK(!has(f.up, "out/op/old"));
        CASE("a file above hides a directory below");
        CHECK_FILE(f.up, "out/shadow", "now a file");
        CASE("symlinks are copied as links");
        CHECK_STREQ(link_of(f.up, "out/ln"), "keep/k");
        fx_free(&f);
}

TEST(copy_refuses_mount_points_in_context)
{
        struct fx f;
        char m[160];

        fx_init(&f);
        put(f.ctx, "a", "A", 0644);
        put(f.ctx, "m/under", "U", 0644);
        snprintf(m, sizeof(m), "%s/ctx/m", f.base);
        if (sh("mount -t tmpfs kiln-test '%s' 2>/dev/null", m) != 0) {
                fx_free(&f);
                SKIP("cannot mount a tmpfs here (needs root)");
        }
        sh("echo M > '%s/f'", m);
        fx_open(&f, NULL);
        CASE("a directory copy stops at a mount point");
        CHECK(copy(&f, "/d/", ".", NULL) < 0);
        CHECK(err_has(&f, "mounted"));
        CASE("a source path through a mount point");
        CHECK(copy(&f, "/x", "m/f", NULL) < 0);
        CHECK(!has(f.up, "x"));
        sh("umount '%s'", m);
        fx_free(&f);

        fx_init(&f);
        put(f.ctx, "a", "A", 0644);
        put(f.ctx, ".dockerignore", "m\n", 0644);
        snprintf(m, sizeof(m), "%s/ctx/m", f.base);
        mkdir(m, 0755);
        if (sh("mount -t tmpfs kiln-test '%s' 2>/dev/null", m) != 0) {
                fx_free(&f);
                SKIP("cannot mount a tmpfs here (needs root)");
        }
        fx_open(&f, NULL);
        CASE("an ignored mount point is no obstacle");
        CHECK(copy(&f, "/d/", ".", NULL) == 0);
        CHECK_FILE(f.up, "d/a", "A");
        CHECK(!has(f.up, "d/m"));
        sh("umount '%s'", m);
        fx_free(&f);
}

TEST(copy_symlink_named_is_followed)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "real", "R", 0644);
        symlinkat("real", f.ctx, "alias");
        fx_open(&f, NULL);
        CHECK(copy(&f, "/s/", "alias", NULL) == 0);
        CHECK(S_ISREG(mode_of(f.up, "s/alias")));
        CHECK_FILE(f.up, "s/alias", "R");
        fx_free(&f);
}

TEST(copy_hardlinks_and_mtime)
{
        struct fx f;
        const char *srcs[] = {"h"};
        struct builder_copy_opts o = {.srcs = srcs, .n_srcs = 1, .dest = "/h", .mtime_clamp = -1};
        struct timespec ts[2] = {{1000, 0}, {1000, 0}};

        fx_init(&f);
        put(f.ctx, "h/one", "1", 0644);
        linkat(f.ctx, "h/one", f.ctx, "h/two", 0);
        utimensat(f.ctx, "h/one", ts, 0);
        fx_open(&f, NULL);
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_INTEQ(stat_of(f.up, "h/one").st_ino, stat_of(f.up, "h/two").st_ino);
        CHECK_INTEQ(stat_of(f.up, "h/one").st_mtime, 1000);
        CASE("clamp");
        o.dest = "/c";
        o.mtime_clamp = 500;
        CHECK(copy_full(&f, &o, false) == 0);
        CHECK_INTEQ(stat_of(f.up, "c/one").st_mtime, 500);
        fx_free(&f);
}

TEST(copy_file_over_dir_in_dir_copy)
{
        struct fx f;

        fx_init(&f);
        put(f.ctx, "src/x", "file", 0644);
        kfs_mkdir_p(f.l1, "dst/x", 0755, NULL);
        fx_open(&f, NULL);
        CHECK(copy(&f, "/dst", "src", NULL) < 0);
        CHECK(err_has(&f, "cannot replace directory"));
        fx_free(&f);
}

TEST(chown_resolution)
{
        struct fx f;
        uid_t u;
        gid_t g;

        fx_init(&f);
        put(f.l1, "etc/passwd", "bob:x:10:20::/:/bin/sh\n", 0644);
        put(f.l1, "etc/group", "grp:x:30:\n", 0644);
        fx_open(&f, NULL);
        CHECK(builder_resolve_chown(f.r, "bob", &u, &g, NULL) == 0 && u == 10 && g == 20);
        CHECK(builder_resolve_chown(f.r, "bob:grp", &u, &g, NULL) == 0 && u == 10 && g == 30);
        CHECK(builder_resolve_chown(f.r, "5:grp", &u, &g, NULL) == 0 && u == 5 && g == 30);
        CHECK(builder_resolve_chown(f.r, "5", &u, &g, NULL) == 0 && u == 5 && g == 5);
        CHECK(builder_resolve_chown(f.r, ":x", &u, &g, NULL) < 0);
        fx_free(&f);
}
