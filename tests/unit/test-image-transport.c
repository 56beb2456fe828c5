/* SPDX-License-Identifier: Apache-2.0 */
/* The transports in process: export and import round trips through each of them, an
 * existing OCI layout kept when adding to it, and hostile or damaged input refused with the
 * name of what is wrong and nothing written outside the store. */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "tap.h"

struct fixture {
        char dir[64];   /* scratch */
        char root[128]; /* the store */
        struct image_store *s;
        char id[KDIGEST_STRLEN];
};

static int null_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        (void)ctx;
        (void)p;
        (void)n;
        (void)err;
        return 0;
}

static void put(int dirfd, const char *name, const char *text)
{
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0 || kfs_write_all(fd, text, strlen(text)) < 0)
                abort();
        kfs_close(fd);
}

static struct image_store *open_store(const char *path)
{
        struct kerr *err = NULL;
        struct image_store *s = image_store_open(path, 0, &err);

        if (!s) {
                printf("# %s\n", err->msg);
                abort();
        }
        return s;
}

/* A store holding a two-layer image named localhost/t:latest. */
static void setup(struct fixture *f)
{
        struct image_config *c = image_config_new();
        char chain[KDIGEST_STRLEN] = "";
        struct kbuf cfg = KBUF_INIT;
        struct kerr *err = NULL;
        const char *name = "localhost/t:latest";

        snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-test-transport-XXXXXX");
        if (!mkdtemp(f->dir))
                abort();
        snprintf(f->root, sizeof(f->root), "%s/store", f->dir);
        f->s = open_store(f->root);
        c->architecture = strdup("amd64");
        c->os = strdup("linux");
        for (int i = 0; i < 2; i++) {
                struct image_tar_opts o = {.clamp_mtime = -1};
                char *dir = NULL, diff_id[KDIGEST_STRLEN];
                uint64_t size;
                int fd;

                if (image_store_mkdtemp(f->s, &dir, &err) < 0)
                        abort();
                fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                put(fd, i ? "two" : "one", i ? "second\n" : "first\n");
                if (image_layer_tar(fd, &o, null_sink, NULL, diff_id, &size, &err) < 0 ||
                    image_layer_commit(f->s, chain, diff_id, size, dir, chain, &err) < 0) {
                        printf("# %s\n", err->msg);
                        abort();
                }
                kfs_close(fd);
                free(dir);
                image_config_add_diff_id(c, diff_id);
        }
        if (image_config_serialize(c, &cfg, &err) < 0 ||
            image_blob_put(f->s, cfg.data, cfg.len, f->id, &err) < 0 ||
            image_index_add(f->s, f->id, &name, 1, &err) < 0)
                abort();
        kbuf_release(&cfg);
        image_config_free(c);
}

static void teardown(struct fixture *f)
{
        image_store_free(f->s);
        image_store_rmtree(f->dir, NULL);
}

/* Imports ref into a fresh store under f->dir; returns 0 and the id, or the error. */
static int import_fresh(struct fixture *f, const char *ref, char id[KDIGEST_STRLEN],
                        struct kerr **err)
{
        char root[160];
        struct image_store *s;
        int r;

        snprintf(root, sizeof(root), "%s/store2", f->dir);
        image_store_rmtree(root, NULL);
        s = open_store(root);
        r = image_import(s, ref, id, err);
        image_store_free(s);
        return r;
}

/* "KIND:<dir>/FILE<rest>" */
static char *ref(struct fixture *f, const char *kind, const char *file, const char *rest)
{
        char *r = NULL;

        if (asprintf(&r, "%s:%s/%s%s", kind, f->dir, file, rest) < 0)
                abort();
        return r;
}

TEST(is_transport)
{
        CHECK(image_is_transport("oci:/x"));
        CHECK(image_is_transport("oci-archive:/x.tar:tag"));
        CHECK(image_is_transport("docker-archive:/x.tar"));
        CHECK(!image_is_transport("docker://busybox"));
        CHECK(!image_is_transport("busybox"));
        CHECK(!image_is_transport("oci"));
        CHECK(!image_is_transport(NULL));
}

