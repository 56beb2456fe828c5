/* SPDX-License-Identifier: Apache-2.0 */
/* The stat cache of build contexts: per context directory, a table from a file's identity
 * and change stamps to the sha256 of its content, so that a rebuild of an unchanged context
 * reads no file. One binary file per context, loaded whole, looked up by binary search, and
 * written back (merged with other builds' changes) only when it changed. */
#include "image/image.h"
#include "image/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/banned.h"

/* The file: MAGIC, u32 path length, u32 zero, the path, u64 record count, the records, and
 * the sha256 of everything before it. Native byte order: a store belongs to one machine. */
#define MAGIC "KILNSTC1"
#define TABLE_MAX (1u << 30)
#define NS 1000000000LL
/* A file changed this shortly before it was read may change again within the same tick of
 * the file system's clock: a jiffy (at most 10 ms) where stamps have nanoseconds, a second
 * or two (FAT) where they are whole seconds. */
#define RACY_NS (NS / 10)
#define RACY_COARSE_NS (2 * NS)
#define REFRESH_S (24 * 3600)
#define EXPIRE_S (30 * 24 * 3600)

struct rec {
        uint64_t dev, ino;
        int64_t size, mtime, ctime; /* ns */
        int64_t used;               /* seconds: the last build that found it, to the day */
        unsigned char sha[32];
};

_Static_assert(sizeof(struct rec) == 80, "records are written as they are in memory");

struct image_statcache {
        struct image_store *s;
        char name[65]; /* the table's file name */
        char *path;    /* the context directory */
        struct rec *v; /* sorted by (dev, ino), one per inode */
        size_t n;
        struct rec *add; /* recorded since the last merge into v */
        size_t n_add, cap_add;
        bool dirty;
        int64_t now; /* seconds, when opened */
};

static int cmp_rec(const void *a, const void *b)
{
        const struct rec *x = a, *y = b;

        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return 0;
}

static int64_t ns_of(const struct timespec *t)
{
        return (int64_t)t->tv_sec * NS + t->tv_nsec;
}

