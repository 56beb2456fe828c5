/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/kjson.h"
#include "common/log.h"
#include "common/banned.h"

#define INDEX_FILE "images.json"
#define INDEX_MAX (256u << 20)
#define CONFIG_MAX (64u << 20)

void image_record_release(struct image_record *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_names; i++)
                free(r->names[i]);
        free(r->names);
        for (size_t i = 0; i < r->n_manifests; i++)
                free(r->manifests[i]);
        free(r->manifests);
        for (size_t i = 0; i < r->n_annotations; i++)
                free(r->annotations[i]);
        free(r->annotations);
        free(r->format);
        r->names = r->manifests = r->annotations = NULL;
        r->format = NULL;
        r->n_names = r->n_manifests = r->n_annotations = 0;
}

void image_records_free(struct image_record *r, size_t n)
{
        if (!r)
                return;
        for (size_t i = 0; i < n; i++)
                image_record_release(&r[i]);
        free(r);
}

/* The whole index in memory. */
struct index {
        struct image_record *v;
        size_t n;
};

static void index_release(struct index *ix)
{
        image_records_free(ix->v, ix->n);
        ix->v = NULL;
        ix->n = 0;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
        *v = kreallocarray(*v, *n + 1, sizeof(**v));
        (*v)[(*n)++] = kstrdup(s);
}

static bool strv_contains(char **v, size_t n, const char *s)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

static bool strv_remove(char **v, size_t *n, const char *s)
{
        for (size_t i = 0; i < *n; i++) {
                if (strcmp(v[i], s) != 0)
                        continue;
                free(v[i]);
                memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
                (*n)--;
                return true;
        }
        return false;
}

static int load_strings(json_t *a, char ***v, size_t *n, bool digests)
{
        size_t i;
        json_t *e;

        if (!a)
                return 0;
        if (!json_is_array(a))
                return -1;
        json_array_foreach(a, i, e)
        {
                const char *s = json_string_value(e);
                if (!s || (digests && !kdigest_valid(s)))
                        return -1;
                strv_push(v, n, s);
        }
        return 0;
}

static int index_load(struct image_store *s, struct index *ix, struct kerr **err)
{
        struct kbuf data = KBUF_INIT;
        json_auto_t *root = NULL;
        json_t *images, *e;
        size_t i;
        int fd;

        ix->v = NULL;
        ix->n = 0;
        fd = openat(s->root_fd, INDEX_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return 0;
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s/%s'", s->root, INDEX_FILE);
        if (kfs_read_fd(fd, INDEX_FILE, INDEX_MAX, &data, err) < 0) {
                kfs_close(fd);
                kbuf_release(&data);
                return -1;
        }
        kfs_close(fd);
        root = kjson_load(data.data, data.len, INDEX_FILE, err);
        kbuf_release(&data);
        if (!root)
                return -1;
        images = json_object_get(root, "images");
        if (images && !json_is_array(images))
                goto bad;
        ix->v = kcalloc(json_array_size(images) + 1, sizeof(*ix->v));
        json_array_foreach(images, i, e)
        {
                struct image_record *r = &ix->v[ix->n];
                const char *id = json_string_value(json_object_get(e, "id"));

                if (!kdigest_valid(id))
                        goto bad;
                memcpy(r->id, id, KDIGEST_STRLEN);
                ix->n++;
                if (load_strings(json_object_get(e, "names"), &r->names, &r->n_names, false) < 0 ||
                    load_strings(json_object_get(e, "manifests"), &r->manifests, &r->n_manifests,
                                 true) < 0 ||
                    load_strings(json_object_get(e, "annotations"), &r->annotations,
                                 &r->n_annotations, false) < 0)
                        goto bad;
                if (json_is_string(json_object_get(e, "format")))
                        r->format = kstrdup(json_string_value(json_object_get(e, "format")));
        }
        return 0;
bad:
        index_release(ix);
        return kerr_set(err, 0, KERR_PARSE, "'%s/%s' is malformed", s->root, INDEX_FILE);
}

static json_t *strv_json(char **v, size_t n)
{
        json_t *a = json_array();

        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, json_string(v[i]));
        return a;
}

