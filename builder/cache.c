/* SPDX-License-Identifier: Apache-2.0 */
/* Step cache keys: what a step's result depends on, written as lines of text that are
 * hashed into the key and kept to explain a miss. Context files are hashed on threads of
 * their own, and only when the stat cache does not know them. */
#include "builder/builder.h"
#include "builder/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"
#include "common/banned.h"

/* Changing what a key covers, or how, changes this, so old entries stop matching. */
#define KEY_VERSION "kiln-step-v1"

/* Runs of plain bytes go in whole: a warm build escapes every path of the context. */
static void escape_into(struct kbuf *b, const char *s)
{
        for (;;) {
                size_t n = strcspn(s, "\\\t\n");

                kbuf_append(b, s, n);
                s += n;
                if (!*s)
                        return;
                kbuf_append(b, *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : "\\n", 2);
                s++;
        }
}

static void line_into(struct kbuf *b, const char *what, const char *name, const char *value)
{
        kbuf_puts(b, what);
        kbuf_putc(b, '\t');
        escape_into(b, name);
        kbuf_putc(b, '\t');
        escape_into(b, value);
        kbuf_putc(b, '\n');
}

int builder_key_begin(struct builder_key *k, const char *parent, const char *text,
                      struct kerr **err)
{
        struct kbuf b = KBUF_INIT;
        int r;

        memset(k, 0, sizeof(*k));
        kbuf_printf(&b, "%s partial\n%s\n", KEY_VERSION, parent ? parent : "");
        escape_into(&b, text);
        kbuf_putc(&b, '\n');
        r = kdigest_buf(b.data, b.len, k->partial, err);
        kbuf_release(&b);
        return r;
}

void builder_key_release(struct builder_key *k)
{
        kbuf_release(&k->lines);
        for (size_t i = 0; i < k->n_files; i++) {
                free(k->files[i].path);
                free(k->files[i].target);
                free(k->files[i].link);
        }
        free(k->files);
        memset(k, 0, sizeof(*k));
}

void builder_key_add(struct builder_key *k, const char *what, const char *name, const char *value)
{
        line_into(&k->lines, what, name, value);
}

void builder_key_add_value(struct builder_key *k, const char *value)
{
        char n[32];

        snprintf(n, sizeof(n), "%zu", ++k->n_values);
        line_into(&k->lines, "value", n, value);
}

static int cmp_var_name(const void *a, const void *b)
{
        const char *x = *(const char *const *)a, *y = *(const char *const *)b;
        size_t nx = strcspn(x, "="), ny = strcspn(y, "=");
        int r = strncmp(x, y, nx < ny ? nx : ny);

        return r ? r : (nx > ny) - (nx < ny);
}

static void add_vars(struct builder_key *k, const char *what, const char *const *v, size_t n,
                     bool sorted)
{
        const char **copy = kcalloc(n + 1, sizeof(*copy));

        if (n)
                memcpy(copy, v, n * sizeof(*copy));
        if (sorted && n > 1)
                qsort(copy, n, sizeof(*copy), cmp_var_name);
        for (size_t i = 0; i < n; i++) {
                const char *eq = strchr(copy[i], '=');
                _cleanup_free_ char *name =
                        kstrndup(copy[i], eq ? (size_t)(eq - copy[i]) : strlen(copy[i]));

                line_into(&k->lines, what, name, eq ? eq + 1 : "");
        }
        free(copy);
}

void builder_key_add_run(struct builder_key *k, const char *const *args, size_t n_args,
                         const char *const *env, size_t n_env)
{
        add_vars(k, "arg", args, n_args, true);
        add_vars(k, "env", env, n_env, false);
}

/* ---- the sources of a COPY ---- */

struct scan {
        struct builder_key *k;
        size_t cap;
        /* Inodes with more than one link, as the copy tracks them for hard links. */
        struct inode {
                dev_t dev;
                ino_t ino;
                size_t file;
        } * inodes;
        size_t n_inodes;
};

