/* SPDX-License-Identifier: Apache-2.0 */
/* docker's variable expansion: tables of (word, environment, expected result or error), most
 * rows taken from buildkit's lex_test.go (TestProcessWithMatches and friends). */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "parser/parser.h"
#include "tap.h"

#define MAX_ENV 6

struct xcase {
        const char *in;
        const char *env[MAX_ENV]; /* NULL-terminated */
        char esc;                 /* 0 means '\\' */
        const char *want;         /* NULL: an error is expected */
        const char *err;          /* a substring of the error message */
};

static const struct xcase words[] = {
        /* plain substitution, unset and empty */
        {"x", {"DUMMY=dummy"}, 0, "x", NULL},
        {"x ${UNUSED}", {"DUMMY=dummy"}, 0, "x ", NULL},
        {"x ${FOO}", {"FOO=y"}, 0, "x y", NULL},
        {"$FOO.$BAR-$BAZ", {"FOO=a", "BAR=b"}, 0, "a.b-", NULL},
        {"${FOO}bar", {"FOO=a"}, 0, "abar", NULL},
        {"$FOObar", {"FOO=a"}, 0, "", NULL},
        {"last entry wins: $A", {"A=1", "B=2", "A=3"}, 0, "last entry wins: 3", NULL},
        {"entry without an equals sign is empty: [${A-unset}]",
         {"A"},
         0,
         "entry without an equals sign is empty: []",
         NULL},
        /* - and :- */
        {"${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO=xxx", "BAR="}, 0, "xxx  ccc", NULL},
        {"${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO=xxx", "BAR="}, 0, "xxx bbb ccc", NULL},
        {"${FOO:-}", {"FOO=xxx", "BAR="}, 0, "xxx", NULL},
        {"${FOO:-}", {NULL}, 0, "", NULL},
        /* + and :+ */
        {"${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO=xxx", "BAR="}, 0, "aaa bbb ", NULL},
        {"${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO=xxx", "BAR="}, 0, "aaa  ", NULL},
        /* ? and :? */
        {"${FOO?aaa}", {"FOO=xxx", "BAR="}, 0, "xxx", NULL},
        {"${BAR?bbb}", {"FOO=xxx", "BAR="}, 0, "", NULL},
        {"${BAZ?ccc}", {"FOO=xxx", "BAR="}, 0, NULL, "BAZ: ccc"},
        {"${BAZ?}", {NULL}, 0, NULL, "BAZ: is not allowed to be unset"},
        {"${FOO:?aaa}", {"FOO=xxx", "BAR="}, 0, "xxx", NULL},
        {"${BAR:?bbb}", {"FOO=xxx", "BAR="}, 0, NULL, "BAR: bbb"},
        {"${BAR:?}", {"BAR="}, 0, NULL, "BAR: is not allowed to be empty"},
        {"${BAZ:?}", {"FOO=xxx"}, 0, NULL, "BAZ: is not allowed to be unset"},
        {"${VAR:?message here$ARG}", {"ARG=x"}, 0, NULL, "VAR: message herex"},
        {"${VAR?message here$ARG}", {"VAR=", "ARG=x"}, 0, "", NULL},
        /* unsupported modifiers */
        {"${FOO=aaa}", {"FOO=xxx"}, 0, NULL, "unsupported modifier (=) in substitution"},
        {"${FOO=:aaa}", {"FOO=xxx"}, 0, NULL, "unsupported modifier (=)"},
        {"${FOO:=aaa}", {"FOO=xxx"}, 0, NULL, "unsupported modifier (:=)"},
        {"${FOO:#x}", {"FOO=xxx"}, 0, NULL, "unsupported modifier (:#)"},
        /* # ## % %% */
        {"${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO=()[]{}^$.*?|\\x"}, 0, "x", NULL},
        {"${FOO%%\\**}", {"FOO=xx**"}, 0, "xx", NULL},
        {"${FOO#*x*y}", {"FOO=xxyy"}, 0, "y", NULL},
        {"${FOO#*}", {"FOO=xxyy"}, 0, "xxyy", NULL},
        {"${FOO#$BAR}", {"FOO=xxyy", "BAR=x"}, 0, "xyy", NULL},
        {"${FOO#$BAR}", {"FOO=xxyy", "BAR="}, 0, "xxyy", NULL},
        {"${FOO#}", {"FOO=xxyy"}, 0, "xxyy", NULL},
        {"${FOO##*x}", {"FOO=xxyy"}, 0, "yy", NULL},
        {"${FOO##}", {"FOO=xxyy"}, 0, "xxyy", NULL},
        {"${FOO#?\\?}", {"FOO=???y"}, 0, "?y", NULL},
        {"${ABC:-.}${FOO%x}${ABC:-.}", {"FOO=xxyy"}, 0, ".xxyy.", NULL},
        {"${FOO%%\\**\\*}", {"FOO=a***yy*"}, 0, "a", NULL},
        {"${FOO%}", {"FOO=xxyy"}, 0, "xxyy", NULL},
        {"${FOO%%$BAR}", {"FOO=xxyy", "BAR="}, 0, "xxyy", NULL},
        {"${FOO%.*}", {"FOO=a.b.txt"}, 0, "a.b", NULL},
        {"${FOO%%.*}", {"FOO=a.b.txt"}, 0, "a", NULL},
        {"${FOO#*/}", {"FOO=usr/local/bin"}, 0, "local/bin", NULL},
        {"${FOO##*/}", {"FOO=usr/local/bin"}, 0, "bin", NULL},
        {"brackets are literal: ${FOO#[ab]}", {"FOO=[ab]c"}, 0, "brackets are literal: c", NULL},
        {"${FOO#\\x}",
         {"FOO=xy"},
         0,
         NULL,
         "invalid pattern (\\x) in substitution: invalid escape"},
        {"${FOO%ab\\x}", {"FOO=xy"}, 0, NULL, "invalid pattern (\\xba) in substitution"},
        {"wildcards stop at a newline: ${FOO##*}",
         {"FOO=a\nb"},
         0,
         "wildcards stop at a newline: \nb",
         NULL},
        /* / and // */
        {"${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
         {"FOO=/foo*/*/*.txt", "NEEDLE=\\*/"},
         0,
         "/foo.*/*.txt - /foo..*.txt",
         NULL},
        {"${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
         {"FOO=/tmp/tmp/bar.txt", "NEEDLE=/tmp"},
         0,
         "/tmp/bar.txt - /bar.txt",
         NULL},
        {"${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
         {"FOO=/a/foo/b/c.txt", "NEEDLE=/?/", "REPLACEMENT=/"},
         0,
         "/foo/b/c.txt - /foo/c.txt",
         NULL},
        {"${FOO/$NEEDLE/$REPLACEMENT}",
         {"FOO=http://google.de", "NEEDLE=http://", "REPLACEMENT=https://"},
         0,
         "https://google.de",
         NULL},
        {"${FOO//\\//\\/}", {"FOO=/tmp/foo.txt"}, 0, "\\/tmp\\/foo.txt", NULL},
        {"${FOO/$BAR/ww}", {"FOO=xxyy", "BAR="}, 0, "wwxxyy", NULL},
        {"${FOO//ww}", {"FOO=xxyy"}, 0, NULL, "syntax error: missing '/' in ${}"},
        {"${FOO//}", {"FOO=xxyy"}, 0, NULL, "missing '/'"},
        {"${FOO///}", {"FOO=xxyy"}, 0, "xxyy", NULL},
        {"${FOO///}", {NULL}, 0, "", NULL},
        {"${FOO/x*/-}", {"FOO=axbxc"}, 0, "a-", NULL},
        {"${FOO//?/-}", {"FOO=abc"}, 0, "---", NULL},
        {"${FOO//*/-}", {"FOO=ab"}, 0, "-", NULL},
        {"${FOO//x/'<$0>'}", {"FOO=axbx"}, 0, "a<x>b<x>", NULL},
        {"${FOO/x/'<$0>'}", {"FOO=axbx"}, 0, "a<$0>bx", NULL},
        /* nesting */
        {"${A:-${B:-${C}}}", {"C=c"}, 0, "c", NULL},
        {"${A:+${B}x}", {"A=1", "B=b"}, 0, "bx", NULL},
        {"${A:-${B:?nope}}", {"A=1"}, 0, NULL, "B: nope"},
        {"something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tgz",
         {"VERSION=v1.2.3", "TARGETOS=linux", "TARGETARCH=arm", "TARGETVARIANT=v7"},
         0,
         "something-v1.2.3.linux-arm-v7.tgz",
         NULL},
        {"something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tgz",
         {"VERSION=v1.2.3", "TARGETOS=linux", "TARGETARCH=arm64", "TARGETVARIANT="},
         0,
         "something-v1.2.3.linux-arm64.tgz",
         NULL},
        /* $ without a name, special parameters, digits */
        {"$", {NULL}, 0, "$", NULL},
        {"a$ b", {NULL}, 0, "a$ b", NULL},
        {"cost: $5", {NULL}, 0, "cost: ", NULL},
        {"$12ab", {"1=one"}, 0, "ab", NULL},
        {"$@ $* $# $? $$ $! $0 $-", {NULL}, 0, "       ", NULL},
        {"$/x", {NULL}, 0, "$/x", NULL},
        /* quotes */
        {"'$FOO'", {"FOO=a"}, 0, "$FOO", NULL},
        {"'a\\b'", {NULL}, 0, "a\\b", NULL},
        {"\"$FOO\"", {"FOO=a b"}, 0, "a b", NULL},
        {"\"'$FOO'\"", {"FOO=a"}, 0, "'a'", NULL},
        {"\"a\\\"b\"", {NULL}, 0, "a\"b", NULL},
        {"\"a\\$b\\\\c\"", {NULL}, 0, "a$b\\c", NULL},
        {"\"a\\nb\"", {NULL}, 0, "a\\nb", NULL},
        {"he'llo'\" world\"", {NULL}, 0, "hello world", NULL},
        {"${FOO:-\"a}b\"}", {NULL}, 0, "a}b", NULL},
        {"'abc", {NULL}, 0, NULL, "looking for matching single-quote"},
        {"\"abc", {NULL}, 0, NULL, "looking for matching double-quote"},
        {"${FOO:-'abc}", {NULL}, 0, NULL, "syntax error: missing '}'"},
        /* the escape character outside quotes */
        {"\\$FOO", {"FOO=a"}, 0, "$FOO", NULL},
        {"a\\ b\\\\c\\'d", {NULL}, 0, "a b\\c'd", NULL},
        {"trailing\\", {NULL}, 0, "trailing", NULL},
        {"${FOO:-\\}}", {NULL}, 0, "}", NULL},
        {"`$FOO", {"FOO=a"}, '`', "$FOO", NULL},
        {"C:\\dir `$x", {"x=1"}, '`', "C:\\dir $x", NULL},
        {"\"a`\"b``\\c\"", {NULL}, '`', "a\"b`\\c", NULL},
        {"\"a\\\"\"", {NULL}, '`', NULL, "matching double-quote"},
        {"a` b", {NULL}, '`', "a b", NULL},
        /* syntax errors */
        {"${FOO", {"FOO=a"}, 0, NULL, "failed to process '${FOO': syntax error: missing '}'"},
        {"${", {NULL}, 0, NULL, "syntax error: missing '}'"},
        {"${}", {NULL}, 0, NULL, "syntax error: bad substitution"},
        {"${:a}", {NULL}, 0, NULL, "syntax error: bad substitution"},
        {"${{a}}", {NULL}, 0, NULL, "syntax error: bad substitution"},
        {"${FOO:-x", {NULL}, 0, NULL, "syntax error: missing '}'"},
        {"${FOO/x", {NULL}, 0, NULL, "syntax error: missing '/' in ${}"},
        {"${FOO/x/y", {NULL}, 0, NULL, "syntax error: missing '}'"},
        {"${FOO!}", {NULL}, 0, NULL, "unsupported modifier (!)"},
        /* a byte order mark at the start is skipped, as text/scanner does */
        {"\xef\xbb\xbf$A", {"A=1"}, 0, "1", NULL},
};

