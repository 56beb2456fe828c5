/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/fs.h>

#include "common/buf.h"
#include "common/err.h"
#include "tap.h"

static char root[64];

static struct image_store *fresh_store(void)
{
        struct kerr *err = NULL;
        struct image_store *s;

        snprintf(root, sizeof(root), "/tmp/kiln-test-store-XXXXXX");
        if (!mkdtemp(root))
                abort();
        s = image_store_open(root, 0, &err);
        if (!s) {
                fprintf(stderr, "# %s\n", err->msg);
                abort();
        }
        return s;
}

static void drop_store(struct image_store *s)
{
        image_store_free(s);
        if (image_store_rmtree(root, NULL) < 0)
                abort();
}

/* root/dir/name exists (name may be "") */
static bool path_exists(const char *dir, const char *name)
{
        char p[512];
        struct stat st;

        snprintf(p, sizeof(p), "%s/%s/%s", root, dir, name);
        return lstat(p, &st) == 0;
}

static size_t count_dir(const char *sub)
{
        char cmd[256];
        FILE *f;
        size_t n = 0;
        int c;

        snprintf(cmd, sizeof(cmd), "ls -A '%s/%s'", root, sub);
        f = popen(cmd, "re");
        if (!f)
                abort();
        while ((c = fgetc(f)) != EOF)
                if (c == '\n')
                        n++;
        pclose(f);
        return n;
}

static void digest_of(const char *s, char out[KDIGEST_STRLEN])
{
        if (kdigest_buf(s, strlen(s), out, NULL) < 0)
                abort();
}

TEST(store_layout)
{
        struct image_store *s = fresh_store();
        struct stat st;

        CHECK(path_exists("blobs/sha256", ""));
        CHECK(path_exists("layers", ""));
        CHECK(path_exists("tmp", ""));
        CHECK(fstat(image_store_root_fd(s), &st) == 0 && S_ISDIR(st.st_mode));
        CHECK(fcntl(image_store_root_fd(s), F_GETFD) & FD_CLOEXEC);
        CHECK_STREQ(image_store_root(s), root);
        drop_store(s);
}

TEST(store_tmp_spreads_work_dirs)
{
        struct image_store *s = fresh_store();
        char p[128];
        int attr = 0;

        snprintf(p, sizeof(p), "%s/tmp", root);
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        if (ioctl(fd, FS_IOC_GETFLAGS, &attr) < 0) {
                close(fd);
                drop_store(s);
                SKIP("this file system has no inode flags");
        }
        CASE("tmp/ has the top-directory flag, so work dirs go where there is room");
        CHECK(attr & FS_TOPDIR_FL);
        close(fd);
        drop_store(s);
}

TEST(store_default_root)
{
        char *r = image_store_default_root();

        CHECK(r && r[0] == '/');
        if (geteuid() == 0)
                CHECK_STREQ(r, "/var/lib/kiln");
        free(r);
}