TEST(round_trips)
{
        static const char *const kinds[][2] = {
                {"oci", "layout"},
                {"oci-archive", "img.tar"},
                {"docker-archive", "docker.tar"},
        };
        struct fixture f;

        setup(&f);
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
                for (int tagged = 0; tagged < 2; tagged++) {
                        const char *tag = i == 2 ? ":localhost/t:latest" : ":v1";
                        char *r = ref(&f, kinds[i][0], kinds[i][1], tagged ? tag : "");
                        struct image_export_opts o = {.compression = IMAGE_COMPRESSION_GZIP};
                        char m[KDIGEST_STRLEN] = "", id[KDIGEST_STRLEN] = "";
                        struct kerr *err = NULL;

                        CASE("%s", r);
                        CHECK(image_export(f.s, f.id, r, &o, m, &err) == 0);
                        if (err)
                                printf("# %s\n", err->msg);
                        kerr_free(err);
                        err = NULL;
                        CHECK(m[0] != 0);
                        CHECK(import_fresh(&f, r, id, &err) == 0);
                        if (err)
                                printf("# %s\n", err->msg);
                        kerr_free(err);
                        CHECK_STREQ(id, f.id);
                        free(r);
                }
        }
        teardown(&f);
}

TEST(export_by_name_and_zstd)
{
        struct fixture f;
        struct image_export_opts o = {.compression = IMAGE_COMPRESSION_ZSTD};
        char *r, m[KDIGEST_STRLEN], m2[KDIGEST_STRLEN], id[KDIGEST_STRLEN];
        struct kerr *err = NULL;

        setup(&f);
        r = ref(&f, "oci", "z", ":z");
        CHECK(image_export(f.s, "localhost/t:latest", r, &o, m, &err) == 0);
        CHECK(import_fresh(&f, r, id, &err) == 0);
        CHECK_STREQ(id, f.id);
        /* The compressed blobs are kept: a second export makes the same manifest. */
        CHECK(image_export(f.s, f.id, r, &o, m2, &err) == 0);
        CHECK_STREQ(m2, m);
        kerr_free(err);
        free(r);
        teardown(&f);
}

/* A docker schema 2 manifest cannot name a zstd layer: the export is refused before
 * anything is written. A docker archive is not compressed, so it takes the option. */
TEST(docker_format_refuses_zstd)
{
        struct fixture f;
        struct image_export_opts o = {.format = IMAGE_FORMAT_DOCKER,
                                      .compression = IMAGE_COMPRESSION_ZSTD};
        char *r, *a, m[KDIGEST_STRLEN], path[160];
        struct kerr *err = NULL;

        setup(&f);
        r = ref(&f, "oci", "layout", ":z");
        CHECK(image_export(f.s, f.id, r, &o, m, &err) < 0);
        CHECK(err && err->code == KERR_INVALID && strstr(err->msg, "no zstd layer type"));
        kerr_free(err);
        err = NULL;
        snprintf(path, sizeof(path), "%s/layout", f.dir);
        CHECK(access(path, F_OK) < 0);
        free(r);
        r = ref(&f, "oci-archive", "img.tar", ":z");
        CHECK(image_export(f.s, f.id, r, &o, m, NULL) < 0);
        snprintf(path, sizeof(path), "%s/img.tar", f.dir);
        CHECK(access(path, F_OK) < 0);
        a = ref(&f, "docker-archive", "docker.tar", "");
        CHECK(image_export(f.s, f.id, a, &o, m, &err) == 0);
        if (err)
                printf("# %s\n", err->msg);
        kerr_free(err);
        o.format = IMAGE_FORMAT_OCI;
        CHECK(image_export(f.s, f.id, r, &o, m, NULL) == 0);
        free(r);
        free(a);
        teardown(&f);
}

