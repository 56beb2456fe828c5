/* SPDX-License-Identifier: Apache-2.0 */
#include "builder/builder.h"
#include "builder/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/karchive.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/idmap.h"
#include "common/utf8.h"
#include "parser/parser.h"
#include "common/banned.h"

DEFINE_CLEANUP(struct parser_ignore *, parser_ignore_free)
DEFINE_CLEANUP(struct archive *, archive_read_free)

/* /etc/passwd and /etc/group larger than this are refused. */
#define ACCOUNT_FILE_MAX (64u << 20)

/* ---- Go's filepath.Match ---- */

static size_t rune_at(const char *s, uint32_t *cp)
{
        return kutf8_decode(s, strlen(s), cp);
}

/* Parses one class item ("c", "\c") at *pp; -1 when malformed. */
static int class_char(const char **pp, uint32_t *cp)
{
        const char *p = *pp;

        if (*p == '\\')
                p++;
        if (!*p)
                return -1;
        p += rune_at(p, cp);
        *pp = p;
        return 0;
}

/* p points after '['; on return it points after ']'. */
static int match_class(const char **pp, uint32_t c)
{
        const char *p = *pp;
        bool negated = false, matched = false;
        int n = 0;

        if (*p == '^') {
                negated = true;
                p++;
        }
        for (;; n++) {
                uint32_t lo, hi;
                if (*p == ']' && n > 0) {
                        p++;
                        break;
                }
                if (!*p || *p == '-' || *p == ']')
                        return -1;
                if (class_char(&p, &lo) < 0)
                        return -1;
                hi = lo;
                if (*p == '-') {
                        p++;
                        if (!*p || *p == '-' || *p == ']' || class_char(&p, &hi) < 0)
                                return -1;
                }
                if (lo <= c && c <= hi)
                        matched = true;
        }
        *pp = p;
        return matched != negated;
}

static bool pattern_valid(const char *p)
{
        while (*p) {
                if (*p == '\\') {
                        if (!p[1])
                                return false;
                        p += 2;
                } else if (*p == '[') {
                        p++;
                        if (match_class(&p, 0) < 0)
                                return false;
                } else {
                        p++;
                }
        }
        return true;
}

static bool match_here(const char *p, const char *n)
{
        while (*p) {
                uint32_t c;
                switch (*p) {
                case '*':
                        while (*p == '*')
                                p++;
                        for (const char *s = n;;) {
                                if (match_here(p, s))
                                        return true;
                                if (!*s || *s == '/')
                                        return false;
                                s += rune_at(s, &c);
                        }
                case '?':
                        if (!*n || *n == '/')
                                return false;
                        n += rune_at(n, &c);
                        p++;
                        break;
                case '[':
                        if (!*n || *n == '/')
                                return false;
                        n += rune_at(n, &c);
                        p++;
                        if (match_class(&p, c) != 1)
                                return false;
                        break;
                default:
                        if (*p == '\\')
                                p++;
                        if (*p != *n)
                                return false;
                        p++;
                        n++;
                }
        }
        return *n == '\0';
}

int builder_glob_match(const char *pattern, const char *name)
{
        if (!pattern_valid(pattern))
                return -1;
        return match_here(pattern, name) ? 1 : 0;
}

static bool has_meta(const char *s)
{
        return strpbrk(s, "*?[\\") != NULL;
}

/* ---- --chown and --chmod ---- */

static bool parse_id(const char *s, unsigned long *ret)
{
        char *end;

        if (!*s || *s < '0' || *s > '9')
                return false;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end || v > 0xfffffffeUL)
                return false;
        *ret = v;
        return true;
}

/* Finds the line of an account file whose first field is name (or whose third field is
 * the number, when by_id); fields[] points into data, which is modified. */
static bool account_find(char *data, const char *name, char *fields[4])
{
        for (char *line = data; line && *line;) {
                char *next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                size_t nf = 0;
                char *p = line;
                while (nf < 4) {
                        fields[nf++] = p;
                        p = strchr(p, ':');
                        if (!p)
                                break;
                        *p++ = '\0';
                }
                if (nf >= 3 && strcmp(fields[0], name) == 0)
                        return true;
                line = next;
        }
        return false;
}

static int account_read(struct builder_rootfs *dst, const char *path, struct kbuf *out,
                        struct kerr **err)
{
        struct kerr *e = NULL;

        if (builder_rootfs_read_file(dst, path, ACCOUNT_FILE_MAX, out, &e) == 0)
                return 0;
        if (e->code == KERR_NOTFOUND) {
                kerr_free(e);
                return 1;
        }
        if (err) {
                kerr_free(*err);
                *err = e;
        } else {
                kerr_free(e);
        }
        return -1;
}

int builder_resolve_chown(struct builder_rootfs *dst, const char *spec, uid_t *ret_uid,
                          gid_t *ret_gid, struct kerr **err)
{
        _cleanup_free_ char *user = kstrdup(spec);
        char *group = strchr(user, ':');
        unsigned long uid = 0, gid = 0;
        char *f[4];

        if (group)
                *group++ = '\0';
        if (!*user || (group && !*group))
                return kerr_set(err, 0, KERR_INVALID, "invalid --chown value '%s'", spec);
        if (!parse_id(user, &uid)) {
                struct kbuf pw = KBUF_INIT;
                int r = account_read(dst, "/etc/passwd", &pw, err);
                if (r < 0)
                        return kerr_wrap(err, "resolve --chown user '%s'", user);
                if (r > 0 || !account_find(pw.data, user, f) || !f[3] || !parse_id(f[2], &uid) ||
                    !parse_id(f[3], &gid)) {
                        kbuf_release(&pw);
                        return kerr_set(err, 0, KERR_NOTFOUND,
                                        "unable to find user '%s': no matching entries in passwd "
                                        "file",
                                        user);
                }
                kbuf_release(&pw);
        } else {
                gid = uid;
        }
        if (group) {
                if (!parse_id(group, &gid)) {
                        struct kbuf gr = KBUF_INIT;
                        int r = account_read(dst, "/etc/group", &gr, err);
                        if (r < 0)
                                return kerr_wrap(err, "resolve --chown group '%s'", group);
                        if (r > 0 || !account_find(gr.data, group, f) || !parse_id(f[2], &gid)) {
                                kbuf_release(&gr);
                                return kerr_set(err, 0, KERR_NOTFOUND,
                                                "unable to find group '%s': no matching entries "
                                                "in group file",
                                                group);
                        }
                        kbuf_release(&gr);
                }
        }
        *ret_uid = (uid_t)uid;
        *ret_gid = (gid_t)gid;
        return 0;
}

