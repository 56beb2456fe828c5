/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "common/karchive.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/kjson.h"

#include "common/banned.h"

/*
 * Three transports, as containers/image names them:
 *   oci:DIR[:TAG]               an OCI image layout directory
 *   oci-archive:FILE[:TAG]      the same layout as one uncompressed tar
 *   docker-archive:FILE[:REF]   `docker save`: manifest.json, <hex>.json, <hex>.tar
 * The path ends at the first ':' (containers/image splits there too), so REF may hold one.
 *
 * Export compresses each layer once, straight from its directory (tar -> compressor ->
 * blob writer, hashed on the way), and keeps the blob in the store for the next export or
 * push. Import never extracts an archive to disk: every file goes through the store's blob
 * writer (verified against its digest when the name carries one), and layers are applied
 * from the store with image_layer_apply, which keeps them inside their directory.
 */

#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"
#define CONFIG_MAX (32 * 1024 * 1024)
#define COPY_CHUNK (128 * 1024)

enum kind {
        KIND_OCI,
        KIND_OCI_ARCHIVE,
        KIND_DOCKER_ARCHIVE,
};

static const struct {
        const char *prefix;
        enum kind kind;
} kinds[] = {
        {"oci:", KIND_OCI},
        {"oci-archive:", KIND_OCI_ARCHIVE},
        {"docker-archive:", KIND_DOCKER_ARCHIVE},
};

struct tref {
        enum kind kind;
        const char *ref; /* the whole reference, for messages */
        char *path;
        char *tag; /* NULL when none */
};

static void tref_release(struct tref *t)
{
        free(t->path);
        free(t->tag);
}

bool image_is_transport(const char *ref)
{
        for (size_t i = 0; ref && i < ARRAY_SIZE(kinds); i++)
                if (strncmp(ref, kinds[i].prefix, strlen(kinds[i].prefix)) == 0)
                        return true;
        return false;
}

static int parse_ref(const char *ref, struct tref *t, struct kerr **err)
{
        const char *rest = NULL, *colon;

        memset(t, 0, sizeof(*t));
        t->ref = ref;
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
                size_t n = strlen(kinds[i].prefix);

                if (strncmp(ref, kinds[i].prefix, n) == 0) {
                        t->kind = kinds[i].kind;
                        rest = ref + n;
                        break;
                }
        }
        if (!rest)
                return kerr_set(err, 0, KERR_INVALID,
                                "'%s': not an oci:, oci-archive: or docker-archive: reference",
                                ref);
        colon = strchr(rest, ':');
        t->path = colon ? kstrndup(rest, (size_t)(colon - rest)) : kstrdup(rest);
        if (colon && colon[1])
                t->tag = kstrdup(colon + 1);
        if (!t->path[0]) {
                tref_release(t);
                return kerr_set(err, 0, KERR_INVALID, "'%s': no path", ref);
        }
        return 0;
}

static void archive_read_freep(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}

static void archive_write_freep(struct archive **a)
{
        if (*a)
                archive_write_free(*a);
}

DEFINE_CLEANUP(struct image_blob_writer *, image_blob_writer_free)
DEFINE_CLEANUP(struct image_compressor *, image_compressor_free)
DEFINE_CLEANUP(struct image_config *, image_config_free)
DEFINE_CLEANUP(struct image_manifest *, image_manifest_free)

static void set_new(json_t *obj, const char *key, json_t *v)
{
        if (!v || json_object_set_new(obj, key, v) < 0)
                abort();
}

static void append_new(json_t *arr, json_t *v)
{
        if (!v || json_array_append_new(arr, v) < 0)
                abort();
}

static char *dump_json(json_t *j)
{
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

        if (!s)
                abort();
        return s;
}

/* ======================================================================================
 * Export
 * ====================================================================================== */

struct exp_layer {
        char diff_id[KDIGEST_STRLEN];
        char chain_id[KDIGEST_STRLEN];
        uint64_t tar_size;
        /* the blob that goes into a manifest */
        char digest[KDIGEST_STRLEN];
        const char *media_type; /* static */
        uint64_t size;
};

struct exp_image {
        char id[KDIGEST_STRLEN];
        struct kbuf config; /* the config blob's bytes */
        struct image_config *c;
        struct exp_layer *layers;
        size_t n_layers;
};

static void exp_image_release(struct exp_image *img)
{
        kbuf_release(&img->config);
        image_config_free(img->c);
        free(img->layers);
}

static int load_image(struct image_store *s, const char *id, struct exp_image *img,
                      struct kerr **err)
{
        char parent[KDIGEST_STRLEN] = "";

        if (kdigest_valid(id))
                memcpy(img->id, id, KDIGEST_STRLEN);
        else if (image_index_resolve(s, id, img->id, err) < 0)
                return -1;
        if (image_blob_read(s, img->id, CONFIG_MAX, &img->config, err) < 0)
                return kerr_wrap(err, "read the config of %s", img->id);
        img->c = image_config_parse(img->config.data, img->config.len, img->id, err);
        if (!img->c)
                return -1;
        img->layers = kcalloc(img->c->n_diff_ids + 1, sizeof(*img->layers));
        for (size_t i = 0; i < img->c->n_diff_ids; i++) {
                struct exp_layer *el = &img->layers[i];
                struct image_layer l = {0};

                memcpy(el->diff_id, img->c->diff_ids[i], KDIGEST_STRLEN);
                if (image_chain_id(parent, el->diff_id, el->chain_id, err) < 0)
                        return -1;
                if (image_layer_get(s, el->chain_id, &l, err) < 0)
                        return kerr_wrap(err, "layer %zu (%s) of %s", i, el->diff_id, img->id);
                el->tar_size = l.tar_size;
                image_layer_release(&l);
                memcpy(parent, el->chain_id, KDIGEST_STRLEN);
                img->n_layers = i + 1;
        }
        return 0;
}

/* The uncompressed stream of a stored layer blob to sink (NULL: only hashed), with its
 * sha256 and size. */
static int blob_uncompressed(struct image_store *s, const char *digest, image_sink_fn sink,
                             void *ctx, char ret_digest[KDIGEST_STRLEN], uint64_t *ret_size,
                             struct kerr **err)
{
        _cleanup_(archive_read_freep) struct archive *a = NULL;
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct kdigest *d = NULL;
        struct archive_entry *e;
        uint64_t total = 0;

        if (karchive_load(err) < 0)
                return -1;
        a = archive_read_new();
        fd = image_blob_open(s, digest, err);
        la_ssize_t n;
        int r;

        if (fd < 0)
                return -1;
        if (!a)
                abort();
        archive_read_support_filter_all(a);
        archive_read_support_format_raw(a);
        if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK ||
            archive_read_next_header(a, &e) != ARCHIVE_OK)
                return kerr_from_archive(err, a, "read layer blob %s", digest);
        d = kdigest_new(err);
        if (!d)
                return -1;
        buf = malloc(COPY_CHUNK);
        if (!buf)
                abort();
        while ((n = archive_read_data(a, buf, COPY_CHUNK)) > 0) {
                kdigest_update(d, buf, (size_t)n);
                total += (uint64_t)n;
                if (sink && sink(ctx, buf, (size_t)n, err) < 0) {
                        kdigest_free(d);
                        return -1;
                }
        }
        if (n < 0) {
                kdigest_free(d);
                return kerr_from_archive(err, a, "read layer blob %s", digest);
        }
        r = kdigest_final(d, ret_digest, err);
        kdigest_free(d);
        if (r < 0)
                return -1;
        *ret_size = total;
        return 0;
}

/* The uncompressed tar of a layer to sink: decompressed from a stored blob of it when there
 * is one, since an imported layer's tar need not be what kiln's writer makes of its
 * directory (entry order, implicit parents, names through symlinks); else written from the
 * directory. Callers compare ret_digest with the diff_id. */