TEST(layout_keeps_other_entries)
{
        struct fixture f;
        struct image_export_opts o = {.compression = IMAGE_COMPRESSION_GZIP};
        char m1[KDIGEST_STRLEN], m2[KDIGEST_STRLEN], path[160];
        char *r1, *r2, *r3;
        struct kbuf idx = KBUF_INIT;
        int dfd;

        setup(&f);
        snprintf(path, sizeof(path), "%s/layout", f.dir);
        mkdir(path, 0755);
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        put(dfd, "index.json",
            "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
            "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
            "0000000000000000000000000000000000000000000000000000000000000000\",\"size\":1,"
            "\"annotations\":{\"org.opencontainers.image.ref.name\":\"other\"}}],"
            "\"annotations\":{\"keep\":\"me\"}}");
        r1 = ref(&f, "oci", "layout", ":a");
        r2 = ref(&f, "oci", "layout", ":b");
        r3 = ref(&f, "oci", "layout", ":a");
        CHECK(image_export(f.s, f.id, r1, &o, m1, NULL) == 0);
        CHECK(image_export(f.s, f.id, r2, &o, m2, NULL) == 0);
        o.format = IMAGE_FORMAT_DOCKER;
        CHECK(image_export(f.s, f.id, r3, &o, m2, NULL) == 0);
        CHECK(kfs_read_file(dfd, "index.json", 0, &idx, NULL) == 0);
        CHECK(idx.data && strstr(idx.data, "\"other\""));
        CHECK(idx.data && strstr(idx.data, "\"keep\":\"me\""));
        CHECK(idx.data && strstr(idx.data, "\"b\""));
        CHECK(idx.data && strstr(idx.data, "\"a\""));
        /* :a was replaced by the docker-format manifest: one entry each. */
        CHECK(idx.data && strstr(strstr(idx.data, "\"a\"") + 1, "\"a\"") == NULL);
        CHECK(idx.data && strstr(idx.data, m2));
        CHECK(idx.data && strstr(idx.data, "vnd.docker.distribution.manifest.v2+json"));
        kbuf_release(&idx);
        kfs_close(dfd);
        free(r1);
        free(r2);
        free(r3);
        teardown(&f);
}