static int parse_chmod(const char *s, mode_t *ret, struct kerr **err)
{
        char *end;

        errno = 0;
        unsigned long v = strtoul(s, &end, 8);
        if (!*s || *s == '-' || *s == '+' || errno || *end || v > 07777)
                return kerr_set(err, 0, KERR_INVALID, "invalid --chmod value '%s'", s);
        *ret = (mode_t)v;
        return 0;
}

/* ---- sources ---- */

struct copier {
        struct builder_rootfs *dst;
        const struct builder_copy_src *src;
        const struct builder_copy_opts *o;
        const char *what; /* "the build context" or the stage's name, for messages */
        builder_lookup_fn lookup;
        void *root;
        struct parser_ignore *excludes;
        bool chown, chmod;
        uid_t uid;
        gid_t gid;
        mode_t mode;
        /* Hard links: (dev, ino) of sources seen with nlink > 1 and where they went. */
        struct link {
                dev_t dev;
                ino_t ino;
                char *dest;
        } * links;
        size_t n_links;
        /* Directories whose times are set once their contents are written. */
        struct dtime {
                char *path;
                struct timespec mtime;
        } * dtimes;
        size_t n_dtimes;
};

struct item {
        char *literal; /* cleaned path as matched, "/a/b" */
        char *path;    /* resolved (symlinks followed) */
        char *rel;     /* for --parents: the path kept under the destination */
        struct stat st;
};

static void items_free(struct item *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].literal);
                free(v[i].path);
                free(v[i].rel);
        }
        free(v);
}

static bool ignored(const struct copier *c, const char *path)
{
        return c->src->context && builder_context_ignored(c->src->context, path);
}

static bool excluded(const struct copier *c, const char *rel)
{
        while (*rel == '/')
                rel++;
        return c->excludes && *rel && parser_ignore_match(c->excludes, rel);
}

static int src_readdir(const struct copier *c, const char *path, char ***ret, size_t *ret_n,
                       struct kerr **err)
{
        if (c->src->context)
                return builder_context_readdir(c->src->context, path, ret, ret_n, err);
        return builder_rootfs_readdir(c->src->rootfs, path, ret, ret_n, err);
}

static int src_open(const struct copier *c, const char *path, struct kerr **err)
{
        if (c->src->context)
                return builder_context_open_file(c->src->context, path, err);
        return builder_rootfs_open(c->src->rootfs, path, err);
}

static void strv_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* True when the source, as written, climbs out of the context ("../x"). */
static bool leaves_root(const char *s)
{
        int depth = 0;

        if (s[0] == '/')
                return false;
        for (const char *p = s; *p;) {
                const char *e = strchrnul(p, '/');
                size_t n = (size_t)(e - p);
                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        if (--depth < 0)
                                return true;
                } else if (n && !(n == 1 && p[0] == '.')) {
                        depth++;
                }
                p = *e ? e + 1 : e;
        }
        return false;
}

static int add_item(struct copier *c, struct item **v, size_t *n, const char *literal,
                    const char *pivot, struct kerr **err)
{
        _cleanup_free_ char *res = NULL;
        struct stat st;
        int r;

        if (builder_path_resolve(c->lookup, c->root, literal, true, &res, err) < 0)
                return -1;
        r = c->lookup(c->root, res, &st, NULL, err);
        if (r < 0)
                return r;
        *v = kreallocarray(*v, *n + 1, sizeof(**v));
        struct item *it = &(*v)[(*n)++];
        it->literal = kstrdup(literal);
        it->path = TAKE_PTR(res);
        it->st = st;
        size_t pl = strlen(pivot);
        const char *rel = literal;
        if (pl > 1 && strncmp(literal, pivot, pl) == 0 && (literal[pl] == '/' || !literal[pl]))
                rel = literal + pl;
        it->rel = builder_path_clean(rel);
        return 0;
}

/* Expands one source pattern (cleaned) into items, glob components matched against the
 * directory listings as Go's filepath.Glob does; ignored entries never match. */
static int expand_glob(struct copier *c, const char *pattern, const char *pivot, struct item **v,
                       size_t *n, struct kerr **err)
{
        char **cand = kcalloc(1, sizeof(*cand));
        size_t n_cand = 1;
        const char *p = pattern + 1;
        int rc = -1;

        cand[0] = kstrdup("/");
        while (*p) {
                const char *e = strchrnul(p, '/');
                _cleanup_free_ char *comp = kstrndup(p, (size_t)(e - p));
                char **next = NULL;
                size_t n_next = 0;

                p = *e ? e + 1 : e;
                if (!has_meta(comp)) {
                        for (size_t i = 0; i < n_cand; i++) {
                                char *j = builder_path_join(cand[i], comp);
                                free(cand[i]);
                                cand[i] = j;
                        }
                        continue;
                }
                if (builder_glob_match(comp, "") < 0) {
                        kerr_set(err, 0, KERR_INVALID, "invalid source pattern '%s'", pattern);
                        goto out;
                }
                for (size_t i = 0; i < n_cand; i++) {
                        _cleanup_free_ char *dir = NULL;
                        struct kerr *e2 = NULL;
                        struct stat st;
                        char **names = NULL;
                        size_t nn = 0;

                        if (builder_path_resolve(c->lookup, c->root, cand[i], true, &dir, err) < 0)
                                goto out;
                        if (c->lookup(c->root, dir, &st, NULL, &e2) < 0 || !S_ISDIR(st.st_mode)) {
                                kerr_free(e2);
                                continue;
                        }
                        if (src_readdir(c, dir, &names, &nn, err) < 0)
                                goto out;
                        for (size_t k = 0; k < nn; k++) {
                                if (builder_glob_match(comp, names[k]) != 1)
                                        continue;
                                char *j = builder_path_join(cand[i], names[k]);
                                if (ignored(c, j)) {
                                        free(j);
                                        continue;
                                }
                                next = kreallocarray(next, n_next + 1, sizeof(*next));
                                next[n_next++] = j;
                        }
                        strv_free(names, nn);
                }
                strv_free(cand, n_cand);
                cand = next ? next : kcalloc(1, sizeof(*cand));
                n_cand = n_next;
        }
        for (size_t i = 0; i < n_cand; i++) {
                int r = add_item(c, v, n, cand[i], pivot, err);
                if (r == -ENOENT || r == -ENOTDIR)
                        continue;
                if (r < 0)
                        goto out;
        }
        rc = 0;
out:
        strv_free(cand, n_cand);
        return rc;
}