static int layer_stream(struct image_store *s, const char *chain_id, image_sink_fn sink, void *ctx,
                        char ret_digest[KDIGEST_STRLEN], uint64_t *ret_size, struct kerr **err)
{
        struct image_tar_opts topts = {.clamp_mtime = -1};
        struct image_layer l = {0};
        _cleanup_close_ int dfd = -1;
        char blob[KDIGEST_STRLEN] = "";

        if (image_layer_get(s, chain_id, &l, err) < 0)
                return -1;
        /* An uncompressed form first: it needs no decompression. */
        for (size_t i = 0; i < l.n_blobs; i++) {
                if (!image_blob_exists(s, l.blobs[i].digest))
                        continue;
                if (!blob[0] || image_layer_type_compression(l.blobs[i].media_type) ==
                                        (int)IMAGE_COMPRESSION_NONE)
                        memcpy(blob, l.blobs[i].digest, KDIGEST_STRLEN);
        }
        image_layer_release(&l);
        if (blob[0])
                return blob_uncompressed(s, blob, sink, ctx, ret_digest, ret_size, err);
        dfd = image_layer_open_diff(s, chain_id, err);
        if (dfd < 0)
                return -1;
        return image_layer_tar(dfd, &topts, sink, ctx, ret_digest, ret_size, err);
}

/* Finds or makes the blob of a layer with the wanted compression. */
static int layer_blob(struct image_store *s, struct exp_layer *el, enum image_compression comp,
                      bool docker, const struct image_export_opts *opts, struct kerr **err)
{
        const char *mt = image_layer_media_type(comp, docker);
        _cleanup_(image_blob_writer_freep) struct image_blob_writer *w = NULL;
        _cleanup_(image_compressor_freep) struct image_compressor *z = NULL;
        struct image_layer l = {0};
        char got[KDIGEST_STRLEN];
        uint64_t tar_size = 0;
        int r;

        if (!mt)
                return kerr_set(err, 0, KERR_INVALID, "unknown compression %d", (int)comp);
        el->media_type = mt;
        if (image_layer_get(s, el->chain_id, &l, err) < 0)
                return -1;
        for (size_t i = 0; i < l.n_blobs; i++) {
                /* docker and OCI name the same bytes differently: match by compression. */
                if (image_layer_type_compression(l.blobs[i].media_type) != (int)comp ||
                    !image_blob_exists(s, l.blobs[i].digest))
                        continue;
                memcpy(el->digest, l.blobs[i].digest, KDIGEST_STRLEN);
                el->size = l.blobs[i].size;
                image_layer_release(&l);
                return 0;
        }
        image_layer_release(&l);

        w = image_blob_writer_new(s, err);
        if (!w)
                return -1;
        if (comp == IMAGE_COMPRESSION_NONE) {
                r = layer_stream(s, el->chain_id, image_blob_writer_sink, w, got, &tar_size, err);
        } else {
                z = image_compressor_new(comp, opts ? opts->level : 0, opts ? opts->threads : 0,
                                         image_blob_writer_sink, w, err);
                if (!z)
                        return -1;
                r = layer_stream(s, el->chain_id, image_compressor_sink, z, got, &tar_size, err);
                if (r == 0)
                        r = image_compressor_finish(z, err);
        }
        if (r < 0)
                return kerr_wrap(err, "write the tar of layer %s", el->diff_id);
        if (strcmp(got, el->diff_id) != 0)
                return kerr_set(err, 0, KERR_DIGEST,
                                "layer %s: its tar now gives %s; its directory changed after "
                                "commit, or it was committed from a tar with clamped times",
                                el->diff_id, got);
        if (image_blob_writer_commit(w, NULL, el->digest, &el->size, err) < 0)
                return -1;
        if (image_layer_add_blob(s, el->chain_id, el->digest, mt, el->size, err) < 0)
                return -1;
        return 0;
}

/* The manifest of img in the wanted format; layer blobs must be set. */
static int build_manifest(const struct exp_image *img, bool docker,
                          const struct image_export_opts *opts, struct kbuf *out, struct kerr **err)
{
        struct image_manifest m = {0};
        int r;

        m.media_type = (char *)(docker ? IMAGE_MT_DOCKER_MANIFEST : IMAGE_MT_OCI_MANIFEST);
        m.config.media_type = (char *)(docker ? IMAGE_MT_DOCKER_CONFIG : IMAGE_MT_OCI_CONFIG);
        memcpy(m.config.digest, img->id, KDIGEST_STRLEN);
        m.config.size = img->config.len;
        m.layers = kcalloc(img->n_layers + 1, sizeof(*m.layers));
        m.n_layers = img->n_layers;
        for (size_t i = 0; i < img->n_layers; i++) {
                m.layers[i].media_type = (char *)img->layers[i].media_type;
                memcpy(m.layers[i].digest, img->layers[i].digest, KDIGEST_STRLEN);
                m.layers[i].size = img->layers[i].size;
        }
        if (opts && opts->n_annotations) {
                m.annotations = opts->annotations;
                m.n_annotations = opts->n_annotations;
        }
        r = image_manifest_serialize(&m, out, err);
        free(m.layers);
        return r;
}

/* ---- oci: ---- */

/* Copies a store blob to dirfd/blobs/sha256/<hex> unless a file of that size is there. */
static int copy_blob_to_dir(struct image_store *s, const char *digest, int dirfd, const char *dir,
                            struct kerr **err)
{
        char rel[96], tmp[192], name[128];
        _cleanup_close_ int in = -1, out = -1;
        _cleanup_free_ char *buf = NULL;
        uint64_t size;
        struct stat st;
        ssize_t n;

        snprintf(rel, sizeof(rel), "blobs/sha256/%s", kdigest_hex(digest));
        if (image_blob_size(s, digest, &size, err) < 0)
                return -1;
        if (fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            (uint64_t)st.st_size == size)
                return 0;
        in = image_blob_open(s, digest, err);
        if (in < 0)
                return -1;
        image_tmp_name_for(name, sizeof(name), kdigest_hex(digest));
        snprintf(tmp, sizeof(tmp), "blobs/sha256/%s", name);
        out = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (out < 0)
                return kerr_set(err, errno, KERR_IO, "create '%s/%s'", dir, tmp);
        buf = malloc(COPY_CHUNK);
        if (!buf)
                abort();
        while ((n = kfs_read_all(in, buf, COPY_CHUNK)) > 0)
                if (kfs_write_all(out, buf, (size_t)n) < 0)
                        goto fail_io;
        if (n < 0 || fsync(out) < 0)
                goto fail_io;
        if (renameat(dirfd, tmp, dirfd, rel) < 0)
                goto fail_io;
        return 0;
fail_io:
        kerr_set(err, errno, KERR_IO, "write '%s/%s'", dir, rel);
        unlinkat(dirfd, tmp, 0);
        return -1;
}

static json_t *index_descriptor(const char *media_type, const char *digest, uint64_t size,
                                const char *tag)
{
        json_t *d = json_object();

        if (!d)
                abort();
        set_new(d, "mediaType", json_string(media_type));
        set_new(d, "digest", json_string(digest));
        set_new(d, "size", json_integer((json_int_t)size));
        if (tag) {
                json_t *a = json_object();

                if (!a)
                        abort();
                set_new(a, REF_NAME_ANNOTATION, image_json_string(tag));
                set_new(d, "annotations", a);
        }
        return d;
}

static json_t *new_index(void)
{
        json_t *idx = json_object();

        if (!idx)
                abort();
        set_new(idx, "schemaVersion", json_integer(2));
        set_new(idx, "mediaType", json_string(IMAGE_MT_OCI_INDEX));
        set_new(idx, "manifests", json_array());
        return idx;
}

static const char *descriptor_tag(json_t *d)
{
        return json_string_value(
                json_object_get(json_object_get(d, "annotations"), REF_NAME_ANNOTATION));
}

