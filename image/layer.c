/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

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
#include "common/banned.h"

#define LAYER_JSON_MAX (1u << 20)

const char *image_layer_media_type(enum image_compression c, bool docker)
{
        switch (c) {
        case IMAGE_COMPRESSION_NONE:
                return docker ? "application/vnd.docker.image.rootfs.diff.tar"
                              : "application/vnd.oci.image.layer.v1.tar";
        case IMAGE_COMPRESSION_GZIP:
                return docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
                              : "application/vnd.oci.image.layer.v1.tar+gzip";
        case IMAGE_COMPRESSION_ZSTD:
                /* Docker's schema 2 has no zstd type, so exports refuse docker manifests with
                 * zstd layers (as buildah does); a zstd blob is only ever named the OCI way. */
                return "application/vnd.oci.image.layer.v1.tar+zstd";
        }
        return NULL;
}

void image_layer_release(struct image_layer *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n_blobs; i++)
                free(l->blobs[i].media_type);
        free(l->blobs);
        l->blobs = NULL;
        l->n_blobs = 0;
}

int image_chain_id(const char *parent_chain_id, const char *diff_id, char ret[KDIGEST_STRLEN],
                   struct kerr **err)
{
        char buf[2 * KDIGEST_STRLEN];

        if (!kdigest_valid(diff_id))
                return kerr_set(err, 0, KERR_INVALID, "invalid diff id '%s'",
                                diff_id ? diff_id : "");
        if (!parent_chain_id || !parent_chain_id[0]) {
                memcpy(ret, diff_id, KDIGEST_STRLEN);
                return 0;
        }
        if (!kdigest_valid(parent_chain_id))
                return kerr_set(err, 0, KERR_INVALID, "invalid chain id '%s'", parent_chain_id);
        snprintf(buf, sizeof(buf), "%s %s", parent_chain_id, diff_id);
        return kdigest_buf(buf, strlen(buf), ret, err);
}

static int check_chain(const char *chain_id, struct kerr **err)
{
        if (!kdigest_valid(chain_id))
                return kerr_set(err, 0, KERR_INVALID, "invalid chain id '%s'",
                                chain_id ? chain_id : "");
        return 0;
}

static json_t *layer_to_json(const struct image_layer *l)
{
        json_t *o = json_object();
        json_t *blobs = json_array();

        json_object_set_new(o, "diff_id", json_string(l->diff_id));
        if (l->parent[0])
                json_object_set_new(o, "parent", json_string(l->parent));
        json_object_set_new(o, "size", json_integer((json_int_t)l->tar_size));
        for (size_t i = 0; i < l->n_blobs; i++) {
                json_t *b = json_object();
                json_object_set_new(b, "digest", json_string(l->blobs[i].digest));
                json_object_set_new(b, "mediaType", json_string(l->blobs[i].media_type));
                json_object_set_new(b, "size", json_integer((json_int_t)l->blobs[i].size));
                json_array_append_new(blobs, b);
        }
        json_object_set_new(o, "blobs", blobs);
        return o;
}

static int write_layer_json(int dirfd, const char *path, const struct image_layer *l,
                            struct kerr **err)
{
        json_auto_t *o = layer_to_json(l);
        _cleanup_free_ char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

        if (!text)
                abort();
        return kfs_write_atomic(dirfd, path, text, strlen(text), 0644, err);
}

static int layer_from_json(json_t *o, const char *chain_id, struct image_layer *l,
                           struct kerr **err)
{
        const char *diff_id = json_string_value(json_object_get(o, "diff_id"));
        const char *parent = json_string_value(json_object_get(o, "parent"));
        json_t *size = json_object_get(o, "size");
        json_t *blobs = json_object_get(o, "blobs");
        size_t i;
        json_t *b;

