/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The image module: the content-addressable store (blobs, extracted layers, the name
 * index), layer tar streams (written deterministically from a directory, applied safely
 * onto one), compression, image configs and manifests, and the OCI/docker archive
 * transports. jansson is used here and nowhere else but common/kjson.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/digest.h"

struct kbuf;
struct kerr;

/* Versions of the linked libarchive, zstd and zlib (static strings). */
/* NULL with an error when libarchive cannot be loaded. */
const char *image_libarchive_version(struct kerr **err);
const char *image_zstd_version(void);
const char *image_zlib_version(void);

/* A byte sink: returns 0, or < 0 with *err set. */
typedef int (*image_sink_fn)(void *ctx, const void *p, size_t n, struct kerr **err);

/* ======================================================================================
 * Store (store.c, blob.c, layer.c, index.c)
 *
 * root/blobs/sha256/<hex>      immutable content, named by its digest (verified on write)
 * root/layers/<hex>/diff/      an extracted layer, in overlay format (whiteouts are 0/0
 *                              character devices, opaque dirs carry the overlay xattr)
 * root/layers/<hex>/layer.json diff_id, parent chain id, tar size, compressed blobs known
 * root/layers/<hex>/flat/      that layer and those below merged, once the builder needed it
 * root/images.json             names -> image IDs (config digests) and manifests
 * root/tmp/<pid>-<rand>/       work dirs; a dead pid's are swept by image_store_open
 * root/cache/, root/statcache/ the step cache and the stat cache of build contexts (below)
 * root/lock                    flock'ed around every read-modify-write of images.json
 * root/gc.lock                 the lease: flock'ed shared by every process that writes or
 *                              reads content (build, pull, push), exclusive by the GC, so
 *                              nothing a process has not yet named is collected under it;
 *                              taken before root/lock, never while holding it
 * Everything appears by rename after fsync, so a kill leaves the old or the new state.
 * ====================================================================================== */

struct image_store;

/* The default root: /var/lib/kiln as root, ${XDG_DATA_HOME:-$HOME/.local/share}/kiln
 * otherwise. Caller frees. */
char *image_store_default_root(void);
/* image_store_open: hold a shared lease on root/gc.lock until image_store_free, so that no
 * GC removes what this process writes or reads (waits while a GC runs). The lock belongs to
 * the open file: a child forked meanwhile shares it until it execs (the fd is close-on-exec)
 * or exits. */
#define IMAGE_STORE_LEASE (1u << 0)

/* Opens the store at root (NULL: the default), creating it; sweeps stale tmp/ dirs. flags
 * are IMAGE_STORE_*. */
struct image_store *image_store_open(const char *root, unsigned flags, struct kerr **err);
void image_store_free(struct image_store *s);
/* Removes what processes now gone left in tmp/ (and images.json temp files), as
 * image_store_open does: after killing processes forked from this one, say. */
void image_store_sweep(struct image_store *s);
const char *image_store_root(const struct image_store *s);
int image_store_root_fd(const struct image_store *s);

/* A new empty directory under tmp/ for this process; *ret_path is absolute (caller frees
 * it and removes the directory, e.g. with image_store_rmtree). */
int image_store_mkdtemp(struct image_store *s, char **ret_path, struct kerr **err);
/* rm -rf of path; a missing path is fine. */
int image_store_rmtree(const char *path, struct kerr **err);
/* rm -rf of name relative to dirfd, never following symlinks; a missing entry is fine. */
int image_store_rmtree_at(int dirfd, const char *name, struct kerr **err);

/* ---- blobs ---- */

struct image_blob_writer;

/* A blob being written into tmp/, hashed on the way. */
struct image_blob_writer *image_blob_writer_new(struct image_store *s, struct kerr **err);
int image_blob_writer_write(struct image_blob_writer *w, const void *p, size_t n,
                            struct kerr **err);
/* An image_sink_fn over a writer (ctx is the writer). */
int image_blob_writer_sink(void *ctx, const void *p, size_t n, struct kerr **err);
/* fsyncs and renames the blob into blobs/. When expected is not NULL and differs from what
 * was written, fails with KERR_DIGEST naming both, and nothing enters the store. */
int image_blob_writer_commit(struct image_blob_writer *w, const char *expected,
                             char ret_digest[KDIGEST_STRLEN], uint64_t *ret_size,
                             struct kerr **err);
/* Frees; an uncommitted writer's temp file is removed. */
void image_blob_writer_free(struct image_blob_writer *w);