/* index.json with the new manifest added: an entry with the same tag is replaced, an
 * untagged one for the same manifest is not repeated. */
static int merge_index(json_t *idx, const char *name, const char *mt, const char *digest,
                       uint64_t size, const char *tag, struct kerr **err)
{
        json_t *list = json_object_get(idx, "manifests"), *keep, *d;
        size_t i;

        if (!json_is_array(list))
                return kerr_set(err, 0, KERR_INVALID, "%s: manifests: expected an array", name);
        keep = json_array();
        if (!keep)
                abort();
        json_array_foreach(list, i, d)
        {
                const char *t = descriptor_tag(d);

                if (tag && t && strcmp(t, tag) == 0)
                        continue;
                if (!tag && !t &&
                    strcmp(json_string_value(json_object_get(d, "digest")) ?: "", digest) == 0)
                        continue;
                append_new(keep, json_incref(d));
        }
        append_new(keep, index_descriptor(mt, digest, size, tag));
        set_new(idx, "manifests", keep);
        return 0;
}

static int export_oci_dir(struct image_store *s, const struct tref *t, const struct exp_image *img,
                          const char *mt, const char *mdigest, uint64_t msize, struct kerr **err)
{
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        _cleanup_close_ int dirfd = -1, blobs_fd = -1;
        json_auto_t *idx = NULL;
        _cleanup_free_ char *out = NULL;
        struct kbuf cur = KBUF_INIT;
        _cleanup_close_ int ifd = -1;

        if (kfs_mkdir_p(AT_FDCWD, t->path, 0755, err) < 0)
                return -1;
        dirfd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", t->path);
        if (kfs_mkdir_p(dirfd, "blobs/sha256", 0755, err) < 0)
                return -1;
        /* What a push killed before left here (blob copies, index.json and oci-layout being
         * replaced); a live process's temp files are left alone. */
        blobs_fd = openat(dirfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (blobs_fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s/blobs/sha256'", t->path);
        image_sweep_tmp_files_at(blobs_fd, NULL);
        image_sweep_tmp_files_at(dirfd, "index.json");
        image_sweep_tmp_files_at(dirfd, "oci-layout");
        if (copy_blob_to_dir(s, img->id, dirfd, t->path, err) < 0)
                return -1;
        for (size_t i = 0; i < img->n_layers; i++)
                if (copy_blob_to_dir(s, img->layers[i].digest, dirfd, t->path, err) < 0)
                        return -1;
        if (copy_blob_to_dir(s, mdigest, dirfd, t->path, err) < 0)
                return -1;

        ifd = openat(dirfd, "index.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (ifd < 0 && errno != ENOENT)
                return kerr_set(err, errno, KERR_IO, "open '%s/index.json'", t->path);
        if (ifd >= 0) {
                _cleanup_free_ char *name = NULL;

                if (asprintf(&name, "%s/index.json", t->path) < 0)
                        abort();
                if (kfs_read_fd(ifd, name, IMAGE_MANIFEST_MAX, &cur, err) < 0) {
                        kbuf_release(&cur);
                        return -1;
                }
                idx = kjson_load(cur.data, cur.len, name, err);
                kbuf_release(&cur);
                if (!idx)
                        return -1;
                if (!json_is_object(idx))
                        return kerr_set(err, 0, KERR_INVALID, "%s: expected an object", name);
                if (merge_index(idx, name, mt, mdigest, msize, t->tag, err) < 0)
                        return -1;
        } else {
                idx = new_index();
                if (merge_index(idx, "index.json", mt, mdigest, msize, t->tag, err) < 0)
                        return -1;
        }
        if (kfs_write_atomic(dirfd, "oci-layout", layout, strlen(layout), 0644, err) < 0)
                return -1;
        out = dump_json(idx);
        return kfs_write_atomic(dirfd, "index.json", out, strlen(out), 0644, err);
}

/* ---- archives ---- */

struct awriter {
        struct archive *a;
        char *path, *tmp;
        int fd;
};

static int aw_open(struct awriter *w, const char *path, struct kerr **err)
{
        const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dfd = -1;
        char name[NAME_MAX + 1];

        memset(w, 0, sizeof(*w));
        w->fd = -1;
        w->path = kstrdup(path);
        if (!*base)
                return kerr_set(err, 0, KERR_INVALID, "'%s' names a directory, not a file", path);
        dir = slash ? kstrndup(path, (size_t)(slash - path) + (slash == path)) : kstrdup(".");
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return kerr_set(err, errno, KERR_IO, "open the directory of '%s'", path);
        /* A push killed before left its temp file here; its pid tells it from a live one. */
        image_sweep_tmp_files_at(dfd, base);
        for (int tries = 0;; tries++) {
                free(w->tmp);
                image_tmp_name_for(name, sizeof(name), base);
                if (asprintf(&w->tmp, "%.*s%s", (int)(base - path), path, name) < 0)
                        abort();
                w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (w->fd >= 0)
                        break;
                if (errno != EEXIST || tries > 100)
                        return kerr_set(err, errno, KERR_IO, "create '%s'", w->tmp);
        }
        if (karchive_load(err) < 0)
                return -1;
        w->a = archive_write_new();
        if (!w->a)
                abort();
        if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
            archive_write_open_fd(w->a, w->fd) != ARCHIVE_OK)
                return kerr_from_archive(err, w->a, "write '%s'", w->tmp);
        return 0;
}

/* Removes the temp file unless committed. */
static void aw_release(struct awriter *w)
{
        archive_write_freep(&w->a);
        if (w->fd >= 0)
                kfs_close(w->fd);
        if (w->tmp)
                unlink(w->tmp);
        free(w->tmp);
        free(w->path);
}

static int aw_commit(struct awriter *w, struct kerr **err)
{
        if (archive_write_close(w->a) != ARCHIVE_OK)
                return kerr_from_archive(err, w->a, "write '%s'", w->tmp);
        if (fsync(w->fd) < 0)
                return kerr_set(err, errno, KERR_IO, "sync '%s'", w->tmp);
        if (rename(w->tmp, w->path) < 0)
                return kerr_set(err, errno, KERR_IO, "rename '%s' to '%s'", w->tmp, w->path);
        free(w->tmp);
        w->tmp = NULL;
        return 0;
}

static int aw_header(struct awriter *w, const char *name, bool dir, uint64_t size,
                     struct kerr **err)
{
        struct archive_entry *e = archive_entry_new();
        int r;

        if (!e)
                abort();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(e, dir ? 0755 : 0644);
        archive_entry_set_size(e, dir ? 0 : (la_int64_t)size);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, 0, 0);
        r = archive_write_header(w->a, e);
        archive_entry_free(e);
        if (r != ARCHIVE_OK)
                return kerr_from_archive(err, w->a, "write '%s' into '%s'", name, w->path);
        return 0;
}

struct aw_sink_ctx {
        struct awriter *w;
        const char *name;
        uint64_t left;
};

static int aw_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        struct aw_sink_ctx *c = ctx;
        const char *q = p;

        if (n > c->left)
                return kerr_set(err, 0, KERR_DIGEST, "'%s' is longer than recorded", c->name);
        c->left -= n;
        while (n > 0) {
                la_ssize_t k = archive_write_data(c->w->a, q, n);

                if (k <= 0)
                        return kerr_from_archive(err, c->w->a, "write '%s' into '%s'", c->name,
                                                 c->w->path);
                q += k;
                n -= (size_t)k;
        }
        return 0;
}

static int aw_file(struct awriter *w, const char *name, const void *data, size_t len,
                   struct kerr **err)
{
        struct aw_sink_ctx c = {w, name, len};

        if (aw_header(w, name, false, len, err) < 0)
                return -1;
        return len ? aw_sink(&c, data, len, err) : 0;
}

