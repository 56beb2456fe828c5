/* SPDX-License-Identifier: Apache-2.0 */
/* The step cache: one small JSON file per key under cache/<aa>/, written whole by rename.
 * The builder computes the keys; this file only stores entries, checks that what an entry
 * names is still in the store, and decides which entries the GC keeps. */
#include "image/image.h"
#include "image/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/kjson.h"
#include "common/log.h"
#include "common/banned.h"

/* A config is at most a few hundred kB; the limit only stops a damaged file from being read
 * whole. */
#define ENTRY_MAX (64u << 20)
#define INPUTS_MAX (256u << 20)
#define INPUTS_SUFFIX ".inputs"

void image_cache_entry_release(struct image_cache_entry *e)
{
        if (!e)
                return;
        free(e->config);
        for (size_t i = 0; i < e->n_deps; i++)
                free(e->deps[i]);
        free(e->deps);
        image_config_free(e->cfg);
        image_free_names(e->chain, e->n_chain);
        memset(e, 0, sizeof(*e));
}

/* "sha256:<aa><rest>" -> "<aa>" and "<rest><suffix>". Keys name files, so anything but a
 * valid digest is refused. */
static int key_path(const char *key, const char *suffix, char dir[3], char name[80],
                    struct kerr **err)
{
        if (!kdigest_valid(key))
                return kerr_set(err, 0, KERR_INVALID, "invalid cache key '%s'", key ? key : "");
        memcpy(dir, key + 7, 2);
        dir[2] = '\0';
        snprintf(name, 80, "%s%s", key + 9, suffix);
        return 0;
}