static struct parser_env env_of(const char *const *vars)
{
        struct parser_env env = {vars, 0};

        while (env.n < MAX_ENV && vars[env.n])
                env.n++;
        return env;
}

TEST(expand_word)
{
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
                const struct xcase *c = &words[i];
                struct parser_env env = env_of(c->env);
                struct kerr *err = NULL;
                char *got = NULL;
                int r;

                CASE("%s", c->in);
                r = parser_expand_word(c->in, c->esc ? c->esc : '\\', &env, &got, &err);
                if (c->want) {
                        CHECK_INTEQ(r, 0);
                        CHECK_STREQ(got, c->want);
                        if (err)
                                CHECK_STREQ(err->msg, "(no error)");
                } else {
                        CHECK(r < 0);
                        CHECK_NULL(got);
                        CHECK(err && err->code == KERR_INVALID);
                        if (err && !strstr(err->msg, c->err))
                                CHECK_STREQ(err->msg, c->err);
                }
                free(got);
                kerr_free(err);
        }
}

struct wcase {
        const char *in;
        const char *env[MAX_ENV];
        const char *want; /* the words joined with '|', or NULL for an error */
};

static const struct wcase splits[] = {
        {"a b  c", {NULL}, "a|b|c"},
        {"  leading and trailing\t\n", {NULL}, "leading|and|trailing"},
        {"'a b' c", {NULL}, "a b|c"},
        {"\"a b\"c d", {NULL}, "a bc|d"},
        {"a\\ b c", {NULL}, "a b|c"},
        {"$X", {"X=1 2"}, "1|2"},
        {"\"$X\"", {"X=1 2"}, "1 2"},
        {"x$X", {"X=1 2"}, "x1|2"},
        {"${X:-\"p q\"}", {NULL}, "p|q"},
        {"a''b '' ", {NULL}, "ab"},
        {"", {NULL}, ""},
        {"non\xc2\xa0"
         "breaking",
         {NULL},
         "non|breaking"},
        {"${X", {NULL}, NULL},
};