static int index_save(struct image_store *s, const struct index *ix, struct kerr **err)
{
        json_auto_t *root = json_object();
        json_t *images = json_array();
        _cleanup_free_ char *text = NULL;

        for (size_t i = 0; i < ix->n; i++) {
                json_t *o = json_object();
                json_object_set_new(o, "id", json_string(ix->v[i].id));
                json_object_set_new(o, "names", strv_json(ix->v[i].names, ix->v[i].n_names));
                json_object_set_new(o, "manifests",
                                    strv_json(ix->v[i].manifests, ix->v[i].n_manifests));
                if (ix->v[i].n_annotations)
                        json_object_set_new(
                                o, "annotations",
                                strv_json(ix->v[i].annotations, ix->v[i].n_annotations));
                if (ix->v[i].format)
                        json_object_set_new(o, "format", json_string(ix->v[i].format));
                json_array_append_new(images, o);
        }
        json_object_set_new(root, "images", images);
        text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
                abort();
        if (kfs_write_atomic(s->root_fd, INDEX_FILE, text, strlen(text), 0644, err) < 0)
                return kerr_wrap(err, "write '%s/%s'", s->root, INDEX_FILE);
        return 0;
}

static struct image_record *index_find(struct index *ix, const char *id)
{
        for (size_t i = 0; i < ix->n; i++)
                if (strcmp(ix->v[i].id, id) == 0)
                        return &ix->v[i];
        return NULL;
}

static struct image_record *index_find_name(struct index *ix, const char *name)
{
        for (size_t i = 0; i < ix->n; i++)
                if (strv_contains(ix->v[i].names, ix->v[i].n_names, name))
                        return &ix->v[i];
        return NULL;
}

static void index_delete(struct index *ix, struct image_record *r)
{
        size_t i = (size_t)(r - ix->v);

        image_record_release(r);
        memmove(&ix->v[i], &ix->v[i + 1], (ix->n - i - 1) * sizeof(*ix->v));
        ix->n--;
}

int image_index_list(struct image_store *s, struct image_record **ret, size_t *ret_n,
                     struct kerr **err)
{
        struct index ix;

        if (index_load(s, &ix, err) < 0)
                return -1;
        if (!ix.v)
                ix.v = kcalloc(1, sizeof(*ix.v));
        *ret = ix.v;
        *ret_n = ix.n;
        return 0;
}

int image_index_add(struct image_store *s, const char *id, const char *const *names, size_t n,
                    struct kerr **err)
{
        _cleanup_close_ int lock = -1;
        _cleanup_(index_release) struct index ix = {0};
        char **norm = kcalloc(n + 1, sizeof(*norm));
        struct image_record *r;
        bool changed = false;
        int ret = -1;

        if (!kdigest_valid(id)) {
                kerr_set(err, 0, KERR_INVALID, "invalid image id '%s'", id ? id : "");
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                norm[i] = image_normalize_name(names[i], err);
                if (!norm[i])
                        goto out;
        }
        lock = image_store_lock(s, err);
        if (lock < 0 || index_load(s, &ix, err) < 0)
                goto out;
        r = index_find(&ix, id);
        if (!r) {
                ix.v = kreallocarray(ix.v, ix.n + 1, sizeof(*ix.v));
                r = &ix.v[ix.n++];
                memset(r, 0, sizeof(*r));
                memcpy(r->id, id, KDIGEST_STRLEN);
                changed = true;
        }
        for (size_t i = 0; i < n; i++) {
                /* A name points at one image: it moves here from any other. */
                for (size_t j = 0; j < ix.n; j++)
                        if (&ix.v[j] != r && strv_remove(ix.v[j].names, &ix.v[j].n_names, norm[i]))
                                changed = true;
                if (!strv_contains(r->names, r->n_names, norm[i])) {
                        strv_push(&r->names, &r->n_names, norm[i]);
                        changed = true;
                }
        }
        /* A rebuild that hit every step names the image it named before: nothing to write
         * (and sync). */
        ret = changed ? index_save(s, &ix, err) : 0;
out:
        for (size_t i = 0; i < n; i++)
                free(norm[i]);
        free(norm);
        return ret;
}

