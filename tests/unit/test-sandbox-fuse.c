/* SPDX-License-Identifier: Apache-2.0 */
/* sbx_fuse_upper_normalize() over upper dirs written the way fuse-overlayfs writes them,
 * as root and without the privilege for trusted.* xattrs: what is left must be the layer
 * overlayfs would have written. No FUSE needed: the trees are made by hand. */

#include "sandbox/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "tap.h"

static char *scratch(void)
{
        const char *tmp = getenv("TMPDIR");
        char *path = kstrfmt("%s/kiln-fuse-XXXXXX", tmp && *tmp ? tmp : "/tmp");

        if (!mkdtemp(path))
                abort();
        return path;
}

static void rm_rf(const char *path)
{
        DIR *d = opendir(path);
        struct dirent *de;

        if (!d) {
                unlink(path);
                return;
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                p = kstrfmt("%s/%s", path, de->d_name);
                if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        rm_rf(p);
                else
                        unlink(p);
        }
        closedir(d);
        rmdir(path);
}

/* A tree from lines "d PATH", "f PATH", "w PATH" (a 0/0 whiteout) and "x PATH NAME=VALUE"
 * below root. */
static bool make(const char *root, const char *const *spec)
{
        for (const char *const *s = spec; *s; s++) {
                _cleanup_free_ char *p = NULL, *copy = kstrdup(*s + 2);
                char *value = NULL, *name = NULL;
                bool ok = false;
                int fd;

                if ((*s)[0] == 'x') {
                        name = strchr(copy, ' ');
                        *name++ = '\0';
                        value = strchr(name, '=');
                        *value++ = '\0';
                }
                p = kstrfmt("%s/%s", root, copy);
                switch ((*s)[0]) {
                case 'd':
                        ok = mkdir(p, 0755) == 0;
                        break;
                case 'f':
                        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                        ok = fd >= 0 && kfs_write_all(fd, copy, strlen(copy)) == 0;
                        if (fd >= 0)
                                kfs_close(fd);
                        break;
                case 'w':
                        ok = mknod(p, S_IFCHR, makedev(0, 0)) == 0;
                        break;
                case 'x':
                        ok = lsetxattr(p, name, value, strlen(value), 0) == 0;
                        break;
                }
                if (!ok) {
                        printf("# make '%s': %s\n", *s, strerror(errno));
                        return false;
                }
        }
        return true;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "PATH TYPE [NAME=VALUE...]" per entry, sorted, xattrs sorted; overlayfs' own bookkeeping
 * left out as a layer leaves it out. */
static void describe_into(const char *dir, const char *prefix, struct kbuf *out)
{
        struct dirent **names = NULL;
        int n = scandir(dir, &names, NULL, alphasort);

        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;
                _cleanup_free_ char *p = kstrfmt("%s/%s", dir, name);
                _cleanup_free_ char *rel = kstrfmt("%s%s", prefix, name);
                char list[1024], *attrs[32];
                size_t n_attrs = 0;
                struct stat st;
                ssize_t len;

                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || lstat(p, &st) < 0) {
                        free(names[i]);
                        continue;
                }
                kbuf_printf(out, "%s %s", rel,
                            S_ISDIR(st.st_mode)                                  ? "d"
                            : S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0) ? "w"
                            : S_ISREG(st.st_mode)                                ? "f"
                                                                                 : "?");
                len = llistxattr(p, list, sizeof(list));
                for (ssize_t off = 0; len > 0 && off < len && n_attrs < 32;
                     off += (ssize_t)strlen(list + off) + 1) {
                        char v[64];
                        ssize_t vl = lgetxattr(p, list + off, v, sizeof(v));

                        attrs[n_attrs++] =
                                kstrfmt("%s=%.*s", list + off, (int)(vl > 0 ? vl : 0), v);
                }
                qsort(attrs, n_attrs, sizeof(*attrs), cmp_str);
                for (size_t k = 0; k < n_attrs; k++) {
                        kbuf_printf(out, " %s", attrs[k]);
                        free(attrs[k]);
                }
                kbuf_putc(out, '\n');
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_free_ char *sub = kstrfmt("%s/", rel);

                        describe_into(p, sub, out);
                }
                free(names[i]);
        }
        free(names);
}

static char *describe(const char *dir)
{
        struct kbuf b = KBUF_INIT;

        describe_into(dir, "", &b);
        return b.data ? kbuf_detach(&b) : kstrdup("");
}

/* Whether this process may make whiteouts and trusted.* xattrs (root outside a user
 * namespace), may make whiteouts only (inside one), or neither. */