static int aw_blob(struct awriter *w, struct image_store *s, const char *digest, struct kerr **err)
{
        char name[96];
        uint64_t size;
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct aw_sink_ctx c = {w, name, 0};
        ssize_t n;

        snprintf(name, sizeof(name), "blobs/sha256/%s", kdigest_hex(digest));
        if (image_blob_size(s, digest, &size, err) < 0)
                return -1;
        fd = image_blob_open(s, digest, err);
        if (fd < 0)
                return -1;
        if (aw_header(w, name, false, size, err) < 0)
                return -1;
        c.left = size;
        buf = malloc(COPY_CHUNK);
        if (!buf)
                abort();
        while ((n = kfs_read_all(fd, buf, COPY_CHUNK)) > 0)
                if (aw_sink(&c, buf, (size_t)n, err) < 0)
                        return -1;
        if (n < 0)
                return kerr_set(err, errno, KERR_IO, "read blob %s", digest);
        if (c.left)
                return kerr_set(err, 0, KERR_IO, "blob %s shrank while being copied", digest);
        return 0;
}

static int export_oci_archive(struct image_store *s, const struct tref *t,
                              const struct exp_image *img, const char *mt, const char *mdigest,
                              uint64_t msize, struct kerr **err)
{
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        _cleanup_(aw_release) struct awriter w = {.fd = -1};
        json_auto_t *idx = new_index();
        _cleanup_free_ char *index = NULL;

        if (merge_index(idx, "index.json", mt, mdigest, msize, t->tag, err) < 0)
                return -1;
        index = dump_json(idx);
        if (aw_open(&w, t->path, err) < 0 ||
            aw_file(&w, "oci-layout", layout, strlen(layout), err) < 0 ||
            aw_file(&w, "index.json", index, strlen(index), err) < 0 ||
            aw_header(&w, "blobs/", true, 0, err) < 0 ||
            aw_header(&w, "blobs/sha256/", true, 0, err) < 0 || aw_blob(&w, s, mdigest, err) < 0 ||
            aw_blob(&w, s, img->id, err) < 0)
                return -1;
        for (size_t i = 0; i < img->n_layers; i++) {
                bool dup = false;

                for (size_t j = 0; j < i; j++)
                        dup = dup || strcmp(img->layers[j].digest, img->layers[i].digest) == 0;
                if (!dup && aw_blob(&w, s, img->layers[i].digest, err) < 0)
                        return -1;
        }
        return aw_commit(&w, err);
}

/* "localhost/hello:latest" -> repo "localhost/hello", tag "latest"; false for digests. */
static bool split_name(const char *name, char **ret_repo, char **ret_tag)
{
        const char *slash = strrchr(name, '/'), *colon = strrchr(name, ':');

        if (strchr(name, '@') || !colon || (slash && colon < slash))
                return false;
        *ret_repo = kstrndup(name, (size_t)(colon - name));
        *ret_tag = kstrdup(colon + 1);
        return true;
}

static int export_docker_archive(struct image_store *s, const struct tref *t,
                                 const struct exp_image *img, const char *name, struct kerr **err)
{
        _cleanup_(aw_release) struct awriter w = {.fd = -1};
        json_auto_t *manifest = json_array(), *entry = json_object(), *layers = json_array(),
                    *tags = json_array();
        _cleanup_free_ char *mtext = NULL;
        char cname[96];

        if (!manifest || !entry || !layers || !tags)
                abort();
        snprintf(cname, sizeof(cname), "%s.json", kdigest_hex(img->id));
        if (aw_open(&w, t->path, err) < 0 ||
            aw_file(&w, cname, img->config.data, img->config.len, err) < 0)
                return -1;
        for (size_t i = 0; i < img->n_layers; i++) {
                const struct exp_layer *el = &img->layers[i];
                char lname[96], got[KDIGEST_STRLEN];
                struct aw_sink_ctx c = {&w, lname, el->tar_size};
                uint64_t size = 0;
                bool dup = false;

                snprintf(lname, sizeof(lname), "%s.tar", kdigest_hex(el->diff_id));
                append_new(layers, json_string(lname));
                for (size_t j = 0; j < i; j++)
                        dup = dup || strcmp(img->layers[j].diff_id, el->diff_id) == 0;
                if (dup)
                        continue;
                /* The tar size is recorded, so the stream goes straight into the archive. */
                if (aw_header(&w, lname, false, el->tar_size, err) < 0 ||
                    layer_stream(s, el->chain_id, aw_sink, &c, got, &size, err) < 0)
                        return kerr_wrap(err, "write layer %s", el->diff_id);
                if (strcmp(got, el->diff_id) != 0 || c.left != 0)
                        return kerr_set(
                                err, 0, KERR_DIGEST,
                                "layer %s: its tar now gives %s (%llu bytes); its directory "
                                "changed after commit, or it was committed from a tar with "
                                "clamped times",
                                el->diff_id, got, (unsigned long long)size);
        }
        set_new(entry, "Config", json_string(cname));
        if (name)
                append_new(tags, image_json_string(name));
        set_new(entry, "RepoTags", json_incref(tags));
        set_new(entry, "Layers", json_incref(layers));
        append_new(manifest, json_incref(entry));
        mtext = dump_json(manifest);
        if (aw_file(&w, "manifest.json", mtext, strlen(mtext), err) < 0)
                return -1;
        if (name && img->n_layers > 0) {
                _cleanup_free_ char *repo = NULL, *tag = NULL, *rtext = NULL;
                json_auto_t *repos = json_object();
                json_t *tagmap = json_object();

                if (!repos || !tagmap)
                        abort();
                if (split_name(name, &repo, &tag)) {
                        set_new(tagmap, tag,
                                json_string(kdigest_hex(img->layers[img->n_layers - 1].chain_id)));
                        set_new(repos, repo, tagmap);
                        rtext = dump_json(repos);
                        if (aw_file(&w, "repositories", rtext, strlen(rtext), err) < 0)
                                return -1;
                } else {
                        json_decref(tagmap);
                }
        }
        return aw_commit(&w, err);
}

static int do_export(struct image_store *s, const char *id, const struct tref *t,
                     const struct image_export_opts *opts, char ret_manifest[KDIGEST_STRLEN],
                     struct kerr **err)
{
        struct exp_image img = {.config = KBUF_INIT};
        struct kbuf m = KBUF_INIT;
        _cleanup_free_ char *name = NULL;
        char mdigest[KDIGEST_STRLEN];
        bool docker =
                t->kind == KIND_DOCKER_ARCHIVE || (opts && opts->format == IMAGE_FORMAT_DOCKER);
        enum image_compression comp = opts ? opts->compression : IMAGE_COMPRESSION_GZIP;
        const char *mt = docker ? IMAGE_MT_DOCKER_MANIFEST : IMAGE_MT_OCI_MANIFEST;
        int r = -1;

        /* Schema 2 has no zstd layer type, and containers/image refuses the pair. A docker
         * archive holds its layers uncompressed whatever was asked. */
        if (docker && comp == IMAGE_COMPRESSION_ZSTD && t->kind != KIND_DOCKER_ARCHIVE)
                return kerr_set(err, 0, KERR_INVALID,
                                "docker manifests have no zstd layer type: zstd layers need "
                                "the OCI format");
        if (t->kind == KIND_DOCKER_ARCHIVE && t->tag) {
                name = image_normalize_name(t->tag, err);
                if (!name)
                        return -1;
        }
        if (load_image(s, id, &img, err) < 0)
                goto out;
        if (t->kind == KIND_DOCKER_ARCHIVE) {
                /* No manifest travels in a docker archive; the one returned is what
                 * containers/image makes of it: uncompressed layers named by diff_id. */
                for (size_t i = 0; i < img.n_layers; i++) {
                        img.layers[i].media_type =
                                image_layer_media_type(IMAGE_COMPRESSION_NONE, true);
                        memcpy(img.layers[i].digest, img.layers[i].diff_id, KDIGEST_STRLEN);
                        img.layers[i].size = img.layers[i].tar_size;
                }
                if (build_manifest(&img, true, NULL, &m, err) < 0 ||
                    kdigest_buf(m.data, m.len, mdigest, err) < 0 ||
                    export_docker_archive(s, t, &img, name, err) < 0)
                        goto out;
        } else {
                for (size_t i = 0; i < img.n_layers; i++)
                        if (layer_blob(s, &img.layers[i], comp, docker, opts, err) < 0)
                                goto out;
                if (build_manifest(&img, docker, opts, &m, err) < 0 ||
                    image_blob_put(s, m.data, m.len, mdigest, err) < 0 ||
                    image_index_add_manifest(s, img.id, mdigest, err) < 0)
                        goto out;
                if (t->kind == KIND_OCI)
                        r = export_oci_dir(s, t, &img, mt, mdigest, m.len, err);
                else
                        r = export_oci_archive(s, t, &img, mt, mdigest, m.len, err);
                if (r < 0)
                        goto out;
        }
        if (ret_manifest)
                memcpy(ret_manifest, mdigest, KDIGEST_STRLEN);
        r = 0;
out:
        kbuf_release(&m);
        exp_image_release(&img);
        return r;
}