TEST(expand_words)
{
        for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
                const struct wcase *c = &splits[i];
                struct parser_env env = env_of(c->env);
                struct kerr *err = NULL;
                struct kbuf b = KBUF_INIT;
                char **v = NULL;
                size_t n = 0;
                int r;

                CASE("%s", c->in);
                r = parser_expand_words(c->in, '\\', &env, &v, &n, &err);
                if (!c->want) {
                        CHECK(r < 0);
                        CHECK(err && err->code == KERR_INVALID);
                        kerr_free(err);
                        continue;
                }
                CHECK_INTEQ(r, 0);
                if (r < 0) {
                        kerr_free(err);
                        continue;
                }
                CHECK_NULL(v[n]);
                kbuf_puts(&b, "");
                for (size_t k = 0; k < n; k++) {
                        kbuf_printf(&b, "%s%s", k ? "|" : "", v[k]);
                        free(v[k]);
                }
                free(v);
                CHECK_STREQ(b.data, c->want);
                kbuf_release(&b);
        }
}

static const struct {
        const char *in;
        const char *want; /* names joined with '|', NULL for an error */
} refs[] = {
        {"$A ${B:-$C} ${D#x} $A", "A|B|C|D"},
        {"${A:-${B}} ${B}", "A|B"},
        {"${A:?} ${B?}", "A|B"},
        {"$1 $@ ${#} $$ $_x", "_x"},
        {"'$A' \"$B\" \\$C", "B"},
        {"${A/$P/$R}", "A|P|R"},
        {"no refs", ""},
        {"${A", NULL},
        {"${A:x}", NULL},
};