static int expand_source(struct copier *c, const char *raw, struct item **v, size_t *n,
                         struct kerr **err)
{
        _cleanup_free_ char *pattern = builder_path_clean(raw);
        _cleanup_free_ char *pivot = NULL;
        const char *piv = strstr(raw, "/./");
        size_t before = *n;

        if (c->src->context && leaves_root(raw))
                return kerr_set(err, 0, KERR_INVALID,
                                "forbidden path outside the build context: '%s'", raw);
        if (c->o->parents && piv) {
                _cleanup_free_ char *head = kstrndup(raw, (size_t)(piv - raw));
                pivot = builder_path_clean(head);
        } else {
                pivot = kstrdup("/");
        }
        if (has_meta(pattern)) {
                if (expand_glob(c, pattern, pivot, v, n, err) < 0)
                        return -1;
                if (*n == before)
                        return kerr_set(err, ENOENT, KERR_NOTFOUND,
                                        "no source files were specified: '%s' matches nothing in "
                                        "%s",
                                        raw, c->what);
                return 0;
        }
        int r = add_item(c, v, n, pattern, pivot, err);
        if (r == -ENOENT || r == -ENOTDIR)
                return kerr_set(err, ENOENT, KERR_NOTFOUND, "'%s': file not found in %s", raw,
                                c->what);
        if (r < 0)
                return -1;
        if (ignored(c, (*v)[*n - 1].literal) || ignored(c, (*v)[*n - 1].path))
                return kerr_set(err, ENOENT, KERR_NOTFOUND,
                                "'%s': file not found in %s: excluded by %s", raw, c->what,
                                builder_context_ignore_name(c->src->context));
        return 0;
}

/* ---- writing ---- */

static struct timespec clamp_time(const struct copier *c, struct timespec t)
{
        if (c->o->mtime_clamp >= 0 && t.tv_sec >= c->o->mtime_clamp) {
                t.tv_sec = (time_t)c->o->mtime_clamp;
                t.tv_nsec = 0;
        }
        return t;
}

static void owner_of(const struct copier *c, const struct stat *st, uid_t *uid, gid_t *gid)
{
        if (c->chown) {
                *uid = c->uid;
                *gid = c->gid;
        } else if (c->src->context) {
                /* Context files belong to root in the image, as with docker. */
                *uid = 0;
                *gid = 0;
        } else {
                *uid = st->st_uid;
                *gid = st->st_gid;
        }
}

/* Owner of directories the copy creates on the way. */
static void created_owner(const struct copier *c, uid_t *uid, gid_t *gid)
{
        *uid = c->chown ? c->uid : 0;
        *gid = c->chown ? c->gid : 0;
}

int builder_copy_data(int in, int out, off_t size, const char *name, struct kerr **err)
{
        char buf[65536];
        off_t done = 0;

        for (;;) {
                if (size >= 0 && done >= size)
                        return 0;
                ssize_t n = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);
                if (n == 0)
                        return 0;
                if (n > 0) {
                        done += n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                        return kerr_set(err, errno, KERR_IO, "copy '%s'", name);
                break;
        }
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return kerr_set(err, errno, KERR_IO, "read '%s'", name);
                if (n == 0)
                        return 0;
                if (kfs_write_all(out, buf, (size_t)n) < 0)
                        return kerr_set(err, errno, KERR_IO, "write '%s'", name);
        }
}

static int set_meta_fd(int fd, uid_t uid, gid_t gid, mode_t mode, struct timespec mtime,
                       const char *dpath, struct kerr **err)
{
        struct timespec ts[2] = {mtime, mtime};

        /* chown before chmod: chown clears the set-id bits. */
        if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
                return kidmap_owner_error(err, errno, uid, gid, "set owner and mode of '%s'",
                                          dpath);
        if (futimens(fd, ts) < 0)
                return kerr_set(err, errno, KERR_IO, "set times of '%s'", dpath);
        return 0;
}

/* A source directory being walked: an fd in the build context, or a directory of the
 * source view (COPY --from). Its entries are then read and opened by name. */
struct sdir {
        int fd;
        struct builder_rootfs_dir *rd;
        char *path; /* resolved, for messages and the ignore file */
};

static void sdir_release(struct sdir *d)
{
        kfs_close(d->fd);
        builder_rootfs_dir_free(d->rd);
        free(d->path);
        *d = (struct sdir){.fd = -1};
}

static int sdir_open(const struct copier *c, const char *path, struct sdir *d, struct kerr **err)
{
        *d = (struct sdir){.fd = -1, .path = kstrdup(path)};
        if (!c->src->context)
                return builder_rootfs_dir_open(c->src->rootfs, path, &d->rd, err);
        d->fd = builder_context_open_dir(c->src->context, path, err);
        return d->fd < 0 ? -1 : 0;
}

static int sdir_child(const struct copier *c, const struct sdir *d, const char *name,
                      struct sdir *ret, struct kerr **err)
{
        _cleanup_free_ char *p = builder_path_join(d->path, name);
        int r;

        *ret = (struct sdir){.fd = -1};
        if (c->src->context) {
                ret->fd = builder_context_open_at(c->src->context, d->fd, d->path, name,
                                                  O_RDONLY | O_DIRECTORY, err);
                if (ret->fd < 0)
                        return -1;
        } else {
                r = builder_rootfs_dir_child(d->rd, name, &ret->rd, err);
                if (r == -ENOENT || r == -ENOTDIR)
                        return kerr_set(err, -r, KERR_NOTFOUND, "read directory '%s'", p);
                if (r < 0)
                        return -1;
        }
        ret->path = TAKE_PTR(p);
        return 0;
}

static int sdir_list(const struct copier *c, const struct sdir *d, struct builder_dirent **ret,
                     size_t *ret_n, struct kerr **err)
{
        if (c->src->context)
                return builder_context_list(c->src->context, d->fd, d->path, ret, ret_n, err);
        return builder_rootfs_dir_list(d->rd, ret, ret_n, err);
}

/* A source entry: a name in an open source directory, or (dir NULL) a resolved path. */
struct sref {
        const struct sdir *dir;
        const char *name;
        const char *path;
};

