/* SPDX-License-Identifier: Apache-2.0 */
/* The step cache's entries and the stat cache of build contexts, on a real store. */
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "tap.h"

static char root[64];

static struct image_store *fresh_store(void)
{
        struct kerr *err = NULL;
        struct image_store *s;

        snprintf(root, sizeof(root), "/tmp/kiln-test-cache-XXXXXX");
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

static void digest_of(const char *s, char out[KDIGEST_STRLEN])
{
        if (kdigest_buf(s, strlen(s), out, NULL) < 0)
                abort();
}

/* A layer holding one file with content, on top of parent (a chain id or ""). */
static void make_layer(struct image_store *s, const char *parent, const char *content,
                       char diff[KDIGEST_STRLEN], char chain[KDIGEST_STRLEN])
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
        digest_of(content, diff);
        if (image_layer_commit(s, parent, diff, 10, dir, chain, NULL) < 0)
                abort();
        free(dir);
}

/* A config naming the diff ids (NULL-terminated). */
static char *config_with(const char *const *diffs)
{
        struct kbuf b = KBUF_INIT;

        kbuf_puts(&b,
                  "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                  "\"diff_ids\":[");
        for (size_t i = 0; diffs[i]; i++)
                kbuf_printf(&b, "%s\"%s\"", i ? "," : "", diffs[i]);
        kbuf_puts(&b, "]}}");
        return kbuf_detach(&b);
}

static int put_step(struct image_store *s, const char *key, const char *parent, const char *config,
                    const char *dep)
{
        struct image_cache_entry e = {0};
        char *deps[1] = {(char *)dep};

        if (parent)
                memcpy(e.parent, parent, KDIGEST_STRLEN);
        e.config = (char *)config;
        e.config_len = strlen(config);
        e.deps = dep ? deps : NULL;
        e.n_deps = dep ? 1 : 0;
        return image_cache_put(s, key, &e, NULL);
}

static int put_build(struct image_store *s, const char *key, const char *parent, const char *image)
{
        struct image_cache_entry e = {0};

        memcpy(e.parent, parent, KDIGEST_STRLEN);
        memcpy(e.image, image, KDIGEST_STRLEN);
        return image_cache_put(s, key, &e, NULL);
}

static bool is_miss(struct image_store *s, const char *key)
{
        struct image_cache_entry e;
        struct kerr *err = NULL;
        bool miss = image_cache_get(s, key, &e, &err) < 0 && err && err->code == KERR_NOTFOUND;

        if (!miss && !err)
                image_cache_entry_release(&e);
        kerr_free(err);
        return miss;
}

static bool is_hit(struct image_store *s, const char *key)
{
        struct image_cache_entry e;

        if (image_cache_get(s, key, &e, NULL) < 0)
                return false;
        image_cache_entry_release(&e);
        return true;
}

