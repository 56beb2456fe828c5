/* SPDX-License-Identifier: Apache-2.0 */
/* Drives the image transports for the integration tests, until kiln's own commands do:
 *
 *     mkimage-export make [NAME...]          a two-layer image with real files; prints its id
 *     mkimage-export export ID DEST [oci|docker] [gzip|zstd|none]
 *                                            prints the manifest digest
 *     mkimage-export import SRC              prints the image id
 *
 * The store is $KILN_ROOT. Layer 1: etc/hello.txt, bin/hello (0755), a symlink, a hard link,
 * an empty dir and a file owned by 1000:1000 when run as root. Layer 2 replaces
 * etc/hello.txt and adds usr/share/msg. Times are fixed, so the image id is too. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"

static int fail(const char *what, struct kerr *err)
{
        char *msg = err ? kerr_format(err) : NULL;

        fprintf(stderr, "mkimage-export: %s: %s\n", what, msg ? msg : "failed");
        free(msg);
        kerr_free(err);
        return 1;
}

static int null_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        (void)ctx;
        (void)p;
        (void)n;
        (void)err;
        return 0;
}

static int put(int dirfd, const char *path, const char *text, mode_t mode)
{
        struct timespec ts[2] = {{1700000000, 0}, {1700000000, 0}};
        int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        if (fd < 0 || kfs_write_all(fd, text, strlen(text)) < 0 || fchmod(fd, mode) < 0 ||
            futimens(fd, ts) < 0) {
                perror(path);
                return -1;
        }
        kfs_close(fd);
        return 0;
}

static int fix_time(int dirfd, const char *path)
{
        struct timespec ts[2] = {{1700000000, 0}, {1700000000, 0}};

        return utimensat(dirfd, path, ts, AT_SYMLINK_NOFOLLOW);
}

static int fill_layer(int n, int dirfd)
{
        if (n == 0) {
                if (mkdirat(dirfd, "etc", 0755) < 0 || mkdirat(dirfd, "bin", 0755) < 0 ||
                    mkdirat(dirfd, "empty", 0700) < 0 ||
                    put(dirfd, "etc/hello.txt", "hello from layer one\n", 0644) < 0 ||
                    put(dirfd, "bin/hello", "#!/bin/sh\necho hello\n", 0755) < 0 ||
                    put(dirfd, "owned", "owned by 1000\n", 0600) < 0 ||
                    symlinkat("etc/hello.txt", dirfd, "hello-link") < 0 ||
                    linkat(dirfd, "bin/hello", dirfd, "bin/hello-again", 0) < 0)
                        return -1;
                if (geteuid() == 0 && fchownat(dirfd, "owned", 1000, 1000, 0) < 0)
                        return -1;
                fix_time(dirfd, "hello-link");
                fix_time(dirfd, "etc");
                fix_time(dirfd, "bin");
                fix_time(dirfd, "empty");
                return 0;
        }
        if (mkdirat(dirfd, "etc", 0755) < 0 || mkdirat(dirfd, "usr", 0755) < 0 ||
            mkdirat(dirfd, "usr/share", 0755) < 0 ||
            put(dirfd, "etc/hello.txt", "hello from layer two\n", 0644) < 0 ||
            put(dirfd, "usr/share/msg", "a message\n", 0644) < 0)
                return -1;
        fix_time(dirfd, "usr/share");
        fix_time(dirfd, "usr");
        fix_time(dirfd, "etc");
        return 0;
}

static int make(struct image_store *s, int argc, char **argv)
{
        struct image_config *c = image_config_new();
        struct kbuf cfg = KBUF_INIT;
        struct kerr *err = NULL;
        char chain[KDIGEST_STRLEN] = "", id[KDIGEST_STRLEN];

        c->created = strdup("2024-01-01T00:00:00Z");
        c->architecture = strdup("amd64");
        c->os = strdup("linux");
        image_config_set_env(c, "PATH", "/usr/bin:/bin");
        image_config_set_label(c, "org.opencontainers.image.title", "export test");
        c->has_cmd = true;
        c->cmd = calloc(2, sizeof(char *));
        c->cmd[0] = strdup("/bin/hello");
        c->n_cmd = 1;
        c->working_dir = strdup("/");
        for (int i = 0; i < 2; i++) {
                struct image_tar_opts topts = {.clamp_mtime = -1};
                char *dir = NULL, diff_id[KDIGEST_STRLEN];
                uint64_t size = 0;
                int fd;

                if (image_store_mkdtemp(s, &dir, &err) < 0)
                        return fail("mkdtemp", err);
                fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0 || fill_layer(i, fd) < 0) {
                        perror(dir);
                        return 1;
                }
                if (image_layer_tar(fd, &topts, null_sink, NULL, diff_id, &size, &err) < 0)
                        return fail("tar", err);
                kfs_close(fd);
                if (image_layer_commit(s, chain, diff_id, size, dir, chain, &err) < 0)
                        return fail("commit", err);
                image_config_add_diff_id(c, diff_id);
                image_config_add_history(c, "2024-01-01T00:00:00Z", i ? "COPY two /" : "COPY one /",
                                         false);
                free(dir);
        }
        image_config_add_history(c, "2024-01-01T00:00:00Z", "CMD [\"/bin/hello\"]", true);
        if (image_config_serialize(c, &cfg, &err) < 0)
                return fail("serialize", err);
        if (image_blob_put(s, cfg.data, cfg.len, id, &err) < 0 ||
            image_index_add(s, id, (const char *const *)argv, (size_t)argc, &err) < 0)
                return fail("store", err);
        printf("%s\n", id);
        kbuf_release(&cfg);
        image_config_free(c);
        return 0;
}

int main(int argc, char **argv)
{
        struct kerr *err = NULL;
        struct image_store *s;
        int r = 2;

        if (argc < 2)
                return 2;
        s = image_store_open(getenv("KILN_ROOT"), IMAGE_STORE_LEASE, &err);
        if (!s)
                return fail("open the store", err);
        if (strcmp(argv[1], "make") == 0) {
                r = make(s, argc - 2, argv + 2);
        } else if (strcmp(argv[1], "export") == 0 && argc >= 4) {
                struct image_export_opts o = {.compression = IMAGE_COMPRESSION_GZIP};
                char m[KDIGEST_STRLEN];

                if (argc > 4 && strcmp(argv[4], "docker") == 0)
                        o.format = IMAGE_FORMAT_DOCKER;
                if (argc > 5)
                        o.compression = strcmp(argv[5], "zstd") == 0   ? IMAGE_COMPRESSION_ZSTD
                                        : strcmp(argv[5], "none") == 0 ? IMAGE_COMPRESSION_NONE
                                                                       : IMAGE_COMPRESSION_GZIP;
                r = image_export(s, argv[2], argv[3], &o, m, &err) < 0 ? fail("export", err) : 0;
                if (r == 0)
                        printf("%s\n", m);
        } else if (strcmp(argv[1], "import") == 0 && argc == 3) {
                char id[KDIGEST_STRLEN];

                r = image_import(s, argv[2], id, &err) < 0 ? fail("import", err) : 0;
                if (r == 0)
                        printf("%s\n", id);
        }
        image_store_free(s);
        return r;
}