static void rec_of(const struct stat *st, struct rec *r)
{
        memset(r, 0, sizeof(*r));
        r->dev = (uint64_t)st->st_dev;
        r->ino = (uint64_t)st->st_ino;
        r->size = (int64_t)st->st_size;
        r->mtime = ns_of(&st->st_mtim);
        r->ctime = ns_of(&st->st_ctim);
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* "sha256:<hex>" of a raw digest (by hand: a warm build does this for every file). */
static void hex_of(const unsigned char sha[32], char out[KDIGEST_STRLEN])
{
        static const char digits[] = "0123456789abcdef";

        memcpy(out, "sha256:", 7);
        for (size_t i = 0; i < 32; i++) {
                out[7 + 2 * i] = digits[sha[i] >> 4];
                out[8 + 2 * i] = digits[sha[i] & 15];
        }
        out[7 + 64] = '\0';
}

/* Sorts v and keeps one record per inode: the one with the later ctime (the file's later
 * state), or the one used more recently. */
static size_t sort_unique(struct rec *v, size_t n)
{
        size_t out = 0;

        if (n < 2)
                return n;
        qsort(v, n, sizeof(*v), cmp_rec);
        for (size_t i = 0; i < n; i++) {
                struct rec *last = out ? &v[out - 1] : NULL;

                if (last && cmp_rec(last, &v[i]) == 0) {
                        if (v[i].ctime > last->ctime ||
                            (v[i].ctime == last->ctime && v[i].used > last->used))
                                *last = v[i];
                        continue;
                }
                v[out++] = v[i];
        }
        return out;
}

/* Parses a table file; false when it is damaged or not one (the caller starts empty). */
static bool parse_table(const struct kbuf *data, char **ret_path, struct rec **ret_v, size_t *ret_n)
{
        const unsigned char *p = (const unsigned char *)data->data;
        size_t len = data->len, off = 0;
        char sum[KDIGEST_STRLEN], want[KDIGEST_STRLEN];
        uint32_t pl;
        uint64_t n;

        if (len < 8 + 8 + 8 + 32 || memcmp(p, MAGIC, 8) != 0)
                return false;
        if (kdigest_buf(p, len - 32, sum, NULL) < 0)
                return false;
        /* The trailer is the raw digest; compare as hex. */
        hex_of(p + len - 32, want);
        if (strcmp(sum, want) != 0)
                return false;
        memcpy(&pl, p + 8, 4);
        off = 16;
        if (pl > len - off - 8 - 32)
                return false;
        *ret_path = kstrndup((const char *)p + off, pl);
        off += pl;
        memcpy(&n, p + off, 8);
        off += 8;
        if (n > (len - off - 32) / sizeof(struct rec) || n * sizeof(struct rec) != len - off - 32) {
                free(*ret_path);
                *ret_path = NULL;
                return false;
        }
        *ret_v = kcalloc(n + 1, sizeof(**ret_v));
        memcpy(*ret_v, p + off, n * sizeof(struct rec));
        *ret_n = n;
        return true;
}

/* Loads the table file name of statcache/ into *ret_v (sorted); an absent or damaged one
 * gives nothing. */
static int load_table(struct image_statcache *c, struct rec **ret_v, size_t *ret_n,
                      struct kerr **err)
{
        int dfd = image_store_subdir(c->s, "statcache", &c->s->statcache_fd, err);
        struct kbuf data = KBUF_INIT;
        struct kerr *e = NULL;
        char *path = NULL;

        *ret_v = NULL;
        *ret_n = 0;
        if (dfd < 0)
                return -1;
        if (kfs_read_file(dfd, c->name, TABLE_MAX, &data, &e) < 0) {
                int en = e->errnum;

                kerr_free(e);
                kbuf_release(&data);
                if (en == ENOENT)
                        return 0;
                klog_debug("store: stat cache %s unreadable, starting empty", c->name);
                return 0;
        }
        if (!parse_table(&data, &path, ret_v, ret_n))
                klog_debug("store: stat cache %s is damaged, starting empty", c->name);
        else if (strcmp(path, c->path) != 0) {
                klog_debug("store: stat cache %s is another context's, starting empty", c->name);
                free(*ret_v);
                *ret_v = NULL;
                *ret_n = 0;
        }
        free(path);
        kbuf_release(&data);
        *ret_n = sort_unique(*ret_v, *ret_n);
        return 0;
}

struct image_statcache *image_statcache_open(struct image_store *s, const char *path,
                                             struct kerr **err)
{
        struct image_statcache *c = kcalloc(1, sizeof(*c));
        char digest[KDIGEST_STRLEN];

        c->s = s;
        c->path = kstrdup(path);
        c->now = (int64_t)time(NULL);
        if (kdigest_buf(path, strlen(path), digest, err) < 0) {
                image_statcache_free(c);
                return NULL;
        }
        memcpy(c->name, digest + 7, 65);
        if (load_table(c, &c->v, &c->n, err) < 0) {
                image_statcache_free(c);
                return NULL;
        }
        return c;
}

void image_statcache_free(struct image_statcache *c)
{
        if (!c)
                return;
        free(c->path);
        free(c->v);
        free(c->add);
        free(c);
}

/* Folds the records added since the last lookup into the sorted table. */
static void merge_added(struct image_statcache *c)
{
        if (!c->n_add)
                return;
        c->v = kreallocarray(c->v, c->n + c->n_add + 1, sizeof(*c->v));
        memcpy(c->v + c->n, c->add, c->n_add * sizeof(*c->add));
        c->n = sort_unique(c->v, c->n + c->n_add);
        c->n_add = 0;
}

bool image_statcache_get(struct image_statcache *c, const struct stat *st, char ret[KDIGEST_STRLEN])
{
        struct rec want, *r;

        if (!S_ISREG(st->st_mode))
                return false;
        merge_added(c);
        rec_of(st, &want);
        r = c->n ? bsearch(&want, c->v, c->n, sizeof(*c->v), cmp_rec) : NULL;
        if (!r || r->size != want.size || r->mtime != want.mtime || r->ctime != want.ctime)
                return false;
        hex_of(r->sha, ret);
        /* A day's resolution: a warm build rewrites the table at most once a day. */
        if (r->used < c->now - REFRESH_S) {
                r->used = c->now;
                c->dirty = true;
        }
        return true;
}

void image_statcache_put(struct image_statcache *c, const struct stat *st,
                         const struct timespec *read_start, const char *digest)
{
        struct rec r;
        const char *hex = kdigest_hex(digest);
        /* A kernel-set ctime of exactly .000000000 says the file system keeps seconds. */
        int64_t tick = st->st_ctim.tv_nsec ? RACY_NS : RACY_COARSE_NS;

        if (!hex || !S_ISREG(st->st_mode))
                return;
        rec_of(st, &r);
        if (r.ctime > ns_of(read_start) - tick)
                return;
        for (size_t i = 0; i < 32; i++)
                r.sha[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        r.used = c->now;
        if (c->n_add == c->cap_add) {
                c->cap_add = c->cap_add ? 2 * c->cap_add : 256;
                c->add = kreallocarray(c->add, c->cap_add, sizeof(*c->add));
        }
        c->add[c->n_add++] = r;
        c->dirty = true;
}

int image_statcache_save(struct image_statcache *c, struct kerr **err)
{
        int dfd = image_store_subdir(c->s, "statcache", &c->s->statcache_fd, err);
        _cleanup_close_ int lock = -1;
        struct rec *disk = NULL, *all;
        size_t n_disk = 0, n = 0;
        struct kbuf out = KBUF_INIT;
        char sum[KDIGEST_STRLEN];
        uint32_t pl = (uint32_t)strlen(c->path), zero = 0;
        uint64_t count;
        int r;

        if (dfd < 0)
                return -1;
        if (!c->dirty)
                return 0;
        merge_added(c);
        /* Builds of the same context merge under a lock: without it one build's new
         * records could be lost (never wrong, only hashed again). */
        lock = openat(dfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (lock < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s/statcache/lock'",
                                image_store_root(c->s));
        while (flock(lock, LOCK_EX) < 0)
                if (errno != EINTR)
                        return kerr_set(err, errno, KERR_IO, "lock '%s/statcache/lock'",
                                        image_store_root(c->s));
        if (load_table(c, &disk, &n_disk, err) < 0)
                return -1;
        all = kcalloc(n_disk + c->n + 1, sizeof(*all));
        for (size_t i = 0; i < n_disk; i++)
                if (disk[i].used >= c->now - EXPIRE_S)
                        all[n++] = disk[i];
        for (size_t i = 0; i < c->n; i++)
                if (c->v[i].used >= c->now - EXPIRE_S)
                        all[n++] = c->v[i];
        free(disk);
        n = sort_unique(all, n);
        count = n;
        kbuf_append(&out, MAGIC, 8);
        kbuf_append(&out, &pl, 4);
        kbuf_append(&out, &zero, 4);
        kbuf_append(&out, c->path, pl);
        kbuf_append(&out, &count, 8);
        kbuf_append(&out, all, n * sizeof(*all));
        free(all);
        if (kdigest_buf(out.data, out.len, sum, err) < 0) {
                kbuf_release(&out);
                return -1;
        }
        for (size_t i = 0; i < 32; i++) {
                unsigned char b =
                        (unsigned char)(hexval(sum[7 + 2 * i]) << 4 | hexval(sum[8 + 2 * i]));
                kbuf_append(&out, &b, 1);
        }
        r = image_store_put_file(c->s, dfd, "statcache", c->name, out.data, out.len, true, err);
        kbuf_release(&out);
        if (r < 0)
                return kerr_wrap(err, "save the stat cache of '%s'", c->path);
        c->dirty = false;
        return 0;
}

void image_statcache_prune(struct image_store *s)
{
        int dfd = image_store_subdir(s, "statcache", &s->statcache_fd, NULL);
        char **names = NULL;
        size_t n = 0;

        if (dfd < 0 || image_list_dir(dfd, "statcache", &names, &n, NULL) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                struct kbuf data = KBUF_INIT;
                struct rec *v = NULL;
                size_t nv = 0;
                char *path = NULL;
                struct stat st;

                if (strlen(names[i]) != 64 || strspn(names[i], "0123456789abcdef") != 64)
                        continue;
                if (kfs_read_file(dfd, names[i], TABLE_MAX, &data, NULL) == 0 &&
                    parse_table(&data, &path, &v, &nv) && lstat(path, &st) == 0 &&
                    S_ISDIR(st.st_mode)) {
                        free(path);
                        free(v);
                        kbuf_release(&data);
                        continue;
                }
                klog_debug("store: removing the stat cache %s of '%s'", names[i],
                           path ? path : "?");
                unlinkat(dfd, names[i], 0);
                free(path);
                free(v);
                kbuf_release(&data);
        }
        image_free_names(names, n);
}