int image_blob_put(struct image_store *s, const void *data, size_t len,
                   char ret_digest[KDIGEST_STRLEN], struct kerr **err);
bool image_blob_exists(struct image_store *s, const char *digest);
/* An O_RDONLY|O_CLOEXEC fd of the blob; KERR_NOTFOUND when it is not there. */
int image_blob_open(struct image_store *s, const char *digest, struct kerr **err);
/* Reads a whole blob (at most max bytes) and checks its digest. */
int image_blob_read(struct image_store *s, const char *digest, size_t max, struct kbuf *out,
                    struct kerr **err);
int image_blob_size(struct image_store *s, const char *digest, uint64_t *ret_size,
                    struct kerr **err);

/* ---- layers ---- */

enum image_compression {
        IMAGE_COMPRESSION_NONE = 0,
        IMAGE_COMPRESSION_GZIP,
        IMAGE_COMPRESSION_ZSTD,
};

/* The media type of a layer blob with that compression, in OCI or docker naming. */
const char *image_layer_media_type(enum image_compression c, bool docker);

struct image_layer_blob {
        char digest[KDIGEST_STRLEN];
        char *media_type;
        uint64_t size;
};

struct image_layer {
        char chain_id[KDIGEST_STRLEN];
        char diff_id[KDIGEST_STRLEN];
        char parent[KDIGEST_STRLEN]; /* "" for a bottom layer */
        uint64_t tar_size;           /* bytes of the uncompressed tar stream */
        struct image_layer_blob *blobs;
        size_t n_blobs;
};

void image_layer_release(struct image_layer *l);

/* sha256 chain id: diff_id for a bottom layer, else sha256(parent + " " + diff_id). */
int image_chain_id(const char *parent_chain_id, const char *diff_id, char ret[KDIGEST_STRLEN],
                   struct kerr **err);

/* Moves dir (a directory under tmp/, in overlay format) into layers/<chain>/diff and
 * records it; when that chain id is already stored, dir is removed instead. */
int image_layer_commit(struct image_store *s, const char *parent_chain_id, const char *diff_id,
                       uint64_t tar_size, const char *dir, char ret_chain_id[KDIGEST_STRLEN],
                       struct kerr **err);
bool image_layer_exists(struct image_store *s, const char *chain_id);
int image_layer_get(struct image_store *s, const char *chain_id, struct image_layer *ret,
                    struct kerr **err);
/* Records that blob (with that media type and size) is a compressed form of the layer. */
int image_layer_add_blob(struct image_store *s, const char *chain_id, const char *digest,
                         const char *media_type, uint64_t size, struct kerr **err);
/* An O_DIRECTORY fd of layers/<chain>/diff. */
int image_layer_open_diff(struct image_store *s, const char *chain_id, struct kerr **err);
/* Absolute path of layers/<chain>/diff (caller frees). */
char *image_layer_diff_path(struct image_store *s, const char *chain_id);

/* ---- flattened layer stacks (layer.c) ----
 *
 * root/layers/<hex>/flat/  the merged tree of that layer and every layer below it, as
 *                          overlayfs shows them, with no whiteout or opaque directory left:
 *                          one lower dir standing for them all in a stack too deep to mount
 *                          cheaply. Made by the builder; it goes with its layer (GC, prune). */

/* Absolute path of layers/<chain>/flat (caller frees); NULL for an invalid chain id. */
char *image_layer_flat_path(struct image_store *s, const char *chain_id);
/* Whether layers/<chain>/flat exists. */
bool image_layer_has_flat(struct image_store *s, const char *chain_id);
/* An O_DIRECTORY fd of layers/<chain>/flat; KERR_NOTFOUND when there is none. */
int image_layer_open_flat(struct image_store *s, const char *chain_id, struct kerr **err);
/* Syncs dir (a complete tree in a directory of tmp/) and renames it to layers/<chain>/flat.
 * When another process put one there first, dir is removed and that one stays. A layer that
 * is not stored is KERR_NOTFOUND. */
int image_layer_commit_flat(struct image_store *s, const char *chain_id, const char *dir,
                            struct kerr **err);

/* ---- the name index ---- */

struct image_record {
        char id[KDIGEST_STRLEN]; /* the config digest */
        char **names;            /* normalised, e.g. "localhost/hello:latest" */
        size_t n_names;
        char **manifests; /* digests of manifests made for it by push or export */
        size_t n_manifests;
        char *format;       /* "oci" or "docker" as built with --format; NULL: unset */
        char **annotations; /* "K=V" from build --annotation, for its manifests */
        size_t n_annotations;
};