TEST(cache_entry_round_trip)
{
        struct image_store *s = fresh_store();
        char k1[KDIGEST_STRLEN], k2[KDIGEST_STRLEN], parent[KDIGEST_STRLEN], dep[KDIGEST_STRLEN];
        char diff[KDIGEST_STRLEN], chain[KDIGEST_STRLEN], partial[KDIGEST_STRLEN];
        const char *diffs[2] = {diff, NULL};
        char *cfg;
        struct image_cache_entry e = {0}, got;
        char *deps[1] = {dep};
        struct kerr *err = NULL;

        digest_of("k1", k1);
        digest_of("k2", k2);
        digest_of("parent", parent);
        digest_of("dep", dep);
        digest_of("partial", partial);
        make_layer(s, "", "layer one", diff, chain);
        cfg = config_with(diffs);

        CASE("a missing entry is a miss, not an error");
        CHECK(image_cache_get(s, k1, &got, &err) < 0);
        CHECK(err && err->code == KERR_NOTFOUND);
        kerr_free(err);
        err = NULL;

        CASE("what was put is read back");
        memcpy(e.parent, parent, KDIGEST_STRLEN);
        memcpy(e.partial, partial, KDIGEST_STRLEN);
        e.config = cfg;
        e.config_len = strlen(cfg);
        e.deps = deps;
        e.n_deps = 1;
        CHECK(image_cache_put(s, k1, &e, NULL) == 0);
        CHECK(image_cache_get(s, k1, &got, NULL) == 0);
        CHECK_STREQ(got.parent, parent);
        CHECK_STREQ(got.partial, partial);
        CHECK_STREQ(got.image, "");
        CHECK_INTEQ(got.n_deps, 1);
        CHECK(got.n_deps == 1 && strcmp(got.deps[0], dep) == 0);
        CHECK(got.cfg && got.cfg->n_diff_ids == 1 && strcmp(got.cfg->diff_ids[0], diff) == 0);
        CHECK(got.n_chain == 1 && strcmp(got.chain[0], chain) == 0);
        image_cache_entry_release(&got);

        CASE("it lives at cache/<aa>/<rest>, nothing is left in tmp/");
        {
                char p[256];
                struct stat st;

                snprintf(p, sizeof(p), "%s/cache/%.2s/%s", root, k1 + 7, k1 + 9);
                CHECK(stat(p, &st) == 0 && S_ISREG(st.st_mode));
                snprintf(p, sizeof(p), "ls -A %s/tmp | grep -q .", root);
                CHECK(system(p) != 0);
        }

        CASE("a key that is not a digest is refused");
        CHECK(image_cache_put(s, "sha256:../../etc", &e, &err) < 0);
        CHECK(err && err->code == KERR_INVALID);
        kerr_free(err);
        err = NULL;

        CASE("a damaged entry is a miss");
        {
                char p[256];
                FILE *f;

                CHECK(image_cache_put(s, k2, &e, NULL) == 0);
                snprintf(p, sizeof(p), "%s/cache/%.2s/%s", root, k2 + 7, k2 + 9);
                f = fopen(p, "we");
                CHECK(f != NULL);
                if (f) {
                        fputs("{\"version\":1,\"conf", f);
                        fclose(f);
                }
                CHECK(is_miss(s, k2));
        }
        free(cfg);
        drop_store(s);
}

TEST(cache_entry_whose_content_is_gone_is_a_miss)
{
        struct image_store *s = fresh_store();
        char key[KDIGEST_STRLEN], bkey[KDIGEST_STRLEN], diff[KDIGEST_STRLEN];
        char chain[KDIGEST_STRLEN], img[KDIGEST_STRLEN];
        const char *diffs[2] = {NULL, NULL};
        char *cfg;

        digest_of("key", key);
        digest_of("build key", bkey);
        digest_of("not stored yet", diff);
        diffs[0] = diff;
        cfg = config_with(diffs);

        CASE("a step whose layer is not in the store misses");
        CHECK(put_step(s, key, NULL, cfg, NULL) == 0);
        CHECK(is_miss(s, key));
        free(cfg);

        CASE("... and hits once it is");
        make_layer(s, "", "the layer", diff, chain);
        diffs[0] = diff;
        cfg = config_with(diffs);
        CHECK(put_step(s, key, NULL, cfg, NULL) == 0);
        CHECK(is_hit(s, key));

        CASE("a build entry whose image config is gone misses");
        digest_of("no such config", img);
        CHECK(put_build(s, bkey, key, img) == 0);
        CHECK(is_miss(s, bkey));
        CHECK(image_blob_put(s, cfg, strlen(cfg), img, NULL) == 0);
        CHECK(put_build(s, bkey, key, img) == 0);
        CHECK(is_hit(s, bkey));

        CASE("removing the layer (as a GC would) makes the step a miss, and the build too");
        {
                char p[256];

                snprintf(p, sizeof(p), "%s/layers/%s", root, chain + 7);
                CHECK(image_store_rmtree(p, NULL) == 0);
                CHECK(is_miss(s, key));
                /* Its image's config is still there, but not all of the image. */
                CHECK(image_blob_exists(s, img));
                CHECK(is_miss(s, bkey));
        }
        free(cfg);
        drop_store(s);
}

TEST(cache_inputs)
{
        struct image_store *s = fresh_store();
        char partial[KDIGEST_STRLEN], key[KDIGEST_STRLEN], got_key[KDIGEST_STRLEN];
        struct kbuf got = KBUF_INIT;
        struct kerr *err = NULL;
        static const char text[] = "file\t/a\tf 0644 sha256:00\nvalue\t1\tx\n";

        digest_of("partial", partial);
        digest_of("key", key);
        CHECK(!image_cache_has_inputs(s, partial));
        CHECK(image_cache_get_inputs(s, partial, &got, got_key, &err) < 0);
        CHECK(err && err->code == KERR_NOTFOUND);
        kerr_free(err);
        err = NULL;
        CHECK(image_cache_put_inputs(s, partial, key, text, strlen(text), NULL) == 0);
        CHECK(image_cache_has_inputs(s, partial));
        CHECK(image_cache_get_inputs(s, partial, &got, got_key, NULL) == 0);
        CHECK_STREQ(got_key, key);
        CHECK_STREQ(got.data, text);
        kbuf_release(&got);
        drop_store(s);
}