int image_index_set_build_info(struct image_store *s, const char *id, const char *format,
                               const char *const *annotations, size_t n, struct kerr **err)
{
        _cleanup_close_ int lock = -1;
        _cleanup_(index_release) struct index ix = {0};
        struct image_record *r;

        lock = image_store_lock(s, err);
        if (lock < 0 || index_load(s, &ix, err) < 0)
                return -1;
        r = kdigest_valid(id) ? index_find(&ix, id) : NULL;
        if (!r)
                return kerr_set(err, 0, KERR_NOTFOUND, "image '%s' not found", id ? id : "");
        free(r->format);
        r->format = format ? kstrdup(format) : NULL;
        for (size_t i = 0; i < r->n_annotations; i++)
                free(r->annotations[i]);
        free(r->annotations);
        r->annotations = NULL;
        r->n_annotations = 0;
        for (size_t i = 0; i < n; i++)
                strv_push(&r->annotations, &r->n_annotations, annotations[i]);
        return index_save(s, &ix, err);
}

int image_index_add_manifest(struct image_store *s, const char *id, const char *manifest_digest,
                             struct kerr **err)
{
        _cleanup_close_ int lock = -1;
        _cleanup_(index_release) struct index ix = {0};
        struct image_record *r;

        if (!kdigest_valid(manifest_digest))
                return kerr_set(err, 0, KERR_INVALID, "invalid digest '%s'",
                                manifest_digest ? manifest_digest : "");
        lock = image_store_lock(s, err);
        if (lock < 0 || index_load(s, &ix, err) < 0)
                return -1;
        r = kdigest_valid(id) ? index_find(&ix, id) : NULL;
        if (!r)
                return kerr_set(err, 0, KERR_NOTFOUND, "image '%s' not found", id ? id : "");
        if (strv_contains(r->manifests, r->n_manifests, manifest_digest))
                return 0;
        strv_push(&r->manifests, &r->n_manifests, manifest_digest);
        return index_save(s, &ix, err);
}