TEST(blob_put_read_and_idempotence)
{
        struct image_store *s = fresh_store();
        char d[KDIGEST_STRLEN], d2[KDIGEST_STRLEN];
        struct kbuf b = KBUF_INIT;
        uint64_t size = 0;

        CHECK(image_blob_put(s, "a", 1, d, NULL) == 0);
        CHECK_STREQ(d, "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
        CHECK(image_blob_exists(s, d));
        CHECK(image_blob_size(s, d, &size, NULL) == 0);
        CHECK_INTEQ(size, 1);
        CHECK(image_blob_read(s, d, 0, &b, NULL) == 0);
        CHECK_INTEQ(b.len, 1);
        CHECK(b.len == 1 && b.data[0] == 'a');
        kbuf_release(&b);
        CHECK(image_blob_put(s, "a", 1, d2, NULL) == 0);
        CHECK_STREQ(d2, d);
        CHECK_INTEQ(count_dir("blobs/sha256"), 1);
        CHECK_INTEQ(count_dir("tmp"), 0);
        drop_store(s);
}

TEST(blob_writer_streams_and_checks_expected)
{
        struct image_store *s = fresh_store();
        char want[KDIGEST_STRLEN], got[KDIGEST_STRLEN];
        struct image_blob_writer *w;
        struct kerr *err = NULL;
        uint64_t size = 0;

        digest_of("hello world", want);
        w = image_blob_writer_new(s, NULL);
        CHECK(w != NULL);
        CHECK(image_blob_writer_sink(w, "hello ", 6, NULL) == 0);
        CHECK(image_blob_writer_write(w, "world", 5, NULL) == 0);
        CHECK(image_blob_writer_commit(w, want, got, &size, NULL) == 0);
        CHECK_STREQ(got, want);
        CHECK_INTEQ(size, 11);
        image_blob_writer_free(w);

        /* a mismatch: KERR_DIGEST naming both, and nothing in blobs/ or tmp/ */
        w = image_blob_writer_new(s, NULL);
        CHECK(image_blob_writer_write(w, "hello there", 11, NULL) == 0);
        CHECK(image_blob_writer_commit(w, want, got, &size, &err) < 0);
        CHECK(err && err->code == KERR_DIGEST);
        CHECK(err && strstr(err->msg, want) != NULL);
        digest_of("hello there", got);
        CHECK(err && strstr(err->msg, got) != NULL);
        kerr_free(err);
        err = NULL;
        image_blob_writer_free(w);
        CHECK(!image_blob_exists(s, got));
        CHECK_INTEQ(count_dir("blobs/sha256"), 1);
        CHECK_INTEQ(count_dir("tmp"), 0);

        /* an abandoned writer leaves nothing */
        w = image_blob_writer_new(s, NULL);
        CHECK(image_blob_writer_write(w, "x", 1, NULL) == 0);
        image_blob_writer_free(w);
        CHECK_INTEQ(count_dir("tmp"), 0);
        drop_store(s);
}

TEST(blob_read_detects_corruption)
{
        struct image_store *s = fresh_store();
        char d[KDIGEST_STRLEN], p[256];
        struct kbuf b = KBUF_INIT;
        struct kerr *err = NULL;
        int fd;

        CHECK(image_blob_put(s, "good", 4, d, NULL) == 0);
        snprintf(p, sizeof(p), "%s/blobs/sha256/%s", root, d + 7);
        fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
        CHECK(fd >= 0 && write(fd, "evil", 4) == 4);
        close(fd);
        CHECK(image_blob_read(s, d, 0, &b, &err) < 0);
        CHECK(err && err->code == KERR_DIGEST && strstr(err->msg, d) != NULL);
        CHECK_INTEQ(b.len, 0);
        kerr_free(err);
        kbuf_release(&b);
        drop_store(s);
}

TEST(blob_digest_validation)
{
        struct image_store *s = fresh_store();
        static const char *bad[] = {
                "sha256:../x",
                "sha256:../../../../etc/passwd",
                "sha256:",
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                "sha256:CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB",
                "",
        };
        struct kbuf b = KBUF_INIT;
        struct kerr *err = NULL;
        uint64_t size;
        char d[KDIGEST_STRLEN];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                CASE("digest '%s' is refused", bad[i]);
                CHECK(!image_blob_exists(s, bad[i]));
                CHECK(image_blob_open(s, bad[i], &err) < 0);
                CHECK(err && err->code == KERR_INVALID);
                kerr_free(err);
                err = NULL;
                CHECK(image_blob_read(s, bad[i], 0, &b, &err) < 0);
                CHECK(err && err->code == KERR_INVALID);
                kerr_free(err);
                err = NULL;
                CHECK(image_blob_size(s, bad[i], &size, NULL) < 0);
                CHECK(!image_layer_exists(s, bad[i]));
                CHECK(image_layer_open_diff(s, bad[i], NULL) < 0);
                CHECK_NULL(image_layer_diff_path(s, bad[i]));
        }
        CASE("a missing blob is KERR_NOTFOUND");
        digest_of("nothing", d);
        CHECK(image_blob_open(s, d, &err) < 0);
        CHECK(err && err->code == KERR_NOTFOUND);
        kerr_free(err);
        kbuf_release(&b);
        drop_store(s);
}

/* Vectors computed with sha256sum:
 *   printf 'layer-one' | sha256sum, printf 'layer-two' | sha256sum
 *   printf '%s %s' sha256:0139… sha256:4381… | sha256sum */
#define D1 "sha256:0139c1c77468f75e6763a4612262743bd47a36b26cb2863d662756b3377bb029"
#define D2 "sha256:4381142a944dccfafc4428f3b1d4469713054b918f3c97f2e7f1cac2c25e0cc4"
#define C12 "sha256:aff998a96a2f925843dfb74108505e06ba8a26c9ff277ee74ede14a9bd9090b0"

TEST(chain_ids)
{
        char c[KDIGEST_STRLEN], d[KDIGEST_STRLEN];

        digest_of("layer-one", d);
        CHECK_STREQ(d, D1);
        digest_of("layer-two", d);
        CHECK_STREQ(d, D2);
        CHECK(image_chain_id(NULL, D1, c, NULL) == 0);
        CHECK_STREQ(c, D1);
        CHECK(image_chain_id("", D1, c, NULL) == 0);
        CHECK_STREQ(c, D1);
        CHECK(image_chain_id(D1, D2, c, NULL) == 0);
        CHECK_STREQ(c, C12);
        CHECK(image_chain_id(D1, "sha256:../x", c, NULL) < 0);
        CHECK(image_chain_id("bogus", D2, c, NULL) < 0);
}

