/* SPDX-License-Identifier: Apache-2.0 */
/* Step cache keys: what changes a key and what does not, on real build contexts. */
#include "builder/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"
#include "tap.h"

static char base[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
        char cmd[4096];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        return system(cmd);
}

static void setup(void)
{
        snprintf(base, sizeof(base), "/tmp/kiln-test-bcache-XXXXXX");
        if (!mkdtemp(base))
                abort();
        if (sh("cd %s && mkdir -p ctx/src ctx/logs && printf 'int main;\\n' >ctx/src/main.c && "
               "printf 'hdr\\n' >ctx/src/main.h && printf 'a\\n' >ctx/a.txt && "
               "printf 'log\\n' >ctx/logs/x.log && ln -s a.txt ctx/link && "
               "printf 'logs\\n' >ctx/.dockerignore",
               base) != 0)
                abort();
}

static void teardown(void)
{
        sh("rm -rf %s", base);
}

/* The key of "COPY <srcs> /app/" from the context (parent "", no flags); *hashed (may be
 * NULL) is how many files had to be read. sc may be NULL. */
static int copy_key(const char *const *srcs, size_t n, const char *const *excludes, size_t n_ex,
                    struct image_statcache *sc, char out[KDIGEST_STRLEN], size_t *hashed,
                    char **inputs)
{
        char p[128];
        struct kerr *err = NULL;
        struct builder_context *c;
        struct builder_key k;
        struct builder_copy_src src = {0};
        struct builder_copy_opts o = {.srcs = srcs, .n_srcs = n, .dest = "/app/"};
        struct builder_hash_job *job = NULL;
        size_t left;
        int r = -1;

        o.excludes = excludes;
        o.n_excludes = n_ex;
        snprintf(p, sizeof(p), "%s/ctx", base);
        c = builder_context_open(p, NULL, &err);
        if (!c) {
                fprintf(stderr, "# %s\n", err->msg);
                kerr_free(err);
                return -1;
        }
        src.context = c;
        if (builder_key_begin(&k, "", "COPY . /app/", &err) < 0 ||
            builder_key_scan(&k, &src, &o, &err) < 0)
                goto out;
        left = builder_key_known(&k, sc);
        if (hashed)
                *hashed = left;
        if (builder_hash_start(&k, c, 2, &job, &err) < 0 ||
            builder_hash_finish(job, sc, &err) < 0 || builder_key_finish(&k, out, inputs, &err) < 0)
                goto out;
        r = 0;
out:
        if (err) {
                fprintf(stderr, "# %s\n", err->msg);
                kerr_free(err);
        }
        builder_key_release(&k);
        builder_context_free(c);
        return r;
}

static const char *const dot[] = {"."};

TEST(key_partial_covers_parent_and_text)
{
        struct builder_key a, b, c;
        char ka[KDIGEST_STRLEN], kb[KDIGEST_STRLEN], kc[KDIGEST_STRLEN];

        CHECK(builder_key_begin(&a, "sha256:aa", "ENV A=1", NULL) == 0);
        CHECK(builder_key_begin(&b, "sha256:aa", "ENV A=1", NULL) == 0);
        CHECK(builder_key_begin(&c, "sha256:bb", "ENV A=1", NULL) == 0);
        CHECK_STREQ(a.partial, b.partial);
        CHECK(strcmp(a.partial, c.partial) != 0);
        CHECK(builder_key_finish(&a, ka, NULL, NULL) == 0);
        CHECK(builder_key_finish(&b, kb, NULL, NULL) == 0);
        CHECK(builder_key_finish(&c, kc, NULL, NULL) == 0);
        CHECK_STREQ(ka, kb);
        CHECK(strcmp(ka, kc) != 0);
        builder_key_release(&a);
        builder_key_release(&b);
        builder_key_release(&c);

        CASE("the instruction text counts");
        CHECK(builder_key_begin(&a, "", "LABEL a=1", NULL) == 0);
        CHECK(builder_key_begin(&b, "", "LABEL a=2", NULL) == 0);
        CHECK(strcmp(a.partial, b.partial) != 0);
        builder_key_release(&a);
        builder_key_release(&b);
}

