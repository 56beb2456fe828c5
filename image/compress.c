/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/banned.h"

/* gzip is written as independent blocks of IMAGE_GZIP_BLOCK input bytes, each a raw
 * deflate stream ended by Z_SYNC_FLUSH (so it stops on a byte boundary and the blocks can
 * be concatenated), followed by one empty final block. A block never depends on another
 * (no shared dictionary, unlike pigz), so the output depends only on the input and the
 * level, never on how many threads compressed it. At most 2 * threads blocks are in
 * memory at once. */

enum { GZ_FREE = 0, GZ_FILLING, GZ_READY, GZ_BUSY, GZ_DONE };

struct gz_block {
        int state;
        unsigned char *in;
        size_t in_len;
        unsigned char *out;
        size_t out_len, out_cap;
        uLong crc;
        int zret; /* Z_OK, or what deflate failed with */
};

struct image_compressor {
        enum image_compression c;
        int level;
        image_sink_fn sink;
        void *ctx;
        bool failed, finished;

        /* gzip */
        pthread_t *tids;
        unsigned n_tids;
        pthread_mutex_t mu;
        pthread_cond_t cv_work, cv_done;
        bool sync_init;
        bool stop;
        bool filling; /* the slot at next_fill holds a partial block (main thread only) */
        struct gz_block *ring;
        size_t ring_cap;
        uint64_t next_fill, next_work, next_emit; /* block sequence numbers */
        uLong crc;
        uint32_t isize;

        /* zstd */
        ZSTD_CCtx *zc;
        unsigned char *zout;
        size_t zout_cap;
};

/* Level 6 is what gzip(1), pigz and zlib's Z_DEFAULT_COMPRESSION use. */
#define GZIP_DEFAULT_LEVEL 6
#define ZSTD_DEFAULT_LEVEL 3

static int emit(struct image_compressor *z, const void *p, size_t n, struct kerr **err)
{
        if (n == 0)
                return 0;
        if (z->sink(z->ctx, p, n, err) < 0) {
                z->failed = true;
                return -1;
        }
        return 0;
}

/* ---- gzip ---- */