int image_export(struct image_store *s, const char *id, const char *dest,
                 const struct image_export_opts *opts, char ret_manifest[KDIGEST_STRLEN],
                 struct kerr **err)
{
        struct tref t;
        int r;

        if (parse_ref(dest, &t, err) < 0)
                return -1;
        r = do_export(s, id, &t, opts, ret_manifest, err);
        tref_release(&t);
        if (r < 0)
                return kerr_wrap(err, "export to '%s'", dest);
        return 0;
}

/* ======================================================================================
 * Import
 * ====================================================================================== */

/* A file of an archive, already in the store (or a link to another entry). */
struct aentry {
        char *name;
        char *link; /* normalised archive path of the target, or NULL */
        char digest[KDIGEST_STRLEN];
        uint64_t size;
};

struct source {
        const struct tref *t;
        int dirfd; /* oci: */
        struct aentry *entries;
        size_t n_entries;
        struct kbuf meta[4]; /* the small files, by meta_names index */
        bool has_meta[4];
};

static const char *const meta_names[] = {"oci-layout", "index.json", "manifest.json",
                                         "repositories"};

static void source_release(struct source *src)
{
        if (src->dirfd >= 0)
                kfs_close(src->dirfd);
        for (size_t i = 0; i < src->n_entries; i++) {
                free(src->entries[i].name);
                free(src->entries[i].link);
        }
        free(src->entries);
        for (size_t i = 0; i < ARRAY_SIZE(src->meta); i++)
                kbuf_release(&src->meta[i]);
}

/* Cleans an archive path: "./a//b/" -> "a/b". Absolute paths, ".." and empty names are
 * refused: nothing in an archive may name a place outside it. Caller frees. */
static char *clean_name(const char *name)
{
        struct kbuf b = KBUF_INIT;
        const char *p = name;

        if (!name || name[0] == '/')
                return NULL;
        while (*p) {
                const char *e = strchr(p, '/');
                size_t n = e ? (size_t)(e - p) : strlen(p);

                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        kbuf_release(&b);
                        return NULL;
                }
                if (n > 0 && !(n == 1 && p[0] == '.')) {
                        if (b.len)
                                kbuf_putc(&b, '/');
                        kbuf_append(&b, p, n);
                }
                p += n;
                while (*p == '/')
                        p++;
        }
        if (!b.len) {
                kbuf_release(&b);
                return NULL;
        }
        return kbuf_detach(&b);
}

/* A symlink target resolved against the link's directory, lexically, inside the archive. */
static char *resolve_link(const char *entry, const char *target)
{
        struct kbuf b = KBUF_INIT;
        const char *slash = strrchr(entry, '/');
        const char *p = target;
        char *r;

        if (target[0] == '/')
                return NULL;
        if (slash)
                kbuf_append(&b, entry, (size_t)(slash - entry));
        while (*p) {
                const char *e = strchr(p, '/');
                size_t n = e ? (size_t)(e - p) : strlen(p);

                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        char *last = b.len ? strrchr(b.data, '/') : NULL;

                        if (!b.len) {
                                kbuf_release(&b);
                                return NULL; /* above the archive's root */
                        }
                        kbuf_truncate(&b, last ? (size_t)(last - b.data) : 0);
                } else if (n > 0 && !(n == 1 && p[0] == '.')) {
                        if (b.len)
                                kbuf_putc(&b, '/');
                        kbuf_append(&b, p, n);
                }
                p += n;
                while (*p == '/')
                        p++;
        }
        r = b.len ? kbuf_detach(&b) : NULL;
        kbuf_release(&b);
        return r;
}

static struct aentry *find_entry(struct source *src, const char *name)
{
        for (size_t i = 0; i < src->n_entries; i++)
                if (strcmp(src->entries[i].name, name) == 0)
                        return &src->entries[i];
        return NULL;
}

/* Follows links (at most 16) to a stored file. */
static int lookup(struct source *src, const char *name, const struct aentry **ret,
                  struct kerr **err)
{
        _cleanup_free_ char *clean = clean_name(name);
        const char *cur = clean;

        if (!clean)
                return kerr_set(err, 0, KERR_INVALID, "invalid file name '%s'", name);
        for (int depth = 0; depth < 16; depth++) {
                struct aentry *e = find_entry(src, cur);

                if (!e)
                        return kerr_set(err, 0, KERR_NOTFOUND, "'%s' is not in the archive", name);
                if (!e->link) {
                        *ret = e;
                        return 0;
                }
                cur = e->link;
        }
        return kerr_set(err, 0, KERR_INVALID, "'%s': too many levels of links", name);
}

/* Which archive files go into the store: blobs, configs and layer tars. */
static bool wanted(enum kind kind, const char *name)
{
        size_t n = strlen(name);

        if (strncmp(name, "blobs/", 6) == 0)
                return true;
        if (kind != KIND_DOCKER_ARCHIVE)
                return false;
        return (n > 5 && strcmp(name + n - 5, ".json") == 0) ||
               (n > 4 && strcmp(name + n - 4, ".tar") == 0);
}

/* "blobs/sha256/<hex>" -> the digest it must have; false for other names. */
static bool blob_name_digest(const char *name, char ret[KDIGEST_STRLEN])
{
        if (strncmp(name, "blobs/sha256/", 13) != 0 || strlen(name + 13) != 64)
                return false;
        snprintf(ret, KDIGEST_STRLEN, "sha256:%s", name + 13);
        return kdigest_valid(ret);
}