TEST(layer_media_types)
{
        CHECK_STREQ(image_layer_media_type(IMAGE_COMPRESSION_NONE, false),
                    "application/vnd.oci.image.layer.v1.tar");
        CHECK_STREQ(image_layer_media_type(IMAGE_COMPRESSION_GZIP, false),
                    "application/vnd.oci.image.layer.v1.tar+gzip");
        CHECK_STREQ(image_layer_media_type(IMAGE_COMPRESSION_ZSTD, false),
                    "application/vnd.oci.image.layer.v1.tar+zstd");
        CHECK_STREQ(image_layer_media_type(IMAGE_COMPRESSION_NONE, true),
                    "application/vnd.docker.image.rootfs.diff.tar");
        CHECK_STREQ(image_layer_media_type(IMAGE_COMPRESSION_GZIP, true),
                    "application/vnd.docker.image.rootfs.diff.tar.gzip");
        CHECK_STREQ(image_layer_media_type(IMAGE_COMPRESSION_ZSTD, true),
                    "application/vnd.oci.image.layer.v1.tar+zstd");
}

/* A layer dir under tmp/ holding one file. */
static char *layer_dir(struct image_store *s, const char *content)
{
        char *dir = NULL, p[512];
        int fd;

        if (image_store_mkdtemp(s, &dir, NULL) < 0)
                abort();
        snprintf(p, sizeof(p), "%s/file", dir);
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content))
                abort();
        close(fd);
        return dir;
}