static void *gz_worker(void *arg)
{
        struct image_compressor *z = arg;
        z_stream s;
        int zinit;

        memset(&s, 0, sizeof(s));
        zinit = deflateInit2(&s, z->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        for (;;) {
                struct gz_block *b;

                pthread_mutex_lock(&z->mu);
                while (!z->stop && (z->next_work == z->next_fill ||
                                    z->ring[z->next_work % z->ring_cap].state != GZ_READY))
                        pthread_cond_wait(&z->cv_work, &z->mu);
                if (z->stop) {
                        pthread_mutex_unlock(&z->mu);
                        break;
                }
                b = &z->ring[z->next_work % z->ring_cap];
                b->state = GZ_BUSY;
                z->next_work++;
                pthread_mutex_unlock(&z->mu);

                b->crc = crc32(0L, b->in, (uInt)b->in_len);
                b->zret = zinit;
                if (zinit == Z_OK) {
                        deflateReset(&s);
                        s.next_in = b->in;
                        s.avail_in = (uInt)b->in_len;
                        s.next_out = b->out;
                        s.avail_out = (uInt)b->out_cap;
                        b->zret = deflate(&s, Z_SYNC_FLUSH);
                        /* out_cap is deflateBound + room for the flush marker, so one
                         * call always consumes the whole block. */
                        if (b->zret == Z_OK && (s.avail_in != 0 || s.avail_out == 0))
                                b->zret = Z_BUF_ERROR;
                        b->out_len = b->out_cap - s.avail_out;
                }

                pthread_mutex_lock(&z->mu);
                b->state = GZ_DONE;
                pthread_cond_broadcast(&z->cv_done);
                pthread_mutex_unlock(&z->mu);
        }
        if (zinit == Z_OK)
                deflateEnd(&s);
        return NULL;
}

/* Waits for the oldest block in flight, writes it out and frees its slot. */
static int gz_emit_head(struct image_compressor *z, struct kerr **err)
{
        struct gz_block *b = &z->ring[z->next_emit % z->ring_cap];

        pthread_mutex_lock(&z->mu);
        while (b->state != GZ_DONE)
                pthread_cond_wait(&z->cv_done, &z->mu);
        pthread_mutex_unlock(&z->mu);

        if (b->zret != Z_OK) {
                z->failed = true;
                return kerr_set(err, 0, KERR_INTERNAL, "gzip: deflate failed (zlib error %d)",
                                b->zret);
        }
        z->crc = crc32_combine(z->crc, b->crc, (z_off_t)b->in_len);
        z->isize += (uint32_t)b->in_len;
        if (emit(z, b->out, b->out_len, err) < 0)
                return -1;
        b->in_len = 0;
        b->out_len = 0;
        pthread_mutex_lock(&z->mu);
        b->state = GZ_FREE;
        pthread_mutex_unlock(&z->mu);
        z->next_emit++;
        return 0;
}

/* Hands the block being filled to the workers. */
static void gz_submit(struct image_compressor *z)
{
        struct gz_block *b = &z->ring[z->next_fill % z->ring_cap];

        z->filling = false;
        pthread_mutex_lock(&z->mu);
        b->state = GZ_READY;
        z->next_fill++;
        pthread_cond_broadcast(&z->cv_work);
        pthread_mutex_unlock(&z->mu);
}

static int gz_write(struct image_compressor *z, const unsigned char *p, size_t n, struct kerr **err)
{
        while (n > 0) {
                struct gz_block *b = &z->ring[z->next_fill % z->ring_cap];
                size_t k;

                if (!z->filling) {
                        /* The slot is free once the block that used it was written. */
                        while (z->next_fill - z->next_emit >= z->ring_cap)
                                if (gz_emit_head(z, err) < 0)
                                        return -1;
                        b->state = GZ_FILLING;
                        b->in_len = 0;
                        z->filling = true;
                }
                k = IMAGE_GZIP_BLOCK - b->in_len;
                if (k > n)
                        k = n;
                memcpy(b->in + b->in_len, p, k);
                b->in_len += k;
                p += k;
                n -= k;
                if (b->in_len == IMAGE_GZIP_BLOCK)
                        gz_submit(z);
        }
        return 0;
}

static int gz_finish(struct image_compressor *z, struct kerr **err)
{
        struct gz_block *b = &z->ring[z->next_fill % z->ring_cap];
        /* An empty final block: BFINAL=1, fixed Huffman, end-of-block code. This is what
         * deflate(Z_FINISH) emits on no input after a sync flush. */
        static const unsigned char last[2] = {0x03, 0x00};
        unsigned char trailer[8];

        if (z->filling && b->in_len > 0)
                gz_submit(z);
        while (z->next_emit < z->next_fill)
                if (gz_emit_head(z, err) < 0)
                        return -1;
        if (emit(z, last, sizeof(last), err) < 0)
                return -1;
        for (int i = 0; i < 4; i++) {
                trailer[i] = (unsigned char)(z->crc >> (8 * i));
                trailer[4 + i] = (unsigned char)(z->isize >> (8 * i));
        }
        return emit(z, trailer, sizeof(trailer), err);
}

static void gz_stop(struct image_compressor *z)
{
        if (!z->sync_init)
                return;
        pthread_mutex_lock(&z->mu);
        z->stop = true;
        pthread_cond_broadcast(&z->cv_work);
        pthread_mutex_unlock(&z->mu);
        for (unsigned i = 0; i < z->n_tids; i++)
                pthread_join(z->tids[i], NULL);
        z->n_tids = 0;
}

static int gz_init(struct image_compressor *z, unsigned threads, struct kerr **err)
{
        /* mtime 0, no name, XFL 0 and OS 255 ("unknown", as Go's compress/gzip writes):
         * nothing about the machine or the time leaks into the blob. */
        static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
        int r;

        if (z->level < 1 || z->level > 9)
                return kerr_set(err, 0, KERR_INVALID, "gzip level %d is out of range 1-9",
                                z->level);
        z->ring_cap = 2 * (size_t)threads;
        z->ring = kcalloc(z->ring_cap, sizeof(*z->ring));
        for (size_t i = 0; i < z->ring_cap; i++) {
                z->ring[i].in = malloc(IMAGE_GZIP_BLOCK);
                z->ring[i].out_cap = deflateBound(NULL, IMAGE_GZIP_BLOCK) + 64;
                z->ring[i].out = malloc(z->ring[i].out_cap);
                if (!z->ring[i].in || !z->ring[i].out)
                        abort();
        }
        pthread_mutex_init(&z->mu, NULL);
        pthread_cond_init(&z->cv_work, NULL);
        pthread_cond_init(&z->cv_done, NULL);
        z->sync_init = true;
        z->crc = crc32(0L, Z_NULL, 0);
        z->tids = kcalloc(threads, sizeof(*z->tids));
        for (unsigned i = 0; i < threads; i++) {
                r = pthread_create(&z->tids[i], NULL, gz_worker, z);
                if (r != 0) {
                        gz_stop(z);
                        return kerr_set(err, r, KERR_IO, "gzip: start a compression thread");
                }
                z->n_tids++;
        }
        return emit(z, header, sizeof(header), err);
}

/* ---- zstd ---- */

static int zs_init(struct image_compressor *z, struct kerr **err)
{
        size_t r;

        if (z->level < 1 || z->level > ZSTD_maxCLevel())
                return kerr_set(err, 0, KERR_INVALID, "zstd level %d is out of range 1-%d",
                                z->level, ZSTD_maxCLevel());
        z->zc = ZSTD_createCCtx();
        if (!z->zc)
                abort();
        r = ZSTD_CCtx_setParameter(z->zc, ZSTD_c_compressionLevel, z->level);
        if (!ZSTD_isError(r))
                r = ZSTD_CCtx_setParameter(z->zc, ZSTD_c_checksumFlag, 1);
        if (ZSTD_isError(r))
                return kerr_from_zstd(err, r, "zstd: set parameters");
        z->zout_cap = ZSTD_CStreamOutSize();
        z->zout = malloc(z->zout_cap);
        if (!z->zout)
                abort();
        return 0;
}

/* zstd's frames are the same for any nbWorkers >= 1 (jobs are cut by size, not by
 * worker), but nbWorkers 0 (single-threaded, in the caller) cuts differently. So
 * workers are always >= 1; a libzstd built without threads gives the 0 form everywhere,
 * which is also consistent. */
static void zs_set_workers(struct image_compressor *z, unsigned threads)
{
        ZSTD_bounds b = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers);

        if (ZSTD_isError(b.error) || b.upperBound < 1)
                return;
        if ((int)threads > b.upperBound)
                threads = (unsigned)b.upperBound;
        (void)ZSTD_CCtx_setParameter(z->zc, ZSTD_c_nbWorkers, (int)threads);
}