TEST(key_values_are_unambiguous)
{
        struct builder_key a, b;
        char ka[KDIGEST_STRLEN], kb[KDIGEST_STRLEN];

        CASE("two words are not one word with a newline");
        builder_key_begin(&a, "", "X", NULL);
        builder_key_begin(&b, "", "X", NULL);
        builder_key_add_value(&a, "x");
        builder_key_add_value(&a, "y");
        builder_key_add_value(&b, "x\nvalue\t2\ty");
        CHECK(builder_key_finish(&a, ka, NULL, NULL) == 0);
        CHECK(builder_key_finish(&b, kb, NULL, NULL) == 0);
        CHECK(strcmp(ka, kb) != 0);
        builder_key_release(&a);
        builder_key_release(&b);

        CASE("an expanded word that changed changes the key");
        builder_key_begin(&a, "", "LABEL v=$V", NULL);
        builder_key_begin(&b, "", "LABEL v=$V", NULL);
        builder_key_add_value(&a, "1");
        builder_key_add_value(&b, "2");
        builder_key_finish(&a, ka, NULL, NULL);
        builder_key_finish(&b, kb, NULL, NULL);
        CHECK(strcmp(ka, kb) != 0);
        builder_key_release(&a);
        builder_key_release(&b);
}

static void run_key(const char *const *args, size_t n_args, const char *const *env, size_t n_env,
                    char out[KDIGEST_STRLEN])
{
        struct builder_key k;

        builder_key_begin(&k, "sha256:parent", "RUN make", NULL);
        builder_key_add_run(&k, args, n_args, env, n_env);
        if (builder_key_finish(&k, out, NULL, NULL) < 0)
                abort();
        builder_key_release(&k);
}

TEST(key_of_run_covers_build_args_and_env)
{
        static const char *const args[] = {"A=1", "B=2"}, *const swapped[] = {"B=2", "A=1"};
        static const char *const changed[] = {"A=1", "B=3"}, *const fewer[] = {"A=1"};
        static const char *const env[] = {"PATH=/bin", "X=1"}, *const env2[] = {"PATH=/bin", "X=2"};
        char k[KDIGEST_STRLEN], k2[KDIGEST_STRLEN];

        run_key(args, 2, env, 2, k);
        CASE("the order of the build args does not matter");
        run_key(swapped, 2, env, 2, k2);
        CHECK_STREQ(k, k2);
        CASE("a build arg's value does");
        run_key(changed, 2, env, 2, k2);
        CHECK(strcmp(k, k2) != 0);
        CASE("so does a build arg more or less");
        run_key(fewer, 1, env, 2, k2);
        CHECK(strcmp(k, k2) != 0);
        CASE("and the environment");
        run_key(args, 2, env2, 2, k2);
        CHECK(strcmp(k, k2) != 0);
        CASE("a build arg is not an environment variable of the same value");
        {
                static const char *const as_env[] = {"PATH=/bin", "X=1", "A=1", "B=2"};

                run_key(NULL, 0, as_env, 4, k2);
                CHECK(strcmp(k, k2) != 0);
        }
}

TEST(key_of_from)
{
        char a[KDIGEST_STRLEN], b[KDIGEST_STRLEN];

        CHECK(builder_key_from("image sha256:1", "", -1, a, NULL) == 0);
        CHECK(builder_key_from("image sha256:1", "", -1, b, NULL) == 0);
        CHECK_STREQ(a, b);
        CASE("another base image, platform or timestamp is another key");
        CHECK(builder_key_from("image sha256:2", "", -1, b, NULL) == 0);
        CHECK(strcmp(a, b) != 0);
        CHECK(builder_key_from("image sha256:1", "linux/arm64", -1, b, NULL) == 0);
        CHECK(strcmp(a, b) != 0);
        CHECK(builder_key_from("image sha256:1", "", 0, b, NULL) == 0);
        CHECK(strcmp(a, b) != 0);
}