/* The GC keeps the entries that lead to an image in the index, following parents and the
 * stages a step copied from, and the layers they use; the rest goes. */
TEST(cache_gc_keeps_what_leads_to_images)
{
        struct image_store *s = fresh_store();
        char d_base[KDIGEST_STRLEN], c_base[KDIGEST_STRLEN], d_top[KDIGEST_STRLEN];
        char c_top[KDIGEST_STRLEN], d_b[KDIGEST_STRLEN], c_b[KDIGEST_STRLEN];
        char d_x[KDIGEST_STRLEN], c_x[KDIGEST_STRLEN];
        char from[KDIGEST_STRLEN], k_builder[KDIGEST_STRLEN], k1[KDIGEST_STRLEN];
        char k2[KDIGEST_STRLEN], kb[KDIGEST_STRLEN], k_orphan[KDIGEST_STRLEN];
        char kb_orphan[KDIGEST_STRLEN], img[KDIGEST_STRLEN], img_orphan[KDIGEST_STRLEN];
        char partial[KDIGEST_STRLEN], stale_partial[KDIGEST_STRLEN];
        const char *final_diffs[3], *builder_diffs[2], *first_diffs[2], *orphan_diffs[3];
        char *cfg_final, *cfg_builder, *cfg_first, *cfg_orphan;
        const char *tag = "final";
        struct image_cache_entry e = {0};

        /* The builder stage: FROM scratch, one layer b. */
        make_layer(s, "", "builder", d_b, c_b);
        builder_diffs[0] = d_b;
        builder_diffs[1] = NULL;
        cfg_builder = config_with(builder_diffs);
        digest_of("from", from);
        digest_of("builder step", k_builder);
        CHECK(put_step(s, k_builder, from, cfg_builder, NULL) == 0);
        /* The final stage: base, then top (a COPY --from of the builder stage). */
        make_layer(s, "", "base", d_base, c_base);
        make_layer(s, c_base, "top", d_top, c_top);
        first_diffs[0] = d_base;
        first_diffs[1] = NULL;
        final_diffs[0] = d_base;
        final_diffs[1] = d_top;
        final_diffs[2] = NULL;
        cfg_first = config_with(first_diffs);
        cfg_final = config_with(final_diffs);
        digest_of("step 1", k1);
        digest_of("step 2", k2);
        digest_of("build", kb);
        digest_of("partial", partial);
        CHECK(put_step(s, k1, from, cfg_first, NULL) == 0);
        memcpy(e.parent, k1, KDIGEST_STRLEN);
        memcpy(e.partial, partial, KDIGEST_STRLEN);
        e.config = cfg_final;
        e.config_len = strlen(cfg_final);
        e.deps = (char *[]){k_builder};
        e.n_deps = 1;
        CHECK(image_cache_put(s, k2, &e, NULL) == 0);
        CHECK(image_cache_put_inputs(s, partial, k2, "x\ty\tz\n", 6, NULL) == 0);
        CHECK(image_blob_put(s, cfg_final, strlen(cfg_final), img, NULL) == 0);
        CHECK(image_index_add(s, img, &tag, 1, NULL) == 0);
        CHECK(put_build(s, kb, k2, img) == 0);
        /* An abandoned build: its own layer x, an untagged image, and stale inputs. */
        make_layer(s, c_base, "orphan", d_x, c_x);
        orphan_diffs[0] = d_base;
        orphan_diffs[1] = d_x;
        orphan_diffs[2] = NULL;
        cfg_orphan = config_with(orphan_diffs);
        digest_of("orphan step", k_orphan);
        digest_of("orphan build", kb_orphan);
        digest_of("stale partial", stale_partial);
        CHECK(put_step(s, k_orphan, k1, cfg_orphan, NULL) == 0);
        CHECK(image_blob_put(s, cfg_orphan, strlen(cfg_orphan), img_orphan, NULL) == 0);
        CHECK(image_index_add(s, img_orphan, NULL, 0, NULL) == 0);
        CHECK(put_build(s, kb_orphan, k_orphan, img_orphan) == 0);
        CHECK(image_cache_put_inputs(s, stale_partial, k_orphan, "a\tb\tc\n", 6, NULL) == 0);

        CASE("prune keeps the entries of the tagged image's build, its builder stage included");
        CHECK(image_store_prune(s, NULL) == 0);
        CHECK(is_hit(s, kb));
        CHECK(is_hit(s, k2));
        CHECK(is_hit(s, k1));
        CHECK(is_hit(s, k_builder));
        CHECK(image_layer_exists(s, c_b));
        CHECK(image_cache_has_inputs(s, partial));

        CASE("... and removes those of the untagged image, its layer and stale inputs");
        CHECK(!image_layer_exists(s, c_x));
        CHECK(!image_blob_exists(s, img_orphan));
        CHECK(is_miss(s, k_orphan));
        CHECK(is_miss(s, kb_orphan));
        CHECK(!image_cache_has_inputs(s, stale_partial));

        CASE("once the image is untagged, prune removes its cache and the layers");
        CHECK(image_index_untag(s, tag, NULL) == 0);
        CHECK(image_store_prune(s, NULL) == 0);
        CHECK(is_miss(s, kb));
        CHECK(is_miss(s, k2));
        CHECK(is_miss(s, k_builder));
        CHECK(!image_layer_exists(s, c_b));
        CHECK(!image_layer_exists(s, c_top));
        CHECK(!image_cache_has_inputs(s, partial));
        free(cfg_final);
        free(cfg_builder);
        free(cfg_first);
        free(cfg_orphan);
        drop_store(s);
}