static int zs_stream(struct image_compressor *z, const void *p, size_t n, ZSTD_EndDirective end,
                     struct kerr **err)
{
        ZSTD_inBuffer in = {p, n, 0};

        for (;;) {
                ZSTD_outBuffer out = {z->zout, z->zout_cap, 0};
                size_t r = ZSTD_compressStream2(z->zc, &out, &in, end);

                if (ZSTD_isError(r)) {
                        z->failed = true;
                        return kerr_from_zstd(err, r, "zstd: compress");
                }
                if (emit(z, z->zout, out.pos, err) < 0)
                        return -1;
                if (end == ZSTD_e_continue ? in.pos == in.size : r == 0)
                        return 0;
        }
}

/* ---- the API ---- */

struct image_compressor *image_compressor_new(enum image_compression c, int level, unsigned threads,
                                              image_sink_fn sink, void *ctx, struct kerr **err)
{
        struct image_compressor *z = kcalloc(1, sizeof(*z));
        int r = 0;

        z->c = c;
        z->sink = sink;
        z->ctx = ctx;
        if (threads == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                threads = n > 0 ? (unsigned)n : 1;
        }
        if (threads > 256)
                threads = 256;
        switch (c) {
        case IMAGE_COMPRESSION_NONE:
                break;
        case IMAGE_COMPRESSION_GZIP:
                z->level = level ? level : GZIP_DEFAULT_LEVEL;
                r = gz_init(z, threads, err);
                break;
        case IMAGE_COMPRESSION_ZSTD:
                z->level = level ? level : ZSTD_DEFAULT_LEVEL;
                r = zs_init(z, err);
                if (r == 0)
                        zs_set_workers(z, threads);
                break;
        default:
                r = kerr_set(err, 0, KERR_INVALID, "unknown compression %d", (int)c);
                break;
        }
        if (r < 0) {
                image_compressor_free(z);
                return NULL;
        }
        return z;
}

int image_compressor_write(struct image_compressor *z, const void *p, size_t n, struct kerr **err)
{
        if (z->failed || z->finished)
                return kerr_set(err, 0, KERR_INTERNAL, "compressor written after %s",
                                z->failed ? "a failure" : "finish");
        if (n == 0)
                return 0;
        switch (z->c) {
        case IMAGE_COMPRESSION_GZIP:
                return gz_write(z, p, n, err);
        case IMAGE_COMPRESSION_ZSTD:
                return zs_stream(z, p, n, ZSTD_e_continue, err);
        default:
                return emit(z, p, n, err);
        }
}

int image_compressor_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        return image_compressor_write(ctx, p, n, err);
}

int image_compressor_finish(struct image_compressor *z, struct kerr **err)
{
        int r = 0;

        if (z->failed || z->finished)
                return kerr_set(err, 0, KERR_INTERNAL, "compressor finished after %s",
                                z->failed ? "a failure" : "finish");
        switch (z->c) {
        case IMAGE_COMPRESSION_GZIP:
                r = gz_finish(z, err);
                break;
        case IMAGE_COMPRESSION_ZSTD:
                r = zs_stream(z, NULL, 0, ZSTD_e_end, err);
                break;
        default:
                break;
        }
        if (r < 0)
                z->failed = true;
        else
                z->finished = true;
        return r;
}

void image_compressor_free(struct image_compressor *z)
{
        if (!z)
                return;
        gz_stop(z);
        if (z->sync_init) {
                pthread_mutex_destroy(&z->mu);
                pthread_cond_destroy(&z->cv_work);
                pthread_cond_destroy(&z->cv_done);
        }
        for (size_t i = 0; i < z->ring_cap; i++) {
                free(z->ring[i].in);
                free(z->ring[i].out);
        }
        free(z->ring);
        free(z->tids);
        ZSTD_freeCCtx(z->zc);
        free(z->zout);
        free(z);
}