static bool can(const char *dir, const char *what)
{
        _cleanup_free_ char *p = kstrfmt("%s/probe", dir);
        bool ok;

        if (strcmp(what, "whiteout") == 0) {
                ok = mknod(p, S_IFCHR, makedev(0, 0)) == 0;
                unlink(p);
                return ok;
        }
        ok = mkdir(p, 0755) == 0 && setxattr(p, "trusted.overlay.opaque", "y", 1, 0) == 0;
        rmdir(p);
        return ok;
}

/* The lower layers every case stacks: a at the bottom, b over it with a whiteout and an
 * opaque directory (in the xattr overlayfs reads, given here). */
static bool make_lowers(const char *dir, const char *opaque, char **ret_a, char **ret_b)
{
        _cleanup_free_ char *x = kstrfmt("x b/hidden %s=y", opaque);
        const char *const a[] = {"d d",      "f d/a",      "f d/b",  "d d/sub",    "f d/sub/x",
                                 "d r",      "f r/old",    "f f",    "d keep",     "f keep/k",
                                 "d hidden", "f hidden/h", "d home", "f home/dot", NULL};
        const char *const b[] = {"d d", "w d/b", "d hidden", x, "f hidden/shown", NULL};
        _cleanup_free_ char *la = kstrfmt("%s/a", dir), *lb = kstrfmt("%s/b", dir);
        char *pa[ARRAY_SIZE(a)], *pb[ARRAY_SIZE(b)];
        bool ok = true;

        /* make() takes paths below a root: prefix them with the layer's name. */
        for (size_t i = 0; a[i]; i++)
                pa[i] = kstrfmt("%c a/%s", a[i][0], a[i] + 2);
        pa[ARRAY_SIZE(a) - 1] = NULL;
        for (size_t i = 0; b[i]; i++)
                pb[i] = b[i][0] == 'x' ? kstrdup(b[i]) : kstrfmt("%c b/%s", b[i][0], b[i] + 2);
        pb[ARRAY_SIZE(b) - 1] = NULL;
        ok = mkdir(la, 0755) == 0 && mkdir(lb, 0755) == 0 && make(dir, (const char *const *)pa) &&
             make(dir, (const char *const *)pb);
        for (size_t i = 0; pa[i]; i++)
                free(pa[i]);
        for (size_t i = 0; pb[i]; i++)
                free(pb[i]);
        *ret_a = TAKE_PTR(la);
        *ret_b = TAKE_PTR(lb);
        return ok;
}

/* What fuse-overlayfs leaves without the privilege for trusted.* (in kiln's user
 * namespace), with whiteouts made as files where it could not make devices. */
static const char *const fuse_upper[] = {
        /* a copied-up dir: a deleted file, one a lower layer whites out already, one no
         * layer has, a new one */
        "d d",
        "x d user.fuseoverlayfs.origin=d",
        "f d/.wh.a",
        "f d/.wh.b",
        "f d/.wh.never",
        "f d/c",
        "x d/c user.fuseoverlayfs.origin=d/c",
        "x d/c user.keep=1",
        /* a replaced dir */
        "d r",
        "x r user.fuseoverlayfs.opaque=y",
        "f r/.wh..wh..opq",
        "w r/.wh..opq",
        "f r/new",
        /* new dirs, which fuse-overlayfs makes opaque too */
        "d n",
        "x n user.fuseoverlayfs.opaque=y",
        "f n/.wh..wh..opq",
        "w n/.wh..opq",
        "d n/m",
        "x n/m user.fuseoverlayfs.opaque=y",
        "f n/m/.wh..wh..opq",
        "f n/m/z",
        "w n/gone",
        /* whiteouts as devices: of a file, and of a name no lower layer has */
        "w f",
        "w x",
        /* below a lower opaque dir: h is hidden already, shown is not */
        "d hidden",
        "w hidden/h",
        "f hidden/.wh.shown",
        /* a whiteout file beside a file of the name */
        "d keep",
        "f keep/.wh.k",
        "f keep/k",
        NULL,
};

