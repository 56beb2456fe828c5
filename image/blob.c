/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/banned.h"

struct image_blob_writer {
        struct image_store *s;
        int fd;
        char name[64]; /* in tmp/ */
        struct kdigest *d;
        uint64_t size;
        bool done; /* committed or failed: the temp file is gone */
};

/* Digests name files in blobs/, so anything but "sha256:" + 64 hex must never reach a path. */
static int check_digest(const char *digest, struct kerr **err)
{
        if (!kdigest_valid(digest))
                return kerr_set(err, 0, KERR_INVALID, "invalid digest '%s'", digest ? digest : "");
        return 0;
}

struct image_blob_writer *image_blob_writer_new(struct image_store *s, struct kerr **err)
{
        struct image_blob_writer *w = kcalloc(1, sizeof(*w));

        w->s = s;
        w->d = kdigest_new(err);
        if (!w->d) {
                free(w);
                return NULL;
        }
        for (int tries = 0;; tries++) {
                image_store_tmp_name(w->name, sizeof(w->name), ".blob");
                w->fd = openat(s->tmp_fd, w->name,
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (w->fd >= 0)
                        break;
                if (errno != EEXIST || tries > 100) {
                        kerr_set(err, errno, KERR_IO, "create a blob in '%s/tmp'", s->root);
                        kdigest_free(w->d);
                        free(w);
                        return NULL;
                }
        }
        return w;
}

int image_blob_writer_write(struct image_blob_writer *w, const void *p, size_t n, struct kerr **err)
{
        if (w->done || w->fd < 0)
                return kerr_set(err, 0, KERR_INTERNAL, "write to a finished blob writer");
        if (kfs_write_all(w->fd, p, n) < 0)
                return kerr_set(err, errno, KERR_IO, "write '%s/tmp/%s'", w->s->root, w->name);
        kdigest_update(w->d, p, n);
        w->size += n;
        return 0;
}

int image_blob_writer_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        return image_blob_writer_write(ctx, p, n, err);
}

static void writer_discard(struct image_blob_writer *w)
{
        if (w->fd >= 0)
                kfs_close(w->fd);
        w->fd = -1;
        if (!w->done)
                unlinkat(w->s->tmp_fd, w->name, 0);
        w->done = true;
}

int image_blob_writer_commit(struct image_blob_writer *w, const char *expected,
                             char ret_digest[KDIGEST_STRLEN], uint64_t *ret_size, struct kerr **err)
{
        struct image_store *s = w->s;
        char digest[KDIGEST_STRLEN];
        struct stat st;

        if (w->done || w->fd < 0)
                return kerr_set(err, 0, KERR_INTERNAL, "commit a finished blob writer");
        if (expected && check_digest(expected, err) < 0) {
                writer_discard(w);
                return -1;
        }
        if (kdigest_final(w->d, digest, err) < 0) {
                writer_discard(w);
                return -1;
        }
        if (expected && strcmp(expected, digest) != 0) {
                writer_discard(w);
                return kerr_set(err, 0, KERR_DIGEST, "digest mismatch: expected %s, got %s",
                                expected, digest);
        }
        if (fsync(w->fd) < 0) {
                int e = errno;
                writer_discard(w);
                return kerr_set(err, e, KERR_IO, "sync blob %s", digest);
        }
        kfs_close(w->fd);
        w->fd = -1;
        if (fstatat(s->blobs_fd, digest + 7, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode)) {
                /* Already stored: content addressing makes the copies identical. */
                writer_discard(w);
        } else {
                if (renameat(s->tmp_fd, w->name, s->blobs_fd, digest + 7) < 0) {
                        int e = errno;
                        writer_discard(w);
                        return kerr_set(err, e, KERR_IO, "store blob %s", digest);
                }
                w->done = true;
                if (fsync(s->blobs_fd) < 0)
                        return kerr_set(err, errno, KERR_IO, "sync '%s/blobs/sha256'", s->root);
        }
        if (ret_digest)
                memcpy(ret_digest, digest, KDIGEST_STRLEN);
        if (ret_size)
                *ret_size = w->size;
        return 0;
}

void image_blob_writer_free(struct image_blob_writer *w)
{
        if (!w)
                return;
        writer_discard(w);
        kdigest_free(w->d);
        free(w);
}

DEFINE_CLEANUP(struct image_blob_writer *, image_blob_writer_free)

int image_blob_put(struct image_store *s, const void *data, size_t len,
                   char ret_digest[KDIGEST_STRLEN], struct kerr **err)
{
        _cleanup_(image_blob_writer_freep) struct image_blob_writer *w =
                image_blob_writer_new(s, err);

        if (!w)
                return -1;
        if (image_blob_writer_write(w, data, len, err) < 0)
                return -1;
        return image_blob_writer_commit(w, NULL, ret_digest, NULL, err);
}

bool image_blob_exists(struct image_store *s, const char *digest)
{
        struct stat st;

        if (!kdigest_valid(digest))
                return false;
        return fstatat(s->blobs_fd, digest + 7, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISREG(st.st_mode);
}

int image_blob_open(struct image_store *s, const char *digest, struct kerr **err)
{
        int fd;

        if (check_digest(digest, err) < 0)
                return -1;
        fd = openat(s->blobs_fd, digest + 7, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return kerr_set(err, 0, KERR_NOTFOUND, "blob %s not found", digest);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open blob %s", digest);
        return fd;
}

int image_blob_read(struct image_store *s, const char *digest, size_t max, struct kbuf *out,
                    struct kerr **err)
{
        _cleanup_close_ int fd = image_blob_open(s, digest, err);
        size_t start = out->len;
        char got[KDIGEST_STRLEN];

        if (fd < 0)
                return -1;
        if (kfs_read_fd(fd, digest, max, out, err) < 0) {
                kbuf_truncate(out, start);
                return -1;
        }
        if (kdigest_buf(out->data + start, out->len - start, got, err) < 0) {
                kbuf_truncate(out, start);
                return -1;
        }
        if (strcmp(got, digest) != 0) {
                kbuf_truncate(out, start);
                return kerr_set(err, 0, KERR_DIGEST, "blob %s is corrupt: its content is %s",
                                digest, got);
        }
        return 0;
}

int image_blob_size(struct image_store *s, const char *digest, uint64_t *ret_size,
                    struct kerr **err)
{
        struct stat st;

        if (check_digest(digest, err) < 0)
                return -1;
        if (fstatat(s->blobs_fd, digest + 7, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return kerr_set(err, 0, KERR_NOTFOUND, "blob %s not found", digest);
                return kerr_set(err, errno, KERR_IO, "stat blob %s", digest);
        }
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

int image_blob_remove_locked(struct image_store *s, const char *digest, struct kerr **err)
{
        if (check_digest(digest, err) < 0)
                return -1;
        if (unlinkat(s->blobs_fd, digest + 7, 0) < 0 && errno != ENOENT)
                return kerr_set(err, errno, KERR_IO, "remove blob %s", digest);
        return 0;
}