static int scan_fn(void *ctx, const struct builder_copy_entry *e, struct kerr **err)
{
        struct scan *sc = ctx;
        struct builder_key *k = sc->k;
        struct builder_key_file *f;

        (void)err;
        if (e->item)
                line_into(&k->lines, "source", e->item, e->path);
        if (k->n_files == sc->cap) {
                sc->cap = sc->cap ? 2 * sc->cap : 64;
                k->files = kreallocarray(k->files, sc->cap, sizeof(*k->files));
        }
        f = &k->files[k->n_files];
        memset(f, 0, sizeof(*f));
        f->path = kstrdup(e->path);
        f->st = *e->st;
        if (e->target)
                f->target = kstrdup(e->target);
        if (S_ISREG(e->st->st_mode) && e->st->st_nlink > 1) {
                for (size_t i = 0; i < sc->n_inodes; i++) {
                        if (sc->inodes[i].dev != e->st->st_dev ||
                            sc->inodes[i].ino != e->st->st_ino)
                                continue;
                        f->link = kstrdup(k->files[sc->inodes[i].file].path);
                        break;
                }
                if (!f->link) {
                        sc->inodes =
                                kreallocarray(sc->inodes, sc->n_inodes + 1, sizeof(*sc->inodes));
                        sc->inodes[sc->n_inodes++] =
                                (struct inode){e->st->st_dev, e->st->st_ino, k->n_files};
                }
        }
        k->n_files++;
        return 0;
}

int builder_key_scan(struct builder_key *k, const struct builder_copy_src *src,
                     const struct builder_copy_opts *o, struct kerr **err)
{
        struct scan sc = {.k = k, .cap = k->n_files};
        int r = builder_copy_scan(src, o, scan_fn, &sc, err);

        free(sc.inodes);
        return r;
}

static bool needs_digest(const struct builder_key_file *f)
{
        return S_ISREG(f->st.st_mode) && !f->link && !f->digest[0];
}

size_t builder_key_known(struct builder_key *k, struct image_statcache *sc)
{
        size_t left = 0;

        for (size_t i = 0; i < k->n_files; i++) {
                struct builder_key_file *f = &k->files[i];

                if (!needs_digest(f))
                        continue;
                if (!sc || !image_statcache_get(sc, &f->st, f->digest))
                        left++;
        }
        return left;
}

/* ---- hashing ---- */

struct builder_hash_job {
        const struct builder_context *ctx;
        struct builder_key_file **todo;
        size_t n;
        atomic_size_t next;
        atomic_bool stop;
        pthread_t threads[4];
        size_t n_threads;
        pthread_mutex_t lock;
        struct kerr *err; /* the first failure */
};

static bool same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int hash_file(const struct builder_context *ctx, struct builder_key_file *f,
                     struct kerr **err)
{
        _cleanup_close_ int fd = -1;
        struct kdigest *d = NULL;
        char buf[65536];
        struct stat after;
        ssize_t n = 0;

        clock_gettime(CLOCK_REALTIME, &f->read_start);
        /* O_NONBLOCK: a file swapped for a FIFO meanwhile must not hang the build. */
        fd = kfs_open_in_root(builder_context_fd(ctx), f->path,
                              O_RDONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW, 0,
                              KFS_RESOLVE_NO_XDEV | KFS_RESOLVE_NO_SYMLINKS, err);

        if (fd < 0)
                return kerr_wrap(err, "hash '%s' in the build context", f->path);
        d = kdigest_new(err);
        if (!d)
                return -1;
        /* As much as the scan saw, as the copy copies (a file that grew meanwhile is not
         * remembered, below): no read is spent on finding the end. */
        for (off_t left = f->st.st_size; left > 0; left -= n) {
                n = kfs_read_all(fd, buf, left < (off_t)sizeof(buf) ? (size_t)left : sizeof(buf));
                if (n <= 0)
                        break;
                kdigest_update(d, buf, (size_t)n);
        }
        if (n < 0) {
                kdigest_free(d);
                return kerr_set(err, errno, KERR_IO, "read '%s' in the build context", f->path);
        }
        if (kdigest_final(d, f->digest, err) < 0) {
                kdigest_free(d);
                return -1;
        }
        kdigest_free(d);
        /* The digest is of what was read; it is remembered for the file only when the file
         * did not change from the scan to the end of the read. */
        f->cacheable =
                fstat(fd, &after) == 0 && S_ISREG(after.st_mode) && same_file(&f->st, &after);
        return 0;
}

static void *hash_thread(void *arg)
{
        struct builder_hash_job *j = arg;

        while (!atomic_load(&j->stop)) {
                size_t i = atomic_fetch_add(&j->next, 1);
                struct kerr *e = NULL;

                if (i >= j->n)
                        break;
                if (hash_file(j->ctx, j->todo[i], &e) == 0)
                        continue;
                atomic_store(&j->stop, true);
                pthread_mutex_lock(&j->lock);
                if (!j->err)
                        j->err = TAKE_PTR(e);
                pthread_mutex_unlock(&j->lock);
                kerr_free(e);
        }
        return NULL;
}

static void job_free(struct builder_hash_job *j)
{
        pthread_mutex_destroy(&j->lock);
        kerr_free(j->err);
        free(j->todo);
        free(j);
}