/* A rmi leaves the layers that a cache entry of another image's build uses (its builder
 * stage), even when no image has them in its rootfs. */
TEST(cache_rmi_keeps_layers_other_builds_use)
{
        struct image_store *s = fresh_store();
        char d_b[KDIGEST_STRLEN], c_b[KDIGEST_STRLEN], d_f[KDIGEST_STRLEN], c_f[KDIGEST_STRLEN];
        char k_builder[KDIGEST_STRLEN], k_final[KDIGEST_STRLEN], kb[KDIGEST_STRLEN];
        char img_b[KDIGEST_STRLEN], img_f[KDIGEST_STRLEN];
        const char *bd[2] = {NULL, NULL}, *fd[2] = {NULL, NULL};
        const char *tag_b = "builder", *tag_f = "final";
        char *cfg_b, *cfg_f;

        make_layer(s, "", "builder", d_b, c_b);
        make_layer(s, "", "final", d_f, c_f);
        bd[0] = d_b;
        fd[0] = d_f;
        cfg_b = config_with(bd);
        cfg_f = config_with(fd);
        digest_of("builder step", k_builder);
        digest_of("final step", k_final);
        digest_of("final build", kb);
        CHECK(put_step(s, k_builder, NULL, cfg_b, NULL) == 0);
        CHECK(put_step(s, k_final, NULL, cfg_f, k_builder) == 0);
        /* The builder stage was also built as an image of its own. */
        CHECK(image_blob_put(s, cfg_b, strlen(cfg_b), img_b, NULL) == 0);
        CHECK(image_index_add(s, img_b, &tag_b, 1, NULL) == 0);
        CHECK(image_blob_put(s, cfg_f, strlen(cfg_f), img_f, NULL) == 0);
        CHECK(image_index_add(s, img_f, &tag_f, 1, NULL) == 0);
        CHECK(put_build(s, kb, k_final, img_f) == 0);

        CHECK(image_index_remove(s, img_b, NULL) == 0);
        CHECK(!image_blob_exists(s, img_b));
        CHECK(image_layer_exists(s, c_b));
        CHECK(is_hit(s, k_builder));
        free(cfg_b);
        free(cfg_f);
        drop_store(s);
}

/* ---- the stat cache ---- */

/* When reading began: now. */
static const struct timespec *read_now(void)
{
        static struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return &ts;
}

static struct stat file_stat(unsigned long long ino, long long size, time_t mtime, time_t ctime)
{
        struct stat st;