static bool is_hex(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

/* Order as containers/storage: full id, then name, then id prefix. */
static int resolve_in(struct index *ix, const char *name, char ret_id[KDIGEST_STRLEN],
                      struct kerr **err)
{
        const char *prefix = NULL;
        struct image_record *r = NULL;
        char *norm;
        size_t matches = 0;

        if (strncmp(name, "sha256:", 7) == 0 && is_hex(name + 7))
                prefix = name + 7;
        else if (is_hex(name) && strlen(name) >= 3)
                prefix = name;
        if (prefix && strlen(prefix) == 64) {
                for (size_t i = 0; i < ix->n; i++)
                        if (strcmp(ix->v[i].id + 7, prefix) == 0)
                                r = &ix->v[i];
        }
        if (!r && !(prefix && prefix != name)) {
                norm = image_normalize_name(name, NULL);
                if (norm)
                        r = index_find_name(ix, norm);
                free(norm);
        }
        if (!r && prefix && strlen(prefix) < 64) {
                for (size_t i = 0; i < ix->n; i++) {
                        if (strncmp(ix->v[i].id + 7, prefix, strlen(prefix)) == 0) {
                                r = &ix->v[i];
                                matches++;
                        }
                }
                if (matches > 1)
                        return kerr_set(err, 0, KERR_INVALID,
                                        "image id prefix '%s' is ambiguous: %zu images match", name,
                                        matches);
        }
        if (!r)
                return kerr_set(err, 0, KERR_NOTFOUND, "image '%s' not found", name);
        memcpy(ret_id, r->id, KDIGEST_STRLEN);
        return 0;
}

int image_index_resolve(struct image_store *s, const char *name, char ret_id[KDIGEST_STRLEN],
                        struct kerr **err)
{
        _cleanup_(index_release) struct index ix = {0};

        if (!name || !name[0])
                return kerr_set(err, 0, KERR_INVALID, "empty image name");
        if (index_load(s, &ix, err) < 0)
                return -1;
        return resolve_in(&ix, name, ret_id, err);
}

int image_index_untag(struct image_store *s, const char *name, struct kerr **err)
{
        _cleanup_close_ int lock = -1;
        _cleanup_(index_release) struct index ix = {0};
        _cleanup_free_ char *norm = image_normalize_name(name, err);
        struct image_record *r;

        if (!norm)
                return -1;
        lock = image_store_lock(s, err);
        if (lock < 0 || index_load(s, &ix, err) < 0)
                return -1;
        r = index_find_name(&ix, norm);
        if (!r)
                return kerr_set(err, 0, KERR_NOTFOUND, "image '%s' not found", name);
        strv_remove(r->names, &r->n_names, norm);
        return index_save(s, &ix, err);
}

/* ---- garbage collection ---- */

/* A set of digests (small stores: a sorted vector is plenty). */
struct dset {
        char **v;
        size_t n;
};

static void dset_release(struct dset *d)
{
        for (size_t i = 0; i < d->n; i++)
                free(d->v[i]);
        free(d->v);
        d->v = NULL;
        d->n = 0;
}

static void dset_add(struct dset *d, const char *s)
{
        if (!kdigest_valid(s) || strv_contains(d->v, d->n, s))
                return;
        strv_push(&d->v, &d->n, s);
}

static bool dset_has(const struct dset *d, const char *s)
{
        return strv_contains(d->v, d->n, s);
}

/* The blobs and layers one image uses: its config, the layers of rootfs.diff_ids with the
 * compressed blobs recorded for them, its manifests and what they reference. What cannot be
 * read adds nothing (a broken image keeps only what is named directly). */
static void image_uses(struct image_store *s, const struct image_record *r, struct dset *blobs,
                       struct dset *layers)
{
        struct kbuf data = KBUF_INIT;
        json_t *cfg, *diff_ids, *e;
        char chain[KDIGEST_STRLEN] = "";
        size_t i;

        dset_add(blobs, r->id);
        if (image_blob_read(s, r->id, CONFIG_MAX, &data, NULL) == 0 &&
            (cfg = kjson_load(data.data, data.len, r->id, NULL))) {
                diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
                json_array_foreach(diff_ids, i, e)
                {
                        struct image_layer l;
                        if (image_chain_id(chain, json_string_value(e), chain, NULL) < 0)
                                break;
                        dset_add(layers, chain);
                        if (image_layer_get(s, chain, &l, NULL) < 0)
                                continue;
                        for (size_t j = 0; j < l.n_blobs; j++)
                                dset_add(blobs, l.blobs[j].digest);
                        image_layer_release(&l);
                }
                json_decref(cfg);
        }
        kbuf_release(&data);
        for (size_t m = 0; m < r->n_manifests; m++) {
                json_t *man, *layers_a;

                dset_add(blobs, r->manifests[m]);
                kbuf_truncate(&data, 0);
                if (image_blob_read(s, r->manifests[m], CONFIG_MAX, &data, NULL) < 0)
                        continue;
                man = kjson_load(data.data, data.len, r->manifests[m], NULL);
                if (!man)
                        continue;
                dset_add(blobs, json_string_value(
                                        json_object_get(json_object_get(man, "config"), "digest")));
                layers_a = json_object_get(man, "layers");
                json_array_foreach(layers_a, i, e)
                        dset_add(blobs, json_string_value(json_object_get(e, "digest")));
                json_decref(man);
        }
        kbuf_release(&data);
}

/* Removes the candidates (or, when candidates are NULL, everything in blobs/ and layers/)
 * that no image in ix uses, nor a step cache entry that leads to one of them (with
 * prune_cache, the other entries go). Called with the lock held. */
static int collect(struct image_store *s, struct index *ix, const struct dset *cand_blobs,
                   const struct dset *cand_layers, bool prune_cache, struct kerr **err)
{
        struct dset keep_blobs = {0}, keep_layers = {0}, all_blobs = {0}, all_layers = {0};
        const struct dset *cb = cand_blobs, *cl = cand_layers;
        char **ids = kcalloc(ix->n + 1, sizeof(*ids)), **cached = NULL;
        size_t n_cached = 0;
        int r = 0;

        for (size_t i = 0; i < ix->n; i++) {
                image_uses(s, &ix->v[i], &keep_blobs, &keep_layers);
                ids[i] = ix->v[i].id;
        }
        r = image_cache_keep_locked(s, ids, ix->n, prune_cache, &cached, &n_cached, err);
        free(ids);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_cached; i++)
                dset_add(&keep_layers, cached[i]);
        image_free_names(cached, n_cached);
        if (!cb || !cl) {
                int dirs[2] = {s->blobs_fd, s->layers_fd};
                struct dset *sets[2] = {&all_blobs, &all_layers};

                for (int k = 0; k < 2; k++) {
                        int fd = fcntl(dirs[k], F_DUPFD_CLOEXEC, 3);
                        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
                        struct dirent *de;
                        char digest[300];

                        if (!d) {
                                r = kerr_set(err, errno, KERR_IO, "read '%s'", s->root);
                                kfs_close(fd);
                                goto out;
                        }
                        /* rewinddir: the dup shares its offset with the long-lived fd. */
                        rewinddir(d);
                        while ((de = readdir(d))) {
                                snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
                                dset_add(sets[k], digest);
                        }
                        closedir(d);
                }
                cb = &all_blobs;
                cl = &all_layers;
        }
        for (size_t i = 0; i < cl->n && r == 0; i++)
                if (!dset_has(&keep_layers, cl->v[i])) {
                        klog_debug("store: removing layer %s", cl->v[i]);
                        r = image_layer_remove_locked(s, cl->v[i], err);
                }
        for (size_t i = 0; i < cb->n && r == 0; i++)
                if (!dset_has(&keep_blobs, cb->v[i])) {
                        klog_debug("store: removing blob %s", cb->v[i]);
                        r = image_blob_remove_locked(s, cb->v[i], err);
                }
out:
        dset_release(&keep_blobs);
        dset_release(&keep_layers);
        dset_release(&all_blobs);
        dset_release(&all_layers);
        return r;
}