static int sref_open(const struct copier *c, const struct sref *s, struct kerr **err)
{
        if (!s->dir)
                return src_open(c, s->path, err);
        if (c->src->context)
                return builder_context_open_at(c->src->context, s->dir->fd, s->dir->path, s->name,
                                               O_RDONLY, err);
        return builder_rootfs_dir_open_file(s->dir->rd, s->name, err);
}

static int sref_readlink(const struct copier *c, const struct sref *s, char **ret,
                         struct kerr **err)
{
        struct stat ls;

        if (!s->dir) {
                if (c->lookup(c->root, s->path, &ls, ret, err) < 0 || !*ret)
                        return kerr_set(err, EIO, KERR_IO, "read link '%s'", s->path);
                return 0;
        }
        if (!c->src->context)
                return builder_rootfs_dir_readlink(s->dir->rd, s->name, ret, err);
        _cleanup_free_ char *buf = kcalloc(1, (size_t)PATH_MAX + 1);
        ssize_t n = readlinkat(s->dir->fd, s->name, buf, PATH_MAX);
        if (n < 0)
                return kerr_set(err, errno, KERR_IO, "read link '%s'", s->path);
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

/* The directory above a resolved destination path, made as destination directories are
 * (0755, owned as --chown says); *ret_name points into path. */
static int open_parent(struct copier *c, const char *path, struct builder_rootfs_dir **ret,
                       const char **ret_name, struct kerr **err)
{
        _cleanup_free_ char *parent = builder_path_join(path, "..");
        const char *name = strrchr(path, '/');
        uid_t uid;
        gid_t gid;

        if (!name || !name[1])
                return kerr_set(err, EINVAL, KERR_INVALID, "write '%s': not a file path", path);
        created_owner(c, &uid, &gid);
        if (builder_rootfs_dir_mkdir_p(c->dst, parent, 0755, uid, gid, ret, err) < 0)
                return -1;
        *ret_name = name + 1;
        return 0;
}

/* Creates the file name in dd with len bytes of data, or (in >= 0) with the contents of in,
 * which held in_size bytes when it was looked at. */
static int write_data_file(struct builder_rootfs_dir *dd, const char *name, const char *dpath,
                           const void *data, size_t len, int in, off_t in_size, const char *sname,
                           uid_t uid, gid_t gid, mode_t mode, struct timespec mtime,
                           struct kerr **err)
{
        int pfd = builder_rootfs_dir_prepare(dd, name, true, err);

        if (pfd < 0)
                return -1;
        _cleanup_close_ int fd =
                openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "create '%s'", dpath);
        if (in >= 0 && builder_copy_data(in, fd, in_size, sname, err) < 0)
                return -1;
        if (in < 0 && kfs_write_all(fd, data, len) < 0)
                return kerr_set(err, errno, KERR_IO, "write '%s'", dpath);
        return set_meta_fd(fd, uid, gid, mode, mtime, dpath, err);
}

static int link_to(struct copier *c, const char *existing, struct builder_rootfs_dir *dd,
                   const char *name, const char *dpath, struct kerr **err)
{
        _cleanup_free_ char *parent = builder_path_join(existing, "..");
        const char *oname = strrchr(existing, '/') + 1;
        _cleanup_close_ int opfd =
                kfs_open_in_root(builder_rootfs_upper_fd(c->dst), parent, O_PATH | O_DIRECTORY, 0,
                                 KFS_RESOLVE_NO_SYMLINKS, err);

        if (opfd < 0)
                return kerr_wrap(err, "link '%s'", dpath);
        int pfd = builder_rootfs_dir_prepare(dd, name, true, err);
        if (pfd < 0)
                return -1;
        if (linkat(opfd, oname, pfd, name, 0) < 0)
                return kerr_set(err, errno, KERR_IO, "link '%s' to '%s'", dpath, existing);
        return 0;
}

static int write_nondir(struct copier *c, const struct sref *s, const struct stat *st,
                        struct builder_rootfs_dir *dd, const char *name, struct kerr **err)
{
        _cleanup_free_ char *dpath = builder_path_join(builder_rootfs_dir_path(dd), name);
        struct timespec mtime = clamp_time(c, st->st_mtim);
        mode_t mode = c->chmod ? c->mode : st->st_mode & 07777;
        uid_t uid;
        gid_t gid;