static int read_archive(struct image_store *s, struct source *src, struct kerr **err)
{
        _cleanup_(archive_read_freep) struct archive *a = NULL;
        _cleanup_free_ char *buf = NULL;
        struct archive_entry *e;
        int r;

        if (karchive_load(err) < 0)
                return -1;
        a = archive_read_new();

        if (!a)
                abort();
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        if (archive_read_open_filename(a, src->t->path, 64 * 1024) != ARCHIVE_OK)
                return kerr_from_archive(err, a, "open '%s'", src->t->path);
        buf = malloc(COPY_CHUNK);
        if (!buf)
                abort();
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
                const char *raw = archive_entry_pathname(e);
                _cleanup_free_ char *name = clean_name(raw);
                mode_t type = archive_entry_filetype(e);
                const char *hl = archive_entry_hardlink(e);
                struct aentry *ent;
                char expected[KDIGEST_STRLEN];
                size_t mi = ARRAY_SIZE(meta_names);
                la_ssize_t n;

                if (!name)
                        return kerr_set(err, 0, KERR_INVALID, "invalid entry name '%s'",
                                        raw ? raw : "");
                if (type == AE_IFDIR)
                        continue;
                if (find_entry(src, name))
                        return kerr_set(err, 0, KERR_INVALID, "'%s' appears twice", name);
                for (size_t i = 0; i < ARRAY_SIZE(meta_names); i++)
                        if (strcmp(name, meta_names[i]) == 0)
                                mi = i;
                if (hl || type == AE_IFLNK) {
                        char *target = hl ? clean_name(hl)
                                          : resolve_link(name, archive_entry_symlink(e) ?: "");

                        if (!target)
                                return kerr_set(err, 0, KERR_INVALID,
                                                "'%s' links outside the archive", name);
                        src->entries = kreallocarray(src->entries, src->n_entries + 1,
                                                     sizeof(*src->entries));
                        ent = &src->entries[src->n_entries++];
                        memset(ent, 0, sizeof(*ent));
                        ent->name = TAKE_PTR(name);
                        ent->link = target;
                        continue;
                }
                if (type != AE_IFREG)
                        continue;
                if (mi < ARRAY_SIZE(meta_names)) {
                        if (archive_entry_size(e) > IMAGE_MANIFEST_MAX)
                                return kerr_set(err, 0, KERR_INVALID, "'%s' is too large", name);
                        src->has_meta[mi] = true;
                        while ((n = archive_read_data(a, buf, COPY_CHUNK)) > 0) {
                                kbuf_append(&src->meta[mi], buf, (size_t)n);
                                if (src->meta[mi].len > IMAGE_MANIFEST_MAX)
                                        return kerr_set(err, 0, KERR_INVALID, "'%s' is too large",
                                                        name);
                        }
                        if (n < 0)
                                return kerr_from_archive(err, a, "read '%s'", name);
                        continue;
                }
                if (!wanted(src->t->kind, name))
                        continue;
                {
                        _cleanup_(image_blob_writer_freep) struct image_blob_writer *w =
                                image_blob_writer_new(s, err);
                        bool check = blob_name_digest(name, expected);

                        if (!w)
                                return -1;
                        while ((n = archive_read_data(a, buf, COPY_CHUNK)) > 0)
                                if (image_blob_writer_write(w, buf, (size_t)n, err) < 0)
                                        return -1;
                        if (n < 0)
                                return kerr_from_archive(err, a, "read '%s'", name);
                        src->entries = kreallocarray(src->entries, src->n_entries + 1,
                                                     sizeof(*src->entries));
                        ent = &src->entries[src->n_entries];
                        memset(ent, 0, sizeof(*ent));
                        if (image_blob_writer_commit(w, check ? expected : NULL, ent->digest,
                                                     &ent->size, err) < 0)
                                return kerr_wrap(err, "'%s'", name);
                        ent->name = TAKE_PTR(name);
                        src->n_entries++;
                }
        }
        if (r != ARCHIVE_EOF)
                return kerr_from_archive(err, a, "read '%s'", src->t->path);
        return 0;
}

static int open_source(struct image_store *s, const struct tref *t, struct source *src,
                       struct kerr **err)
{
        memset(src, 0, sizeof(*src));
        src->t = t;
        src->dirfd = -1;
        if (t->kind == KIND_OCI) {
                src->dirfd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (src->dirfd < 0)
                        return kerr_set(err, errno, errno == ENOENT ? KERR_NOTFOUND : KERR_IO,
                                        "open '%s'", t->path);
                return 0;
        }
        return read_archive(s, src, err);
}

/* A small top-level file (index.json, manifest.json, …). */
static int source_meta(struct source *src, const char *name, struct kbuf *out, struct kerr **err)
{
        _cleanup_close_ int fd = -1;
        size_t mi = 0;

        if (src->t->kind == KIND_OCI) {
                fd = kfs_open_in_root(src->dirfd, name, O_RDONLY | O_CLOEXEC, 0, 0, err);
                if (fd < 0)
                        return -1;
                if (kfs_read_fd(fd, name, IMAGE_MANIFEST_MAX, out, err) < 0)
                        return -1;
                return 0;
        }
        while (mi < ARRAY_SIZE(meta_names) && strcmp(meta_names[mi], name) != 0)
                mi++;
        if (mi == ARRAY_SIZE(meta_names) || !src->has_meta[mi])
                return kerr_set(err, 0, KERR_NOTFOUND, "no '%s' in the archive", name);
        kbuf_append(out, src->meta[mi].data ? src->meta[mi].data : "", src->meta[mi].len);
        return 0;
}

/* Puts the blob named by digest into the store (verified), from an OCI layout. */
static int source_blob(struct image_store *s, struct source *src, const char *digest,
                       uint64_t *ret_size, struct kerr **err)
{
        char name[96];

        if (!kdigest_valid(digest))
                return kerr_set(err, 0, KERR_INVALID, "invalid digest '%s'", digest);
        snprintf(name, sizeof(name), "blobs/sha256/%s", kdigest_hex(digest));
        if (src->t->kind != KIND_OCI) {
                const struct aentry *e;

                if (lookup(src, name, &e, err) < 0)
                        return -1;
                if (strcmp(e->digest, digest) != 0)
                        return kerr_set(err, 0, KERR_DIGEST, "'%s' has digest %s", name, e->digest);
                *ret_size = e->size;
                return 0;
        }
        if (image_blob_exists(s, digest))
                return image_blob_size(s, digest, ret_size, err);
        {
                _cleanup_close_ int fd =
                        kfs_open_in_root(src->dirfd, name, O_RDONLY | O_CLOEXEC, 0, 0, err);
                _cleanup_(image_blob_writer_freep) struct image_blob_writer *w = NULL;
                _cleanup_free_ char *buf = NULL;
                char got[KDIGEST_STRLEN];
                ssize_t n;

                if (fd < 0)
                        return kerr_wrap(err, "blob %s", digest);
                w = image_blob_writer_new(s, err);
                if (!w)
                        return -1;
                buf = malloc(COPY_CHUNK);
                if (!buf)
                        abort();
                while ((n = kfs_read_all(fd, buf, COPY_CHUNK)) > 0)
                        if (image_blob_writer_write(w, buf, (size_t)n, err) < 0)
                                return -1;
                if (n < 0)
                        return kerr_set(err, errno, KERR_IO, "read '%s'", name);
                if (image_blob_writer_commit(w, digest, got, ret_size, err) < 0)
                        return kerr_wrap(err, "'%s'", name);
        }
        return 0;
}

static int source_blob_read(struct image_store *s, struct source *src, const char *digest,
                            uint64_t want_size, size_t max, struct kbuf *out, struct kerr **err)
{
        uint64_t size;

        if (source_blob(s, src, digest, &size, err) < 0)
                return -1;
        if (size != want_size)
                return kerr_set(err, 0, KERR_DIGEST, "blob %s has %llu bytes, not %llu", digest,
                                (unsigned long long)size, (unsigned long long)want_size);
        return image_blob_read(s, digest, max, out, err);
}

/* True when the layer already records blob as one of its forms. */
static bool layer_has_blob(struct image_store *s, const char *chain, const char *blob)
{
        struct image_layer l = {0};
        bool found = false;

        if (image_layer_get(s, chain, &l, NULL) < 0)
                return false;
        for (size_t i = 0; i < l.n_blobs; i++)
                found = found || strcmp(l.blobs[i].digest, blob) == 0;
        image_layer_release(&l);
        return found;
}

struct imp_layer {
        char digest[KDIGEST_STRLEN];
        const char *media_type; /* NULL: do not record the blob as a form of the layer */
        uint64_t size;
};

/* Applies the layers (blobs already in the store) under the config's diff_ids, stores the
 * image and names it. */