        memset(l, 0, sizeof(*l));
        if (!kdigest_valid(diff_id) || (parent && !kdigest_valid(parent)) ||
            !json_is_integer(size) || json_integer_value(size) < 0 ||
            (blobs && !json_is_array(blobs)))
                return kerr_set(err, 0, KERR_PARSE, "layer %s: malformed layer.json", chain_id);
        memcpy(l->chain_id, chain_id, KDIGEST_STRLEN);
        memcpy(l->diff_id, diff_id, KDIGEST_STRLEN);
        if (parent)
                memcpy(l->parent, parent, KDIGEST_STRLEN);
        l->tar_size = (uint64_t)json_integer_value(size);
        l->blobs = kcalloc(json_array_size(blobs) + 1, sizeof(*l->blobs));
        json_array_foreach(blobs, i, b)
        {
                const char *d = json_string_value(json_object_get(b, "digest"));
                const char *mt = json_string_value(json_object_get(b, "mediaType"));
                json_t *bs = json_object_get(b, "size");

                if (!kdigest_valid(d) || !mt || !json_is_integer(bs) ||
                    json_integer_value(bs) < 0) {
                        image_layer_release(l);
                        return kerr_set(err, 0, KERR_PARSE,
                                        "layer %s: malformed blob in "
                                        "layer.json",
                                        chain_id);
                }
                memcpy(l->blobs[l->n_blobs].digest, d, KDIGEST_STRLEN);
                l->blobs[l->n_blobs].media_type = kstrdup(mt);
                l->blobs[l->n_blobs].size = (uint64_t)json_integer_value(bs);
                l->n_blobs++;
        }
        return 0;
}

/* The slot of hex (64 digits) in the seen set: where it is, or the empty one it would go. */
static size_t seen_slot(const struct image_store *s, const char *hex)
{
        size_t i = 0;

        /* The digits of a digest are as good a hash as any. */
        for (int k = 0; k < 16; k++)
                i = i * 31 + (unsigned char)hex[k];
        i &= s->cap_seen_layers - 1;
        while (s->seen_layers[i][0] && memcmp(s->seen_layers[i], hex, 64) != 0)
                i = (i + 1) & (s->cap_seen_layers - 1);
        return i;
}

static void seen_add(struct image_store *s, const char *hex)
{
        if ((s->n_seen_layers + 1) * 2 > s->cap_seen_layers) {
                char(*old)[65] = s->seen_layers;
                size_t old_cap = s->cap_seen_layers;

                s->cap_seen_layers = old_cap ? old_cap * 2 : 64;
                s->seen_layers = kcalloc(s->cap_seen_layers, sizeof(*s->seen_layers));
                for (size_t i = 0; i < old_cap; i++)
                        if (old[i][0])
                                memcpy(s->seen_layers[seen_slot(s, old[i])], old[i], 65);
                free(old);
        }
        size_t i = seen_slot(s, hex);

        if (!s->seen_layers[i][0]) {
                memcpy(s->seen_layers[i], hex, 64);
                s->seen_layers[i][64] = '\0';
                s->n_seen_layers++;
        }
}