void image_record_release(struct image_record *r);
void image_records_free(struct image_record *r, size_t n);

int image_index_list(struct image_store *s, struct image_record **ret, size_t *ret_n,
                     struct kerr **err);
/* Adds (or updates) the image id with the given names; a name held by another image moves
 * here, as podman does. Each name is normalised with image_normalize_name. */
int image_index_add(struct image_store *s, const char *id, const char *const *names, size_t n,
                    struct kerr **err);
/* Records what a build asked of the image's future manifests: the format ("oci",
 * "docker" or NULL) and "K=V" annotations. */
int image_index_set_build_info(struct image_store *s, const char *id, const char *format,
                               const char *const *annotations, size_t n, struct kerr **err);
int image_index_add_manifest(struct image_store *s, const char *id, const char *manifest_digest,
                             struct kerr **err);
/* Finds an image by name (normalised as podman does for short names), full id, "sha256:"
 * id prefix or bare hex prefix (at least 3 characters, unambiguous). */
int image_index_resolve(struct image_store *s, const char *name, char ret_id[KDIGEST_STRLEN],
                        struct kerr **err);
/* Removes a name; the image stays (untagged) if it has no name left. */
int image_index_untag(struct image_store *s, const char *name, struct kerr **err);
/* Takes root/gc.lock exclusively until image_store_free: no other kiln process holds a
 * lease meanwhile. Without wait, fails at once with errnum EWOULDBLOCK while one does. A
 * store opened with IMAGE_STORE_LEASE cannot take it (KERR_INVALID). */
int image_store_lock_gc(struct image_store *s, bool wait, struct kerr **err);
/* Removes an image record (by id) and garbage-collects the blobs and layers it used that no
 * other image uses, nor a step cache entry that leads to another image; the collection is
 * skipped (left for prune) unless the GC lock is held or free at once. */
int image_index_remove(struct image_store *s, const char *id, struct kerr **err);
/* As image_index_remove, but only when the image has no name, checked under the lock: one
 * untagged to be removed may have been named meanwhile (a build that hit the cache names
 * the image it built before). *ret_removed says which. */
int image_index_remove_unnamed(struct image_store *s, const char *id, bool *ret_removed,
                               struct kerr **err);
/* Removes untagged images, the step cache entries that lead to no remaining image, the
 * blobs and layers that neither an image nor a remaining cache entry uses, and the stat
 * caches of contexts that no longer exist; takes the GC lock (waiting for leases to end)
 * unless held. */
int image_store_prune(struct image_store *s, struct kerr **err);

/* ---- RUN --mount=type=cache directories (store.c) ----
 *
 * root/mounts/<sha256 of the id>/         the directory, kept between builds
 * root/mounts/<sha256 of the id>.lock     flock'ed by a user that wants it alone
 */

/* The cache directory for id, created with mode, uid and gid when missing. With lock, it is
 * flock'ed exclusively (waiting for other users, or failing with EWOULDBLOCK without wait)
 * and *ret_lock_fd is the lock to close when done; otherwise *ret_lock_fd is -1. *ret_path
 * is absolute (caller frees). */
int image_store_cache_mount(struct image_store *s, const char *id, mode_t mode, uid_t uid,
                            gid_t gid, bool lock, bool wait, char **ret_path, int *ret_lock_fd,
                            struct kerr **err);

/* ---- the step cache (cache.c) ----
 *
 * root/cache/<aa>/<62 hex>         an entry, named by its key (a sha256 the builder computes
 *                                  from a step's inputs): what the step produced
 * root/cache/<aa>/<62 hex>.inputs  named by a partial key: the inputs the latest build of
 *                                  that step saw, so that a miss can say what changed
 *
 * A step's entry holds the config the step left (its rootfs.diff_ids give the layer stack) and
 * the key of the step it built on; a build's entry holds the image id it committed. The GC
 * keeps the entries that lead to an image still in the index (the steps of its build and of
 * the stages it copied from) with their layers, and removes the others. */

struct image_config;