TEST(layer_commit_get_add_blob)
{
        struct image_store *s = fresh_store();
        char c1[KDIGEST_STRLEN], c2[KDIGEST_STRLEN], again[KDIGEST_STRLEN];
        char gz[KDIGEST_STRLEN], zs[KDIGEST_STRLEN];
        struct image_layer l = {0};
        struct kerr *err = NULL;
        char *dir, *path, buf[16] = "";
        int fd, ffd;

        dir = layer_dir(s, "one");
        CHECK(image_layer_commit(s, NULL, D1, 1024, dir, c1, NULL) == 0);
        CHECK_STREQ(c1, D1);
        CHECK(access(dir, F_OK) < 0);
        free(dir);
        dir = layer_dir(s, "two");
        CHECK(image_layer_commit(s, c1, D2, 2048, dir, c2, NULL) == 0);
        CHECK_STREQ(c2, C12);
        free(dir);
        CHECK(image_layer_exists(s, c1) && image_layer_exists(s, c2));

        /* committing an existing chain id removes the given dir */
        dir = layer_dir(s, "other");
        CHECK(image_layer_commit(s, NULL, D1, 1024, dir, again, NULL) == 0);
        CHECK_STREQ(again, c1);
        CHECK(access(dir, F_OK) < 0);
        free(dir);
        CHECK_INTEQ(count_dir("tmp"), 0);

        CHECK(image_layer_get(s, c2, &l, NULL) == 0);
        CHECK_STREQ(l.chain_id, C12);
        CHECK_STREQ(l.diff_id, D2);
        CHECK_STREQ(l.parent, D1);
        CHECK_INTEQ(l.tar_size, 2048);
        CHECK_INTEQ(l.n_blobs, 0);
        image_layer_release(&l);
        CHECK(image_layer_get(s, c1, &l, NULL) == 0);
        CHECK_STREQ(l.parent, "");
        image_layer_release(&l);

        digest_of("gz", gz);
        digest_of("zs", zs);
        CHECK(image_layer_add_blob(s, c2, gz, image_layer_media_type(IMAGE_COMPRESSION_GZIP, false),
                                   100, NULL) == 0);
        CHECK(image_layer_add_blob(s, c2, zs, image_layer_media_type(IMAGE_COMPRESSION_ZSTD, false),
                                   90, NULL) == 0);
        CHECK(image_layer_add_blob(s, c2, gz, image_layer_media_type(IMAGE_COMPRESSION_GZIP, false),
                                   100, NULL) == 0);
        CHECK(image_layer_get(s, c2, &l, NULL) == 0);
        CHECK_INTEQ(l.n_blobs, 2);
        if (l.n_blobs == 2) {
                CHECK_STREQ(l.blobs[0].digest, gz);
                CHECK_STREQ(l.blobs[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
                CHECK_INTEQ(l.blobs[0].size, 100);
                CHECK_STREQ(l.blobs[1].digest, zs);
                CHECK_INTEQ(l.blobs[1].size, 90);
        }
        image_layer_release(&l);
        CHECK(image_layer_add_blob(s, c2, "sha256:../x", "x", 1, NULL) < 0);

        fd = image_layer_open_diff(s, c2, NULL);
        CHECK(fd >= 0);
        ffd = openat(fd, "file", O_RDONLY | O_CLOEXEC);
        CHECK(ffd >= 0 && read(ffd, buf, sizeof(buf) - 1) == 3);
        CHECK_STREQ(buf, "two");
        close(ffd);
        close(fd);
        path = image_layer_diff_path(s, c2);
        CHECK(path && strstr(path, root) == path && strstr(path, &C12[7]) != NULL);
        free(path);

        CHECK(image_layer_get(s, D2, &l, &err) < 0);
        CHECK(err && err->code == KERR_NOTFOUND);
        kerr_free(err);
        drop_store(s);
}

/* Registers an image whose config lists the diff ids; returns its id. */
static void make_image(struct image_store *s, const char *tag, const char *const *diffs, size_t n,
                       char id[KDIGEST_STRLEN])
{
        struct kbuf cfg = KBUF_INIT;
        char chain[KDIGEST_STRLEN] = "";

        kbuf_printf(&cfg,
                    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"tag\":\"%s\","
                    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[",
                    tag);
        for (size_t i = 0; i < n; i++) {
                char *dir = layer_dir(s, diffs[i]);
                char d[KDIGEST_STRLEN];
                digest_of(diffs[i], d);
                if (image_layer_commit(s, chain, d, 10, dir, chain, NULL) < 0)
                        abort();
                free(dir);
                kbuf_printf(&cfg, "%s\"%s\"", i ? "," : "", d);
        }
        kbuf_puts(&cfg, "]}}");
        if (image_blob_put(s, cfg.data, cfg.len, id, NULL) < 0)
                abort();
        kbuf_release(&cfg);
        if (image_index_add(s, id, &tag, 1, NULL) < 0)
                abort();
}

static size_t names_of(struct image_store *s, const char *id)
{
        struct image_record *r = NULL;
        size_t n = 0, names = (size_t)-1;

        if (image_index_list(s, &r, &n, NULL) < 0)
                abort();
        for (size_t i = 0; i < n; i++)
                if (strcmp(r[i].id, id) == 0)
                        names = r[i].n_names;
        image_records_free(r, n);
        return names;
}

TEST(index_add_move_resolve)
{
        struct image_store *s = fresh_store();
        static const char *const la[] = {"layer-one"}, *const lb[] = {"layer-two"};
        char a[KDIGEST_STRLEN], b[KDIGEST_STRLEN], got[KDIGEST_STRLEN], pfx[16];
        const char *names[] = {"extra", "docker.io/x/y:2"};
        struct image_record *r = NULL;
        struct kerr *err = NULL;
        size_t n = 0;

        make_image(s, "alpha", la, 1, a);
        make_image(s, "beta:1", lb, 1, b);
        CHECK(image_index_list(s, &r, &n, NULL) == 0);
        CHECK_INTEQ(n, 2);
        if (n == 2) {
                CHECK_STREQ(r[0].id, a);
                CHECK_INTEQ(r[0].n_names, 1);
                CHECK_STREQ(r[0].names[0], "localhost/alpha:latest");
                CHECK_STREQ(r[1].names[0], "localhost/beta:1");
        }
        image_records_free(r, n);

        CASE("resolve by name, normalised");
        CHECK(image_index_resolve(s, "alpha", got, NULL) == 0);
        CHECK_STREQ(got, a);
        CHECK(image_index_resolve(s, "localhost/alpha:latest", got, NULL) == 0);
        CHECK_STREQ(got, a);
        CHECK(image_index_resolve(s, "beta:1", got, NULL) == 0);
        CHECK_STREQ(got, b);
        CASE("resolve by id and prefixes");
        CHECK(image_index_resolve(s, a, got, NULL) == 0);
        CHECK_STREQ(got, a);
        CHECK(image_index_resolve(s, a + 7, got, NULL) == 0);
        CHECK_STREQ(got, a);
        snprintf(pfx, sizeof(pfx), "%.12s", b + 7);
        CHECK(image_index_resolve(s, pfx, got, NULL) == 0);
        CHECK_STREQ(got, b);
        snprintf(pfx, sizeof(pfx), "sha256:%.3s", b + 7);
        CHECK(image_index_resolve(s, pfx, got, NULL) == 0);
        CHECK_STREQ(got, b);
        CASE("not found");
        CHECK(image_index_resolve(s, "gamma", got, &err) < 0);
        CHECK(err && err->code == KERR_NOTFOUND);
        CHECK(err && strcmp(err->msg, "image 'gamma' not found") == 0);
        kerr_free(err);
        err = NULL;
        snprintf(pfx, sizeof(pfx), "%.2s", a + 7);
        CHECK(image_index_resolve(s, pfx, got, &err) < 0); /* too short to be a prefix */
        CHECK(err && err->code == KERR_NOTFOUND);
        kerr_free(err);
        err = NULL;

        CASE("add more names; a name moves between images");
        CHECK(image_index_add(s, a, names, 2, NULL) == 0);
        CHECK_INTEQ(names_of(s, a), 3);
        CHECK(image_index_resolve(s, "docker.io/x/y:2", got, NULL) == 0);
        CHECK_STREQ(got, a);
        CHECK(image_index_add(s, b, (const char *[]){"alpha"}, 1, NULL) == 0);
        CHECK(image_index_resolve(s, "alpha", got, NULL) == 0);
        CHECK_STREQ(got, b);
        CHECK_INTEQ(names_of(s, a), 2);
        CHECK_INTEQ(names_of(s, b), 2);
        CHECK(image_index_add(s, a, (const char *[]){"Bad"}, 1, &err) < 0);
        CHECK(err && err->code == KERR_INVALID);
        kerr_free(err);
        err = NULL;
        CHECK(image_index_add(s, "sha256:../x", NULL, 0, NULL) < 0);

        CASE("manifests");
        CHECK(image_index_add_manifest(s, a, D1, NULL) == 0);
        CHECK(image_index_add_manifest(s, a, D1, NULL) == 0);
        CHECK(image_index_add_manifest(s, D2, D1, &err) < 0);
        CHECK(err && err->code == KERR_NOTFOUND);
        kerr_free(err);
        err = NULL;
        CHECK(image_index_list(s, &r, &n, NULL) == 0);
        CHECK(n == 2 && r[0].n_manifests == 1 && strcmp(r[0].manifests[0], D1) == 0);
        image_records_free(r, n);

        CASE("untag");
        CHECK(image_index_untag(s, "extra", NULL) == 0);
        CHECK_INTEQ(names_of(s, a), 1);
        CHECK(image_index_untag(s, "extra", &err) < 0);
        CHECK(err && err->code == KERR_NOTFOUND);
        kerr_free(err);
        err = NULL;
        CHECK(image_index_untag(s, "docker.io/x/y:2", NULL) == 0);
        CHECK_INTEQ(names_of(s, a), 0); /* still listed, untagged */
        CHECK(image_index_resolve(s, a, got, NULL) == 0);
        drop_store(s);
}

/* A rebuild that hit every step names its image again: the index is not rewritten. */
TEST(index_add_of_what_is_there_writes_nothing)
{
        struct image_store *s = fresh_store();
        static const char *const la[] = {"layer-one"};
        const char *same[] = {"alpha", "localhost/alpha:latest"}, *other[] = {"alpha:2"};
        char a[KDIGEST_STRLEN], p[128];
        struct stat before, after;

        make_image(s, "alpha", la, 1, a);
        snprintf(p, sizeof(p), "%s/images.json", root);
        CHECK(stat(p, &before) == 0);
        CHECK(image_index_add(s, a, same, 2, NULL) == 0);
        CHECK(image_index_add(s, a, NULL, 0, NULL) == 0);
        CHECK(stat(p, &after) == 0);
        CHECK(before.st_ino == after.st_ino);
        CASE("a new name is written");
        CHECK(image_index_add(s, a, other, 1, NULL) == 0);
        CHECK(stat(p, &after) == 0);
        CHECK(before.st_ino != after.st_ino);
        drop_store(s);
}

TEST(index_remove_unnamed_keeps_a_named_image)
{
        struct image_store *s = fresh_store();
        static const char *const la[] = {"layer-one"};
        char a[KDIGEST_STRLEN], got[KDIGEST_STRLEN];
        bool removed = true;

        make_image(s, "alpha", la, 1, a);
        CHECK(image_index_remove_unnamed(s, a, &removed, NULL) == 0);
        CHECK(!removed);
        CHECK(image_index_resolve(s, "alpha", got, NULL) == 0);
        CHECK(image_blob_exists(s, a));
        CASE("once its name is gone, it goes");
        CHECK(image_index_untag(s, "alpha", NULL) == 0);
        CHECK(image_index_remove_unnamed(s, a, &removed, NULL) == 0);
        CHECK(removed);
        CHECK(!image_blob_exists(s, a));
        drop_store(s);
}

TEST(index_ambiguous_prefix)
{
        struct image_store *s = fresh_store();
        char ids[3][KDIGEST_STRLEN], got[KDIGEST_STRLEN];
        struct kerr *err = NULL;

        /* ids need not name stored blobs to be indexed: make three with chosen prefixes */
        for (int i = 0; i < 3; i++) {
                snprintf(ids[i], sizeof(ids[i]), "sha256:%s%059d", i < 2 ? "abcde" : "abd00", i);
                ids[i][6 + 1 + 5] = (char)('0' + i);
                if (image_index_add(s, ids[i], NULL, 0, NULL) < 0)
                        abort();
        }
        CHECK(image_index_resolve(s, "abc", got, &err) < 0);
        CHECK(err && err->code == KERR_INVALID);
        CHECK(err && strstr(err->msg, "ambiguous") && strstr(err->msg, "'abc'"));
        kerr_free(err);
        err = NULL;
        CHECK(image_index_resolve(s, "sha256:abcde", got, &err) < 0);
        CHECK(err && err->code == KERR_INVALID && strstr(err->msg, "'sha256:abcde'"));
        kerr_free(err);
        CHECK(image_index_resolve(s, "abd", got, NULL) == 0);
        CHECK_STREQ(got, ids[2]);
        CHECK(image_index_resolve(s, "abcde1", got, NULL) == 0);
        CHECK_STREQ(got, ids[1]);
        drop_store(s);
}

TEST(index_remove_collects_garbage)
{
        struct image_store *s = fresh_store();
        static const char *const la[] = {"base", "a-top"}, *const lb[] = {"base", "b-top"};
        char a[KDIGEST_STRLEN], b[KDIGEST_STRLEN], base[KDIGEST_STRLEN];
        char atop[KDIGEST_STRLEN], btop[KDIGEST_STRLEN], d[KDIGEST_STRLEN];
        char gz_base[KDIGEST_STRLEN], gz_atop[KDIGEST_STRLEN], man[KDIGEST_STRLEN];
        char stray[KDIGEST_STRLEN], got[KDIGEST_STRLEN];
        struct kbuf m = KBUF_INIT;
        struct kerr *err = NULL;

        make_image(s, "a", la, 2, a);
        make_image(s, "b", lb, 2, b);
        digest_of("base", base);
        digest_of("a-top", d);
        CHECK(image_chain_id(base, d, atop, NULL) == 0);
        digest_of("b-top", d);
        CHECK(image_chain_id(base, d, btop, NULL) == 0);
        CHECK(image_blob_put(s, "gz-base", 7, gz_base, NULL) == 0);
        CHECK(image_blob_put(s, "gz-atop", 7, gz_atop, NULL) == 0);
        CHECK(image_layer_add_blob(s, base, gz_base, "application/vnd.oci.image.layer.v1.tar+gzip",
                                   7, NULL) == 0);
        CHECK(image_layer_add_blob(s, atop, gz_atop, "application/vnd.oci.image.layer.v1.tar+gzip",
                                   7, NULL) == 0);
        kbuf_printf(&m,
                    "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\"},\"layers\":["
                    "{\"digest\":\"%s\"},{\"digest\":\"%s\"}]}",
                    a, gz_base, gz_atop);
        CHECK(image_blob_put(s, m.data, m.len, man, NULL) == 0);
        kbuf_release(&m);
        CHECK(image_index_add_manifest(s, a, man, NULL) == 0);
        CHECK(image_blob_put(s, "stray", 5, stray, NULL) == 0);
        CHECK_INTEQ(count_dir("layers"), 3);

        CASE("removing a keeps what b uses");
        CHECK(image_index_remove(s, a, NULL) == 0);
        CHECK(image_index_resolve(s, "a", got, &err) < 0);
        kerr_free(err);
        err = NULL;
        CHECK(!image_blob_exists(s, a));
        CHECK(!image_blob_exists(s, man));
        CHECK(!image_blob_exists(s, gz_atop));
        CHECK(!image_layer_exists(s, atop));
        CHECK(image_blob_exists(s, b));
        CHECK(image_blob_exists(s, gz_base));
        CHECK(image_layer_exists(s, base));
        CHECK(image_layer_exists(s, btop));
        CHECK(image_blob_exists(s, stray)); /* not a's: left for prune */
        CHECK(image_index_remove(s, a, &err) < 0);
        CHECK(err && err->code == KERR_NOTFOUND);
        kerr_free(err);
        err = NULL;
        CHECK_INTEQ(count_dir("tmp"), 0);

        CASE("prune removes untagged images and everything unused");
        CHECK(image_store_prune(s, NULL) == 0);
        CHECK(!image_blob_exists(s, stray));
        CHECK(image_blob_exists(s, b));
        CHECK(image_layer_exists(s, btop));
        CHECK(image_index_untag(s, "b", NULL) == 0);
        CHECK(image_store_prune(s, NULL) == 0);
        CHECK_INTEQ(count_dir("blobs/sha256"), 0);
        CHECK_INTEQ(count_dir("layers"), 0);
        CHECK_INTEQ(count_dir("tmp"), 0);
        drop_store(s);
}

/* Runs fn in a child; returns its pid. The child never reports to TAP, and closes what it
 * inherited first: a flock belongs to the open file description, which fork shares, so an
 * inherited lease would still be held by the child. */
static pid_t in_child(int (*fn)(void))
{
        pid_t pid = fork();

        if (pid == 0) {
                close_range(3, ~0U, 0);
                _exit(fn());
        }
        return pid;
}

static int child_prune(void)
{
        struct image_store *c = image_store_open(root, 0, NULL);
        int r = c && image_store_prune(c, NULL) == 0 ? 0 : 1;

        image_store_free(c);
        return r;
}

static int child_lease(void)
{
        struct image_store *c = image_store_open(root, IMAGE_STORE_LEASE, NULL);

        image_store_free(c);
        return c ? 0 : 1;
}

/* True when pid is still running after 300 ms. */
static bool still_running(pid_t pid)
{
        int st;

        usleep(300 * 1000);
        return waitpid(pid, &st, WNOHANG) == 0;
}

static bool exited_ok(pid_t pid)
{
        int st = 0;

        return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

TEST(gc_lock_and_lease)
{
        struct image_store *s = fresh_store(), *lease;
        static const char *const la[] = {"only-a"};
        char a[KDIGEST_STRLEN], layer[KDIGEST_STRLEN], got[KDIGEST_STRLEN];
        struct kerr *err = NULL;
        pid_t pid;

        make_image(s, "a", la, 1, a);
        digest_of("only-a", layer);
        lease = image_store_open(root, IMAGE_STORE_LEASE, &err);
        CHECK(lease != NULL);
        CHECK(path_exists(".", "gc.lock"));

        CASE("a lease holder cannot take the GC lock");
        CHECK(image_store_lock_gc(lease, false, &err) < 0);
        CHECK(err && err->code == KERR_INVALID);
        kerr_free(err);
        err = NULL;

        CASE("the GC lock is busy while a lease is held");
        CHECK(image_store_lock_gc(s, false, &err) < 0);
        CHECK(err && err->errnum == EWOULDBLOCK);
        kerr_free(err);
        err = NULL;

        CASE("removing an image under a lease keeps its content");
        CHECK(image_index_remove(s, a, NULL) == 0);
        CHECK(image_index_resolve(s, "a", got, &err) < 0);
        kerr_free(err);
        err = NULL;
        CHECK(image_blob_exists(s, a));
        CHECK(image_layer_exists(s, layer));

        CASE("prune waits for the lease to end, then collects");
        pid = in_child(child_prune);
        CHECK(pid > 0 && still_running(pid));
        CHECK(image_blob_exists(s, a));
        image_store_free(lease);
        CHECK(exited_ok(pid));
        CHECK(!image_blob_exists(s, a));
        CHECK(!image_layer_exists(s, layer));

        CASE("the GC lock, once taken, is kept and keeps leases out");
        CHECK(image_store_lock_gc(s, false, NULL) == 0);
        CHECK(image_store_lock_gc(s, false, NULL) == 0);
        pid = in_child(child_lease);
        CHECK(pid > 0 && still_running(pid));
        image_store_free(s);
        CHECK(exited_ok(pid));

        CASE("with no lease held, removal collects at once");
        s = image_store_open(root, 0, NULL);
        CHECK(s != NULL);
        make_image(s, "a", la, 1, a);
        CHECK(image_index_remove(s, a, NULL) == 0);
        CHECK(!image_blob_exists(s, a));
        CHECK(!image_layer_exists(s, layer));
        drop_store(s);
}

TEST(tmp_sweep_dead_and_live)
{
        struct image_store *s = fresh_store();
        char p[256];
        pid_t dead = fork();
        int st;

        if (dead == 0)
                _exit(0);
        CHECK(dead > 0 && waitpid(dead, &st, 0) == dead);
        snprintf(p, sizeof(p), "%s/tmp/%d-0123abcd", root, (int)dead);
        CHECK(mkdir(p, 0700) == 0);
        snprintf(p, sizeof(p), "%s/tmp/%d-0123abcd/sub", root, (int)dead);
        CHECK(mkdir(p, 0500) == 0);
        snprintf(p, sizeof(p), "%s/tmp/%d-0123abcd/link", root, (int)dead);
        CHECK(symlink(root, p) == 0);
        snprintf(p, sizeof(p), "%s/images.json.tmp-%d-1f", root, (int)dead);
        CHECK(close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == 0);
        snprintf(p, sizeof(p), "%s/tmp/%d-live", root, (int)getppid());
        CHECK(mkdir(p, 0700) == 0);
        snprintf(p, sizeof(p), "%s/tmp/%d-mine", root, (int)getpid());
        CHECK(mkdir(p, 0700) == 0);
        image_store_free(s);
        s = image_store_open(root, 0, NULL);
        CHECK(s != NULL);
        snprintf(p, sizeof(p), "%d-0123abcd", (int)dead);
        CHECK(!path_exists("tmp", p));
        snprintf(p, sizeof(p), "images.json.tmp-%d-1f", (int)dead);
        CHECK(!path_exists(".", p));
        snprintf(p, sizeof(p), "%d-live", (int)getppid());
        CHECK(path_exists("tmp", p));
        snprintf(p, sizeof(p), "%d-mine", (int)getpid());
        CHECK(path_exists("tmp", p));
        CHECK(path_exists("blobs", "")); /* the symlink was not followed */
        drop_store(s);
}

TEST(rmtree_does_not_follow_symlinks)
{
        char outside[64], inside[64], p[256];
        struct stat st;

        snprintf(outside, sizeof(outside), "/tmp/kiln-test-out-XXXXXX");
        snprintf(inside, sizeof(inside), "/tmp/kiln-test-in-XXXXXX");
        CHECK(mkdtemp(outside) && mkdtemp(inside));
        snprintf(p, sizeof(p), "%s/keep", outside);
        CHECK(mkdir(p, 0700) == 0);
        snprintf(p, sizeof(p), "%s/link", inside);
        CHECK(symlink(outside, p) == 0);
        CHECK(image_store_rmtree(inside, NULL) == 0);
        CHECK(lstat(inside, &st) < 0 && errno == ENOENT);
        snprintf(p, sizeof(p), "%s/keep", outside);
        CHECK(lstat(p, &st) == 0);
        CHECK(image_store_rmtree(inside, NULL) == 0); /* missing is fine */
        CHECK(image_store_rmtree("/", NULL) < 0);
        CHECK(image_store_rmtree(outside, NULL) == 0);
}

TEST(index_concurrent_adds)
{
        struct image_store *s = fresh_store();
        char ids[2][KDIGEST_STRLEN];
        pid_t pids[2];
        int ok = 1;

        digest_of("writer-0", ids[0]);
        digest_of("writer-1", ids[1]);
        for (int k = 0; k < 2; k++) {
                pids[k] = fork();
                if (pids[k] == 0) {
                        struct image_store *c = image_store_open(root, 0, NULL);
                        if (!c)
                                _exit(1);
                        for (int i = 0; i < 50; i++) {
                                char name[32];
                                const char *nv[] = {name};
                                snprintf(name, sizeof(name), "w%d-n%d", k, i);
                                if (image_index_add(c, ids[k], nv, 1, NULL) < 0)
                                        _exit(1);
                        }
                        image_store_free(c);
                        _exit(0);
                }
        }
        for (int k = 0; k < 2; k++) {
                int st = 0;
                if (waitpid(pids[k], &st, 0) != pids[k] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        ok = 0;
        }
        CHECK(ok);
        CHECK_INTEQ(names_of(s, ids[0]), 50);
        CHECK_INTEQ(names_of(s, ids[1]), 50);
        drop_store(s);
}

TEST(normalize_names)
{
        static const struct {
                const char *in, *want; /* want NULL: an error containing msg */
                const char *msg;
        } rows[] = {
                {"hello", "localhost/hello:latest", NULL},
                {"hello:1.0", "localhost/hello:1.0", NULL},
                {"busybox:1", "localhost/busybox:1", NULL},
                {"library/hello", "localhost/library/hello:latest", NULL},
                {"docker.io/x", "docker.io/x:latest", NULL},
                {"quay.io/a/b:v2", "quay.io/a/b:v2", NULL},
                {"localhost/foo", "localhost/foo:latest", NULL},
                {"localhost:5000/foo:t", "localhost:5000/foo:t", NULL},
                {"Registry.Example.com/a", "Registry.Example.com/a:latest", NULL},
                {"a_b__c-d---e.f", "localhost/a_b__c-d---e.f:latest", NULL},
                {"foo@" D1, "localhost/foo@" D1, NULL},
                {"foo:t@" D1, "localhost/foo:t@" D1, NULL},
                {"foo:_under", "localhost/foo:_under", NULL},
                {"Foo", NULL, "invalid reference 'Foo': repository names must be lowercase"},
                {"", NULL, "the name is empty"},
                {"foo:", NULL, "invalid tag ''"},
                {"foo:-x", NULL, "invalid tag '-x'"},
                {"foo:bad/tag", NULL, "invalid registry 'foo:bad'"},
                {"foo@sha256:abc", NULL, "invalid digest 'sha256:abc'"},
                {"foo//bar", NULL, "invalid repository name 'foo//bar'"},
                {"_foo", NULL, "invalid repository name '_foo'"},
                {"foo-", NULL, "invalid repository name 'foo-'"},
                {"foo___bar", NULL, "invalid repository name"},
                {"-x.io/foo", NULL, "invalid registry '-x.io'"},
                {"x.io:/foo", NULL, "invalid registry 'x.io:'"},
                {":tag", NULL, "the name is empty"},
                {"a b", NULL, "invalid repository name 'a b'"},
        };
        char longname[300];

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct kerr *err = NULL;
                char *got;

                CASE("normalize '%s'", rows[i].in);
                got = image_normalize_name(rows[i].in, &err);
                if (rows[i].want) {
                        CHECK_STREQ(got, rows[i].want);
                } else {
                        CHECK_NULL(got);
                        CHECK(err && err->code == KERR_INVALID);
                        if (err && !strstr(err->msg, rows[i].msg))
                                CHECK_STREQ(err->msg, rows[i].msg);
                }
                free(got);
                kerr_free(err);
        }
        CASE("a name longer than 255 characters");
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        CHECK_NULL(image_normalize_name(longname, NULL));
        longname[240] = '\0';
        {
                char *ok = image_normalize_name(longname, NULL);
                CHECK(ok != NULL);
                free(ok);
        }
}