static int store_image(struct image_store *s, const char *config_digest,
                       const struct imp_layer *layers, size_t n_layers, const char *name,
                       const char *manifest_digest, struct kerr **err)
{
        _cleanup_(image_config_freep) struct image_config *c = NULL;
        struct kbuf cbuf = KBUF_INIT;
        char parent[KDIGEST_STRLEN] = "";

        if (image_blob_read(s, config_digest, CONFIG_MAX, &cbuf, err) < 0)
                return -1;
        c = image_config_parse(cbuf.data, cbuf.len, config_digest, err);
        kbuf_release(&cbuf);
        if (!c)
                return -1;
        if (c->n_diff_ids != n_layers)
                return kerr_set(err, 0, KERR_INVALID,
                                "the config lists %zu layers, the manifest %zu", c->n_diff_ids,
                                n_layers);
        for (size_t i = 0; i < n_layers; i++) {
                const char *want = c->diff_ids[i];
                char chain[KDIGEST_STRLEN], got[KDIGEST_STRLEN];

                if (image_chain_id(parent, want, chain, err) < 0)
                        return -1;
                if (!image_layer_exists(s, chain)) {
                        _cleanup_free_ char *dir = NULL;
                        _cleanup_close_ int dfd = -1, bfd = -1;
                        uint64_t tar_size = 0;

                        if (image_store_mkdtemp(s, &dir, err) < 0)
                                return -1;
                        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        bfd = image_blob_open(s, layers[i].digest, err);
                        if (dfd < 0 || bfd < 0 ||
                            image_layer_apply(bfd, dfd, IMAGE_APPLY_OVERLAY, got, err) < 0) {
                                if (dfd < 0)
                                        kerr_set(err, errno, KERR_IO, "open '%s'", dir);
                                image_store_rmtree(dir, NULL);
                                return kerr_wrap(err, "layer %s", layers[i].digest);
                        }
                        if (strcmp(got, want) != 0) {
                                image_store_rmtree(dir, NULL);
                                return kerr_set(err, 0, KERR_DIGEST,
                                                "layer %s unpacks to %s, but the config "
                                                "says %s",
                                                layers[i].digest, got, want);
                        }
                        if (strcmp(layers[i].digest, want) == 0)
                                tar_size = layers[i].size;
                        else if (blob_uncompressed(s, layers[i].digest, NULL, NULL, got, &tar_size,
                                                   err) < 0) {
                                image_store_rmtree(dir, NULL);
                                return -1;
                        }
                        if (image_layer_commit(s, parent, want, tar_size, dir, chain, err) < 0) {
                                image_store_rmtree(dir, NULL);
                                return -1;
                        }
                } else if (strcmp(layers[i].digest, want) != 0 &&
                           !layer_has_blob(s, chain, layers[i].digest)) {
                        /* The layer is here already: before this blob is recorded as a form
                         * of it (and reused by the next export), it must really be one; and
                         * an archive that carries a damaged copy is refused, not taken on
                         * the strength of what the store had. */
                        uint64_t size;

                        if (blob_uncompressed(s, layers[i].digest, NULL, NULL, got, &size, err) < 0)
                                return -1;
                        if (strcmp(got, want) != 0)
                                return kerr_set(err, 0, KERR_DIGEST,
                                                "layer %s unpacks to %s, but the config says %s",
                                                layers[i].digest, got, want);
                }
                if (layers[i].media_type &&
                    image_layer_add_blob(s, chain, layers[i].digest, layers[i].media_type,
                                         layers[i].size, err) < 0)
                        return -1;
                memcpy(parent, chain, KDIGEST_STRLEN);
        }
        if (image_index_add(s, config_digest, name ? &name : NULL, name ? 1 : 0, err) < 0)
                return -1;
        if (manifest_digest && image_index_add_manifest(s, config_digest, manifest_digest, err) < 0)
                return -1;
        return 0;
}

static const char *host_arch(void)
{
        static struct utsname u;

        if (uname(&u) < 0)
                return "amd64";
        if (strcmp(u.machine, "x86_64") == 0)
                return "amd64";
        if (strcmp(u.machine, "aarch64") == 0)
                return "arm64";
        return u.machine;
}

/* oci-layout must say which layout version this is; 1.x is what the spec defines. */
static int check_layout(struct source *src, struct kerr **err)
{
        struct kbuf b = KBUF_INIT;
        json_auto_t *j = NULL;
        const char *v;

        if (source_meta(src, "oci-layout", &b, err) < 0)
                return -1;
        j = kjson_load(b.data, b.len, "oci-layout", err);
        kbuf_release(&b);
        if (!j)
                return -1;
        v = json_string_value(json_object_get(j, "imageLayoutVersion"));
        if (!v)
                return kerr_set(err, 0, KERR_INVALID, "oci-layout: no imageLayoutVersion");
        if (strncmp(v, "1.", 2) != 0)
                return kerr_set(err, 0, KERR_UNSUPPORTED,
                                "oci-layout: image layout version '%s' is not supported", v);
        return 0;
}

static int import_oci(struct image_store *s, struct source *src, char ret_id[KDIGEST_STRLEN],
                      struct kerr **err)
{
        const struct tref *t = src->t;
        struct kbuf b = KBUF_INIT;
        struct image_descriptor *d = NULL, chosen = {0};
        size_t n = 0;
        _cleanup_(image_manifest_freep) struct image_manifest *m = NULL;
        struct imp_layer *layers = NULL;
        _cleanup_free_ char *name = NULL, *ref_name = NULL;
        int r = -1;

        if (check_layout(src, err) < 0 || source_meta(src, "index.json", &b, err) < 0)
                return -1;
        if (image_manifest_list_parse(b.data, b.len, "index.json", &d, &n, err) < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                bool match = false;

                if (t->tag) {
                        for (size_t j = 0; j < d[i].n_annotations; j++)
                                match = match || (strcmp(d[i].annotations[j].key,
                                                         REF_NAME_ANNOTATION) == 0 &&
                                                  strcmp(d[i].annotations[j].value, t->tag) == 0);
                } else {
                        match = true;
                }
                if (!match)
                        continue;
                if (chosen.media_type) {
                        kerr_set(err, 0, KERR_INVALID,
                                 "index.json lists more than one image; name one with :TAG");
                        goto out;
                }
                chosen = d[i];
                memset(&d[i], 0, sizeof(d[i]));
                for (size_t j = 0; j < chosen.n_annotations; j++)
                        if (strcmp(chosen.annotations[j].key, REF_NAME_ANNOTATION) == 0)
                                ref_name = kstrdup(chosen.annotations[j].value);
        }
        if (!chosen.media_type) {
                if (t->tag)
                        kerr_set(err, 0, KERR_NOTFOUND, "no image tagged '%s' in index.json",
                                 t->tag);
                else
                        kerr_set(err, 0, KERR_NOTFOUND, "index.json lists no image");
                goto out;
        }
        kbuf_truncate(&b, 0);
        if (source_blob_read(s, src, chosen.digest, chosen.size, IMAGE_MANIFEST_MAX, &b, err) < 0)
                goto out;
        if (strcmp(chosen.media_type, IMAGE_MT_OCI_INDEX) == 0 ||
            strcmp(chosen.media_type, IMAGE_MT_DOCKER_LIST) == 0) {
                /* A multi-platform image: this host's platform, or the only entry. */
                struct image_descriptor *sub = NULL;
                size_t n_sub = 0, pick = (size_t)-1;

                if (image_manifest_list_parse(b.data, b.len, chosen.digest, &sub, &n_sub, err) < 0)
                        goto out;
                for (size_t i = 0; i < n_sub && pick == (size_t)-1; i++)
                        if (sub[i].platform_os && strcmp(sub[i].platform_os, "linux") == 0 &&
                            sub[i].platform_arch && strcmp(sub[i].platform_arch, host_arch()) == 0)
                                pick = i;
                if (pick == (size_t)-1 && n_sub == 1)
                        pick = 0;
                if (pick != (size_t)-1) {
                        image_descriptor_release(&chosen);
                        chosen = sub[pick];
                        memset(&sub[pick], 0, sizeof(sub[pick]));
                }
                for (size_t i = 0; i < n_sub; i++)
                        image_descriptor_release(&sub[i]);
                free(sub);
                if (pick == (size_t)-1) {
                        kerr_set(err, 0, KERR_NOTFOUND, "no image for linux/%s in %s", host_arch(),
                                 chosen.digest);
                        goto out;
                }
                kbuf_truncate(&b, 0);
                if (source_blob_read(s, src, chosen.digest, chosen.size, IMAGE_MANIFEST_MAX, &b,
                                     err) < 0)
                        goto out;
        }
        m = image_manifest_parse(b.data, b.len, chosen.digest, err);
        if (!m)
                goto out;
        {
                uint64_t size;

                if (source_blob(s, src, m->config.digest, &size, err) < 0)
                        goto out;
                if (size != m->config.size) {
                        kerr_set(err, 0, KERR_DIGEST, "config %s has %llu bytes, not %llu",
                                 m->config.digest, (unsigned long long)size,
                                 (unsigned long long)m->config.size);
                        goto out;
                }
        }
        layers = kcalloc(m->n_layers + 1, sizeof(*layers));
        for (size_t i = 0; i < m->n_layers; i++) {
                if (source_blob(s, src, m->layers[i].digest, &layers[i].size, err) < 0)
                        goto out;
                if (layers[i].size != m->layers[i].size) {
                        kerr_set(err, 0, KERR_DIGEST, "layer %s has %llu bytes, not %llu",
                                 m->layers[i].digest, (unsigned long long)layers[i].size,
                                 (unsigned long long)m->layers[i].size);
                        goto out;
                }
                memcpy(layers[i].digest, m->layers[i].digest, KDIGEST_STRLEN);
                layers[i].media_type = m->layers[i].media_type;
        }
        /* The manifest is kept as received: its digest covers these bytes. */
        {
                char mdigest[KDIGEST_STRLEN];
                struct kerr *e2 = NULL;

                if (image_blob_put(s, b.data, b.len, mdigest, err) < 0)
                        goto out;
                /* As podman names what it pulls: the tag of oci:DIR:TAG; for an archive
                 * without one, the ref.name annotation of its manifest. */
                if (t->tag)
                        name = image_normalize_name(t->tag, &e2);
                else if (t->kind == KIND_OCI_ARCHIVE && ref_name)
                        name = image_normalize_name(ref_name, &e2);
                kerr_free(e2);
                if (store_image(s, m->config.digest, layers, m->n_layers, name, mdigest, err) < 0)
                        goto out;
        }
        memcpy(ret_id, m->config.digest, KDIGEST_STRLEN);
        r = 0;
out:
        for (size_t i = 0; i < n; i++)
                image_descriptor_release(&d[i]);
        free(d);
        image_descriptor_release(&chosen);
        free(layers);
        kbuf_release(&b);
        return r;
}