struct image_cache_entry {
        char parent[KDIGEST_STRLEN];  /* the key of the step this one built on; "" for none */
        char partial[KDIGEST_STRLEN]; /* the partial key whose .inputs describe it; "" */
        char image[KDIGEST_STRLEN];   /* a build's entry: the image id; "" for a step */
        char *config;                 /* a step's entry, put: the config it left (JSON) */
        size_t config_len;
        /* image_cache_get: a step's entry's config, parsed (NULL for a build's entry), and
         * the chain ids of the layers of the entry's config or image, bottom first; the
         * caller may take them (set them to NULL) before the release. */
        struct image_config *cfg;
        char **chain;
        size_t n_chain;
        char **deps; /* keys of other stages' last steps the step read (COPY --from) */
        size_t n_deps;
};

void image_cache_entry_release(struct image_cache_entry *e);

/* Stores e under key, replacing an entry of that key; written to tmp/, synced and renamed,
 * so a reader sees the old entry or the new one whole. */
int image_cache_put(struct image_store *s, const char *key, const struct image_cache_entry *e,
                    struct kerr **err);
/* Reads the entry of key into *ret (release it). A miss is KERR_NOTFOUND: no entry, an
 * unreadable one, or one whose content is gone (a layer of its config; the image's config
 * blob or one of its layers), so that a pruned entry is rebuilt, never an error. */
int image_cache_get(struct image_store *s, const char *key, struct image_cache_entry *ret,
                    struct kerr **err);
/* Records the inputs (text, one per line) that gave key, under partial. Not synced: they
 * only serve messages, and a torn file reads as absent. */
int image_cache_put_inputs(struct image_store *s, const char *partial, const char *key,
                           const char *inputs, size_t len, struct kerr **err);
/* The inputs last recorded under partial, and the key they gave (either may be NULL; without
 * inputs only the key is read). KERR_NOTFOUND when there are none. */
int image_cache_get_inputs(struct image_store *s, const char *partial, struct kbuf *inputs,
                           char ret_key[KDIGEST_STRLEN], struct kerr **err);
/* True when inputs were recorded under partial: some build ran that step on that parent. */
bool image_cache_has_inputs(struct image_store *s, const char *partial);

/* ---- the stat cache of build contexts (statcache.c) ----
 *
 * root/statcache/<hex>   one table per context directory (hex: sha256 of its absolute
 *                        path), mapping (st_dev, st_ino, size, mtime, ctime) to the sha256 of
 *                        the file's content. A file that changed in any of these is hashed
 *                        again; ctime catches a rewrite whose mtime was put back. */

struct image_statcache;
struct stat;
struct timespec;

/* Loads the table of the context at path (absolute); a missing or damaged table is an empty
 * one. Fails only on I/O errors of the store itself. */
struct image_statcache *image_statcache_open(struct image_store *s, const char *path,
                                             struct kerr **err);
void image_statcache_free(struct image_statcache *c);
/* The content digest recorded for the file st describes, when its device, inode, size,
 * mtime and ctime all match: true and ret filled; false otherwise. */
bool image_statcache_get(struct image_statcache *c, const struct stat *st,
                         char ret[KDIGEST_STRLEN]);
/* Records digest for st, the file's state both before and after it was read; the reading
 * began at read_start (CLOCK_REALTIME). A file whose ctime is within a tick of the file
 * system's clock of read_start is not recorded, since a change in that same tick would
 * leave every field as it was: 100 ms, or 2 s for stamps of whole seconds. */
void image_statcache_put(struct image_statcache *c, const struct stat *st,
                         const struct timespec *read_start, const char *digest);
/* Writes the table back when it changed, merged with what other builds wrote meanwhile;
 * entries nobody used for 30 days are dropped. */
int image_statcache_save(struct image_statcache *c, struct kerr **err);

/* ---- inspection (inspect.c) ---- */

/* Appends the pretty JSON description of image id to out: Id, Names, Created,
 * Architecture, Os, Size (sum of the layer tar sizes), Config (the config blob as stored),
 * Layers (DiffID, ChainID, Size, Blobs) and Manifests. KERR_NOTFOUND for an unknown id. */
int image_inspect_json(struct image_store *s, const char *id, struct kbuf *out, struct kerr **err);

struct image_summary {
        char id[KDIGEST_STRLEN];
        char **names;
        size_t n_names;
        char *created; /* RFC 3339 from the config, NULL when absent */
        uint64_t size; /* sum of the layer tar sizes */
};

/* One summary per image of the index, in index order; free with image_summaries_free. An
 * image whose config cannot be read is listed with what the index knows. */
int image_list_summaries(struct image_store *s, struct image_summary **ret, size_t *ret_n,
                         struct kerr **err);
