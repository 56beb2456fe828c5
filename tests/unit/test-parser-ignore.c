/* SPDX-License-Identifier: Apache-2.0 */
/* The ignore-file matcher against docker's own expectations: the rows of
 * moby/patternmatcher's TestMatches, TestMatch and the exclusion tests (as
 * MatchesOrParentMatches answers them), ignorefile's ReadAll rules, and the patterns that
 * must be refused. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "parser/parser.h"
#include "tap.h"

struct icase {
        const char *patterns[4]; /* NULL-terminated, given to parser_ignore_new */
        const char *path;
        bool excluded;
};

static const struct icase cases[] = {
        /* TestMatches */
        {{"**"}, "file", true},
        {{"**/"}, "file/", true},
        {{"**"}, "dir/file", true},
        {{"**/**"}, "dir/file", true},
        {{"dir/**"}, "dir/file", true},
        {{"dir/**"}, "dir/dir2/file", true},
        {{"**/dir"}, "dir", true},
        {{"**/dir"}, "dir/file", true},
        {{"**/dir2/*"}, "dir/dir2/file", true},
        {{"**/dir2/*"}, "dir/dir2/file/", true},
        {{"**/dir2/**"}, "dir/dir2/dir3/file", true},
        {{"**file"}, "file", true},
        {{"**file"}, "dir/file", true},
        {{"**/file"}, "dir/dir/file", true},
        {{"**/file*"}, "dir/dir/file.txt", true},
        {{"**/file*txt"}, "dir/dir/file.txt", true},
        {{"**/file*.txt*"}, "dir/dir/file.txt", true},
        {{"**/**/*.txt"}, "dir/dir/file.txt", true},
        {{"**/**/*.txt2"}, "dir/dir/file.txt", false},
        {{"**/*.txt"}, "file.txt", true},
        {{"**/**/*.txt"}, "file.txt", true},
        {{"a**/*.txt"}, "a/file.txt", true},
        {{"a**/*.txt"}, "a/dir/dir/file.txt", true},
        {{"a/*.txt"}, "a/dir/file.txt", false},
        {{"a/*.txt"}, "a/file.txt", true},
        {{"a/*.txt**"}, "a/file.txt", true},
        {{"a[b-d]e"}, "ae", false},
        {{"a[b-d]e"}, "ace", true},
        {{"a[b-d]e"}, "aae", false},
        {{"a[^b-d]e"}, "aze", true},
        {{".*"}, ".foo", true},
        {{".*"}, "foo", false},
        {{"abc.def"}, "abcdef", false},
        {{"abc.def"}, "abc.def", true},
        {{"abc.def"}, "abcZdef", false},
        {{"abc?def"}, "abcZdef", true},
        {{"abc?def"}, "abcdef", false},
        {{"**/foo/bar"}, "foo/bar", true},
        {{"**/foo/bar"}, "dir/dir2/foo/bar", true},
        {{"abc/**"}, "abc", false},
        {{"abc/**"}, "abc/def/ghi", true},
        {{"**/.foo"}, ".foo", true},
        {{"**/.foo"}, "bar.foo", false},
        {{"a(b)c/def"}, "a(b)c/def", true},
        {{"a(b)c/def"}, "a(b)c/xyz", false},
        {{"a.|)$(}+{bc"}, "a.|)$(}+{bc", true},
        {{"dist/*.whl"}, "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
        {{"a\\\\"}, "a\\", true},
        {{"a\\*b"}, "a*b", true},
        /* TestMatch (filepath.Match's table) */
        {{"abc"}, "abc", true},
        {{"*"}, "abc", true},
        {{"*c"}, "abc", true},
        {{"a*"}, "ab/c", true},
        {{"a*/b"}, "abc/b", true},
        {{"a*/b"}, "a/c/b", false},
        {{"a*b*c*d*e*/f"}, "axbxcxdxe/f", true},
        {{"a*b*c*d*e*/f"}, "axbxcxdxe/xxx/f", false},
        {{"a*b?c*x"}, "abxbbxdbxebxczzx", true},
        {{"a*b?c*x"}, "abxbbxdbxebxczzy", false},
        {{"ab[^e-g]"}, "abc", true},
        {{"ab[^b-d]"}, "abc", false},
        {{"a\\*b"}, "ab", false},
        {{"a?b"},
         "a\xe2\x98\xba"
         "b",
         true},
        {{"a???b"},
         "a\xe2\x98\xba"
         "b",
         false},
        {{"[a-\xce\xb6]*"}, "\xce\xb1", true},
        {{"*[a-\xce\xb6]"}, "A", false},
        {{"a?b"}, "a/b", false},
        {{"a*b"}, "a/b", false},
        {{"[\\]a]"}, "]", true},
        {{"[\\-]"}, "-", true},
        {{"[x\\-]"}, "-", true},
        {{"[\\-x]"}, "a", false},
        {{"*x"}, "xxx", true},
        /* exclusions, last match wins */
        {{"*"}, "fileutils.go", true},
        {{"*.go"}, "fileutils.go", true},
        {{"!fileutils.go", "*.go"}, "fileutils.go", true},
        {{"*.go", "!fileutils.go"}, "fileutils.go", false},
        {{"docs", "!docs/README.md"}, "docs/README.md", false},
        {{"docs/", "!docs/README.md"}, "docs/README.md", false},
        {{"docs/*", "!docs/README.md"}, "docs/README.md", false},
        {{"docs", "!docs/README.md"}, "docs/other.md", true},
        {{"**", "!util/docker/web"}, "util/docker/web/foo", false},
        {{"**", "!util/docker/web", "util/docker/web/foo"}, "util/docker/web/foo", true},
        {{"**", "!dist/*.whl"}, "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false},
        {{"  docs", "  !docs/README.md  "}, "docs/README.md", false},
        {{"", "docs", ""}, "docs", true},
        /* parent directories, cleaning of both sides */
        {{"docs"}, "docs/a/b/c", true},
        {{"a/b"}, "./a//b", true},
        {{"a/b"}, "a/b/../c", false},
        {{"./a/../b/"}, "b/c", true},
        {{"a/b"}, "/a/b", true},
        {{"*"}, ".", false},
        /* where docker's regexp differs from a plain glob */
        {{"a^b"}, "a^b", true},
        {{"a^b*"}, "a^bc", false},
        {{"v\\d"}, "v1", true},
        {{"v\\d"}, "vd", false},
        {{"x[*]"}, "x]", true},
        {{"x[*]"}, "x*", false},
        {{"a/**/b"}, "a/x/y/b", true},
        {{"a/**/b"}, "a/x\ny/b", false},
        {{"**/x"}, "a\nb/x", true},
        {{"[[:digit:]]*"}, "1abc", true},
};

TEST(ignore_match)
{
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct icase *c = &cases[i];
                struct parser_ignore *ig;
                struct kerr *err = NULL;
                size_t n = 0;

                while (n < 4 && c->patterns[n])
                        n++;
                CASE("%s%s%s%s -> %s", c->patterns[0], n > 1 ? ", " : "",
                     n > 1 ? c->patterns[1] : "", n > 2 ? ", ..." : "", c->path);
                ig = parser_ignore_new(c->patterns, n, &err);
                CHECK(ig != NULL);
                if (!ig) {
                        kerr_free(err);
                        continue;
                }
                CHECK_INTEQ(parser_ignore_match(ig, c->path), c->excluded);
                parser_ignore_free(ig);
        }
}

/* ReadAll's rules: whole ignore files. */
static const struct {
        const char *name;
        const char *file;
        const char *path;
        bool excluded;
} files[] = {
        {"comment line", "# x\n", "# x", false},
        {"comment only at the start of a line", " #x\n", "#x", true},
        {"comment does not end a pattern", "a # b\n", "a # b", true},
        {"leading slash is relative to the context", "/a/b\n", "a/b", true},
        {"leading slash of an exception", "*\n!/keep\n", "keep", false},
        {"space after the exclamation mark", "*\n! keep\n", "keep", false},
        {"trailing space trimmed", "a   \n", "a", true},
        {"CRLF line ends", "a\r\nb\r\n", "b", true},
        {"byte order mark",
         "\xef\xbb\xbf"
         "a\n",
         "a", true},
        {"last line without newline", "x\ny", "y", true},
        {"blank lines", "\n\n  \n\ta\n", "a", true},
        {"dot-dot cleaned", "a/../b\n", "b", true},
        {"directory and its content", "node_modules\n", "node_modules/x/y.js", true},
        {"re-included file in an excluded directory", "build\n!build/keep\n", "build/keep", false},
        {"but not its neighbour", "build\n!build/keep\n", "build/other", true},
        {"exception of a directory re-includes its content", "*\n!src\n", "src/a.c", false},
        {"excluded again after an exception", "*\n!src\nsrc/*.o\n", "src/a.o", true},
};

TEST(ignore_file)
{
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                struct parser_ignore *ig;
                struct kerr *err = NULL;

                CASE("%s", files[i].name);
                ig = parser_ignore_parse(".dockerignore", files[i].file, strlen(files[i].file),
                                         &err);
                CHECK(ig != NULL);
                if (!ig) {
                        kerr_free(err);
                        continue;
                }
                CHECK_INTEQ(parser_ignore_match(ig, files[i].path), files[i].excluded);
                parser_ignore_free(ig);
        }
}