        owner_of(c, st, &uid, &gid);
        if (S_ISREG(st->st_mode)) {
                if (st->st_nlink > 1) {
                        for (size_t i = 0; i < c->n_links; i++)
                                if (c->links[i].dev == st->st_dev && c->links[i].ino == st->st_ino)
                                        return link_to(c, c->links[i].dest, dd, name, dpath, err);
                }
                _cleanup_close_ int in = sref_open(c, s, err);
                if (in < 0)
                        return -1;
                if (write_data_file(dd, name, dpath, NULL, 0, in, st->st_size, s->path, uid, gid,
                                    mode, mtime, err) < 0)
                        return -1;
                if (st->st_nlink > 1) {
                        c->links = kreallocarray(c->links, c->n_links + 1, sizeof(*c->links));
                        c->links[c->n_links++] =
                                (struct link){st->st_dev, st->st_ino, TAKE_PTR(dpath)};
                }
                return 0;
        }
        if (S_ISSOCK(st->st_mode))
                return 0; /* sockets do not survive in a tar layer */
        int pfd = builder_rootfs_dir_prepare(dd, name, true, err);
        if (pfd < 0)
                return -1;
        struct timespec ts[2] = {mtime, mtime};
        if (S_ISLNK(st->st_mode)) {
                _cleanup_free_ char *target = NULL;
                if (sref_readlink(c, s, &target, err) < 0)
                        return -1;
                if (symlinkat(target, pfd, name) < 0)
                        return kerr_set(err, errno, KERR_IO, "create symlink '%s'", dpath);
                if (fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return kidmap_owner_error(err, errno, uid, gid,
                                                  "set owner and times of '%s'", dpath);
                return 0;
        }
        if (mknodat(pfd, name, st->st_mode & S_IFMT, st->st_rdev) < 0)
                return kerr_set(err, errno, KERR_IO, "create '%s'", dpath);
        if (fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(pfd, name, mode, 0) < 0 || utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return kidmap_owner_error(err, errno, uid, gid, "set owner and mode of '%s'",
                                          dpath);
        return 0;
}

static int open_upper_dir(struct copier *c, const char *dpath, struct kerr **err)
{
        return kfs_open_in_root(builder_rootfs_upper_fd(c->dst), dpath,
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, KFS_RESOLVE_NO_SYMLINKS,
                                err);
}

static void dtime_add(struct copier *c, const char *dpath, struct timespec t)
{
        c->dtimes = kreallocarray(c->dtimes, c->n_dtimes + 1, sizeof(*c->dtimes));
        c->dtimes[c->n_dtimes++] = (struct dtime){kstrdup(dpath), t};
}

/* Makes dpath (a resolved path: the entry name of pd, or "/" when pd is NULL) a directory
 * with the source directory's metadata, and opens it as *ret. When meta is false (the top
 * of a directory copy) an existing directory is left as it is, and a missing one is made as
 * a destination directory is, 0755 and owned as --chown says: only the contents are copied,
 * so "COPY dir /d" and "COPY dir /d/" give the same /d (buildah does this). */
static int make_dir(struct copier *c, const struct stat *st, struct builder_rootfs_dir *pd,
                    const char *name, const char *dpath, bool meta, struct builder_rootfs_dir **ret,
                    struct kerr **err)
{
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *d = NULL;
        mode_t mode = c->chmod ? c->mode : st->st_mode & 07777;
        bool existed = true;
        uid_t uid;
        gid_t gid;

        owner_of(c, st, &uid, &gid);
        if (!meta) {
                created_owner(c, &uid, &gid);
                mode = 0755;
        }
        if (pd) {
                if (builder_rootfs_dir_mkdir(pd, name, mode, uid, gid, true, &d, &existed, err) < 0)
                        return -1;
        } else if (builder_rootfs_dir_open(c->dst, "/", &d, err) < 0) {
                return -1;
        }
        if (meta || !existed) {
                int upfd = builder_rootfs_dir_upper(d, err);
                if (upfd < 0)
                        return -1;
                _cleanup_close_ int fd = openat(upfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return kerr_set(err, errno, KERR_IO, "set metadata of '%s'", dpath);
                if (set_meta_fd(fd, uid, gid, mode, clamp_time(c, st->st_mtim), dpath, err) < 0)
                        return -1;
                dtime_add(c, dpath, clamp_time(c, st->st_mtim));
        }
        *ret = TAKE_PTR(d);
        return 0;
}

/* make_dir for a resolved path. */
static int make_dir_path(struct copier *c, const struct stat *st, const char *dpath, bool meta,
                         struct builder_rootfs_dir **ret, struct kerr **err)
{
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *pd = NULL;
        const char *name;

        if (strcmp(dpath, "/") == 0)
                return make_dir(c, st, NULL, NULL, dpath, meta, ret, err);
        if (open_parent(c, dpath, &pd, &name, err) < 0)
                return -1;
        return make_dir(c, st, pd, name, dpath, meta, ret, err);
}

static int copy_dir_contents(struct copier *c, const struct sdir *sd, const char *rel,
                             struct builder_rootfs_dir *dd, struct kerr **err);

/* Copies the source directory entry e of sd to the entry of the same name in dd. */
static int copy_subdir(struct copier *c, const struct sdir *sd, const struct builder_dirent *e,
                       const char *rel, struct builder_rootfs_dir *dd, struct kerr **err)
{
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *cd = NULL;
        struct sdir child;
        struct stat dl;
        int r = builder_rootfs_dir_stat(dd, e->name, &dl, err);

        if (r == -1)
                return -1;
        if (r == 0 && S_ISLNK(dl.st_mode)) {
                /* A symlink to a directory in the destination is followed, inside the
                 * destination. */
                _cleanup_free_ char *link = builder_path_join(builder_rootfs_dir_path(dd), e->name);
                _cleanup_free_ char *res = NULL;
                struct kerr *e2 = NULL;
                struct stat ds;
                if (builder_rootfs_stat(c->dst, link, true, &ds, &res, &e2) == 0 &&
                    S_ISDIR(ds.st_mode))
                        r = make_dir_path(c, &e->st, res, true, &cd, err);
                else
                        r = make_dir(c, &e->st, dd, e->name, link, true, &cd, err);
                kerr_free(e2);
        } else {
                _cleanup_free_ char *dpath =
                        builder_path_join(builder_rootfs_dir_path(dd), e->name);
                r = make_dir(c, &e->st, dd, e->name, dpath, true, &cd, err);
        }
        if (r < 0 || sdir_child(c, sd, e->name, &child, err) < 0)
                return -1;
        r = copy_dir_contents(c, &child, rel, cd, err);
        sdir_release(&child);
        return r;
}

static int copy_dir_contents(struct copier *c, const struct sdir *sd, const char *rel,
                             struct builder_rootfs_dir *dd, struct kerr **err)
{
        struct builder_dirent *ents = NULL;
        size_t n = 0;
        int rc = -1;

        if (sdir_list(c, sd, &ents, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                const struct builder_dirent *e = &ents[i];
                _cleanup_free_ char *cs = builder_path_join(sd->path, e->name);
                _cleanup_free_ char *cr = builder_path_join(rel, e->name);

                if (excluded(c, cr))
                        continue;
                if (ignored(c, cs) && !(S_ISDIR(e->st.st_mode) &&
                                        builder_context_ignore_has_exceptions(c->src->context)))
                        continue;
                if (e->mount_root) {
                        kerr_set(err, EXDEV, KERR_INVALID,
                                 "copy '%s': another file system is mounted there in the build "
                                 "context",
                                 cs);
                        goto out;
                }
                if (S_ISDIR(e->st.st_mode)) {
                        if (copy_subdir(c, sd, e, cr, dd, err) < 0)
                                goto out;
                        continue;
                }
                struct sref s = {sd, e->name, cs};
                if (write_nondir(c, &s, &e->st, dd, e->name, err) < 0)
                        goto out;
        }
        rc = 0;
out:
        builder_dirents_free(ents, n);
        return rc;
}

/* Copies the source directory at resolved spath to dpath (resolved). */
static int copy_tree(struct copier *c, const char *spath, const struct stat *st, const char *dpath,
                     bool meta, struct kerr **err)
{
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *dd = NULL;
        struct sdir sd;
        int r;

        if (make_dir_path(c, st, dpath, meta, &dd, err) < 0)
                return -1;
        if (sdir_open(c, spath, &sd, err) < 0) {
                sdir_release(&sd);
                return -1;
        }
        r = copy_dir_contents(c, &sd, "/", dd, err);
        sdir_release(&sd);
        return r;
}

/* Copies the non-directory at resolved spath to dpath (resolved). */
static int copy_file(struct copier *c, const char *spath, const struct stat *st, const char *dpath,
                     struct kerr **err)
{
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *pd = NULL;
        struct sref s = {NULL, NULL, spath};
        const char *name;

        if (open_parent(c, dpath, &pd, &name, err) < 0)
                return -1;
        return write_nondir(c, &s, st, pd, name, err);
}

/* ---- ADD: local archives ---- */

/* Opens fd as a tar archive (any compression libarchive knows, detected by content);
 * NULL when it is not one. */
static struct archive *archive_try(int fd)
{
        struct archive *a = archive_read_new();
        struct archive_entry *ae;

        if (!a)
                abort();
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        archive_read_support_format_gnutar(a);
        if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK ||
            archive_read_next_header(a, &ae) != ARCHIVE_OK) {
                archive_read_free(a);
                return NULL;
        }
        archive_read_free(a);
        if (lseek(fd, 0, SEEK_SET) < 0)
                return NULL;
        a = archive_read_new();
        if (!a)
                abort();
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        archive_read_support_format_gnutar(a);
        if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
                archive_read_free(a);
                return NULL;
        }
        return a;
}

/* The entry name cleaned under the destination; NULL when it climbs out of it. */
static char *entry_path(const char *destdir, const char *name)
{
        if (leaves_root(name[0] == '/' ? name + 1 : name))
                return NULL;
        _cleanup_free_ char *clean = builder_path_clean(name);
        return builder_path_join(destdir, clean + 1);
}

static bool under(const char *path, const char *dir)
{
        size_t n = strlen(dir);

        if (strcmp(dir, "/") == 0)
                return true;
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static int extract_entry(struct copier *c, struct archive *a, struct archive_entry *ae,
                         const char *arname, const char *destdir, struct kerr **err)
{
        const char *ename = archive_entry_pathname(ae);
        _cleanup_free_ char *p = ename ? entry_path(destdir, ename) : NULL;
        _cleanup_free_ char *parent = NULL, *rparent = NULL, *dpath = NULL;
        _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *pd = NULL;
        const char *name;
        mode_t type = archive_entry_filetype(ae);
        mode_t mode = archive_entry_perm(ae) & 07777;
        uid_t uid = c->chown ? c->uid : (uid_t)archive_entry_uid(ae);
        gid_t gid = c->chown ? c->gid : (gid_t)archive_entry_gid(ae);
        struct timespec mtime = {archive_entry_mtime(ae), archive_entry_mtime_nsec(ae)};
        const char *hl = archive_entry_hardlink(ae);

        if (!p)
                return kerr_set(err, 0, KERR_INVALID, "ADD '%s': entry '%s' leaves the destination",
                                arname, ename ? ename : "");
        if (strcmp(p, destdir) == 0 && type == AE_IFDIR)
                return 0;
        /* Parents resolve inside the rootfs and must stay under the destination. */
        parent = builder_path_join(p, "..");
        if (builder_rootfs_resolve(c->dst, parent, true, &rparent, err) < 0)
                return -1;
        if (!under(rparent, destdir))
                return kerr_set(err, 0, KERR_INVALID,
                                "ADD '%s': entry '%s' leads out of the destination through a "
                                "symlink",
                                arname, ename);
        dpath = builder_path_join(rparent, strrchr(p, '/') + 1);
        mtime = clamp_time(c, mtime);
        if (hl) {
                _cleanup_free_ char *t = entry_path(destdir, hl);
                _cleanup_free_ char *rt = NULL;
                if (!t || builder_rootfs_resolve(c->dst, t, false, &rt, err) < 0 ||
                    !under(rt, destdir))
                        return kerr_set(err, 0, KERR_INVALID,
                                        "ADD '%s': hard link '%s' leaves the destination", arname,
                                        ename);
                if (open_parent(c, dpath, &pd, &name, err) < 0)
                        return -1;
                return link_to(c, rt, pd, name, dpath, err);
        }
        if (type == AE_IFDIR) {
                struct stat st = {
                        .st_mode = S_IFDIR | mode, .st_uid = uid, .st_gid = gid, .st_mtim = mtime};
                bool saved = c->chmod;
                c->chmod = false;
                uid_t su = c->uid;
                gid_t sg = c->gid;
                bool sc = c->chown;
                /* The entry's own owner, not the context's root reset. */
                c->chown = true;
                c->uid = uid;
                c->gid = gid;
                _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *d = NULL;
                int r = make_dir_path(c, &st, dpath, true, &d, err);
                c->chmod = saved;
                c->chown = sc;
                c->uid = su;
                c->gid = sg;
                return r;
        }
        if (open_parent(c, dpath, &pd, &name, err) < 0)
                return -1;
        if (type == AE_IFREG) {
                int pfd = builder_rootfs_dir_prepare(pd, name, true, err);
                if (pfd < 0)
                        return -1;
                _cleanup_close_ int fd = openat(
                        pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return kerr_set(err, errno, KERR_IO, "create '%s'", dpath);
                for (;;) {
                        const void *buf;
                        size_t len;
                        la_int64_t off;
                        int r = archive_read_data_block(a, &buf, &len, &off);
                        if (r == ARCHIVE_EOF)
                                break;
                        if (r != ARCHIVE_OK)
                                return kerr_from_archive(err, a, "ADD '%s': read '%s'", arname,
                                                         ename);
                        if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
                                return kerr_set(err, errno, KERR_IO, "write '%s'", dpath);
                }
                return set_meta_fd(fd, uid, gid, mode, mtime, dpath, err);
        }
        int pfd = builder_rootfs_dir_prepare(pd, name, true, err);
        if (pfd < 0)
                return -1;
        struct timespec ts[2] = {mtime, mtime};
        if (type == AE_IFLNK) {
                const char *target = archive_entry_symlink(ae);
                if (!target || symlinkat(target, pfd, name) < 0)
                        return kerr_set(err, errno, KERR_IO, "create symlink '%s'", dpath);
        } else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO) {
                dev_t dev = makedev(archive_entry_rdevmajor(ae), archive_entry_rdevminor(ae));
                if (mknodat(pfd, name, type | mode, dev) < 0) {
                        /* No device node can be made in a user namespace: left out, as
                         * buildah leaves it out without root. */
                        if (errno == EPERM && type != AE_IFIFO)
                                return 0;
                        return kerr_set(err, errno, KERR_IO, "create '%s'", dpath);
                }
        } else {
                return 0; /* sockets and unknown types are skipped */
        }
        if (fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                return kidmap_owner_error(err, errno, uid, gid, "set owner of '%s'", dpath);
        if (type != AE_IFLNK && fchmodat(pfd, name, mode, 0) < 0)
                return kerr_set(err, errno, KERR_IO, "set mode of '%s'", dpath);
        if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return kerr_set(err, errno, KERR_IO, "set times of '%s'", dpath);
        return 0;
}

/* Extracts the archive at item into destdir; 1 when it is not an archive. */
static int try_extract(struct copier *c, const struct item *it, const char *destdir,
                       struct kerr **err)
{
        _cleanup_close_ int fd = src_open(c, it->path, err);
        _cleanup_(archive_read_freep) struct archive *a = NULL;
        struct archive_entry *ae;
        uid_t uid;
        gid_t gid;

        if (fd < 0 || karchive_load(err) < 0)
                return -1;
        a = archive_try(fd);
        if (!a)
                return 1;
        created_owner(c, &uid, &gid);
        if (builder_rootfs_mkdir_p(c->dst, destdir, 0755, uid, gid, err) < 0)
                return -1;
        for (;;) {
                int r = archive_read_next_header(a, &ae);
                if (r == ARCHIVE_EOF)
                        return 0;
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                        return kerr_from_archive(err, a, "ADD '%s'", it->literal);
                if (extract_entry(c, a, ae, it->literal, destdir, err) < 0)
                        return -1;
        }
}

/* ---- COPY ---- */

static bool dest_is_dir_syntax(const char *d)
{
        size_t n = strlen(d);

        if (n == 0 || d[n - 1] == '/')
                return true;
        if (strcmp(d, ".") == 0 || (n >= 2 && strcmp(d + n - 2, "/.") == 0))
                return true;
        return false;
}

static const char *base_name(const char *p)
{
        const char *s = strrchr(p, '/');
        return s ? s + 1 : p;
}

static int copy_item(struct copier *c, const struct item *it, const char *dres, bool into_dir,
                     struct kerr **err)
{
        const char *bn = base_name(it->literal);
        _cleanup_free_ char *target = NULL;

        if (c->o->add && S_ISREG(it->st.st_mode)) {
                /* docker extracts into the destination directory, whatever its spelling. */
                int r = try_extract(c, it, dres, err);
                if (r <= 0)
                        return r;
        }
        if (c->o->parents)
                target = builder_path_join(dres, it->rel + 1);
        else if (into_dir && !S_ISDIR(it->st.st_mode))
                target = builder_path_join(dres, bn);
        else
                target = kstrdup(dres);
        if (c->o->parents && S_ISDIR(it->st.st_mode) && strcmp(it->rel, "/") != 0) {
                /* Directories on the kept path are created like any other. */
                return copy_tree(c, it->path, &it->st, target, true, err);
        }
        if (S_ISDIR(it->st.st_mode))
                return copy_tree(c, it->path, &it->st, target, false, err);
        return copy_file(c, it->path, &it->st, target, err);
}

static void copier_init_source(struct copier *c)
{
        const struct builder_copy_src *src = c->src;

        c->what = src->name ? src->name : src->context ? "the build context" : "the source image";
        if (src->context) {
                c->lookup = builder_context_lookup;
                c->root = src->context;
        } else {
                c->lookup = builder_rootfs_lookup;
                c->root = src->rootfs;
        }
}

/* The sources of the copy, expanded and filtered, in order. */
static int select_items(struct copier *c, struct item **ret, size_t *ret_n, struct kerr **err)
{
        struct item *items = NULL;
        size_t n_items = 0;

        for (size_t i = 0; i < c->o->n_srcs; i++) {
                size_t before = n_items;
                if (expand_source(c, c->o->srcs[i], &items, &n_items, err) < 0) {
                        items_free(items, n_items);
                        return -1;
                }
                /* --exclude also filters what the sources themselves match. */
                for (size_t k = before; k < n_items;) {
                        if (excluded(c, items[k].literal) ||
                            excluded(c, base_name(items[k].literal))) {
                                free(items[k].literal);
                                free(items[k].path);
                                free(items[k].rel);
                                memmove(&items[k], &items[k + 1],
                                        (n_items - k - 1) * sizeof(*items));
                                n_items--;
                                continue;
                        }
                        k++;
                }
        }
        *ret = items;
        *ret_n = n_items;
        return 0;
}

/* ---- scanning the sources (for the step cache) ---- */

static int scan_entry(struct copier *c, const struct sref *s, const char *item,
                      const struct stat *st, builder_copy_scan_fn fn, void *ctx, struct kerr **err)
{
        _cleanup_free_ char *target = NULL;
        struct builder_copy_entry e = {.path = s->path, .item = item, .st = st};

        if (S_ISLNK(st->st_mode)) {
                if (sref_readlink(c, s, &target, err) < 0)
                        return -1;
                e.target = target;
        }
        return fn(ctx, &e, err);
}

/* What copy_dir_contents reads of sd, with its filters and in its order. */
static int scan_dir(struct copier *c, const struct sdir *sd, const char *rel,
                    builder_copy_scan_fn fn, void *ctx, struct kerr **err)
{
        struct builder_dirent *ents = NULL;
        size_t n = 0;
        int rc = -1;

        if (sdir_list(c, sd, &ents, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                const struct builder_dirent *e = &ents[i];
                _cleanup_free_ char *cs = builder_path_join(sd->path, e->name);
                _cleanup_free_ char *cr = builder_path_join(rel, e->name);
                struct sref s = {sd, e->name, cs};
                struct sdir child;
                int r;

                if (excluded(c, cr))
                        continue;
                if (ignored(c, cs) && !(S_ISDIR(e->st.st_mode) &&
                                        builder_context_ignore_has_exceptions(c->src->context)))
                        continue;
                if (e->mount_root) {
                        kerr_set(err, EXDEV, KERR_INVALID,
                                 "copy '%s': another file system is mounted there in the build "
                                 "context",
                                 cs);
                        goto out;
                }
                if (S_ISSOCK(e->st.st_mode))
                        continue; /* the copy skips them too */
                if (scan_entry(c, &s, NULL, &e->st, fn, ctx, err) < 0)
                        goto out;
                if (!S_ISDIR(e->st.st_mode))
                        continue;
                if (sdir_child(c, sd, e->name, &child, err) < 0)
                        goto out;
                r = scan_dir(c, &child, cr, fn, ctx, err);
                sdir_release(&child);
                if (r < 0)
                        goto out;
        }
        rc = 0;
out:
        builder_dirents_free(ents, n);
        return rc;
}

int builder_copy_scan(const struct builder_copy_src *src, const struct builder_copy_opts *o,
                      builder_copy_scan_fn fn, void *ctx, struct kerr **err)
{
        struct copier c = {.src = src, .o = o};
        _cleanup_(parser_ignore_freep) struct parser_ignore *ex = NULL;
        struct item *items = NULL;
        size_t n_items = 0;
        int rc = -1;

        if ((!src->context) == (!src->rootfs) && o->n_srcs)
                return kerr_set(err, 0, KERR_INTERNAL, "copy: exactly one source is needed");
        copier_init_source(&c);
        if (o->n_excludes) {
                ex = parser_ignore_new(o->excludes, o->n_excludes, err);
                if (!ex)
                        return kerr_wrap(err, "--exclude");
                c.excludes = ex;
        }
        if (select_items(&c, &items, &n_items, err) < 0)
                return -1;
        for (size_t i = 0; i < n_items; i++) {
                const struct item *it = &items[i];
                struct sref s = {NULL, NULL, it->path};
                struct sdir sd;
                int r;

                if (scan_entry(&c, &s, it->literal, &it->st, fn, ctx, err) < 0)
                        goto out;
                if (!S_ISDIR(it->st.st_mode))
                        continue;
                if (sdir_open(&c, it->path, &sd, err) < 0) {
                        sdir_release(&sd);
                        goto out;
                }
                r = scan_dir(&c, &sd, "/", fn, ctx, err);
                sdir_release(&sd);
                if (r < 0)
                        goto out;
        }
        rc = 0;
out:
        items_free(items, n_items);
        return rc;
}

int builder_copy(struct builder_rootfs *dst, const struct builder_copy_src *src,
                 const struct builder_copy_opts *o, struct kerr **err)
{
        struct copier c = {.dst = dst, .src = src, .o = o};
        _cleanup_free_ char *dabs = NULL, *dres = NULL;
        _cleanup_(parser_ignore_freep) struct parser_ignore *ex = NULL;
        struct item *items = NULL;
        size_t n_items = 0;
        struct stat dst_st;
        struct kerr *e = NULL;
        bool into_dir;
        int rc = -1;

        if ((!src->context) == (!src->rootfs) && o->n_srcs)
                return kerr_set(err, 0, KERR_INTERNAL, "copy: exactly one source is needed");
        if (!o->dest || !*o->dest)
                return kerr_set(err, 0, KERR_INVALID, "%s: no destination",
                                o->add ? "ADD" : "COPY");
        if (o->n_srcs + o->n_heredocs == 0)
                return kerr_set(err, 0, KERR_INVALID, "%s: no source files were specified",
                                o->add ? "ADD" : "COPY");
        if (builder_rootfs_upper_fd(dst) < 0)
                return kerr_set(err, EROFS, KERR_INTERNAL, "copy into a read-only view");
        copier_init_source(&c);
        if (o->chmod && parse_chmod(o->chmod, &c.mode, err) < 0)
                return -1;
        c.chmod = o->chmod != NULL;
        if (o->chown && builder_resolve_chown(dst, o->chown, &c.uid, &c.gid, err) < 0)
                return -1;
        c.chown = o->chown != NULL;
        if (o->n_excludes) {
                ex = parser_ignore_new(o->excludes, o->n_excludes, err);
                if (!ex)
                        return kerr_wrap(err, "--exclude");
                c.excludes = ex;
        }
        if (select_items(&c, &items, &n_items, err) < 0)
                goto out;

        dabs = builder_path_join(o->workdir ? o->workdir : "/", o->dest);
        into_dir = dest_is_dir_syntax(o->dest) || o->parents;
        if (n_items + o->n_heredocs > 1 && !into_dir) {
                kerr_set(err, 0, KERR_INVALID,
                         "When using %s with more than one source file, the destination must be "
                         "a directory and end with a /",
                         o->add ? "ADD" : "COPY");
                goto out;
        }
        if (builder_rootfs_resolve(dst, dabs, true, &dres, err) < 0)
                goto out;
        if (builder_rootfs_stat(dst, dres, false, &dst_st, NULL, &e) == 0 &&
            S_ISDIR(dst_st.st_mode))
                into_dir = true;
        kerr_free(e);
        if (into_dir) {
                uid_t uid;
                gid_t gid;
                created_owner(&c, &uid, &gid);
                if (builder_rootfs_mkdir_p(dst, dres, 0755, uid, gid, err) < 0)
                        goto out;
        }
        for (size_t i = 0; i < n_items; i++)
                if (copy_item(&c, &items[i], dres, into_dir, err) < 0)
                        goto out;
        for (size_t i = 0; i < o->n_heredocs; i++) {
                const struct builder_copy_heredoc *h = &o->heredocs[i];
                _cleanup_free_ char *target =
                        into_dir ? builder_path_join(dres, h->name) : kstrdup(dres);
                struct timespec now;
                uid_t uid;
                gid_t gid;

                clock_gettime(CLOCK_REALTIME, &now);
                if (o->mtime_clamp >= 0)
                        now = (struct timespec){(time_t)o->mtime_clamp, 0};
                created_owner(&c, &uid, &gid);
                _cleanup_(builder_rootfs_dir_freep) struct builder_rootfs_dir *pd = NULL;
                const char *name;
                if (open_parent(&c, target, &pd, &name, err) < 0 ||
                    write_data_file(pd, name, target, h->data, h->len, -1, -1, h->name, uid, gid,
                                    c.chmod ? c.mode : 0644, now, err) < 0)
                        goto out;
        }
        /* Directory times last: writing into a directory moves its mtime. */
        for (size_t i = c.n_dtimes; i-- > 0;) {
                _cleanup_close_ int fd = open_upper_dir(&c, c.dtimes[i].path, NULL);
                struct timespec ts[2] = {c.dtimes[i].mtime, c.dtimes[i].mtime};
                if (fd >= 0 && futimens(fd, ts) < 0) {
                        kerr_set(err, errno, KERR_IO, "set times of '%s'", c.dtimes[i].path);
                        goto out;
                }
        }
        rc = 0;
out:
        items_free(items, n_items);
        for (size_t i = 0; i < c.n_links; i++)
                free(c.links[i].dest);
        free(c.links);
        for (size_t i = 0; i < c.n_dtimes; i++)
                free(c.dtimes[i].path);
        free(c.dtimes);
        return rc;
}