void image_summaries_free(struct image_summary *v, size_t n);

/* "hello" -> "localhost/hello:latest", "docker.io/x" -> "docker.io/x:latest",
 * "busybox:1" -> "localhost/busybox:1"; a name@digest keeps its digest. Fails with
 * KERR_INVALID naming the bad part. Caller frees. */
char *image_normalize_name(const char *name, struct kerr **err);

/* ======================================================================================
 * Layer tar streams (tar-write.c, tar-apply.c) and compression (compress.c)
 * ====================================================================================== */

struct image_tar_opts {
        /* When >= 0, file times later than this are clamped to it (SOURCE_DATE_EPOCH). */
        int64_t clamp_mtime;
};

/* Writes the layer tar of dirfd's tree (overlay format: 0/0 character devices become
 * ".wh.NAME", opaque directories get ".wh..wh..opq") to sink: entries sorted by name, PAX
 * headers, owners, modes, mtimes, xattrs (security.capability, user.*), hard links as
 * links. The stream is a pure function of the tree. Returns the sha256 of the stream (the
 * diff_id) and its size. */
int image_layer_tar(int dirfd, const struct image_tar_opts *opts, image_sink_fn sink, void *ctx,
                    char ret_diff_id[KDIGEST_STRLEN], uint64_t *ret_size, struct kerr **err);

#define IMAGE_APPLY_OVERLAY (1u << 0) /* whiteouts become overlay whiteouts (layer dirs) */
/* without it, whiteouts delete what they name (flattening into a rootfs) */
#define IMAGE_APPLY_NO_OWNERS (1u << 1) /* keep files owned by the caller (no chown) */

/* Applies the layer tar read from fd (any compression libarchive reads) onto rootfd.
 * Entries that would reach outside the root ("..", absolute names, links that leave it)
 * fail with KERR_INVALID naming the entry; nothing is ever written outside rootfd. The
 * sha256 of the uncompressed stream is returned in ret_diff_id when not NULL. */
int image_layer_apply(int fd, int rootfd, unsigned flags, char ret_diff_id[KDIGEST_STRLEN],
                      struct kerr **err);

struct image_compressor;

/* Compresses into sink. gzip is made of independent fixed-size blocks compressed on
 * `threads` threads (0: one per CPU) and the output is the same whatever the thread count;
 * level 0 means the default. */
struct image_compressor *image_compressor_new(enum image_compression c, int level, unsigned threads,
                                              image_sink_fn sink, void *ctx, struct kerr **err);
int image_compressor_write(struct image_compressor *z, const void *p, size_t n, struct kerr **err);
/* An image_sink_fn over a compressor (ctx is the compressor). */
int image_compressor_sink(void *ctx, const void *p, size_t n, struct kerr **err);
int image_compressor_finish(struct image_compressor *z, struct kerr **err);
void image_compressor_free(struct image_compressor *z);

/* ======================================================================================
 * Configs and manifests (config.c, manifest.c)
 * ====================================================================================== */

struct image_kv {
        char *key;
        char *value;
};

struct image_history {
        char *created; /* RFC 3339 */
        char *created_by;
        char *author;
        char *comment;
        bool empty_layer;
};

struct image_healthcheck {
        char **test; /* ["NONE"], ["CMD", …] or ["CMD-SHELL", "…"] */
        size_t n_test;
        long long interval, timeout, start_period, start_interval; /* ns, 0 = unset */
        int retries;
};

/* An image config (OCI image-spec config, with docker's extra fields kept). Absent lists
 * are NULL with n = 0 and has_* false; an empty list that was present has has_* true. */
struct image_config {
        char *created;
        char *author;
        char *architecture, *os, *variant;
        char *user;
        char **env;
        size_t n_env;
        bool has_entrypoint, has_cmd, has_shell;
        char **entrypoint, **cmd, **shell;
        size_t n_entrypoint, n_cmd, n_shell;
        char *working_dir;
        char **exposed_ports; /* "80/tcp" */
        size_t n_exposed_ports;
        char **volumes;
        size_t n_volumes;
        struct image_kv *labels;
        size_t n_labels;
        char *stop_signal;
        struct image_healthcheck *healthcheck; /* NULL when none */
        char **onbuild;
        size_t n_onbuild;
        char **diff_ids;
        size_t n_diff_ids;
        struct image_history *history;
        size_t n_history;
        void *extra; /* unknown fields, kept on round trips (owned) */
};

