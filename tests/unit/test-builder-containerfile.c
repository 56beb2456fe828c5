/* SPDX-License-Identifier: Apache-2.0 */
#include "builder/builder.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "tap.h"

static char dir[64];

static void put(const char *name, const char *text)
{
        int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (d < 0 || kfs_write_atomic(d, name, text, strlen(text), 0644, NULL) < 0)
                abort();
        close(d);
}

static void setup(void)
{
        snprintf(dir, sizeof(dir), "/tmp/kiln-test-cf-XXXXXX");
        if (!mkdtemp(dir))
                abort();
}

static void teardown(void)
{
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                abort();
}

TEST(containerfile_preferred_over_dockerfile)
{
        struct kbuf b = KBUF_INIT;
        char *name = NULL;
        char want[128];

        setup();
        put("Dockerfile", "FROM d\n");
        CHECK(builder_read_containerfile(dir, NULL, &name, &b, NULL) == 0);
        CHECK_STREQ(b.data, "FROM d\n");
        snprintf(want, sizeof(want), "%s/Dockerfile", dir);
        CHECK_STREQ(name, want);
        free(name);
        kbuf_release(&b);
        put("Containerfile", "FROM c\n");
        CHECK(builder_read_containerfile(dir, NULL, &name, &b, NULL) == 0);
        CHECK_STREQ(b.data, "FROM c\n");
        free(name);
        kbuf_release(&b);
        teardown();
}

TEST(containerfile_explicit_file)
{
        struct kbuf b = KBUF_INIT;
        char *name = NULL;
        char path[128];

        setup();
        put("other.cf", "FROM o\n");
        snprintf(path, sizeof(path), "%s/other.cf", dir);
        CHECK(builder_read_containerfile("/nonexistent", path, &name, &b, NULL) == 0);
        CHECK_STREQ(name, path);
        CHECK_STREQ(b.data, "FROM o\n");
        free(name);
        kbuf_release(&b);
        teardown();
}

TEST(containerfile_errors_name_the_path)
{
        struct kbuf b = KBUF_INIT;
        struct kerr *err = NULL;
        char *name = NULL;

        setup();
        CHECK(builder_read_containerfile(dir, NULL, &name, &b, &err) < 0);
        CHECK_INTEQ(err->code, KERR_NOTFOUND);
        CHECK(strstr(err->msg, dir) != NULL);
        kerr_free(err);
        err = NULL;
        CHECK(builder_read_containerfile(dir, "/nonexistent/Containerfile", &name, &b, &err) < 0);
        CHECK(strstr(err->msg, "/nonexistent/Containerfile") != NULL);
        kerr_free(err);
        err = NULL;
        CHECK(builder_read_containerfile(dir, dir, &name, &b, &err) < 0);
        CHECK(strstr(err->msg, "is a directory") != NULL);
        kerr_free(err);
        err = NULL;
        CHECK(builder_read_containerfile("/nonexistent-context", NULL, &name, &b, &err) < 0);
        CHECK(strstr(err->msg, "/nonexistent-context") != NULL);
        kerr_free(err);
        CHECK_NULL(name);
        kbuf_release(&b);
        teardown();
}
