/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of image/ only; no other module includes this. */

#include "image/image.h"

/* ---- the store (store.c) ---- */

struct image_store {
        char *root;    /* absolute */
        int root_fd;   /* O_DIRECTORY */
        int blobs_fd;  /* blobs/sha256 */
        int layers_fd; /* layers */
        int tmp_fd;    /* tmp */
        int gc_fd;     /* root/gc.lock, flock'ed shared (a lease) or exclusive; -1: neither */
        bool gc_exclusive;
        int cache_fd;     /* cache, opened (and created) on first use; -1 until then */
        int statcache_fd; /* statcache, likewise */
        /* Chain ids (without "sha256:") seen in layers/ while this process held a shared
         * gc lease, under which no layer goes away: open addressing, power-of-two size. */
        char (*seen_layers)[65];
        size_t n_seen_layers, cap_seen_layers;
};

/* flock(LOCK_EX) on root/lock; returns the lock fd (close it to unlock) or -1. The lock is
 * not recursive: functions named *_locked expect the caller to hold it. */
int image_store_lock(struct image_store *s, struct kerr **err);
/* A fresh name "<pid>-<random hex><suffix>" for an entry of tmp/ (suffix may be ""). */
void image_store_tmp_name(char *buf, size_t size, const char *suffix);
/* The temp name for a file to be renamed to final (a name, no slash) in the same directory:
 * "<final>.tmp-<pid>-<random hex>", the form kfs_write_atomic uses too. */
void image_tmp_name_for(char *buf, size_t size, const char *final);
/* Removes the regular files of dirfd named "<final>.tmp-<pid>-<hex>" whose process is gone:
 * what a killed export left beside its destination. final NULL matches any blob name (64
 * hex digits). Nothing else is touched; failures are only logged. */
void image_sweep_tmp_files_at(int dirfd, const char *final);
/* The fd of the store's subdirectory name ("cache", "statcache") in *slot, made and opened
 * on first use. */
int image_store_subdir(struct image_store *s, const char *name, int *slot, struct kerr **err);
/* Writes data to a new file in tmp/ (synced when sync), then renames it to name in dirfd:
 * readers see the old file or the whole new one. dir names dirfd in errors. */
int image_store_put_file(struct image_store *s, int dirfd, const char *dir, const char *name,
                         const void *data, size_t len, bool sync, struct kerr **err);

/* ---- the step cache (cache.c) and the stat cache (statcache.c) ---- */

/* The chain ids that the cache entries leading to one of the images ids use. With remove,
 * the other entries (and the .inputs no kept entry names) are deleted. Called with the
 * lock held. *ret_layers is NULL-terminated (free with image_free_names). */
int image_cache_keep_locked(struct image_store *s, char *const *ids, size_t n, bool remove,
                            char ***ret_layers, size_t *ret_n, struct kerr **err);
/* Removes the stat cache tables whose context directory no longer exists. */
void image_statcache_prune(struct image_store *s);

/* ---- layers (layer.c) ---- */

/* As image_layer_add_blob, with the store lock held. */
int image_layer_add_blob_locked(struct image_store *s, const char *chain_id, const char *digest,
                                const char *media_type, uint64_t size, struct kerr **err);
/* Removes layers/<chain>: renamed into tmp/ first, so it disappears at once. */
int image_layer_remove_locked(struct image_store *s, const char *chain_id, struct kerr **err);

/* ---- blobs (blob.c) ---- */

/* Removes blobs/sha256/<hex>; a missing blob is fine. */
int image_blob_remove_locked(struct image_store *s, const char *digest, struct kerr **err);

struct json_t;

/* A JSON string of s; bytes that are not UTF-8 become U+FFFD (as Go's encoder does).
 * Never NULL (OOM aborts). */
struct json_t *image_json_string(const char *s);
/* image_config_parse of a parsed document, which the config takes (and keeps for the fields
 * it does not know): on failure it is released too. */
struct image_config *image_config_from_json(struct json_t *root, const char *name,
                                            struct kerr **err);

/* gzip layers are cut into independent deflate blocks of this many input bytes. */
#define IMAGE_GZIP_BLOCK (1024 * 1024)

/* The largest manifest, index or config kiln reads (as containers/image limits them). */
#define IMAGE_MANIFEST_MAX (4 * 1024 * 1024)

/* The compression (an enum image_compression) of a known layer media type, OCI or docker;
 * -1 for anything else. */
int image_layer_type_compression(const char *media_type);

/* The names in dirfd (without "." and ".."), sorted bytewise; path is used in errors.
 * Free with image_free_names. */
int image_list_dir(int dirfd, const char *path, char ***ret, size_t *ret_n, struct kerr **err);
void image_free_names(char **names, size_t n);