struct image_config *image_config_new(void);
struct image_config *image_config_dup(const struct image_config *c);
void image_config_free(struct image_config *c);
/* Parses a config blob; name is used in errors (KERR_PARSE with line and column for bad
 * JSON or a duplicate key, KERR_INVALID naming the field for a wrong type). Fields kiln does
 * not model, and nulls and empty lists it cannot tell apart, are kept in extra. */
struct image_config *image_config_parse(const void *data, size_t len, const char *name,
                                        struct kerr **err);
/* Serialises with sorted keys and no white space, so equal configs give equal digests. */
int image_config_serialize(const struct image_config *c, struct kbuf *out, struct kerr **err);
/* Helpers that keep the arrays consistent. */
void image_config_set_env(struct image_config *c, const char *name, const char *value);
const char *image_config_get_env(const struct image_config *c, const char *name);
void image_config_set_label(struct image_config *c, const char *key, const char *value);
void image_config_add_history(struct image_config *c, const char *created, const char *created_by,
                              bool empty_layer);
void image_config_add_diff_id(struct image_config *c, const char *diff_id);

enum image_format {
        IMAGE_FORMAT_OCI = 0,
        IMAGE_FORMAT_DOCKER,
};

#define IMAGE_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define IMAGE_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define IMAGE_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define IMAGE_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define IMAGE_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMAGE_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

struct image_descriptor {
        char *media_type;
        char digest[KDIGEST_STRLEN];
        uint64_t size;
        struct image_kv *annotations;
        size_t n_annotations;
        char *platform_os, *platform_arch, *platform_variant; /* index entries */
};

void image_descriptor_release(struct image_descriptor *d);

struct image_manifest {
        char *media_type;
        struct image_descriptor config;
        struct image_descriptor *layers;
        size_t n_layers;
        struct image_kv *annotations;
        size_t n_annotations;
};

void image_manifest_free(struct image_manifest *m);
/* Serialises a manifest (schemaVersion 2) in the format's media types. */
int image_manifest_serialize(const struct image_manifest *m, struct kbuf *out, struct kerr **err);
/* Parses an OCI or docker schema 2 manifest (at most 4 MiB; schemaVersion 2; valid sha256
 * digests; non-negative sizes); an index or list, or an unknown manifest, config or layer
 * media type, fails with KERR_UNSUPPORTED naming it (use image_manifest_list_parse). */
struct image_manifest *image_manifest_parse(const void *data, size_t len, const char *name,
                                            struct kerr **err);
/* Parses an OCI index or docker manifest list into its descriptors. */
int image_manifest_list_parse(const void *data, size_t len, const char *name,
                              struct image_descriptor **ret, size_t *ret_n, struct kerr **err);

/* ======================================================================================
 * Transports (transport.c): oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
 * ====================================================================================== */

struct image_export_opts {
        enum image_format format;
        enum image_compression compression;
        int level;        /* 0: default */
        unsigned threads; /* 0: one per CPU */
        struct image_kv *annotations;
        size_t n_annotations;
};

/* Exports the image id (or a name image_index_resolve knows) to dest ("oci:…",
 * "oci-archive:…", "docker-archive:…"; the path ends at the first ':'); layers are compressed
 * once and the blobs kept in the store for the next export or push. An OCI layout that
 * exists keeps its other entries (one with the same tag is replaced); every file is written
 * to a temp file beside it ("NAME.tmp-PID-HEX") and renamed, and the temp files a killed
 * export left at dest (their pid gone) are removed first. The manifest digest is returned when
 * ret_manifest is not NULL; a docker archive carries no manifest, so it is then the digest of the
 * docker schema 2 manifest that describes its uncompressed layers (not stored). opts may be NULL
 * (OCI, gzip). */
int image_export(struct image_store *s, const char *id, const char *dest,
                 const struct image_export_opts *opts, char ret_manifest[KDIGEST_STRLEN],
                 struct kerr **err);
/* Imports from src (same transports) into the store; returns the image id (the config
 * digest). Archives are read once, every file through the blob writer (nothing else is
 * written); each blob is checked against its digest and each layer against its diff_id.
 * The image is named after TAG/REF when given (as podman names it), else, for an archive,
 * after the tag it carries. An index listing several images needs a TAG; a nested index
 * resolves to this platform. */
int image_import(struct image_store *s, const char *src, char ret_id[KDIGEST_STRLEN],
                 struct kerr **err);
/* True when ref starts with one of the transports above. */
bool image_is_transport(const char *ref);