TEST(key_of_copy_follows_the_selected_files)
{
        char k0[KDIGEST_STRLEN], k[KDIGEST_STRLEN];
        char *in = NULL;

        setup();
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k0, NULL, &in) == 0);
        CASE("the inputs list the files, sorted, without the ignored ones");
        CHECK(in && strstr(in, "file\t/src/main.c\tf 0644 sha256:") != NULL);
        CHECK(in && strstr(in, "file\t/link\tl a.txt\n") != NULL);
        CHECK(in && strstr(in, "file\t/a.txt\t") < strstr(in, "file\t/src/main.c\t"));
        CHECK(in && strstr(in, "x.log") == NULL);
        free(in);

        CASE("the same context gives the same key");
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK_STREQ(k, k0);

        CASE("touching a file (mtime only) does not change it");
        CHECK(sh("touch -d '2001-01-01' %s/ctx/a.txt %s/ctx/src", base, base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK_STREQ(k, k0);

        CASE("a change to an ignored file does not change it");
        CHECK(sh("printf 'more\\n' >>%s/ctx/logs/x.log", base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK_STREQ(k, k0);

        CASE("a file's content does");
        CHECK(sh("printf 'int main(void);\\n' >%s/ctx/src/main.c", base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK(strcmp(k, k0) != 0);
        CHECK(sh("printf 'int main;\\n' >%s/ctx/src/main.c", base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK_STREQ(k, k0);

        CASE("its mode does");
        CHECK(sh("chmod 0755 %s/ctx/a.txt", base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK(strcmp(k, k0) != 0);
        CHECK(sh("chmod 0644 %s/ctx/a.txt", base) == 0);

        CASE("a symlink's target does");
        CHECK(sh("ln -sfn src %s/ctx/link", base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK(strcmp(k, k0) != 0);
        CHECK(sh("ln -sfn a.txt %s/ctx/link", base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK_STREQ(k, k0);

        CASE("a file added or removed does");
        CHECK(sh("printf 'b\\n' >%s/ctx/b.txt", base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK(strcmp(k, k0) != 0);
        CHECK(sh("rm %s/ctx/b.txt %s/ctx/a.txt", base, base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK(strcmp(k, k0) != 0);
        CHECK(sh("printf 'a\\n' >%s/ctx/a.txt", base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, NULL) == 0);
        CHECK_STREQ(k, k0);

        CASE("an ignore file that selects other files does");
        CHECK(sh("printf 'logs\\nsrc/*.h\\n' >%s/ctx/.dockerignore", base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, &in) == 0);
        CHECK(strcmp(k, k0) != 0);
        CHECK(in && strstr(in, "main.h") == NULL);
        free(in);
        in = NULL;

        CASE("a hard link is not a copy");
        CHECK(sh("printf 'logs\\n' >%s/ctx/.dockerignore && cp %s/ctx/a.txt %s/ctx/a2.txt", base,
                 base, base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k0, NULL, NULL) == 0);
        CHECK(sh("rm %s/ctx/a2.txt && ln %s/ctx/a.txt %s/ctx/a2.txt", base, base, base) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, NULL, k, NULL, &in) == 0);
        CHECK(strcmp(k, k0) != 0);
        CHECK(in && strstr(in, "file\t/a2.txt\th 0644 /a.txt\n") != NULL);
        free(in);
        in = NULL;

        CASE("only the sources count: a file outside them changes nothing");
        {
                static const char *const s[] = {"src"};
                char ks[KDIGEST_STRLEN], ks2[KDIGEST_STRLEN];

                CHECK(copy_key(s, 1, NULL, 0, NULL, ks, NULL, NULL) == 0);
                CHECK(sh("printf 'changed\\n' >%s/ctx/a.txt", base) == 0);
                CHECK(copy_key(s, 1, NULL, 0, NULL, ks2, NULL, NULL) == 0);
                CHECK_STREQ(ks, ks2);
        }

        CASE("--exclude takes files out");
        {
                static const char *const ex[] = {"src/*.h"};

                CHECK(copy_key(dot, 1, ex, 1, NULL, k, NULL, &in) == 0);
                CHECK(in && strstr(in, "main.h") == NULL && strstr(in, "main.c") != NULL);
                free(in);
                in = NULL;
        }

        CASE("a missing source fails as the copy would");
        {
                static const char *const missing[] = {"nope"};

                CHECK(copy_key(missing, 1, NULL, 0, NULL, k, NULL, NULL) < 0);
        }
        teardown();
}

TEST(key_with_the_stat_cache_reads_only_what_changed)
{
        char sroot[128], ctx[128], k0[KDIGEST_STRLEN], k[KDIGEST_STRLEN];
        struct image_store *s;
        struct image_statcache *sc;
        size_t hashed = 99;

        setup();
        snprintf(sroot, sizeof(sroot), "%s/store", base);
        snprintf(ctx, sizeof(ctx), "%s/ctx", base);
        s = image_store_open(sroot, 0, NULL);
        CHECK(s != NULL);
        if (!s) {
                teardown();
                return;
        }
        /* Files changed just before they are read are never remembered. */
        sleep(1);
        sc = image_statcache_open(s, ctx, NULL);
        CHECK(copy_key(dot, 1, NULL, 0, sc, k0, &hashed, NULL) == 0);
        CHECK_INTEQ(hashed, 4); /* a.txt main.c main.h .dockerignore */
        CHECK(image_statcache_save(sc, NULL) == 0);
        image_statcache_free(sc);

        CASE("the next build hashes nothing and gets the same key");
        sc = image_statcache_open(s, ctx, NULL);
        CHECK(copy_key(dot, 1, NULL, 0, sc, k, &hashed, NULL) == 0);
        CHECK_INTEQ(hashed, 0);
        CHECK_STREQ(k, k0);

        CASE("a rewrite with the same size and mtime is still caught (ctime)");
        CHECK(sh("cd %s && m=$(stat -c %%y src/main.c) && printf 'int mein;\\n' >src/main.c && "
                 "touch -d \"$m\" src/main.c",
                 ctx) == 0);
        CHECK(copy_key(dot, 1, NULL, 0, sc, k, &hashed, NULL) == 0);
        CHECK_INTEQ(hashed, 1);
        CHECK(strcmp(k, k0) != 0);
        image_statcache_free(sc);
        image_store_free(s);
        teardown();
}

TEST(key_hashing_matches_the_content)
{
        char p[256], want[KDIGEST_STRLEN];
        struct builder_context *c;
        struct builder_key k;
        struct builder_copy_src src = {0};
        struct builder_copy_opts o = {.srcs = dot, .n_srcs = 1, .dest = "/"};
        struct builder_hash_job *job = NULL;
        struct kbuf big = KBUF_INIT;
        bool all = true;

        setup();
        /* Enough files for every thread to take several, one larger than a read buffer. */
        CHECK(sh("cd %s/ctx && for i in $(seq 1 200); do echo \"file $i\" >f$i; done && "
                 "head -c 300000 /dev/zero | tr '\\0' x >big",
                 base) == 0);
        snprintf(p, sizeof(p), "%s/ctx", base);
        c = builder_context_open(p, NULL, NULL);
        src.context = c;
        CHECK(builder_key_begin(&k, "", "COPY . /", NULL) == 0);
        CHECK(builder_key_scan(&k, &src, &o, NULL) == 0);
        CHECK(builder_hash_start(&k, c, 3, &job, NULL) == 0);
        CHECK(builder_hash_finish(job, NULL, NULL) == 0);
        for (size_t i = 0; i < k.n_files; i++) {
                const struct builder_key_file *f = &k.files[i];
                struct kbuf data = KBUF_INIT;

                if (!S_ISREG(f->st.st_mode))
                        continue;
                snprintf(p, sizeof(p), "%s/ctx%s", base, f->path);
                if (kfs_read_file(AT_FDCWD, p, 0, &data, NULL) < 0 ||
                    kdigest_buf(data.data ? data.data : "", data.len, want, NULL) < 0 ||
                    strcmp(want, f->digest) != 0)
                        all = false;
                kbuf_release(&data);
        }
        CHECK(all);
        CHECK(k.n_files > 200);
        kbuf_release(&big);
        builder_key_release(&k);
        builder_context_free(c);
        teardown();
}

TEST(key_diff_names_what_changed)
{
        char *d;

        d = builder_key_diff("file\t/src/main.c\tf 0644 sha256:1\nfile\t/z\td 0755\n",
                             "file\t/src/main.c\tf 0644 sha256:2\nfile\t/z\td 0755\n");
        CHECK_STREQ(d, "src/main.c changed");
        free(d);
        d = builder_key_diff("file\t/a\tf 0644 sha256:1\n", "file\t/b\tf 0644 sha256:1\n");
        CHECK_STREQ(d, "a removed, b added");
        free(d);
        d = builder_key_diff("arg\tV\t1\nenv\tE\tx\n", "arg\tV\t2\nenv\tE\ty\n");
        CHECK_STREQ(d, "build arg 'V' changed, environment variable 'E' changed");
        free(d);
        d = builder_key_diff("value\t1\tv=1\n", "value\t1\tv=2\n");
        CHECK_STREQ(d, "'v=1' is now 'v=2' after expansion");
        free(d);
        d = builder_key_diff("file\t/1\td 0755\nfile\t/2\td 0755\nfile\t/3\td 0755\nfile\t/4\td "
                             "0755\n",
                             "");
        CHECK_STREQ(d, "1 removed, 2 removed, 3 removed and 1 more");
        free(d);
        d = builder_key_diff("value\t1\tx\n", "value\t1\tx\n");
        CHECK_STREQ(d, "");
        free(d);
}
