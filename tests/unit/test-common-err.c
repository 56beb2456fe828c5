/* SPDX-License-Identifier: Apache-2.0 */
#include "common/err.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/kjson.h"
#include "tap.h"

static int inner(struct kerr **err)
{
        return kerr_set(err, ENOENT, KERR_IO, "open '%s'", "blobs/x");
}

static int outer(struct kerr **err)
{
        if (inner(err) < 0)
                return kerr_wrap(err, "read blob %s", "sha256:ab");
        return 0;
}

TEST(err_wrap_chains_context)
{
        struct kerr *err = NULL;
        char *msg;

        CHECK(outer(&err) < 0);
        CHECK_INTEQ(err->errnum, ENOENT);
        CHECK_INTEQ(err->code, KERR_IO);
        msg = kerr_format(err);
        CHECK_STREQ(msg, "read blob sha256:ab: open 'blobs/x': No such file or directory");
        free(msg);
        kerr_free(err);
}

TEST(err_position_prefix)
{
        struct kerr *err = NULL;
        char *msg;

        kerr_set_at(&err, KERR_PARSE, "Containerfile", 12, 5, "unknown instruction '%s'", "RUNN");
        msg = kerr_format(err);
        CHECK_STREQ(msg, "Containerfile:12:5: unknown instruction 'RUNN'");
        free(msg);
        kerr_set_at(&err, KERR_PARSE, "f", 3, 0, "bad");
        msg = kerr_format(err);
        CHECK_STREQ(msg, "f:3: bad");
        free(msg);
        kerr_free(err);
}

TEST(err_null_sink_and_replace)
{
        struct kerr *err = NULL;

        CHECK(kerr_set(NULL, 0, KERR_INVALID, "ignored") < 0);
        CHECK(kerr_wrap(NULL, "ignored") < 0);
        kerr_set(&err, 0, KERR_INVALID, "first");
        kerr_set(&err, 0, KERR_NOTFOUND, "second");
        CHECK_STREQ(err->msg, "second");
        CHECK_INTEQ(err->code, KERR_NOTFOUND);
        kerr_free(err);
        kerr_free(NULL);
}

TEST(err_wrap_without_inner_is_internal)
{
        struct kerr *err = NULL;

        CHECK(kerr_wrap(&err, "context") < 0);
        CHECK_INTEQ(err->code, KERR_INTERNAL);
        CHECK(strstr(err->msg, "context") != NULL);
        kerr_free(err);
}

TEST(err_from_json_has_line_and_column)
{
        struct kerr *err = NULL;
        char *msg;

        CHECK_NULL(kjson_load("{\"a\": 1,\n \"a\": 2}", 17, "manifest.json", &err));
        CHECK_INTEQ(err->code, KERR_PARSE);
        CHECK_STREQ(err->file, "manifest.json");
        CHECK_INTEQ(err->line, 2);
        msg = kerr_format(err);
        CHECK(strstr(msg, "duplicate object key") != NULL);
        free(msg);
        kerr_free(err);
}