static bool exists_at(int dirfd, const char *name)
{
        struct stat st;

        return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A pid that was just in use and is gone. */
static pid_t dead_pid(void)
{
        pid_t pid = fork();
        int st;

        if (pid == 0)
                _exit(0);
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
                abort();
        return pid;
}

/* "<final>.tmp-<pid>-<tail>" into buf, returned. */
static const char *tmpname(char *buf, size_t size, const char *final, long pid, const char *tail)
{
        snprintf(buf, size, "%s.tmp-%ld-%s", final, pid, tail);
        return buf;
}

TEST(stale_temp_files_swept)
{
        static const char hex64[] =
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        struct image_export_opts o = {.compression = IMAGE_COMPRESSION_GZIP};
        struct fixture f;
        char m[KDIGEST_STRLEN], n[256], path[160];
        long dead = dead_pid(), live = getppid(), self = getpid();
        int dfd, bfd;

        setup(&f);
        dfd = open(f.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(dfd >= 0);

        CASE("archives: a dead push's temp file beside the destination goes");
        for (int k = 0; k < 2; k++) {
                const char *file = k ? "d.tar" : "a.tar";
                char *r = ref(&f, k ? "docker-archive" : "oci-archive", file, "");

                put(dfd, tmpname(n, sizeof(n), file, dead, "0123abcd"), "x");
                CHECK(image_export(f.s, f.id, r, &o, m, NULL) == 0);
                CHECK(!exists_at(dfd, n));
                free(r);
        }
        /* What must stay: a live or our own pid, another destination, other tails, a
         * directory and a symlink of the right name. */
        put(dfd, tmpname(n, sizeof(n), "a.tar", live, "00ff"), "x");
        put(dfd, tmpname(n, sizeof(n), "a.tar", self, "00ff"), "x");
        put(dfd, tmpname(n, sizeof(n), "b.tar", dead, "00ff"), "x");
        put(dfd, tmpname(n, sizeof(n), "a.tar", dead, "notes"), "x");
        put(dfd, tmpname(n, sizeof(n), "a.tar", dead, ""), "x");
        put(dfd, tmpname(n, sizeof(n), "a.tar", dead, "0123456789abcdef0"), "x");
        put(dfd, tmpname(n, sizeof(n), "xa.tar", dead, "00ff"), "x");
        put(dfd, tmpname(n, sizeof(n), "a.tar", dead, "00ff.bak"), "x");
        CHECK(mkdirat(dfd, tmpname(n, sizeof(n), "a.tar", dead, "aa"), 0700) == 0);
        CHECK(symlinkat("a.tar", dfd, tmpname(n, sizeof(n), "a.tar", dead, "bb")) == 0);
        {
                char *r = ref(&f, "oci-archive", "a.tar", "");
                static const struct {
                        const char *file, *tail;
                        int pid; /* 0 dead, 1 live, 2 self */
                } keep[] = {
                        {"a.tar", "00ff", 1},  {"a.tar", "00ff", 2},
                        {"b.tar", "00ff", 0},  {"a.tar", "notes", 0},
                        {"a.tar", "", 0},      {"a.tar", "0123456789abcdef0", 0},
                        {"xa.tar", "00ff", 0}, {"a.tar", "aa", 0},
                        {"a.tar", "bb", 0},
                };

                CHECK(image_export(f.s, f.id, r, &o, m, NULL) == 0);
                for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
                        long pid = keep[i].pid == 0 ? dead : keep[i].pid == 1 ? live : self;

                        tmpname(n, sizeof(n), keep[i].file, pid, keep[i].tail);
                        CASE("kept: %s", n);
                        CHECK(exists_at(dfd, n));
                }
                CASE("kept: a longer name");
                CHECK(exists_at(dfd, tmpname(n, sizeof(n), "a.tar", dead, "00ff.bak")));
                CHECK(exists_at(dfd, "a.tar"));
                free(r);
        }

        CASE("oci: dead blob copies, index.json and oci-layout temps go");
        snprintf(path, sizeof(path), "%s/layout", f.dir);
        CHECK(kfs_mkdir_p(AT_FDCWD, path, 0755, NULL) == 0);
        snprintf(path, sizeof(path), "%s/layout/blobs/sha256", f.dir);
        CHECK(kfs_mkdir_p(AT_FDCWD, path, 0755, NULL) == 0);
        bfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(bfd >= 0);
        put(bfd, tmpname(n, sizeof(n), hex64, dead, "0123456789abcdef"), "x");
        put(bfd, tmpname(n, sizeof(n), hex64 + 1, dead, "00"), "x");
        put(bfd, tmpname(n, sizeof(n), hex64, live, "00"), "x");
        put(bfd, hex64, "not ours to judge");
        {
                char lay[192];
                int lfd;
                char *r = ref(&f, "oci", "layout", ":v1");

                snprintf(lay, sizeof(lay), "%s/layout", f.dir);
                lfd = open(lay, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                put(lfd, tmpname(n, sizeof(n), "index.json", dead, "1f"), "x");
                put(lfd, tmpname(n, sizeof(n), "oci-layout", dead, "2e"), "x");
                put(lfd, tmpname(n, sizeof(n), "other.json", dead, "3d"), "x");
                CHECK(image_export(f.s, f.id, r, &o, m, NULL) == 0);
                CHECK(!exists_at(lfd, tmpname(n, sizeof(n), "index.json", dead, "1f")));
                CHECK(!exists_at(lfd, tmpname(n, sizeof(n), "oci-layout", dead, "2e")));
                CHECK(exists_at(lfd, tmpname(n, sizeof(n), "other.json", dead, "3d")));
                CHECK(!exists_at(bfd, tmpname(n, sizeof(n), hex64, dead, "0123456789abcdef")));
                CHECK(exists_at(bfd, tmpname(n, sizeof(n), hex64 + 1, dead, "00")));
                CHECK(exists_at(bfd, tmpname(n, sizeof(n), hex64, live, "00")));
                CHECK(exists_at(bfd, hex64));
                kfs_close(lfd);
                free(r);
        }
        kfs_close(bfd);
        kfs_close(dfd);
        teardown(&f);
}

TEST(bad_references)
{
        struct fixture f;
        struct kerr *err = NULL;
        char id[KDIGEST_STRLEN];

        setup(&f);
        CHECK(image_export(f.s, f.id, "oci:", NULL, NULL, &err) < 0);
        CHECK(err && err->code == KERR_INVALID && strstr(err->msg, "no path"));
        kerr_free(err);
        err = NULL;
        CHECK(image_export(f.s, f.id, "dir:/tmp/x", NULL, NULL, &err) < 0);
        CHECK(err && err->code == KERR_INVALID);
        kerr_free(err);
        err = NULL;
        CHECK(image_import(f.s, "oci:/nonexistent/kiln/layout", id, &err) < 0);
        CHECK(err && err->code == KERR_NOTFOUND && strstr(err->msg, "oci:/nonexistent"));
        kerr_free(err);
        teardown(&f);
}

/* ---- hostile and damaged archives ---- */

struct member {
        const char *name;
        const char *data;    /* regular file content */
        const char *symlink; /* or a symlink */
        size_t len;          /* of data, when not strlen(data) */
};

static size_t member_len(const struct member *m)
{
        return m->len ? m->len : strlen(m->data);
}

static void write_tar(const char *path, const struct member *m, size_t n)
{
        struct archive *a = archive_write_new();

        archive_write_set_format_pax_restricted(a);
        if (archive_write_open_filename(a, path) != ARCHIVE_OK)
                abort();
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();

                archive_entry_set_pathname(e, m[i].name);
                if (m[i].symlink) {
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_symlink(e, m[i].symlink);
                } else {
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_size(e, (la_int64_t)member_len(&m[i]));
                }
                archive_entry_set_perm(e, 0644);
                archive_write_header(a, e);
                if (!m[i].symlink)
                        archive_write_data(a, m[i].data, member_len(&m[i]));
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
}

static void expect_import_error(struct fixture *f, const struct member *m, size_t n,
                                const char *kind, int code, const char *msg)
{
        char path[160], *r;
        char id[KDIGEST_STRLEN];
        struct kerr *err = NULL;
        struct stat st;

        snprintf(path, sizeof(path), "%s/in.tar", f->dir);
        write_tar(path, m, n);
        if (asprintf(&r, "%s:%s", kind, path) < 0)
                abort();
        CHECK(import_fresh(f, r, id, &err) < 0);
        CHECK(err != NULL);
        if (err) {
                CHECK_INTEQ(err->code, code);
                tap_check(strstr(err->msg, msg) != NULL, __FILE__, __LINE__,
                          "message '%s' has '%s'", err->msg, msg);
                CHECK(strstr(err->msg, r) != NULL);
        }
        kerr_free(err);
        free(r);
        snprintf(path, sizeof(path), "%s/escaped", f->dir);
        CHECK(lstat(path, &st) < 0);
        CHECK(lstat("/tmp/escaped", &st) < 0);
}

TEST(hostile_archives)
{
        struct fixture f;
        const struct member dotdot[] = {{"../escaped", "x", NULL}};
        const struct member absolute[] = {{"/tmp/escaped", "x", NULL}};
        const struct member twice[] = {{"a.json", "1", NULL}, {"./a.json", "2", NULL}};
        const struct member link_out[] = {{"c.json", NULL, "../../escaped"},
                                          {"manifest.json", "[]", NULL}};
        const struct member config_out[] = {
                {"manifest.json", "[{\"Config\":\"../x.json\",\"Layers\":[]}]", NULL}};
        const struct member loop[] = {
                {"a.json", NULL, "b.json"},
                {"b.json", NULL, "a.json"},
                {"manifest.json", "[{\"Config\":\"a.json\",\"Layers\":[]}]", NULL}};
        const struct member bad_blob[] = {
                {"oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", NULL},
                {"blobs/sha256/"
                 "0000000000000000000000000000000000000000000000000000000000000000",
                 "not what the name says", NULL}};
        const struct member no_manifest[] = {{"x.json", "{}", NULL}};
        const struct member dup_json[] = {
                {"manifest.json", "[{\"Config\":\"x.json\",\"Config\":\"y.json\"}]", NULL}};

        setup(&f);
        CASE("..");
        expect_import_error(&f, dotdot, 1, "docker-archive", KERR_INVALID, "'../escaped'");
        CASE("absolute");
        expect_import_error(&f, absolute, 1, "oci-archive", KERR_INVALID, "'/tmp/escaped'");
        CASE("twice");
        expect_import_error(&f, twice, 2, "docker-archive", KERR_INVALID, "appears twice");
        CASE("symlink out");
        expect_import_error(&f, link_out, 2, "docker-archive", KERR_INVALID,
                            "'c.json' links outside the archive");
        CASE("config out");
        expect_import_error(&f, config_out, 1, "docker-archive", KERR_INVALID,
                            "invalid file name '../x.json'");
        CASE("link loop");
        expect_import_error(&f, loop, 3, "docker-archive", KERR_INVALID, "too many levels");
        CASE("bad blob");
        expect_import_error(&f, bad_blob, 2, "oci-archive", KERR_DIGEST, "blobs/sha256/0000");
        CASE("no manifest.json");
        expect_import_error(&f, no_manifest, 1, "docker-archive", KERR_NOTFOUND,
                            "no 'manifest.json'");
        CASE("duplicate key");
        expect_import_error(&f, dup_json, 1, "docker-archive", KERR_PARSE, "duplicate");
        teardown(&f);
}

/* A docker archive whose config claims another diff_id than its layer gives. */
TEST(diff_id_mismatch)
{
        struct fixture f;
        static const char zeros[1024];
        char cfg[512];
        const struct member m[] = {
                {"manifest.json", "[{\"Config\":\"c.json\",\"Layers\":[\"l.tar\"]}]", NULL},
                {"c.json", cfg, NULL},
                /* an empty tar: two zero blocks */
                {"l.tar", zeros, NULL, sizeof(zeros)},
        };

        setup(&f);
        snprintf(cfg, sizeof(cfg),
                 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                 "\"diff_ids\":[\"sha256:%064d\"]}}",
                 0);
        expect_import_error(&f, m, 3, "docker-archive", KERR_DIGEST, "unpacks to");
        teardown(&f);
}

/* A docker archive with a damaged copy of a layer the store already has is refused too:
 * the store's good copy does not vouch for the archive. */
TEST(damaged_layer_for_a_known_layer)
{
        struct fixture f;
        static const char zeros[1024];
        char cfg[512], path[160], id[KDIGEST_STRLEN], *r;
        const struct member m[] = {
                {"manifest.json", "[{\"Config\":\"c.json\",\"Layers\":[\"l.tar\"]}]", NULL},
                {"c.json", cfg, NULL},
                {"l.tar", zeros, NULL, sizeof(zeros)},
        };
        struct image_config *c;
        struct kbuf b = KBUF_INIT;
        struct kerr *err = NULL;

        setup(&f);
        CHECK(image_blob_read(f.s, f.id, 1u << 20, &b, NULL) == 0);
        c = image_config_parse(b.data, b.len, f.id, NULL);
        CHECK(c && c->n_diff_ids == 2);
        if (!c)
                return;
        snprintf(cfg, sizeof(cfg),
                 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                 "\"diff_ids\":[\"%s\"]}}",
                 c->diff_ids[0]);
        image_config_free(c);
        kbuf_release(&b);
        snprintf(path, sizeof(path), "%s/in.tar", f.dir);
        write_tar(path, m, 3);
        if (asprintf(&r, "docker-archive:%s", path) < 0)
                abort();
        CHECK(image_import(f.s, r, id, &err) < 0);
        CHECK(err && err->code == KERR_DIGEST && strstr(err->msg, "unpacks to"));
        kerr_free(err);
        free(r);
        teardown(&f);
}

/* A layer imported from a tar that kiln's writer would not make of its directory (names
 * out of order, no directory entries) still exports, in any form, with its diff_id. */
TEST(foreign_layer_tar_exports)
{
        struct fixture f;
        const struct member files[] = {{"b/x", "1\n", NULL}, {"a/y", "2\n", NULL}};
        struct image_export_opts o = {.compression = IMAGE_COMPRESSION_GZIP};
        struct kbuf lt = KBUF_INIT;
        char cfg[512], path[160], diff_id[KDIGEST_STRLEN], id[KDIGEST_STRLEN], id2[KDIGEST_STRLEN];
        char m[KDIGEST_STRLEN], *r;
        struct kerr *err = NULL;
        int dfd;

        setup(&f);
        snprintf(path, sizeof(path), "%s/layer.tar", f.dir);
        write_tar(path, files, 2);
        dfd = open(f.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(kfs_read_file(dfd, "layer.tar", 0, &lt, NULL) == 0);
        kfs_close(dfd);
        CHECK(kdigest_buf(lt.data, lt.len, diff_id, NULL) == 0);
        snprintf(cfg, sizeof(cfg),
                 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                 "\"diff_ids\":[\"%s\"]}}",
                 diff_id);
        {
                const struct member m2[] = {
                        {"manifest.json", "[{\"Config\":\"c.json\",\"Layers\":[\"l.tar\"]}]", NULL},
                        {"c.json", cfg, NULL},
                        {"l.tar", lt.data, NULL, lt.len},
                };
                snprintf(path, sizeof(path), "%s/in.tar", f.dir);
                write_tar(path, m2, 3);
        }
        if (asprintf(&r, "docker-archive:%s", path) < 0)
                abort();
        CHECK(image_import(f.s, r, id, &err) == 0);
        free(r);
        r = ref(&f, "oci", "out", ":gz");
        CHECK(image_export(f.s, id, r, &o, m, &err) == 0);
        CHECK(import_fresh(&f, r, id2, &err) == 0 && strcmp(id, id2) == 0);
        free(r);
        r = ref(&f, "docker-archive", "out.tar", "");
        CHECK(image_export(f.s, id, r, NULL, m, &err) == 0);
        CHECK(import_fresh(&f, r, id2, &err) == 0 && strcmp(id, id2) == 0);
        if (err)
                printf("# %s\n", err->msg);
        kerr_free(err);
        free(r);
        kbuf_release(&lt);
        teardown(&f);
}

TEST(corrupt_oci_layout_blob)
{
        struct fixture f;
        struct image_export_opts o = {.compression = IMAGE_COMPRESSION_GZIP};
        char m[KDIGEST_STRLEN], id[KDIGEST_STRLEN], path[256];
        struct kerr *err = NULL;
        char *r;
        int fd;

        setup(&f);
        r = ref(&f, "oci", "layout", ":v1");
        CHECK(image_export(f.s, f.id, r, &o, m, NULL) == 0);
        /* The config blob, rewritten with other bytes. */
        snprintf(path, sizeof(path), "%s/layout/blobs/sha256/%s", f.dir, kdigest_hex(f.id));
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        CHECK(fd >= 0);
        if (fd >= 0) {
                CHECK(kfs_write_all(fd, "{}", 2) == 0);
                kfs_close(fd);
        }
        CHECK(import_fresh(&f, r, id, &err) < 0);
        CHECK(err && err->code == KERR_DIGEST && strstr(err->msg, kdigest_hex(f.id)));
        kerr_free(err);
        free(r);
        teardown(&f);
}

static const char *host_arch(void)
{
#if defined(__x86_64__)
        return "amd64";
#elif defined(__aarch64__)
        return "arm64";
#else
        return "unknown";
#endif
}

/* index.json -> an image index -> this platform's manifest, as `skopeo copy --all` lays
 * out a multi-platform image. */
TEST(nested_index_picks_this_platform)
{
        struct fixture f;
        struct image_export_opts o = {.compression = IMAGE_COMPRESSION_GZIP};
        char m[KDIGEST_STRLEN], id[KDIGEST_STRLEN], idxd[KDIGEST_STRLEN], path[256];
        struct kbuf idx = KBUF_INIT, top = KBUF_INIT;
        uint64_t msize = 0;
        struct kerr *err = NULL;
        char *r;
        int dfd;

        setup(&f);
        r = ref(&f, "oci", "layout", ":plain");
        CHECK(image_export(f.s, f.id, r, &o, m, NULL) == 0);
        free(r);
        CHECK(image_blob_size(f.s, m, &msize, NULL) == 0);
        kbuf_printf(&idx,
                    "{\"schemaVersion\":2,\"mediaType\":\"" IMAGE_MT_OCI_INDEX "\",\"manifests\":["
                    "{\"mediaType\":\"" IMAGE_MT_OCI_MANIFEST "\",\"digest\":\"sha256:%064d\","
                    "\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"s390x\"}},"
                    "{\"mediaType\":\"" IMAGE_MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%llu,"
                    "\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}}]}",
                    0, m, (unsigned long long)msize, host_arch());
        CHECK(kdigest_buf(idx.data, idx.len, idxd, NULL) == 0);
        snprintf(path, sizeof(path), "%s/layout", f.dir);
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        snprintf(path, sizeof(path), "blobs/sha256/%s", kdigest_hex(idxd));
        CHECK(kfs_write_atomic(dfd, path, idx.data, idx.len, 0644, NULL) == 0);
        kbuf_printf(&top,
                    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" IMAGE_MT_OCI_INDEX
                    "\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":{"
                    "\"org.opencontainers.image.ref.name\":\"multi\"}}]}",
                    idxd, idx.len);
        CHECK(kfs_write_atomic(dfd, "index.json", top.data, top.len, 0644, NULL) == 0);
        r = ref(&f, "oci", "layout", ":multi");
        CHECK(import_fresh(&f, r, id, &err) == 0);
        if (err)
                printf("# %s\n", err->msg);
        kerr_free(err);
        CHECK_STREQ(id, f.id);
        free(r);

        /* Without oci-layout it is not an image layout. */
        CHECK(unlinkat(dfd, "oci-layout", 0) == 0);
        r = ref(&f, "oci", "layout", ":multi");
        err = NULL;
        CHECK(import_fresh(&f, r, id, &err) < 0);
        CHECK(err && strstr(err->msg, "oci-layout"));
        kerr_free(err);
        free(r);
        kfs_close(dfd);
        kbuf_release(&idx);
        kbuf_release(&top);
        teardown(&f);
}

static int kbuf_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        (void)err;
        kbuf_append(ctx, p, n);
        return 0;
}

/* A manifest that calls some other blob a form of a layer the store already has must not
 * get that blob recorded (the next export would ship it). */
TEST(lying_manifest_for_a_known_layer)
{
        static const char zeros[1024];
        struct fixture f;
        struct image_export_opts o = {.compression = IMAGE_COMPRESSION_GZIP};
        char m[KDIGEST_STRLEN], id[KDIGEST_STRLEN], fake[KDIGEST_STRLEN], md[KDIGEST_STRLEN];
        char path[256];
        struct kbuf gz = KBUF_INIT, man = KBUF_INIT, top = KBUF_INIT;
        struct image_compressor *z;
        struct image_manifest *mf;
        struct kerr *err = NULL;
        char *r;
        int dfd;

        setup(&f);
        r = ref(&f, "oci", "layout", ":v1");
        CHECK(image_export(f.s, f.id, r, &o, m, NULL) == 0);
        free(r);
        z = image_compressor_new(IMAGE_COMPRESSION_GZIP, 0, 1, kbuf_sink, &gz, NULL);
        CHECK(z && image_compressor_write(z, zeros, sizeof(zeros), NULL) == 0 &&
              image_compressor_finish(z, NULL) == 0);
        image_compressor_free(z);
        CHECK(kdigest_buf(gz.data, gz.len, fake, NULL) == 0);
        snprintf(path, sizeof(path), "%s/layout", f.dir);
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        snprintf(path, sizeof(path), "blobs/sha256/%s", kdigest_hex(fake));
        CHECK(kfs_write_atomic(dfd, path, gz.data, gz.len, 0644, NULL) == 0);
        snprintf(path, sizeof(path), "blobs/sha256/%s", kdigest_hex(m));
        CHECK(kfs_read_file(dfd, path, 0, &man, NULL) == 0);
        mf = image_manifest_parse(man.data, man.len, "m", NULL);
        CHECK(mf != NULL);
        if (!mf)
                return;
        memcpy(mf->layers[0].digest, fake, KDIGEST_STRLEN);
        mf->layers[0].size = gz.len;
        kbuf_truncate(&man, 0);
        CHECK(image_manifest_serialize(mf, &man, NULL) == 0);
        image_manifest_free(mf);
        CHECK(kdigest_buf(man.data, man.len, md, NULL) == 0);
        snprintf(path, sizeof(path), "blobs/sha256/%s", kdigest_hex(md));
        CHECK(kfs_write_atomic(dfd, path, man.data, man.len, 0644, NULL) == 0);
        kbuf_printf(&top,
                    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" IMAGE_MT_OCI_MANIFEST
                    "\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":{"
                    "\"org.opencontainers.image.ref.name\":\"evil\"}}]}",
                    md, man.len);
        CHECK(kfs_write_atomic(dfd, "index.json", top.data, top.len, 0644, NULL) == 0);
        r = ref(&f, "oci", "layout", ":evil");
        /* Into the store that has the layers: nothing is applied, the blob is checked. */
        CHECK(image_import(f.s, r, id, &err) < 0);
        CHECK(err && err->code == KERR_DIGEST && strstr(err->msg, fake) &&
              strstr(err->msg, "unpacks to"));
        kerr_free(err);
        err = NULL;
        /* Into a fresh store: the layer is applied and found wrong. */
        CHECK(import_fresh(&f, r, id, &err) < 0);
        CHECK(err && err->code == KERR_DIGEST && strstr(err->msg, "unpacks to"));
        kerr_free(err);
        free(r);
        kfs_close(dfd);
        kbuf_release(&gz);
        kbuf_release(&man);
        kbuf_release(&top);
        teardown(&f);
}