bool image_layer_exists(struct image_store *s, const char *chain_id)
{
        /* Only a lease holder may trust what it saw: without one, GC may run meanwhile. */
        bool lease = s->gc_fd >= 0 && !s->gc_exclusive;
        char path[80];
        struct stat st;

        if (!kdigest_valid(chain_id))
                return false;
        if (lease && s->n_seen_layers && s->seen_layers[seen_slot(s, chain_id + 7)][0])
                return true;
        snprintf(path, sizeof(path), "%s/layer.json", chain_id + 7);
        if (fstatat(s->layers_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return false;
        if (lease)
                seen_add(s, chain_id + 7);
        return true;
}

int image_layer_get(struct image_store *s, const char *chain_id, struct image_layer *ret,
                    struct kerr **err)
{
        struct kbuf data = KBUF_INIT;
        char path[80];
        json_t *o;
        int fd, r;

        if (check_chain(chain_id, err) < 0)
                return -1;
        snprintf(path, sizeof(path), "%s/layer.json", chain_id + 7);
        fd = openat(s->layers_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return kerr_set(err, 0, KERR_NOTFOUND, "layer %s not found", chain_id);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open layer %s", chain_id);
        r = kfs_read_fd(fd, "layer.json", LAYER_JSON_MAX, &data, err);
        kfs_close(fd);
        if (r < 0) {
                kbuf_release(&data);
                return kerr_wrap(err, "layer %s", chain_id);
        }
        o = kjson_load(data.data, data.len, "layer.json", err);
        kbuf_release(&data);
        if (!o)
                return kerr_wrap(err, "layer %s", chain_id);
        r = layer_from_json(o, chain_id, ret, err);
        json_decref(o);
        return r;
}

int image_layer_commit(struct image_store *s, const char *parent_chain_id, const char *diff_id,
                       uint64_t tar_size, const char *dir, char ret_chain_id[KDIGEST_STRLEN],
                       struct kerr **err)
{
        struct image_layer l = {0};
        char chain[KDIGEST_STRLEN];
        char stage[64], path[96];

        if (image_chain_id(parent_chain_id, diff_id, chain, err) < 0)
                return -1;
        if (image_layer_exists(s, chain)) {
                if (image_store_rmtree(dir, err) < 0)
                        return -1;
                memcpy(ret_chain_id, chain, KDIGEST_STRLEN);
                return 0;
        }
        /* Staged in tmp/ with its layer.json, then renamed whole: layers/<hex> appears
         * complete or not at all. */
        image_store_tmp_name(stage, sizeof(stage), "-layer");
        if (mkdirat(s->tmp_fd, stage, 0700) < 0)
                return kerr_set(err, errno, KERR_IO, "create '%s/tmp/%s'", s->root, stage);
        memcpy(l.chain_id, chain, KDIGEST_STRLEN);
        memcpy(l.diff_id, diff_id, KDIGEST_STRLEN);
        if (parent_chain_id && parent_chain_id[0])
                memcpy(l.parent, parent_chain_id, KDIGEST_STRLEN);
        l.tar_size = tar_size;
        snprintf(path, sizeof(path), "%s/layer.json", stage);
        if (write_layer_json(s->tmp_fd, path, &l, err) < 0)
                goto fail;
        snprintf(path, sizeof(path), "%s/diff", stage);
        if (renameat(AT_FDCWD, dir, s->tmp_fd, path) < 0) {
                kerr_set(err, errno, KERR_IO, "move '%s' into the store", dir);
                goto fail;
        }
        if (renameat(s->tmp_fd, stage, s->layers_fd, chain + 7) < 0) {
                if (errno == EEXIST || errno == ENOTEMPTY) {
                        /* Another process committed the same layer meanwhile. */
                        image_store_rmtree_at(s->tmp_fd, stage, NULL);
                        memcpy(ret_chain_id, chain, KDIGEST_STRLEN);
                        return 0;
                }
                kerr_set(err, errno, KERR_IO, "store layer %s", chain);
                goto fail;
        }
        if (fsync(s->layers_fd) < 0)
                return kerr_set(err, errno, KERR_IO, "sync '%s/layers'", s->root);
        memcpy(ret_chain_id, chain, KDIGEST_STRLEN);
        return 0;
fail:
        image_store_rmtree_at(s->tmp_fd, stage, NULL);
        return kerr_wrap(err, "commit layer %s", chain);
}

int image_layer_add_blob_locked(struct image_store *s, const char *chain_id, const char *digest,
                                const char *media_type, uint64_t size, struct kerr **err)
{
        struct image_layer l;
        char path[80];
        int r;

        if (!kdigest_valid(digest))
                return kerr_set(err, 0, KERR_INVALID, "invalid digest '%s'", digest ? digest : "");
        if (!media_type || !media_type[0])
                return kerr_set(err, 0, KERR_INVALID, "blob %s has no media type", digest);
        if (image_layer_get(s, chain_id, &l, err) < 0)
                return -1;
        for (size_t i = 0; i < l.n_blobs; i++) {
                if (strcmp(l.blobs[i].digest, digest) == 0) {
                        image_layer_release(&l);
                        return 0;
                }
        }
        /* image_layer_get allocated one spare slot. */
        memcpy(l.blobs[l.n_blobs].digest, digest, KDIGEST_STRLEN);
        l.blobs[l.n_blobs].media_type = kstrdup(media_type);
        l.blobs[l.n_blobs].size = size;
        l.n_blobs++;
        snprintf(path, sizeof(path), "%s/layer.json", chain_id + 7);
        r = write_layer_json(s->layers_fd, path, &l, err);
        image_layer_release(&l);
        if (r < 0)
                return kerr_wrap(err, "layer %s", chain_id);
        return 0;
}

int image_layer_add_blob(struct image_store *s, const char *chain_id, const char *digest,
                         const char *media_type, uint64_t size, struct kerr **err)
{
        _cleanup_close_ int lock = image_store_lock(s, err);

        if (lock < 0)
                return -1;
        return image_layer_add_blob_locked(s, chain_id, digest, media_type, size, err);
}

int image_layer_open_diff(struct image_store *s, const char *chain_id, struct kerr **err)
{
        char path[80];
        int fd;

        if (check_chain(chain_id, err) < 0)
                return -1;
        snprintf(path, sizeof(path), "%s/diff", chain_id + 7);
        fd = openat(s->layers_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return kerr_set(err, 0, KERR_NOTFOUND, "layer %s not found", chain_id);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open layer %s", chain_id);
        return fd;
}

char *image_layer_diff_path(struct image_store *s, const char *chain_id)
{
        char *p = NULL;

        if (!kdigest_valid(chain_id))
                return NULL;
        if (asprintf(&p, "%s/layers/%s/diff", s->root, chain_id + 7) < 0)
                abort();
        return p;
}

int image_layer_remove_locked(struct image_store *s, const char *chain_id, struct kerr **err)
{
        char name[64];

        if (check_chain(chain_id, err) < 0)
                return -1;
        image_store_tmp_name(name, sizeof(name), "-gc");
        if (renameat(s->layers_fd, chain_id + 7, s->tmp_fd, name) < 0) {
                if (errno == ENOENT)
                        return 0;
                return kerr_set(err, errno, KERR_IO, "remove layer %s", chain_id);
        }
        if (image_store_rmtree_at(s->tmp_fd, name, err) < 0)
                return kerr_wrap(err, "remove layer %s", chain_id);
        return 0;
}

char *image_layer_flat_path(struct image_store *s, const char *chain_id)
{
        char *p = NULL;

        if (!kdigest_valid(chain_id))
                return NULL;
        if (asprintf(&p, "%s/layers/%s/flat", s->root, chain_id + 7) < 0)
                abort();
        return p;
}

bool image_layer_has_flat(struct image_store *s, const char *chain_id)
{
        char path[80];
        struct stat st;

        if (!kdigest_valid(chain_id))
                return false;
        snprintf(path, sizeof(path), "%s/flat", chain_id + 7);
        return fstatat(s->layers_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int image_layer_open_flat(struct image_store *s, const char *chain_id, struct kerr **err)
{
        char path[80];
        int fd;

        if (check_chain(chain_id, err) < 0)
                return -1;
        snprintf(path, sizeof(path), "%s/flat", chain_id + 7);
        fd = openat(s->layers_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return kerr_set(err, 0, KERR_NOTFOUND, "no flat tree of layer %s", chain_id);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open the flat tree of layer %s", chain_id);
        return fd;
}

int image_layer_commit_flat(struct image_store *s, const char *chain_id, const char *dir,
                            struct kerr **err)
{
        _cleanup_close_ int dfd = -1, lfd = -1;
        char path[80];

        if (check_chain(chain_id, err) < 0)
                return -1;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", dir);
        /* The tree is thousands of links and directories: one syncfs writes them all out,
         * where an fsync each would cost a journal commit apiece. A flat tree is never
         * checked again once in place, so it must be whole when it appears. */
        if (syncfs(dfd) < 0)
                return kerr_set(err, errno, KERR_IO, "sync '%s'", dir);
        lfd = openat(s->layers_fd, chain_id + 7, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (lfd < 0 && errno == ENOENT)
                return kerr_set(err, 0, KERR_NOTFOUND, "layer %s not found", chain_id);
        if (lfd < 0)
                return kerr_set(err, errno, KERR_IO, "open layer %s", chain_id);
        snprintf(path, sizeof(path), "%s/flat", chain_id + 7);
        if (renameat(AT_FDCWD, dir, lfd, "flat") < 0) {
                if (errno == EEXIST || errno == ENOTEMPTY) {
                        /* Another process flattened the same layers meanwhile. */
                        image_store_rmtree(dir, NULL);
                        return 0;
                }
                return kerr_set(err, errno, KERR_IO, "store '%s/layers/%s'", s->root, path);
        }
        if (fsync(lfd) < 0)
                return kerr_set(err, errno, KERR_IO, "sync '%s/layers/%s'", s->root, chain_id + 7);
        return 0;
}
