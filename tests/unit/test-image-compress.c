/* SPDX-License-Identifier: Apache-2.0 */
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"

static int buf_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        (void)err;
        kbuf_append(ctx, p, n);
        return 0;
}

/* Compresses data in pieces of `chunk` bytes (0: one write). */
static bool squeeze(enum image_compression c, int level, unsigned threads, const void *data,
                    size_t len, size_t chunk, struct kbuf *out)
{
        _cleanup_kerr_ struct kerr *err = NULL;
        struct image_compressor *z = image_compressor_new(c, level, threads, buf_sink, out, &err);
        bool ok = z != NULL;

        if (chunk == 0)
                chunk = len ? len : 1;
        for (size_t off = 0; ok && off < len; off += chunk) {
                size_t k = len - off < chunk ? len - off : chunk;
                ok = image_compressor_write(z, (const char *)data + off, k, &err) == 0;
        }
        if (ok)
                ok = image_compressor_finish(z, &err) == 0;
        if (!ok)
                printf("# compress: %s\n", err && err->msg ? err->msg : "?");
        image_compressor_free(z);
        return ok;
}

static bool gunzip(const struct kbuf *in, struct kbuf *out)
{
        z_stream s;
        unsigned char buf[65536];
        int r;

        memset(&s, 0, sizeof(s));
        if (inflateInit2(&s, 16 + 15) != Z_OK)
                return false;
        s.next_in = (unsigned char *)in->data;
        s.avail_in = (uInt)in->len;
        do {
                s.next_out = buf;
                s.avail_out = sizeof(buf);
                r = inflate(&s, Z_NO_FLUSH);
                kbuf_append(out, buf, sizeof(buf) - s.avail_out);
        } while (r == Z_OK);
        inflateEnd(&s);
        return r == Z_STREAM_END && s.avail_in == 0;
}

static bool unzstd(const struct kbuf *in, struct kbuf *out)
{
        ZSTD_DCtx *d = ZSTD_createDCtx();
        ZSTD_inBuffer ib = {in->data, in->len, 0};
        unsigned char buf[65536];
        size_t r = 1;

        while (ib.pos < ib.size) {
                ZSTD_outBuffer ob = {buf, sizeof(buf), 0};
                r = ZSTD_decompressStream(d, &ob, &ib);
                if (ZSTD_isError(r))
                        break;
                kbuf_append(out, buf, ob.pos);
        }
        ZSTD_freeDCtx(d);
        return !ZSTD_isError(r) && r == 0;
}

/* Random bytes mixed with compressible text, from a fixed seed. */
static char *sample(size_t len)
{
        char *p = malloc(len ? len : 1);
        uint32_t x = 12345;

        for (size_t i = 0; i < len; i++) {
                x = x * 1103515245u + 12345u;
                if ((i / 4096) % 2)
                        p[i] = (char)(x >> 16);
                else
                        p[i] = "the quick brown fox jumps over the lazy dog\n"[i % 44];
        }
        return p;
}

static bool same(const struct kbuf *b, const void *p, size_t n)
{
        return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}

TEST(gzip_round_trip_and_thread_independence)
{
        static const size_t sizes[] = {
                0, 1, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 + 512 * 1024};

        for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
                size_t len = sizes[i];
                _cleanup_free_ char *data = sample(len);
                struct kbuf one = KBUF_INIT, two = KBUF_INIT, four = KBUF_INIT, plain = KBUF_INIT;

                CASE("gzip %zu bytes", len);
                CHECK(squeeze(IMAGE_COMPRESSION_GZIP, 0, 1, data, len, 0, &one));
                CHECK(squeeze(IMAGE_COMPRESSION_GZIP, 0, 2, data, len, 777, &two));
                CHECK(squeeze(IMAGE_COMPRESSION_GZIP, 0, 4, data, len, 65536, &four));
                CHECK(same(&two, one.data, one.len));
                CHECK(same(&four, one.data, one.len));
                CHECK(one.len >= 20);
                /* The fixed header: no mtime, no name, OS 255. */
                CHECK(one.len >= 10 &&
                      memcmp(one.data, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10) == 0);
                CHECK(gunzip(&one, &plain));
                CHECK(same(&plain, data, len));
                kbuf_release(&one);
                kbuf_release(&two);
                kbuf_release(&four);
                kbuf_release(&plain);
        }
}

TEST(gzip_decompresses_with_gzip_tool)
{
        size_t len = 3 * 1024 * 1024 + 123;
        _cleanup_free_ char *data = sample(len);
        struct kbuf gz = KBUF_INIT, back = KBUF_INIT;
        char in[] = "/tmp/kiln-test-gz-XXXXXX";
        _cleanup_close_ int fd = mkostemp(in, O_CLOEXEC);
        _cleanup_free_ char *cmd = NULL;
        FILE *p;
        char buf[65536];
        size_t k;

        CHECK(fd >= 0);
        CHECK(squeeze(IMAGE_COMPRESSION_GZIP, 9, 3, data, len, 100000, &gz));
        CHECK(kfs_write_all(fd, gz.data, gz.len) == 0);
        kbuf_printf(&back, "gzip -dc < %s", in);
        cmd = kbuf_detach(&back);
        p = popen(cmd, "re");
        CHECK(p != NULL);
        while (p && (k = fread(buf, 1, sizeof(buf), p)) > 0)
                kbuf_append(&back, buf, k);
        CHECK(p && pclose(p) == 0);
        CHECK(same(&back, data, len));
        unlink(in);
        kbuf_release(&gz);
        kbuf_release(&back);
}