static int index_remove(struct image_store *s, const char *id, bool only_unnamed, bool *ret_removed,
                        struct kerr **err)
{
        _cleanup_close_ int lock = -1;
        _cleanup_(index_release) struct index ix = {0};
        struct dset blobs = {0}, layers = {0};
        struct image_record *r;
        struct kerr *busy = NULL;
        bool gc;
        int ret;

        if (!kdigest_valid(id))
                return kerr_set(err, 0, KERR_INVALID, "invalid image id '%s'", id ? id : "");
        /* Never waited for: the name goes now, and while another process holds a lease
         * (a build may stand on this image's layers) its content is left for a prune. Taken
         * before root/lock, as every holder of both does. */
        gc = image_store_lock_gc(s, false, &busy) == 0;
        if (!gc)
                klog_debug("store: %s; what image %s used is left for 'kiln prune'", busy->msg, id);
        kerr_free(busy);
        lock = image_store_lock(s, err);
        if (lock < 0 || index_load(s, &ix, err) < 0)
                return -1;
        r = index_find(&ix, id);
        if (!r)
                return kerr_set(err, 0, KERR_NOTFOUND, "image '%s' not found", id);
        if (only_unnamed && r->n_names) {
                *ret_removed = false;
                return 0;
        }
        /* Only what this image used is a candidate: blobs and layers that a build in
         * progress wrote but has not named yet are left alone. */
        image_uses(s, r, &blobs, &layers);
        index_delete(&ix, r);
        ret = index_save(s, &ix, err);
        if (ret == 0 && gc)
                ret = collect(s, &ix, &blobs, &layers, false, err);
        dset_release(&blobs);
        dset_release(&layers);
        if (ret < 0)
                return kerr_wrap(err, "remove image %s", id);
        if (ret_removed)
                *ret_removed = true;
        return 0;
}

int image_index_remove(struct image_store *s, const char *id, struct kerr **err)
{
        return index_remove(s, id, false, NULL, err);
}

int image_index_remove_unnamed(struct image_store *s, const char *id, bool *ret_removed,
                               struct kerr **err)
{
        return index_remove(s, id, true, ret_removed, err);
}

int image_store_prune(struct image_store *s, struct kerr **err)
{
        _cleanup_close_ int lock = -1;
        _cleanup_(index_release) struct index ix = {0};
        size_t before;

        /* The GC lock before root/lock: a lease holder may be waiting for root/lock. */
        if (image_store_lock_gc(s, true, err) < 0)
                return kerr_wrap(err, "prune");
        lock = image_store_lock(s, err);
        if (lock < 0 || index_load(s, &ix, err) < 0)
                return -1;
        before = ix.n;
        for (size_t i = ix.n; i-- > 0;)
                if (ix.v[i].n_names == 0)
                        index_delete(&ix, &ix.v[i]);
        if (ix.n != before && index_save(s, &ix, err) < 0)
                return -1;
        if (collect(s, &ix, NULL, NULL, true, err) < 0)
                return kerr_wrap(err, "prune");
        image_statcache_prune(s);
        return 0;
}