TEST(expand_refs)
{
        for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
                struct kerr *err = NULL;
                struct kbuf b = KBUF_INIT;
                char **v = NULL;
                size_t n = 0;
                int r;

                CASE("%s", refs[i].in);
                r = parser_expand_refs(refs[i].in, '\\', &v, &n, &err);
                if (!refs[i].want) {
                        CHECK(r < 0);
                        CHECK(err != NULL);
                        kerr_free(err);
                        continue;
                }
                CHECK_INTEQ(r, 0);
                if (r < 0) {
                        kerr_free(err);
                        continue;
                }
                kbuf_puts(&b, "");
                for (size_t k = 0; k < n; k++) {
                        kbuf_printf(&b, "%s%s", k ? "|" : "", v[k]);
                        free(v[k]);
                }
                free(v);
                CHECK_STREQ(b.data, refs[i].want);
                kbuf_release(&b);
        }
}

TEST(expand_bounds)
{
        struct kbuf deep = KBUF_INIT;
        struct parser_env env = {NULL, 0};
        const char *big[] = {NULL, NULL};
        struct kerr *err = NULL;
        char *got = NULL, *val;

        CASE("nesting is bounded");
        for (int i = 0; i < 200; i++)
                kbuf_puts(&deep, "${A:-");
        for (int i = 0; i < 200; i++)
                kbuf_putc(&deep, '}');
        CHECK(parser_expand_word(deep.data, '\\', &env, &got, &err) < 0);
        CHECK(err && strstr(err->msg, "nested"));
        kerr_free(err);
        err = NULL;
        kbuf_release(&deep);

        CASE("results are capped");
        val = malloc(2 + 4096 + 1);
        memcpy(val, "A=", 2);
        memset(val + 2, 'x', 4096);
        val[2 + 4096] = '\0';
        big[0] = val;
        env.vars = big;
        env.n = 1;
        CHECK(parser_expand_word("${A//?/$A}", '\\', &env, &got, &err) < 0);
        CHECK(err && strstr(err->msg, "longer than"));
        kerr_free(err);
        free(val);

        CASE("a long pattern on a long value stays polynomial");
        {
                struct kbuf v = KBUF_INIT, w = KBUF_INIT;
                const char *vars[2];

                kbuf_puts(&v, "A=");
                for (int i = 0; i < 3000; i++)
                        kbuf_putc(&v, 'a');
                vars[0] = v.data;
                env.vars = vars;
                env.n = 1;
                kbuf_puts(&w, "${A#");
                for (int i = 0; i < 200; i++)
                        kbuf_puts(&w, "*a");
                kbuf_puts(&w, "b}");
                err = NULL;
                CHECK_INTEQ(parser_expand_word(w.data, '\\', &env, &got, &err), 0);
                CHECK(got && strlen(got) == 3000);
                free(got);
                kbuf_release(&v);
                kbuf_release(&w);
        }
}