TEST(ignore_counts)
{
        static const char text[] = "# c\n*.o\n\n!keep.o\n  \n/tmp\n";
        static const char plain[] = "a\nb/**\n";
        struct parser_ignore *ig;
        struct kerr *err = NULL;

        CASE("patterns and exceptions are counted");
        ig = parser_ignore_parse("x", text, strlen(text), &err);
        CHECK(ig != NULL);
        CHECK_INTEQ(parser_ignore_count(ig), 3);
        CHECK(parser_ignore_has_exceptions(ig));
        parser_ignore_free(ig);

        CASE("no exceptions");
        ig = parser_ignore_parse("x", plain, strlen(plain), &err);
        CHECK_INTEQ(parser_ignore_count(ig), 2);
        CHECK(!parser_ignore_has_exceptions(ig));
        CHECK(!parser_ignore_match(ig, ""));
        parser_ignore_free(ig);

        CASE("empty file");
        ig = parser_ignore_parse("x", "", 0, &err);
        CHECK(ig != NULL);
        CHECK_INTEQ(parser_ignore_count(ig), 0);
        CHECK(!parser_ignore_match(ig, "a"));
        parser_ignore_free(ig);
        CHECK(!parser_ignore_match(NULL, "a"));
}

/* Patterns docker refuses: filepath.Match's ErrBadPattern rows, the bare "!", and a range
 * that Go's regexp rejects. */