TEST(normalize_turns_fuse_overlayfs_into_overlayfs)
{
        _cleanup_free_ char *dir = scratch(), *a = NULL, *b = NULL, *upper = NULL;
        _cleanup_free_ char *got = NULL, *want = NULL;
        const char *opaque = NULL;
        const char *lowers[2];
        struct kerr *err = NULL;

        if (!can(dir, "whiteout")) {
                rm_rf(dir);
                SKIP("no whiteouts (0/0 devices) can be made here");
        }
        opaque = can(dir, "trusted") ? "trusted.overlay.opaque" : "user.overlay.opaque";
        upper = kstrfmt("%s/upper", dir);
        CHECK(make_lowers(dir, opaque, &a, &b));
        CHECK(mkdir(upper, 0755) == 0 && make(upper, fuse_upper));
        {
                const struct timespec t[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};

                CHECK(utimensat(AT_FDCWD, upper, t, 0) == 0);
                for (const char *const *d = (const char *const[]){"r", "n", "d", NULL}; *d; d++) {
                        _cleanup_free_ char *p = kstrfmt("%s/%s", upper, *d);

                        CHECK(utimensat(AT_FDCWD, p, t, 0) == 0);
                }
        }
        lowers[0] = a;
        lowers[1] = b;
        CHECK_INTEQ(sbx_fuse_upper_normalize(upper, lowers, 2, &err), 0);
        if (err)
                printf("# %s\n", err->msg);
        CASE("the directories keep the times the command left");
        {
                struct stat st;

                CHECK(stat(upper, &st) == 0 && st.st_mtime == 1000);
                for (const char *const *d = (const char *const[]){"r", "n", "d", NULL}; *d; d++) {
                        _cleanup_free_ char *p = kstrfmt("%s/%s", upper, *d);

                        CHECK(stat(p, &st) == 0 && st.st_mtime == 1000);
                }
        }
        CASE("the tree is overlayfs'");
        got = describe(upper);
        want = kstrfmt("d d\n"
                       "d/a w\n"
                       "d/c f user.keep=1\n"
                       "f w\n"
                       "hidden d\n"
                       "hidden/shown w\n"
                       "keep d\n"
                       "keep/k f\n"
                       "n d\n"
                       "n/m d\n"
                       "n/m/z f\n"
                       "r d %s=y\n"
                       "r/new f\n",
                       opaque);
        CHECK_STREQ(got, want);
        kerr_free(err);
        rm_rf(dir);
}

TEST(normalize_keeps_the_root_encoding)
{
        _cleanup_free_ char *dir = scratch(), *a = NULL, *b = NULL, *upper = NULL;
        _cleanup_free_ char *got = NULL;
        const char *const root_upper[] = {
                "d r",
                "x r trusted.overlay.opaque=y",
                "f r/.wh..wh..opq",
                "w r/.wh..opq",
                "f r/new",
                "d z",
                "x z trusted.overlay.opaque=y",
                "f z/.wh..wh..opq",
                "w d",
                NULL,
        };
        const char *lowers[2];
        struct kerr *err = NULL;

        if (!can(dir, "whiteout") || !can(dir, "trusted")) {
                rm_rf(dir);
                SKIP("needs root outside a user namespace (trusted.* xattrs)");
        }
        upper = kstrfmt("%s/upper", dir);
        CHECK(make_lowers(dir, "trusted.overlay.opaque", &a, &b));
        CHECK(mkdir(upper, 0755) == 0 && make(upper, root_upper));
        lowers[0] = a;
        lowers[1] = b;
        CHECK_INTEQ(sbx_fuse_upper_normalize(upper, lowers, 2, &err), 0);
        got = describe(upper);
        /* r replaces a lower dir and stays opaque; z is new and is not. */
        CHECK_STREQ(got, "d w\nr d trusted.overlay.opaque=y\nr/new f\nz d\n");
        kerr_free(err);
        rm_rf(dir);
}

TEST(normalize_without_lowers_drops_every_mark)
{
        _cleanup_free_ char *dir = scratch(), *upper = kstrfmt("%s/upper", dir), *got = NULL;
        const char *const spec[] = {"d o",
                                    "x o user.fuseoverlayfs.opaque=y",
                                    "f o/.wh..wh..opq",
                                    "f o/.wh.gone",
                                    "w w",
                                    "f file",
                                    NULL};
        struct kerr *err = NULL;

        if (!can(dir, "whiteout")) {
                rm_rf(dir);
                SKIP("no whiteouts (0/0 devices) can be made here");
        }
        CHECK(mkdir(upper, 0755) == 0 && make(upper, spec));
        CHECK_INTEQ(sbx_fuse_upper_normalize(upper, NULL, 0, &err), 0);
        got = describe(upper);
        CHECK_STREQ(got, "file f\no d\n");
        kerr_free(err);
        rm_rf(dir);
}

TEST(normalize_reports_a_missing_layer)
{
        _cleanup_free_ char *dir = scratch(), *upper = kstrfmt("%s/upper", dir);
        const char *lowers[] = {"/nonexistent/layer"};
        struct kerr *err = NULL;

        CHECK(mkdir(upper, 0755) == 0);
        CHECK(sbx_fuse_upper_normalize(upper, lowers, 1, &err) < 0);
        CHECK(err && err->errnum == ENOENT);
        CHECK(err && strstr(err->msg, "'/nonexistent/layer'"));
        kerr_free(err);
        rm_rf(dir);
}