/* The fd of cache/<aa>, created when create; -ENOENT when it is not there. */
static int open_bucket(struct image_store *s, const char *dir, bool create, struct kerr **err)
{
        int cfd = image_store_subdir(s, "cache", &s->cache_fd, err);
        int fd;

        if (cfd < 0)
                return -EIO;
        if (create && mkdirat(cfd, dir, 0700) < 0 && errno != EEXIST)
                return kerr_set(err, errno, KERR_IO, "create '%s/cache/%s'", s->root, dir);
        fd = openat(cfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return -ENOENT;
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s/cache/%s'", s->root, dir);
        return fd;
}

static int read_bucket_file(struct image_store *s, const char *key, const char *suffix, size_t max,
                            struct kbuf *out, struct kerr **err)
{
        char dir[3], name[80];
        _cleanup_close_ int dfd = -1, fd = -1;

        if (key_path(key, suffix, dir, name, err) < 0)
                return -1;
        dfd = open_bucket(s, dir, false, err);
        if (dfd == -ENOENT)
                return kerr_set(err, ENOENT, KERR_NOTFOUND, "no cache entry %s", key);
        if (dfd < 0)
                return -1;
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return kerr_set(err, ENOENT, KERR_NOTFOUND, "no cache entry %s", key);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open cache entry %s", key);
        return kfs_read_fd(fd, name, max, out, err);
}

static int write_bucket_file(struct image_store *s, const char *key, const char *suffix,
                             const void *data, size_t len, bool sync, struct kerr **err)
{
        char dir[3], name[80], where[16];
        _cleanup_close_ int dfd = -1;

        if (key_path(key, suffix, dir, name, err) < 0)
                return -1;
        dfd = open_bucket(s, dir, true, err);
        if (dfd < 0)
                return -1;
        snprintf(where, sizeof(where), "cache/%s", dir);
        return image_store_put_file(s, dfd, where, name, data, len, sync, err);
}

static json_t *entry_to_json(const struct image_cache_entry *e, struct kerr **err)
{
        json_auto_t *o = json_object();
        json_t *deps = json_array();

        json_object_set_new(o, "version", json_integer(1));
        if (e->parent[0])
                json_object_set_new(o, "parent", json_string(e->parent));
        if (e->partial[0])
                json_object_set_new(o, "partial", json_string(e->partial));
        if (e->image[0])
                json_object_set_new(o, "image", json_string(e->image));
        if (e->config) {
                json_t *cfg = kjson_load(e->config, e->config_len, "config", err);

                if (!cfg) {
                        json_decref(deps);
                        return NULL;
                }
                json_object_set_new(o, "config", cfg);
        }
        for (size_t i = 0; i < e->n_deps; i++)
                json_array_append_new(deps, json_string(e->deps[i]));
        json_object_set_new(o, "deps", deps);
        return TAKE_PTR(o);
}

static bool copy_digest(json_t *o, const char *field, char out[KDIGEST_STRLEN])
{
        json_t *v = json_object_get(o, field);
        const char *s = json_string_value(v);

        if (!v) {
                out[0] = '\0';
                return true;
        }
        if (!kdigest_valid(s))
                return false;
        memcpy(out, s, KDIGEST_STRLEN);
        return true;
}

/* Parses an entry; false when it is not one this kiln wrote. */
static bool entry_from_json(json_t *o, struct image_cache_entry *e)
{
        json_t *cfg = json_object_get(o, "config"), *deps = json_object_get(o, "deps"), *d;
        size_t i;

        memset(e, 0, sizeof(*e));
        if (json_integer_value(json_object_get(o, "version")) != 1 ||
            !copy_digest(o, "parent", e->parent) || !copy_digest(o, "partial", e->partial) ||
            !copy_digest(o, "image", e->image) || (deps && !json_is_array(deps)) ||
            (cfg && !json_is_object(cfg)) || (!cfg && !e->image[0]))
                return false;
        json_array_foreach(deps, i, d)
        {
                if (!kdigest_valid(json_string_value(d))) {
                        image_cache_entry_release(e);
                        return false;
                }
                e->deps = kreallocarray(e->deps, e->n_deps + 1, sizeof(*e->deps));
                e->deps[e->n_deps++] = kstrdup(json_string_value(d));
        }
        return true;
}

/* The chain ids of the layers a config's rootfs.diff_ids name, bottom first; false when the
 * list is malformed. */
static bool config_chain(json_t *cfg, char ***ret, size_t *ret_n)
{
        json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"), *d;
        char chain[KDIGEST_STRLEN] = "";
        char **v = NULL;
        size_t i, n = 0;

        if (diff_ids && !json_is_array(diff_ids))
                return false;
        json_array_foreach(diff_ids, i, d)
        {
                if (image_chain_id(chain, json_string_value(d), chain, NULL) < 0) {
                        image_free_names(v, n);
                        return false;
                }
                v = kreallocarray(v, n + 2, sizeof(*v));
                v[n++] = kstrdup(chain);
                v[n] = NULL;
        }
        *ret = v;
        *ret_n = n;
        return true;
}

int image_cache_put(struct image_store *s, const char *key, const struct image_cache_entry *e,
                    struct kerr **err)
{
        json_auto_t *o = entry_to_json(e, err);
        _cleanup_free_ char *text = NULL;

        if (!o)
                return kerr_wrap(err, "cache entry %s", key);
        text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
                abort();
        if (write_bucket_file(s, key, "", text, strlen(text), true, err) < 0)
                return kerr_wrap(err, "store cache entry %s", key);
        return 0;
}

static int miss(struct kerr **err, const char *key, const char *why)
{
        klog_debug("step cache: entry %s is a miss: %s", key, why);
        return kerr_set(err, 0, KERR_NOTFOUND, "cache entry %s: %s", key, why);
}

int image_cache_get(struct image_store *s, const char *key, struct image_cache_entry *ret,
                    struct kerr **err)
{
        struct kbuf data = KBUF_INIT;
        json_auto_t *o = NULL;
        struct image_cache_entry e;
        char **chain = NULL;
        size_t n = 0;
        int r;

        r = read_bucket_file(s, key, "", ENTRY_MAX, &data, err);
        if (r < 0) {
                kbuf_release(&data);
                return r;
        }
        o = kjson_load(data.data, data.len, key, NULL);
        kbuf_release(&data);
        if (!o || !entry_from_json(o, &e))
                return miss(err, key, "unreadable");
        if (e.image[0]) {
                /* The image's config names its layers. */
                json_decref(o);
                o = NULL;
                if (image_blob_read(s, e.image, ENTRY_MAX, &data, NULL) == 0)
                        o = kjson_load(data.data, data.len, e.image, NULL);
                kbuf_release(&data);
                if (!o) {
                        image_cache_entry_release(&e);
                        return miss(err, key, "its image is gone");
                }
        }
        if (!config_chain(e.image[0] ? o : json_object_get(o, "config"), &chain, &n)) {
                image_cache_entry_release(&e);
                return miss(err, key, "its config has a malformed layer list");
        }
        e.chain = chain;
        e.n_chain = n;
        for (size_t i = 0; i < n; i++) {
                if (image_layer_exists(s, chain[i]))
                        continue;
                image_cache_entry_release(&e);
                return miss(err, key, "a layer of it is gone");
        }
        if (!e.image[0]) {
                /* The parsed config is the entry's: a hit uses it as it is. */
                json_t *cfg = json_incref(json_object_get(o, "config"));

                e.cfg = image_config_from_json(cfg, key, NULL);
                if (!e.cfg) {
                        image_cache_entry_release(&e);
                        return miss(err, key, "its config is unreadable");
                }
        }
        *ret = e;
        return 0;
}

int image_cache_put_inputs(struct image_store *s, const char *partial, const char *key,
                           const char *inputs, size_t len, struct kerr **err)
{
        struct kbuf data = KBUF_INIT;
        int r;

        if (!kdigest_valid(key))
                return kerr_set(err, 0, KERR_INVALID, "invalid cache key '%s'", key ? key : "");
        kbuf_printf(&data, "kiln-inputs-v1 %s\n", key);
        kbuf_append(&data, inputs, len);
        r = write_bucket_file(s, partial, INPUTS_SUFFIX, data.data, data.len, false, err);
        kbuf_release(&data);
        return r;
}

int image_cache_get_inputs(struct image_store *s, const char *partial, struct kbuf *inputs,
                           char ret_key[KDIGEST_STRLEN], struct kerr **err)
{
        static const char magic[] = "kiln-inputs-v1 ";
        const size_t ml = sizeof(magic) - 1;
        struct kbuf data = KBUF_INIT;
        char key[KDIGEST_STRLEN], head[sizeof(magic) + KDIGEST_STRLEN];
        char dir[3], name[80];
        _cleanup_close_ int dfd = -1, fd = -1;
        ssize_t n;

        if (key_path(partial, INPUTS_SUFFIX, dir, name, err) < 0)
                return -1;
        dfd = open_bucket(s, dir, false, err);
        if (dfd == -ENOENT)
                return kerr_set(err, ENOENT, KERR_NOTFOUND, "no inputs for %s", partial);
        if (dfd < 0)
                return -1;
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return kerr_set(err, ENOENT, KERR_NOTFOUND, "no inputs for %s", partial);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open the inputs of %s", partial);
        /* The key alone is a read of its first line. */
        n = kfs_read_all(fd, head, ml + KDIGEST_STRLEN);
        if (n != (ssize_t)(ml + KDIGEST_STRLEN) || memcmp(head, magic, ml) != 0 ||
            head[ml + KDIGEST_STRLEN - 1] != '\n')
                return kerr_set(err, 0, KERR_NOTFOUND, "inputs of %s: unreadable", partial);
        memcpy(key, head + ml, KDIGEST_STRLEN - 1);
        key[KDIGEST_STRLEN - 1] = '\0';
        if (!kdigest_valid(key))
                return kerr_set(err, 0, KERR_NOTFOUND, "inputs of %s: unreadable", partial);
        if (inputs) {
                if (kfs_read_fd(fd, name, INPUTS_MAX, &data, err) < 0) {
                        kbuf_release(&data);
                        return -1;
                }
                kbuf_append(inputs, data.data ? data.data : "", data.len);
                kbuf_release(&data);
        }
        if (ret_key)
                memcpy(ret_key, key, KDIGEST_STRLEN);
        return 0;
}

bool image_cache_has_inputs(struct image_store *s, const char *partial)
{
        char dir[3], name[80], path[90];
        struct stat st;
        int cfd;

        if (key_path(partial, INPUTS_SUFFIX, dir, name, NULL) < 0)
                return false;
        cfd = image_store_subdir(s, "cache", &s->cache_fd, NULL);
        if (cfd < 0)
                return false;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        return fstatat(cfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* ---- what the GC keeps ---- */

struct node {
        char key[KDIGEST_STRLEN];
        struct image_cache_entry e; /* empty for an unreadable entry */
        char **chain;               /* the layers of its config */
        size_t n_chain;
        bool kept;
};

struct graph {
        struct node *v;
        size_t n;
        char **inputs; /* partial keys that have .inputs */
        size_t n_inputs;
};

static int cmp_node(const void *a, const void *b)
{
        return strcmp(((const struct node *)a)->key, ((const struct node *)b)->key);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct node *graph_find(struct graph *g, const char *key)
{
        struct node probe;

        if (!g->n || !kdigest_valid(key))
                return NULL;
        memcpy(probe.key, key, KDIGEST_STRLEN);
        return bsearch(&probe, g->v, g->n, sizeof(*g->v), cmp_node);
}

static void graph_release(struct graph *g)
{
        for (size_t i = 0; i < g->n; i++) {
                image_cache_entry_release(&g->v[i].e);
                image_free_names(g->v[i].chain, g->v[i].n_chain);
        }
        free(g->v);
        image_free_names(g->inputs, g->n_inputs);
        memset(g, 0, sizeof(*g));
}

static void mark(struct graph *g, struct node *nd)
{
        /* Along parents in a loop, recursive only into deps (the stages a COPY --from read),
         * which are few: a long chain of steps never deepens the stack. */
        while (nd && !nd->kept) {
                nd->kept = true;
                for (size_t i = 0; i < nd->e.n_deps; i++)
                        mark(g, graph_find(g, nd->e.deps[i]));
                nd = graph_find(g, nd->e.parent);
        }
}

static bool is_hex(const char *s, size_t n)
{
        return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

/* Adds the file name of bucket dir to g: an entry, or the .inputs of a partial key. */
static void graph_add(struct image_store *s, struct graph *g, const char *dir, const char *name)
{
        char key[KDIGEST_STRLEN];
        size_t nl = strlen(name), sl = strlen(INPUTS_SUFFIX);
        struct kbuf data = KBUF_INIT;
        json_auto_t *o = NULL;
        struct node *nd;

        if (nl == 62 + sl && strcmp(name + 62, INPUTS_SUFFIX) == 0) {
                _cleanup_free_ char *hex = kstrndup(name, 62);

                if (!is_hex(hex, 62))
                        return;
                snprintf(key, sizeof(key), "sha256:%s%s", dir, hex);
                g->inputs = kreallocarray(g->inputs, g->n_inputs + 1, sizeof(*g->inputs));
                g->inputs[g->n_inputs++] = kstrdup(key);
                return;
        }
        if (!is_hex(name, 62))
                return;
        snprintf(key, sizeof(key), "sha256:%s%s", dir, name);
        g->v = kreallocarray(g->v, g->n + 1, sizeof(*g->v));
        nd = &g->v[g->n++];
        memset(nd, 0, sizeof(*nd));
        memcpy(nd->key, key, KDIGEST_STRLEN);
        if (read_bucket_file(s, key, "", ENTRY_MAX, &data, NULL) == 0)
                o = kjson_load(data.data, data.len, key, NULL);
        kbuf_release(&data);
        if (!o || !entry_from_json(o, &nd->e))
                return;
        if (!nd->e.image[0] &&
            !config_chain(json_object_get(o, "config"), &nd->chain, &nd->n_chain)) {
                nd->chain = NULL;
                nd->n_chain = 0;
        }
}

static int load_graph(struct image_store *s, struct graph *g, struct kerr **err)
{
        int cfd = image_store_subdir(s, "cache", &s->cache_fd, err);
        char **buckets = NULL;
        size_t nb = 0;

        if (cfd < 0 || image_list_dir(cfd, "cache", &buckets, &nb, err) < 0)
                return -1;
        for (size_t i = 0; i < nb; i++) {
                _cleanup_close_ int dfd = -1;
                char **names = NULL;
                size_t nn = 0;

                if (!is_hex(buckets[i], 2))
                        continue;
                dfd = openat(cfd, buckets[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd < 0)
                        continue;
                if (image_list_dir(dfd, buckets[i], &names, &nn, NULL) < 0)
                        continue;
                for (size_t k = 0; k < nn; k++)
                        graph_add(s, g, buckets[i], names[k]);
                image_free_names(names, nn);
        }
        image_free_names(buckets, nb);
        if (g->n)
                qsort(g->v, g->n, sizeof(*g->v), cmp_node);
        return 0;
}

static void remove_file(struct image_store *s, const char *key, const char *suffix)
{
        char dir[3], name[80], path[90];

        if (key_path(key, suffix, dir, name, NULL) < 0)
                return;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        klog_debug("store: removing cache %s%s", key, suffix);
        if (unlinkat(s->cache_fd, path, 0) < 0 && errno != ENOENT)
                klog_debug("store: remove cache/%s: %s", path, strerror(errno));
}

int image_cache_keep_locked(struct image_store *s, char *const *ids, size_t n, bool remove,
                            char ***ret_layers, size_t *ret_n, struct kerr **err)
{
        struct graph g = {0};
        char **layers = NULL, **partials = NULL;
        size_t nl = 0, np = 0;

        if (load_graph(s, &g, err) < 0) {
                graph_release(&g);
                return kerr_wrap(err, "read the step cache");
        }
        for (size_t i = 0; i < g.n; i++)
                for (size_t k = 0; g.v[i].e.image[0] && k < n; k++)
                        if (strcmp(g.v[i].e.image, ids[k]) == 0)
                                mark(&g, &g.v[i]);
        for (size_t i = 0; i < g.n; i++) {
                struct node *nd = &g.v[i];

                if (!nd->kept) {
                        if (remove)
                                remove_file(s, nd->key, "");
                        continue;
                }
                for (size_t k = 0; k < nd->n_chain; k++) {
                        layers = kreallocarray(layers, nl + 2, sizeof(*layers));
                        layers[nl++] = kstrdup(nd->chain[k]);
                        layers[nl] = NULL;
                }
                if (nd->e.partial[0]) {
                        partials = kreallocarray(partials, np + 1, sizeof(*partials));
                        partials[np++] = kstrdup(nd->e.partial);
                }
        }
        if (np)
                qsort(partials, np, sizeof(*partials), cmp_str);
        for (size_t i = 0; remove && i < g.n_inputs; i++)
                if (!np || !bsearch(&g.inputs[i], partials, np, sizeof(*partials), cmp_str))
                        remove_file(s, g.inputs[i], INPUTS_SUFFIX);
        image_free_names(partials, np);
        graph_release(&g);
        *ret_layers = layers ? layers : kcalloc(1, sizeof(*layers));
        *ret_n = nl;
        return 0;
}