/* COPY/ADD heredoc bodies: rows from buildkit's testHeredocVarSubstitution and
 * testCopyHeredocSpecialSymbols, and the lexer's other rules seen through that mode. */
static const struct xcase heredocs[] = {
        {"Hello ${name}!\n", {"name=world"}, 0, "Hello world!\n", NULL},
        {"Hello '${name}'!\n", {"name=world"}, 0, "Hello 'world'!\n", NULL},
        {"Hello \"${name}\"!\n", {"name=world"}, 0, "Hello \"world\"!\n", NULL},
        {"\"quotes in file\"\n", {NULL}, 0, "\"quotes in file\"\n", NULL},
        {"it's unbalanced \"\n", {NULL}, 0, "it's unbalanced \"\n", NULL},
        /* a backslash escapes any character, a newline too, and is dropped */
        {"\\\n", {NULL}, 0, "\n", NULL},
        {"\\\\\n", {NULL}, 0, "\\\n", NULL},
        {"\\$\n", {NULL}, 0, "$\n", NULL},
        {"\\$name \\${name} \\t\n", {"name=world"}, 0, "$name ${name} t\n", NULL},
        {"'\\$name'\n", {"name=world"}, 0, "'$name'\n", NULL},
        {"a trailing backslash\\", {NULL}, 0, "a trailing backslash", NULL},
        /* the escape is always a backslash: a backtick is text */
        {"`$A`\n", {"A=1"}, 0, "`1`\n", NULL},
        /* unset names, special parameters and modifiers */
        {"[$NOPE] [${NOPE}]\n", {NULL}, 0, "[] []\n", NULL},
        {"$$ $1 $@ $ alone\n", {NULL}, 0, "   $ alone\n", NULL},
        {"${NOPE:-'a b'} ${A:+\"$A\"}\n", {"A=1"}, 0, "'a b' \"1\"\n", NULL},
        {"${F%.*}\n", {"F=a.b.txt"}, 0, "a.b\n", NULL},
        {"${A}\n${B}\n", {"A=1", "B=two words"}, 0, "1\ntwo words\n", NULL},
        /* as text/scanner reads it: a leading byte order mark is skipped, a bad byte is U+FFFD */
        {"\xef\xbb\xbfx\n", {NULL}, 0, "x\n", NULL},
        {"\xff\n", {NULL}, 0, "\xef\xbf\xbd\n", NULL},
        /* errors */
        {"${A:-x\n", {NULL}, 0, NULL, "syntax error: missing '}'"},
        {"${A:?must be set}\n", {NULL}, 0, NULL, "A: must be set"},
        {"${A=x}\n", {NULL}, 0, NULL, "unsupported modifier (=)"},
};