        memset(&st, 0, sizeof(st));
        st.st_mode = S_IFREG | 0644;
        st.st_dev = 42;
        st.st_ino = (ino_t)ino;
        st.st_size = (off_t)size;
        st.st_mtim.tv_sec = mtime;
        st.st_mtim.tv_nsec = 123;
        st.st_ctim.tv_sec = ctime;
        st.st_ctim.tv_nsec = 456;
        return st;
}

TEST(statcache_matches_on_every_field)
{
        struct image_store *s = fresh_store();
        struct image_statcache *c = image_statcache_open(s, "/some/context", NULL);
        time_t old = time(NULL) - 3600;
        struct stat st = file_stat(7, 100, old, old), other;
        char d[KDIGEST_STRLEN], got[KDIGEST_STRLEN];

        digest_of("content", d);
        CHECK(c != NULL);
        CHECK(!image_statcache_get(c, &st, got));
        image_statcache_put(c, &st, read_now(), d);
        CHECK(image_statcache_get(c, &st, got));
        CHECK_STREQ(got, d);

        CASE("a change of size, mtime, ctime, inode or device is a miss");
        other = st;
        other.st_size++;
        CHECK(!image_statcache_get(c, &other, got));
        other = st;
        other.st_mtim.tv_nsec++;
        CHECK(!image_statcache_get(c, &other, got));
        /* A rewrite that put the mtime back still moved the ctime. */
        other = st;
        other.st_ctim.tv_sec++;
        CHECK(!image_statcache_get(c, &other, got));
        other = st;
        other.st_ino++;
        CHECK(!image_statcache_get(c, &other, got));
        other = st;
        other.st_dev++;
        CHECK(!image_statcache_get(c, &other, got));

        CASE("the same inode hashed again replaces its record");
        other = st;
        other.st_mtim.tv_sec++;
        other.st_ctim.tv_sec++;
        digest_of("new content", d);
        image_statcache_put(c, &other, read_now(), d);
        CHECK(image_statcache_get(c, &other, got));
        CHECK_STREQ(got, d);
        CHECK(!image_statcache_get(c, &st, got));

        CASE("directories and symlinks are never recorded");
        other = file_stat(8, 1, old, old);
        other.st_mode = S_IFLNK | 0777;
        image_statcache_put(c, &other, read_now(), d);
        CHECK(!image_statcache_get(c, &other, got));
        image_statcache_free(c);
        drop_store(s);
}

TEST(statcache_skips_racy_files)
{
        struct image_store *s = fresh_store();
        struct image_statcache *c = image_statcache_open(s, "/ctx", NULL);
        struct timespec start = {.tv_sec = time(NULL), .tv_nsec = 500000000};
        struct stat st = file_stat(1, 10, 1000, 1000);
        char d[KDIGEST_STRLEN], got[KDIGEST_STRLEN];

        /* Changed in the tick its reading began in: a write in the same tick would leave
         * every field alike. */
        digest_of("x", d);
        CASE("changed 50 ms before it was read: not recorded");
        st.st_ctim = (struct timespec){start.tv_sec, start.tv_nsec - 50000000};
        image_statcache_put(c, &st, &start, d);
        CHECK(!image_statcache_get(c, &st, got));
        CASE("changed 200 ms before: recorded");
        st.st_ino = 2;
        st.st_ctim = (struct timespec){start.tv_sec, start.tv_nsec - 200000000};
        image_statcache_put(c, &st, &start, d);
        CHECK(image_statcache_get(c, &st, got));
        CASE("stamps of whole seconds: a second before is too recent");
        st.st_ino = 3;
        st.st_ctim = (struct timespec){start.tv_sec - 1, 0};
        image_statcache_put(c, &st, &start, d);
        CHECK(!image_statcache_get(c, &st, got));
        CASE("... three seconds is not");
        st.st_ino = 4;
        st.st_ctim = (struct timespec){start.tv_sec - 3, 0};
        image_statcache_put(c, &st, &start, d);
        CHECK(image_statcache_get(c, &st, got));
        image_statcache_free(c);
        drop_store(s);
}