TEST(gzip_levels)
{
        size_t len = 2 * 1024 * 1024;
        _cleanup_free_ char *data = sample(len);
        struct kbuf l1 = KBUF_INIT, l6 = KBUF_INIT, l0 = KBUF_INIT, l9 = KBUF_INIT;
        _cleanup_kerr_ struct kerr *err = NULL;
        struct kbuf sink = KBUF_INIT;

        CHECK(squeeze(IMAGE_COMPRESSION_GZIP, 1, 2, data, len, 0, &l1));
        CHECK(squeeze(IMAGE_COMPRESSION_GZIP, 6, 2, data, len, 0, &l6));
        CHECK(squeeze(IMAGE_COMPRESSION_GZIP, 0, 2, data, len, 0, &l0));
        CHECK(squeeze(IMAGE_COMPRESSION_GZIP, 9, 2, data, len, 0, &l9));
        /* 0 is the default, level 6. */
        CHECK(same(&l0, l6.data, l6.len));
        CHECK(l1.len != l6.len || memcmp(l1.data, l6.data, l1.len) != 0);
        CHECK(l9.len <= l6.len);
        CHECK_NULL(image_compressor_new(IMAGE_COMPRESSION_GZIP, 10, 1, buf_sink, &sink, &err));
        CHECK(err && err->code == KERR_INVALID);
        CHECK(err && strstr(err->msg, "level 10") != NULL);
        kerr_freep(&err);
        CHECK_NULL(image_compressor_new(IMAGE_COMPRESSION_GZIP, -1, 1, buf_sink, &sink, &err));
        CHECK(err && err->code == KERR_INVALID);
        kbuf_release(&l1);
        kbuf_release(&l6);
        kbuf_release(&l0);
        kbuf_release(&l9);
}

TEST(zstd_round_trip)
{
        static const size_t sizes[] = {0, 1, 1024 * 1024, 3 * 1024 * 1024 + 512 * 1024};

        for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
                size_t len = sizes[i];
                _cleanup_free_ char *data = sample(len);
                struct kbuf one = KBUF_INIT, four = KBUF_INIT, plain = KBUF_INIT;

                CASE("zstd %zu bytes", len);
                CHECK(squeeze(IMAGE_COMPRESSION_ZSTD, 0, 1, data, len, 0, &one));
                CHECK(squeeze(IMAGE_COMPRESSION_ZSTD, 0, 4, data, len, 4096, &four));
                CHECK(same(&four, one.data, one.len));
                CHECK(unzstd(&one, &plain));
                CHECK(same(&plain, data, len));
                kbuf_release(&one);
                kbuf_release(&four);
                kbuf_release(&plain);
        }
}

TEST(zstd_levels)
{
        size_t len = 1024 * 1024;
        _cleanup_free_ char *data = sample(len);
        struct kbuf l0 = KBUF_INIT, l3 = KBUF_INIT, l19 = KBUF_INIT, plain = KBUF_INIT;
        _cleanup_kerr_ struct kerr *err = NULL;
        struct kbuf sink = KBUF_INIT;

        CHECK(squeeze(IMAGE_COMPRESSION_ZSTD, 0, 2, data, len, 0, &l0));
        CHECK(squeeze(IMAGE_COMPRESSION_ZSTD, 3, 2, data, len, 0, &l3));
        CHECK(squeeze(IMAGE_COMPRESSION_ZSTD, 19, 2, data, len, 0, &l19));
        CHECK(same(&l0, l3.data, l3.len));
        CHECK(l19.len < l3.len);
        CHECK(unzstd(&l19, &plain));
        CHECK(same(&plain, data, len));
        CHECK_NULL(image_compressor_new(IMAGE_COMPRESSION_ZSTD, 99, 1, buf_sink, &sink, &err));
        CHECK(err && err->code == KERR_INVALID);
        kbuf_release(&l0);
        kbuf_release(&l3);
        kbuf_release(&l19);
        kbuf_release(&plain);
}

TEST(none_passes_through)
{
        const char data[] = "plain bytes";
        struct kbuf out = KBUF_INIT;

        CHECK(squeeze(IMAGE_COMPRESSION_NONE, 0, 0, data, sizeof(data), 3, &out));
        CHECK(same(&out, data, sizeof(data)));
        kbuf_release(&out);
}

static int failing_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        (void)p;
        (void)n;
        (void)ctx;
        return kerr_set(err, ENOSPC, KERR_IO, "write blob");
}

TEST(sink_errors_propagate)
{
        size_t len = 5 * 1024 * 1024;
        _cleanup_free_ char *data = sample(len);
        _cleanup_kerr_ struct kerr *err = NULL;
        struct image_compressor *z =
                image_compressor_new(IMAGE_COMPRESSION_GZIP, 0, 2, failing_sink, NULL, &err);

        /* The header write fails at once. */
        CHECK_NULL(z);
        CHECK(err && err->errnum == ENOSPC);
        kerr_freep(&err);
        z = image_compressor_new(IMAGE_COMPRESSION_NONE, 0, 2, failing_sink, NULL, &err);
        CHECK(z != NULL);
        CHECK(z && image_compressor_write(z, data, len, &err) < 0);
        CHECK(err && err->errnum == ENOSPC);
        kerr_freep(&err);
        CHECK(z && image_compressor_finish(z, &err) < 0);
        image_compressor_free(z);
}