static int import_docker(struct image_store *s, struct source *src, char ret_id[KDIGEST_STRLEN],
                         struct kerr **err)
{
        const struct tref *t = src->t;
        struct kbuf b = KBUF_INIT;
        json_auto_t *root = NULL;
        json_t *entry = NULL, *e, *jl;
        _cleanup_free_ char *want = NULL, *name = NULL;
        struct imp_layer *layers = NULL;
        const struct aentry *ae;
        size_t i, n_layers = 0;
        int r = -1;

        if (source_meta(src, "manifest.json", &b, err) < 0)
                return -1;
        root = kjson_load(b.data, b.len, "manifest.json", err);
        kbuf_release(&b);
        if (!root)
                return -1;
        if (!json_is_array(root))
                return kerr_set(err, 0, KERR_INVALID, "manifest.json: expected an array");
        if (t->tag) {
                want = image_normalize_name(t->tag, err);
                if (!want)
                        return -1;
        }
        json_array_foreach(root, i, e)
        {
                json_t *tags = json_object_get(e, "RepoTags"), *tg;
                size_t j;
                bool match = !want;

                if (!json_is_object(e))
                        return kerr_set(err, 0, KERR_INVALID,
                                        "manifest.json[%zu]: expected an object", i);
                json_array_foreach(tags, j, tg)
                {
                        _cleanup_free_ char *norm = NULL;
                        struct kerr *e2 = NULL;

                        if (!json_is_string(tg))
                                continue;
                        norm = image_normalize_name(json_string_value(tg), &e2);
                        kerr_free(e2);
                        if (want && norm && strcmp(norm, want) == 0)
                                match = true;
                        if (!want && norm && !name)
                                name = kstrdup(norm);
                }
                if (!match)
                        continue;
                if (entry)
                        return kerr_set(err, 0, KERR_INVALID,
                                        "the archive holds more than one image; name one "
                                        "with :REF");
                entry = e;
        }
        if (!entry)
                return kerr_set(err, 0, KERR_NOTFOUND, "no image %s%s%s in manifest.json",
                                want ? "'" : "", want ? want : "", want ? "'" : "");
        if (want)
                name = TAKE_PTR(want);
        if (!json_is_string(json_object_get(entry, "Config")))
                return kerr_set(err, 0, KERR_INVALID,
                                "manifest.json: Config: expected a "
                                "string");
        if (lookup(src, json_string_value(json_object_get(entry, "Config")), &ae, err) < 0)
                return -1;
        {
                char config_digest[KDIGEST_STRLEN];

                memcpy(config_digest, ae->digest, KDIGEST_STRLEN);
                jl = json_object_get(entry, "Layers");
                if (!json_is_array(jl))
                        return kerr_set(err, 0, KERR_INVALID,
                                        "manifest.json: Layers: expected an array");
                layers = kcalloc(json_array_size(jl) + 1, sizeof(*layers));
                json_array_foreach(jl, i, e)
                {
                        if (!json_is_string(e)) {
                                kerr_set(err, 0, KERR_INVALID,
                                         "manifest.json: Layers[%zu]: expected a string", i);
                                goto out;
                        }
                        if (lookup(src, json_string_value(e), &ae, err) < 0)
                                goto out;
                        memcpy(layers[i].digest, ae->digest, KDIGEST_STRLEN);
                        layers[i].size = ae->size;
                        n_layers = i + 1;
                }
                /* Uncompressed tars are recorded as the layer's plain form only when they
                 * are (their digest is the diff_id); store_image checks that below. */
                {
                        struct kbuf cb = KBUF_INIT;
                        struct image_config *c;

                        if (image_blob_read(s, config_digest, CONFIG_MAX, &cb, err) < 0)
                                goto out;
                        c = image_config_parse(cb.data, cb.len, config_digest, err);
                        kbuf_release(&cb);
                        if (!c)
                                goto out;
                        for (i = 0; i < n_layers && i < c->n_diff_ids; i++)
                                if (strcmp(layers[i].digest, c->diff_ids[i]) == 0)
                                        layers[i].media_type = image_layer_media_type(
                                                IMAGE_COMPRESSION_NONE, true);
                        image_config_free(c);
                }
                if (store_image(s, config_digest, layers, n_layers, name, NULL, err) < 0)
                        goto out;
                memcpy(ret_id, config_digest, KDIGEST_STRLEN);
        }
        r = 0;
out:
        free(layers);
        return r;
}

int image_import(struct image_store *s, const char *src_ref, char ret_id[KDIGEST_STRLEN],
                 struct kerr **err)
{
        struct tref t;
        struct source src = {.dirfd = -1};
        char id[KDIGEST_STRLEN];
        int r;

        if (parse_ref(src_ref, &t, err) < 0)
                return -1;
        r = open_source(s, &t, &src, err);
        if (r == 0) {
                if (t.kind == KIND_DOCKER_ARCHIVE)
                        r = import_docker(s, &src, id, err);
                else
                        r = import_oci(s, &src, id, err);
        }
        source_release(&src);
        tref_release(&t);
        if (r < 0)
                return kerr_wrap(err, "import '%s'", src_ref);
        memcpy(ret_id, id, KDIGEST_STRLEN);
        return 0;
}