TEST(statcache_persists_per_context)
{
        struct image_store *s = fresh_store();
        struct image_statcache *c = image_statcache_open(s, "/ctx/one", NULL), *c2 = NULL;
        time_t old = time(NULL) - 3600;
        struct stat a = file_stat(1, 10, old, old), b = file_stat(2, 20, old, old);
        char da[KDIGEST_STRLEN], db[KDIGEST_STRLEN], got[KDIGEST_STRLEN], p[256];
        struct kerr *err = NULL;

        digest_of("a", da);
        digest_of("b", db);
        image_statcache_put(c, &a, read_now(), da);
        CHECK(image_statcache_save(c, NULL) == 0);
        image_statcache_free(c);

        CASE("a saved table is loaded by the next build of that context");
        c = image_statcache_open(s, "/ctx/one", NULL);
        CHECK(c && image_statcache_get(c, &a, got));
        CHECK_STREQ(got, da);

        CASE("another context has its own table");
        c2 = image_statcache_open(s, "/ctx/two", NULL);
        CHECK(c2 && !image_statcache_get(c2, &a, got));

        CASE("two builds saving the same table keep both their records");
        image_statcache_put(c, &b, read_now(), db);
        image_statcache_put(c2, &b, read_now(), db);
        image_statcache_free(c2);
        c2 = image_statcache_open(s, "/ctx/one", NULL);
        {
                struct stat a2 = a;
                char d2[KDIGEST_STRLEN];

                a2.st_ino = 3;
                digest_of("a2", d2);
                image_statcache_put(c2, &a2, read_now(), d2);
                CHECK(image_statcache_save(c2, NULL) == 0);
                CHECK(image_statcache_save(c, NULL) == 0);
                image_statcache_free(c);
                image_statcache_free(c2);
                c = image_statcache_open(s, "/ctx/one", NULL);
                CHECK(image_statcache_get(c, &a, got));
                CHECK(image_statcache_get(c, &b, got));
                CHECK(image_statcache_get(c, &a2, got));
                CHECK_STREQ(got, d2);
        }
        image_statcache_free(c);

        CASE("a damaged table reads as empty, and is replaced on save");
        {
                char cmd[512];
                FILE *f;

                snprintf(cmd, sizeof(cmd), "ls %s/statcache | grep -v lock | head -1", root);
                f = popen(cmd, "re");
                CHECK(f && fgets(p, sizeof(p), f));
                if (f)
                        pclose(f);
                p[strcspn(p, "\n")] = '\0';
                snprintf(cmd, sizeof(cmd),
                         "printf X | dd of=%s/statcache/%s bs=1 seek=40 conv=notrunc 2>/dev/null",
                         root, p);
                CHECK(system(cmd) == 0);
        }
        c = image_statcache_open(s, "/ctx/one", &err);
        CHECK(c != NULL);
        CHECK(c && !image_statcache_get(c, &a, got));
        image_statcache_put(c, &a, read_now(), da);
        CHECK(image_statcache_save(c, NULL) == 0);
        image_statcache_free(c);
        c = image_statcache_open(s, "/ctx/one", NULL);
        CHECK(c && image_statcache_get(c, &a, got));
        image_statcache_free(c);
        kerr_free(err);
        drop_store(s);
}

TEST(statcache_prune_drops_tables_of_gone_contexts)
{
        struct image_store *s = fresh_store();
        char dir[128], got[KDIGEST_STRLEN], d[KDIGEST_STRLEN];
        time_t old = time(NULL) - 3600;
        struct stat a = file_stat(1, 10, old, old);
        struct image_statcache *c;

        snprintf(dir, sizeof(dir), "%s/ctx", root);
        CHECK(mkdir(dir, 0755) == 0);
        digest_of("a", d);
        c = image_statcache_open(s, dir, NULL);
        image_statcache_put(c, &a, read_now(), d);
        CHECK(image_statcache_save(c, NULL) == 0);
        image_statcache_free(c);
        c = image_statcache_open(s, "/no/such/context", NULL);
        image_statcache_put(c, &a, read_now(), d);
        CHECK(image_statcache_save(c, NULL) == 0);
        image_statcache_free(c);

        CHECK(image_store_prune(s, NULL) == 0);
        c = image_statcache_open(s, dir, NULL);
        CHECK(image_statcache_get(c, &a, got));
        image_statcache_free(c);
        c = image_statcache_open(s, "/no/such/context", NULL);
        CHECK(!image_statcache_get(c, &a, got));
        image_statcache_free(c);
        drop_store(s);
}