TEST(expand_heredoc)
{
        for (size_t i = 0; i < sizeof(heredocs) / sizeof(heredocs[0]); i++) {
                const struct xcase *c = &heredocs[i];
                struct parser_env env = env_of(c->env);
                struct kerr *err = NULL;
                char *got = NULL;
                int r;

                CASE("%s", c->in);
                r = parser_expand_heredoc(c->in, &env, &got, &err);
                if (c->want) {
                        CHECK_INTEQ(r, 0);
                        CHECK_STREQ(got, c->want);
                        if (err)
                                CHECK_STREQ(err->msg, "(no error)");
                } else {
                        CHECK(r < 0);
                        CHECK_NULL(got);
                        CHECK(err && err->code == KERR_INVALID);
                        if (err && !strstr(err->msg, c->err))
                                CHECK_STREQ(err->msg, c->err);
                        /* The body is the caller's to name, not pasted into the message. */
                        CHECK(err && !strstr(err->msg, "failed to process"));
                }
                free(got);
                kerr_free(err);
        }
}

TEST(expand_heredoc_vs_word)
{
        const char *vars[] = {"A=1"};
        struct parser_env env = {vars, 1};
        struct kerr *err = NULL;
        char *got = NULL;

        CASE("a word loses its quotes where a heredoc keeps them");
        CHECK_INTEQ(parser_expand_word("'$A' \"$A\"", '\\', &env, &got, &err), 0);
        CHECK_STREQ(got, "$A 1");
        free(got);
        got = NULL;
        CHECK_INTEQ(parser_expand_heredoc("'$A' \"$A\"", &env, &got, &err), 0);
        CHECK_STREQ(got, "'1' \"1\"");
        free(got);
        got = NULL;

        CASE("the escape directive does not apply to heredocs");
        CHECK_INTEQ(parser_expand_word("`$A \\$A", '`', &env, &got, &err), 0);
        CHECK_STREQ(got, "$A \\1");
        free(got);
        got = NULL;
        CHECK_INTEQ(parser_expand_heredoc("`$A \\$A", &env, &got, &err), 0);
        CHECK_STREQ(got, "`1 $A");
        free(got);
        got = NULL;

        CASE("a body longer than a word's cap expands");
        {
                struct kbuf body = KBUF_INIT;

                for (int i = 0; i < (1 << 20) / 8 + 16; i++)
                        kbuf_puts(&body, "$A-----\n");
                CHECK_INTEQ(parser_expand_heredoc(body.data, &env, &got, &err), 0);
                CHECK(got && strlen(got) == body.len - ((1 << 20) / 8 + 16));
                free(got);
                got = NULL;
                kbuf_release(&body);
        }
        CHECK_NULL(err);
        kerr_free(err);
}

TEST(expand_kinds)
{
        static const enum parser_kind yes[] = {
                PARSER_ADD,    PARSER_ARG,     PARSER_COPY,       PARSER_ENV,
                PARSER_EXPOSE, PARSER_FROM,    PARSER_LABEL,      PARSER_USER,
                PARSER_VOLUME, PARSER_WORKDIR, PARSER_STOPSIGNAL,
        };
        static const enum parser_kind no[] = {
                PARSER_RUN,     PARSER_CMD,         PARSER_ENTRYPOINT, PARSER_SHELL,
                PARSER_ONBUILD, PARSER_HEALTHCHECK, PARSER_MAINTAINER, PARSER_UNKNOWN,
        };

        CASE("instructions docker expands");
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
                CHECK(parser_kind_expands(yes[i]));
        CASE("instructions docker leaves alone");
        for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
                CHECK(!parser_kind_expands(no[i]));
}