int builder_hash_start(struct builder_key *k, const struct builder_context *ctx, unsigned n_threads,
                       struct builder_hash_job **ret, struct kerr **err)
{
        struct builder_hash_job *j = kcalloc(1, sizeof(*j));
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        j->ctx = ctx;
        pthread_mutex_init(&j->lock, NULL);
        j->todo = kcalloc(k->n_files + 1, sizeof(*j->todo));
        for (size_t i = 0; i < k->n_files; i++)
                if (needs_digest(&k->files[i]))
                        j->todo[j->n++] = &k->files[i];
        if (!n_threads)
                n_threads = cpus > 0 ? (unsigned)cpus : 1;
        if (n_threads > ARRAY_SIZE(j->threads))
                n_threads = ARRAY_SIZE(j->threads);
        if (n_threads > j->n)
                n_threads = (unsigned)j->n;
        for (unsigned i = 0; i < n_threads; i++) {
                int r = pthread_create(&j->threads[i], NULL, hash_thread, j);

                if (r != 0) {
                        atomic_store(&j->stop, true);
                        for (size_t t = 0; t < j->n_threads; t++)
                                pthread_join(j->threads[t], NULL);
                        job_free(j);
                        return kerr_set(err, r, KERR_IO, "start a thread to hash files");
                }
                j->n_threads++;
        }
        *ret = j;
        return 0;
}

int builder_hash_finish(struct builder_hash_job *j, struct image_statcache *sc, struct kerr **err)
{
        int r = 0;

        for (size_t t = 0; t < j->n_threads; t++)
                pthread_join(j->threads[t], NULL);
        if (j->err) {
                if (err) {
                        kerr_free(*err);
                        *err = TAKE_PTR(j->err);
                }
                r = -1;
        } else if (sc) {
                for (size_t i = 0; i < j->n; i++)
                        if (j->todo[i]->cacheable)
                                image_statcache_put(sc, &j->todo[i]->st, &j->todo[i]->read_start,
                                                    j->todo[i]->digest);
        }
        job_free(j);
        return r;
}

/* ---- the key ---- */

static int cmp_file(const void *a, const void *b)
{
        return strcmp(((const struct builder_key_file *)a)->path,
                      ((const struct builder_key_file *)b)->path);
}

/* "file\tPATH\tT MODE ...": type letter, permission bits in four octal digits, then the
 * digest, link target or device. Formatted by hand: it runs once per file of the context on
 * every build. */
static void file_line(struct kbuf *b, const struct builder_key_file *f)
{
        mode_t t = f->st.st_mode & S_IFMT;
        unsigned perm = (unsigned)(f->st.st_mode & 07777);
        char head[8] = {'?',
                        ' ',
                        (char)('0' + (perm >> 9 & 7)),
                        (char)('0' + (perm >> 6 & 7)),
                        (char)('0' + (perm >> 3 & 7)),
                        (char)('0' + (perm & 7)),
                        ' ',
                        '\0'};

        kbuf_append(b, "file\t", 5);
        escape_into(b, f->path);
        kbuf_putc(b, '\t');
        if (t == S_IFLNK) {
                kbuf_append(b, "l ", 2);
                escape_into(b, f->target ? f->target : "");
        } else {
                head[0] = t == S_IFREG   ? (f->link ? 'h' : 'f')
                          : t == S_IFDIR ? 'd'
                          : t == S_IFCHR ? 'c'
                          : t == S_IFBLK ? 'b'
                                         : 'p';
                kbuf_append(b, head, t == S_IFREG || t == S_IFCHR || t == S_IFBLK ? 7 : 6);
                if (t == S_IFREG)
                        escape_into(b, f->link ? f->link : f->digest);
                else if (t == S_IFCHR || t == S_IFBLK)
                        kbuf_printf(b, "%u:%u", major(f->st.st_rdev), minor(f->st.st_rdev));
        }
        kbuf_putc(b, '\n');
}

int builder_key_finish(struct builder_key *k, char ret_key[KDIGEST_STRLEN], char **ret_inputs,
                       struct kerr **err)
{
        struct kbuf in = KBUF_INIT, all = KBUF_INIT;
        int r;

        if (k->n_files > 1)
                qsort(k->files, k->n_files, sizeof(*k->files), cmp_file);
        if (k->lines.len)
                kbuf_append(&in, k->lines.data, k->lines.len);
        for (size_t i = 0; i < k->n_files; i++) {
                if (needs_digest(&k->files[i])) {
                        kbuf_release(&in);
                        return kerr_set(err, 0, KERR_INTERNAL, "no digest for '%s'",
                                        k->files[i].path);
                }
                file_line(&in, &k->files[i]);
        }
        kbuf_printf(&all, "%s\n%s\n", KEY_VERSION, k->partial);
        if (in.len)
                kbuf_append(&all, in.data, in.len);
        r = kdigest_buf(all.data ? all.data : "", all.len, ret_key, err);
        kbuf_release(&all);
        if (r == 0 && ret_inputs)
                *ret_inputs = kbuf_detach(&in);
        kbuf_release(&in);
        return r;
}