static const struct {
        const char *file;
        unsigned line;
        const char *msg;
} bad[] = {
        {"[\n", 1, "invalid pattern '[': syntax error in pattern"},
        {"ok\n# c\n\n[^\n", 4, "invalid pattern '[^'"},
        {"[^bc\n", 1, "syntax error"},
        {"a[\n", 1, "syntax error"},
        {"\\\n", 1, "syntax error"},
        {"[]a]\n", 1, "syntax error"},
        {"[-]\n", 1, "syntax error"},
        {"[x-]\n", 1, "syntax error"},
        {"[-x]\n", 1, "syntax error"},
        {"[a-b-c]\n", 1, "syntax error"},
        {"a\n!\n", 2, "invalid pattern '!': illegal exclusion pattern"},
        {"a\n  !  \n", 2, "illegal exclusion pattern"},
        {"x\ny\n[Local-Only]/\n", 3, "invalid character class range"},
        {"a\\q\n", 1, "invalid escape sequence"},
};

TEST(ignore_errors)
{
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct parser_ignore *ig;
                struct kerr *err = NULL;

                CASE("%s", bad[i].file);
                ig = parser_ignore_parse(".containerignore", bad[i].file, strlen(bad[i].file),
                                         &err);
                CHECK_NULL(ig);
                parser_ignore_free(ig);
                CHECK(err != NULL);
                if (!err)
                        continue;
                CHECK_INTEQ(err->code, KERR_PARSE);
                CHECK_STREQ(err->file, ".containerignore");
                CHECK_INTEQ(err->line, bad[i].line);
                if (!strstr(err->msg, bad[i].msg))
                        CHECK_STREQ(err->msg, bad[i].msg);
                kerr_free(err);
        }

        CASE("patterns given directly");
        {
                const char *pats[] = {"a", "[", NULL};
                struct kerr *err = NULL;

                CHECK_NULL(parser_ignore_new(pats, 2, &err));
                CHECK(err && err->code == KERR_INVALID && strstr(err->msg, "'['"));
                kerr_free(err);
        }
}

TEST(ignore_pathological)
{
        struct parser_ignore *ig;
        struct kerr *err = NULL;
        char pat[400], path[2100];
        size_t n = 0;

        /* A backtracking matcher takes exponential time here. */
        CASE("many stars against a long name");
        for (int i = 0; i < 60; i++) {
                pat[n++] = 'a';
                pat[n++] = '*';
        }
        pat[n++] = 'b';
        pat[n] = '\0';
        memset(path, 'a', 2000);
        path[2000] = '\0';
        ig = parser_ignore_parse("x", pat, n, &err);
        CHECK(ig != NULL);
        CHECK(!parser_ignore_match(ig, path));
        parser_ignore_free(ig);
}