int builder_key_from(const char *base, const char *platform, long long timestamp,
                     char ret[KDIGEST_STRLEN], struct kerr **err)
{
        struct kbuf b = KBUF_INIT;
        int r;

        kbuf_printf(&b, "%s from\n", KEY_VERSION);
        line_into(&b, "base", "", base);
        line_into(&b, "platform", "", platform ? platform : "");
        kbuf_printf(&b, "timestamp\t\t%lld\n", timestamp);
        r = kdigest_buf(b.data, b.len, ret, err);
        kbuf_release(&b);
        return r;
}

/* ---- explaining a miss ---- */

struct line {
        char *what, *name, *value; /* escaped, as in the text */
};

static void lines_free(struct line *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i].what);
        free(v);
}

static int cmp_line(const void *a, const void *b)
{
        const struct line *x = a, *y = b;
        int r = strcmp(x->what, y->what);

        return r ? r : strcmp(x->name, y->name);
}

/* Splits text into lines (each owning one allocation holding its three fields), sorted by
 * what and name. */
static struct line *parse_lines(const char *text, size_t *ret_n)
{
        struct line *v = NULL;
        size_t n = 0;

        for (const char *p = text; p && *p;) {
                const char *end = strchrnul(p, '\n');
                char *copy = kstrndup(p, (size_t)(end - p));
                char *t1 = strchr(copy, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;

                p = *end ? end + 1 : end;
                if (!t2) {
                        free(copy);
                        continue;
                }
                *t1 = *t2 = '\0';
                v = kreallocarray(v, n + 1, sizeof(*v));
                v[n++] = (struct line){copy, t1 + 1, t2 + 1};
        }
        if (n > 1)
                qsort(v, n, sizeof(*v), cmp_line);
        *ret_n = n;
        return v;
}

static const char *unrooted(const char *path)
{
        while (*path == '/')
                path++;
        return *path ? path : ".";
}

/* One reason, for the line old (NULL: added) becoming new (NULL: removed). */
static void reason(struct kbuf *b, const struct line *o, const struct line *n)
{
        const struct line *l = n ? n : o;
        const char *how = !o ? "added" : !n ? "removed" : "changed";

        if (strcmp(l->what, "file") == 0)
                kbuf_printf(b, "%s %s", unrooted(l->name), how);
        else if (strcmp(l->what, "source") == 0)
                kbuf_printf(b, "source '%s' %s", l->name,
                            !o   ? "added"
                            : !n ? "gone"
                                 : "now resolves elsewhere");
        else if (strcmp(l->what, "arg") == 0)
                kbuf_printf(b, "build arg '%s' %s", l->name, how);
        else if (strcmp(l->what, "env") == 0)
                kbuf_printf(b, "environment variable '%s' %s", l->name, how);
        else if (strcmp(l->what, "value") == 0 && o && n)
                kbuf_printf(b, "'%s' is now '%s' after expansion", o->value, n->value);
        else
                kbuf_printf(b, "%s %s%s%s", l->what, l->name, *l->name ? " " : "", how);
}

char *builder_key_diff(const char *old_inputs, const char *new_inputs)
{
        size_t no = 0, nn = 0, i = 0, k = 0, found = 0;
        struct line *o = parse_lines(old_inputs, &no), *n = parse_lines(new_inputs, &nn);
        struct kbuf b = KBUF_INIT;

        kbuf_puts(&b, "");
        while (i < no || k < nn) {
                int c = i >= no ? 1 : k >= nn ? -1 : cmp_line(&o[i], &n[k]);
                const struct line *lo = c <= 0 ? &o[i] : NULL, *ln = c >= 0 ? &n[k] : NULL;

                if (lo && ln && strcmp(lo->value, ln->value) == 0) {
                        i++;
                        k++;
                        continue;
                }
                if (found < 3) {
                        if (found)
                                kbuf_puts(&b, ", ");
                        reason(&b, lo, ln);
                }
                found++;
                i += lo != NULL;
                k += ln != NULL;
        }
        if (found > 3)
                kbuf_printf(&b, " and %zu more", found - 3);
        lines_free(o, no);
        lines_free(n, nn);
        return kbuf_detach(&b);
}
