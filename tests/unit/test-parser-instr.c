/* SPDX-License-Identifier: Apache-2.0 */
/* Instructions as the parser reads them: arguments, exec form, flags, pairs, heredocs, RUN
 * mounts, HEALTHCHECK settings, ONBUILD triggers and stages, each compared field by field. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "parser/parser.h"
#include "tap.h"

static struct parser_file *parse(const char *src)
{
        return parser_parse_all("Containerfile", src, strlen(src));
}

/* "a|b|c" */
static char *join_args(const struct parser_instr *in)
{
        struct kbuf b = KBUF_INIT;

        kbuf_puts(&b, "");
        for (size_t i = 0; i < in->n_args; i++)
                kbuf_printf(&b, "%s%s", i ? "|" : "", in->args[i]);
        return kbuf_detach(&b);
}

/* "k=v|k2|…": a pair without value has no "=". */
static char *join_kvs(const struct parser_instr *in)
{
        struct kbuf b = KBUF_INIT;

        kbuf_puts(&b, "");
        for (size_t i = 0; i < in->n_kvs; i++) {
                kbuf_printf(&b, "%s%s", i ? "|" : "", in->kvs[i].key);
                if (in->kvs[i].value)
                        kbuf_printf(&b, "=%s", in->kvs[i].value);
        }
        return kbuf_detach(&b);
}

/* "--name=value --flag" */
static char *join_flags(const struct parser_instr *in)
{
        struct kbuf b = KBUF_INIT;

        kbuf_puts(&b, "");
        for (size_t i = 0; i < in->n_flags; i++) {
                kbuf_printf(&b, "%s--%s", i ? " " : "", in->flags[i].name);
                if (in->flags[i].value)
                        kbuf_printf(&b, "=%s", in->flags[i].value);
        }
        return kbuf_detach(&b);
}

/* The instruction at idx of a file that parsed without diagnostics. */
static const struct parser_instr *instr_at(const struct parser_file *f, size_t idx)
{
        if (!CHECK_INTEQ(f->n_diags, 0)) {
                for (size_t i = 0; i < f->n_diags; i++)
                        printf("# %u:%u: %s\n", f->diags[i].pos.line, f->diags[i].pos.col,
                               f->diags[i].msg);
        }
        if (!CHECK(idx < f->n_instrs))
                return NULL;
        return f->instrs[idx];
}

static const struct {
        const char *name;
        const char *src;
        size_t idx;
        enum parser_kind kind;
        const char *keyword;
        bool json;
        const char *args, *flags;
} args[] = {
        {"FROM image", "FROM alpine:3.19\n", 0, PARSER_FROM, "FROM", false, "alpine:3.19", ""},
        {"FROM with stage and platform", "FROM --platform=linux/arm64 alpine AS Build\n", 0,
         PARSER_FROM, "FROM", false, "alpine|AS|Build", "--platform=linux/arm64"},
        {"FROM words split on blanks", "FROM a\tas\vb\n", 0, PARSER_FROM, "FROM", false, "a|as|b",
         ""},
        {"RUN shell form", "FROM a\nRUN echo  hi\n", 1, PARSER_RUN, "RUN", false, "echo  hi", ""},
        {"RUN exec form", "FROM a\nRUN [\"echo\", \"hi\"]\n", 1, PARSER_RUN, "RUN", true, "echo|hi",
         ""},
        {"RUN exec form with blanks", "FROM a\nRUN [ \"a b\" ]  \n", 1, PARSER_RUN, "RUN", true,
         "a b", ""},
        {"RUN exec form escapes", "FROM a\nRUN [\"a\\\"b\", \"\\u00e9\"]\n", 1, PARSER_RUN, "RUN",
         true, "a\"b|\xC3\xA9", ""},
        {"RUN broken JSON is shell form", "FROM a\nRUN [\"a\", \"b\"\n", 1, PARSER_RUN, "RUN",
         false, "[\"a\", \"b\"", ""},
        {"RUN single quotes are shell form", "FROM a\nRUN ['a']\n", 1, PARSER_RUN, "RUN", false,
         "['a']", ""},
        {"RUN empty array", "FROM a\nRUN []\n", 1, PARSER_RUN, "RUN", true, "", ""},
        {"CMD with text after the array", "FROM a\nCMD [\"a\"] b\n", 1, PARSER_CMD, "CMD", false,
         "[\"a\"] b", ""},
        {"CMD empty", "FROM a\nCMD\n", 1, PARSER_CMD, "CMD", false, "", ""},
        {"ENTRYPOINT exec form", "FROM a\nENTRYPOINT [\"/bin/sh\", \"-c\"]\n", 1, PARSER_ENTRYPOINT,
         "ENTRYPOINT", true, "/bin/sh|-c", ""},
        {"SHELL", "FROM a\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\n", 1, PARSER_SHELL, "SHELL",
         true, "/bin/bash|-eu|-c", ""},
        {"COPY words", "FROM a\nCOPY a b c /dst/\n", 1, PARSER_COPY, "COPY", false, "a|b|c|/dst/",
         ""},
        {"COPY exec form", "FROM a\nCOPY [\"a b\", \"/dst\"]\n", 1, PARSER_COPY, "COPY", true,
         "a b|/dst", ""},
        {"COPY quotes stay in words", "FROM a\nCOPY \"a b\" /d\n", 1, PARSER_COPY, "COPY", false,
         "\"a|b\"|/d", ""},
        {"ADD url", "FROM a\nADD https://x/y.tgz /opt/\n", 1, PARSER_ADD, "ADD", false,
         "https://x/y.tgz|/opt/", ""},
        {"VOLUME words", "FROM a\nVOLUME /a /b\n", 1, PARSER_VOLUME, "VOLUME", false, "/a|/b", ""},
        {"VOLUME exec form", "FROM a\nVOLUME [\"/data\"]\n", 1, PARSER_VOLUME, "VOLUME", true,
         "/data", ""},
        {"EXPOSE", "FROM a\nEXPOSE 80/tcp  443\n", 1, PARSER_EXPOSE, "EXPOSE", false, "80/tcp|443",
         ""},
        {"USER", "FROM a\nUSER app:app\n", 1, PARSER_USER, "USER", false, "app:app", ""},
        {"USER keeps the whole rest", "FROM a\nUSER  a b \n", 1, PARSER_USER, "USER", false, "a b",
         ""},
        {"WORKDIR with a space", "FROM a\nWORKDIR /my dir\n", 1, PARSER_WORKDIR, "WORKDIR", false,
         "/my dir", ""},
        {"STOPSIGNAL", "FROM a\nSTOPSIGNAL SIGTERM\n", 1, PARSER_STOPSIGNAL, "STOPSIGNAL", false,
         "SIGTERM", ""},
        {"MAINTAINER", "FROM a\nMAINTAINER Jane <j@x>\n", 1, PARSER_MAINTAINER, "MAINTAINER", false,
         "Jane <j@x>", ""},
        {"lower-case keyword", "FROM a\nrun echo\n", 1, PARSER_RUN, "run", false, "echo", ""},
        {"mixed-case keyword and tabs", "FROM a\nRun \t echo\tx\n", 1, PARSER_RUN, "Run", false,
         "echo\tx", ""},
        {"lone -- ends the flags", "FROM a\nRUN -- --not-a-flag\n", 1, PARSER_RUN, "RUN", false,
         "--not-a-flag", ""},
        {"single dash is not a flag", "FROM a\nRUN -x\n", 1, PARSER_RUN, "RUN", false, "-x", ""},
        {"RUN network flag", "FROM a\nRUN --network=none echo\n", 1, PARSER_RUN, "RUN", false,
         "echo", "--network=none"},
        {"RUN security flag", "FROM a\nRUN --security=insecure echo\n", 1, PARSER_RUN, "RUN", false,
         "echo", "--security=insecure"},
        {"flag value in double quotes", "FROM a\nCOPY --chown=\"a b\" x y\n", 1, PARSER_COPY,
         "COPY", false, "x|y", "--chown=a b"},
        {"flag value in single quotes", "FROM a\nCOPY --from='stage' x y\n", 1, PARSER_COPY, "COPY",
         false, "x|y", "--from=stage"},
        {"flag with a backslash", "FROM a\nCOPY --chmod=7\\55 x y\n", 1, PARSER_COPY, "COPY", false,
         "x|y", "--chmod=755"},
        {"bool flag without value", "FROM a\nCOPY --link a b\n", 1, PARSER_COPY, "COPY", false,
         "a|b", "--link"},
        {"bool flag with value", "FROM a\nCOPY --link=FALSE a b\n", 1, PARSER_COPY, "COPY", false,
         "a|b", "--link=FALSE"},
        {"repeated exclude", "FROM a\nCOPY --exclude=*.md --exclude=*.txt . /dst\n", 1, PARSER_COPY,
         "COPY", false, ".|/dst", "--exclude=*.md --exclude=*.txt"},
        {"COPY parents", "FROM a\nCOPY --parents a/b /dst\n", 1, PARSER_COPY, "COPY", false,
         "a/b|/dst", "--parents"},
        {"ADD flags", "FROM a\nADD --checksum=sha256:abc --keep-git-dir=true --unpack=false s /d\n",
         1, PARSER_ADD, "ADD", false, "s|/d",
         "--checksum=sha256:abc --keep-git-dir=true --unpack=false"},
        {"flags with exec form", "FROM a\nCOPY --from=b [\"x\", \"/y\"]\n", 1, PARSER_COPY, "COPY",
         true, "x|/y", "--from=b"},
        {"ARG flags are not checked", "FROM a\nARG --x=1 A\n", 1, PARSER_ARG, "ARG", false, "",
         "--x=1"},
};

TEST(instruction_args)
{
        for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
                struct parser_file *f;
                const struct parser_instr *in;

                CASE("%s", args[i].name);
                f = parse(args[i].src);
                in = instr_at(f, args[i].idx);
                if (in) {
                        char *a = join_args(in), *fl = join_flags(in);

                        CHECK_INTEQ(in->kind, args[i].kind);
                        CHECK_STREQ(in->keyword, args[i].keyword);
                        CHECK_INTEQ(in->json, args[i].json);
                        CHECK_STREQ(a, args[i].args);
                        CHECK_STREQ(fl, args[i].flags);
                        free(a);
                        free(fl);
                }
                parser_file_free(f);
        }
}

static const struct {
        const char *name;
        const char *src;
        size_t idx;
        const char *kvs;
} pairs[] = {
        {"ENV pairs", "FROM a\nENV A=1 B=\"x y\"\n", 1, "A=1|B=\"x y\""},
        {"ENV legacy form", "FROM a\nENV A 1  2\n", 1, "A=1  2"},
        {"ENV empty value", "FROM a\nENV A=\n", 1, "A="},
        {"ENV escaped space", "FROM a\nENV A=1\\ 2 B=3\n", 1, "A=1\\ 2|B=3"},
        {"ENV quoted key", "FROM a\nENV 'A'=x\n", 1, "'A'=x"},
        {"ENV value with equals", "FROM a\nENV A=b=c\n", 1, "A=b=c"},
        {"ENV single quotes keep escapes", "FROM a\nENV A='x\\' B=y\n", 1, "A='x\\'|B=y"},
        {"ENV escaped quote in double quotes", "FROM a\nENV A=\"x\\\" y\" B=z\n", 1,
         "A=\"x\\\" y\"|B=z"},
        {"ENV backtick escape", "# escape=`\nFROM a\nENV A=x` y\n", 1, "A=x` y"},
        {"ENV pairs across lines", "FROM a\nENV A=1 \\\n  B=2\n", 1, "A=1|B=2"},
        {"LABEL pairs", "FROM a\nLABEL a=b \"c d\"=e\n", 1, "a=b|\"c d\"=e"},
        {"LABEL legacy form", "FROM a\nLABEL version 1.0\n", 1, "version=1.0"},
        {"ARG name", "FROM a\nARG A\n", 1, "A"},
        {"ARG several", "FROM a\nARG A=1 B C=\n", 1, "A=1|B|C="},
        {"ARG quoted default", "FROM a\nARG A=\"x y\"\n", 1, "A=\"x y\""},
        {"meta ARG", "ARG BASE=alpine\nFROM $BASE\n", 0, "BASE=alpine"},
};

TEST(key_value_pairs)
{
        for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
                struct parser_file *f;
                const struct parser_instr *in;

                CASE("%s", pairs[i].name);
                f = parse(pairs[i].src);
                in = instr_at(f, pairs[i].idx);
                if (in) {
                        char *kv = join_kvs(in);

                        CHECK_STREQ(kv, pairs[i].kvs);
                        CHECK_INTEQ(in->n_args, 0);
                        free(kv);
                }
                parser_file_free(f);
        }
}

static const struct {
        const char *name;
        const char *src;
        size_t n;
        const char *hname, *content;
        bool chomp, expand;
        unsigned line;
} heredocs[] = {
        {"RUN heredoc", "FROM a\nRUN <<EOF\necho hi\nEOF\n", 1, "EOF", "echo hi\n", false, true, 3},
        {"empty body", "FROM a\nRUN <<EOF\nEOF\n", 1, "EOF", "", false, true, 3},
        {"chomp", "FROM a\nRUN <<-EOF\n\techo hi\n\tEOF\n", 1, "EOF", "echo hi\n", true, true, 3},
        {"single-quoted delimiter", "FROM a\nRUN <<'EOF'\n$X\nEOF\n", 1, "EOF", "$X\n", false,
         false, 3},
        {"double-quoted delimiter", "FROM a\nRUN <<\"EOF\"\nx\nEOF\n", 1, "EOF", "x\n", false,
         false, 3},
        {"partly quoted delimiter", "FROM a\nRUN <<E\"O\"F\nx\nEOF\n", 1, "EOF", "x\n", false,
         false, 3},
        {"escaped quote is not quoting", "FROM a\nRUN <<eo\\'f\nx\neo'f\n", 1, "eo'f", "x\n", false,
         true, 3},
        {"chomp and quotes", "FROM a\nRUN <<-'EOF'\n\tx\nEOF\n", 1, "EOF", "x\n", true, false, 3},
        {"blanks after <<", "FROM a\nRUN <<  EOF\nx\nEOF\n", 1, "EOF", "x\n", false, true, 3},
        {"file descriptor", "FROM a\nRUN 3<<EOF\nx\nEOF\n", 1, "EOF", "x\n", false, true, 3},
        {"heredoc with a command", "FROM a\nRUN python3 <<EOF\nprint(1)\nEOF\n", 1, "EOF",
         "print(1)\n", false, true, 3},
        {"redirect after the heredoc", "FROM a\nRUN cat <<EOF > /x\nhi\nEOF\n", 1, "EOF", "hi\n",
         false, true, 3},
        {"COPY heredoc", "FROM a\nCOPY <<EOF /dst\nhello\nEOF\n", 1, "EOF", "hello\n", false, true,
         3},
        {"ADD heredoc", "FROM a\nADD <<EOF /dst\nhello\nEOF\n", 1, "EOF", "hello\n", false, true,
         3},
        {"two heredocs read in order", "FROM a\nCOPY <<X <<Y /d\nY\nX\nX\nY\n", 2, "X", "Y\n",
         false, true, 3},
        {"heredoc with flags", "FROM a\nRUN --network=none <<EOF\nx\nEOF\n", 1, "EOF", "x\n", false,
         true, 3},
        {"delimiter with a dot", "FROM a\nCOPY <<file.txt /d\nhi\nfile.txt\n", 1, "file.txt",
         "hi\n", false, true, 3},
        {"variable delimiter kept", "FROM a\nRUN <<$EOF\n$EOF\n", 1, "$EOF", "", false, true, 3},
        {"quoted word is no heredoc", "FROM a\nRUN \"<<EOF\"\n", 0, NULL, NULL, false, false, 0},
        {"here-string is no heredoc", "FROM a\nRUN cat <<<EOF\n", 0, NULL, NULL, false, false, 0},
        {"no blank before << is no heredoc", "FROM a\nRUN cat<<EOF\n", 0, NULL, NULL, false, false,
         0},
        {"JSON form has no heredocs", "FROM a\nRUN [\"<<EOF\"]\n", 0, NULL, NULL, false, false, 0},
        {"other instructions have none", "FROM a\nENV A=<<EOF\n", 0, NULL, NULL, false, false, 0},
        {"here-string with a blank is no heredoc", "FROM a\nRUN cat <<< EOF\n", 0, NULL, NULL,
         false, false, 0},
};

TEST(heredoc_fields)
{
        for (size_t i = 0; i < sizeof(heredocs) / sizeof(heredocs[0]); i++) {
                struct parser_file *f;
                const struct parser_instr *in;

                CASE("%s", heredocs[i].name);
                f = parse(heredocs[i].src);
                in = instr_at(f, 1);
                if (in && CHECK_INTEQ(in->n_heredocs, heredocs[i].n) && heredocs[i].n > 0) {
                        const struct parser_heredoc *h = &in->heredocs[0];

                        CHECK_STREQ(h->name, heredocs[i].hname);
                        CHECK_STREQ(h->content, heredocs[i].content);
                        CHECK_INTEQ(h->chomp, heredocs[i].chomp);
                        CHECK_INTEQ(h->expand, heredocs[i].expand);
                        CHECK_INTEQ(h->line, heredocs[i].line);
                }
                parser_file_free(f);
        }
}

TEST(second_heredoc)
{
        struct parser_file *f = parse("FROM a\nCOPY <<X <<-'Y' /d\nx\nX\n\ty\n\tY\nRUN z\n");
        const struct parser_instr *in;

        CASE("second heredoc of a line");
        in = instr_at(f, 1);
        if (in && CHECK_INTEQ(in->n_heredocs, 2)) {
                CHECK_STREQ(in->heredocs[1].name, "Y");
                CHECK_STREQ(in->heredocs[1].content, "y\n");
                CHECK(in->heredocs[1].chomp);
                CHECK(!in->heredocs[1].expand);
                CHECK_INTEQ(in->heredocs[1].line, 5);
                CHECK_INTEQ(in->end_line, 6);
        }
        CHECK_INTEQ(f->n_instrs, 3);
        parser_file_free(f);
}

#define NO -1
static const struct {
        const char *name;
        const char *mount;
        enum parser_mount_type type;
        const char *target, *source, *from, *id, *sharing, *env;
        bool readonly, required;
        long long mode, uid, gid, size;
} mounts[] = {
        {"cache", "type=cache,target=/root/.cache", PARSER_MOUNT_CACHE, "/root/.cache", NULL, NULL,
         NULL, "shared", NULL, false, false, NO, NO, NO, NO},
        {"bind by default, read-only", "target=/src", PARSER_MOUNT_BIND, "/src", NULL, NULL, NULL,
         NULL, NULL, true, false, NO, NO, NO, NO},
        {"bind read-write", "type=bind,source=.,target=/src,rw", PARSER_MOUNT_BIND, "/src", ".",
         NULL, NULL, NULL, NULL, false, false, NO, NO, NO, NO},
        {"bind short keys", "type=bind,src=a,dst=/b,readonly=false", PARSER_MOUNT_BIND, "/b", "a",
         NULL, NULL, NULL, NULL, false, false, NO, NO, NO, NO},
        {"destination key", "destination=/b,ro=1", PARSER_MOUNT_BIND, "/b", NULL, NULL, NULL, NULL,
         NULL, true, false, NO, NO, NO, NO},
        {"bind from a stage", "type=bind,from=builder,source=/out,target=/in", PARSER_MOUNT_BIND,
         "/in", "/out", "builder", NULL, NULL, NULL, true, false, NO, NO, NO, NO},
        {"cache with everything",
         "type=cache,target=/x,id=go,sharing=locked,mode=0755,uid=1000,gid=1001",
         PARSER_MOUNT_CACHE, "/x", NULL, NULL, "go", "locked", NULL, false, false, 0755, 1000, 1001,
         NO},
        {"cache read-only", "type=cache,target=/x,ro", PARSER_MOUNT_CACHE, "/x", NULL, NULL, NULL,
         "shared", NULL, true, false, NO, NO, NO, NO},
        {"keys and type ignore case", "TYPE=Cache,Target=/x,Sharing=PRIVATE", PARSER_MOUNT_CACHE,
         "/x", NULL, NULL, NULL, "private", NULL, false, false, NO, NO, NO, NO},
        {"tmpfs size in megabytes", "type=tmpfs,target=/tmp,size=64m", PARSER_MOUNT_TMPFS, "/tmp",
         NULL, NULL, NULL, NULL, NULL, false, false, NO, NO, NO, 67108864},
        {"tmpfs size in gibibytes", "type=tmpfs,target=/tmp,size=1GiB", PARSER_MOUNT_TMPFS, "/tmp",
         NULL, NULL, NULL, NULL, NULL, false, false, NO, NO, NO, 1073741824},
        {"tmpfs size in bytes", "type=tmpfs,target=/tmp,size=512", PARSER_MOUNT_TMPFS, "/tmp", NULL,
         NULL, NULL, NULL, NULL, false, false, NO, NO, NO, 512},
        {"tmpfs fractional size", "type=tmpfs,target=/t,size=1.5k", PARSER_MOUNT_TMPFS, "/t", NULL,
         NULL, NULL, NULL, NULL, false, false, NO, NO, NO, 1536},
        {"secret default target", "type=secret,id=npmrc", PARSER_MOUNT_SECRET, "/run/secrets/npmrc",
         NULL, NULL, "npmrc", NULL, NULL, true, false, NO, NO, NO, NO},
        {"secret as environment", "type=secret,id=tok,env=TOKEN", PARSER_MOUNT_SECRET, NULL, NULL,
         NULL, "tok", NULL, "TOKEN", true, false, NO, NO, NO, NO},
        {"secret required", "type=secret,id=a,target=/x,required", PARSER_MOUNT_SECRET, "/x", NULL,
         NULL, "a", NULL, NULL, true, true, NO, NO, NO, NO},
        {"secret by source", "type=secret,source=aws", PARSER_MOUNT_SECRET, "/run/secrets/aws",
         "aws", NULL, "aws", NULL, NULL, true, false, NO, NO, NO, NO},
        {"secret by target", "type=secret,target=/etc/key.pem,mode=0400", PARSER_MOUNT_SECRET,
         "/etc/key.pem", NULL, NULL, "key.pem", NULL, NULL, true, false, 0400, NO, NO, NO},
        {"ssh defaults", "type=ssh", PARSER_MOUNT_SSH, NULL, NULL, NULL, "default", NULL, NULL,
         true, false, NO, NO, NO, NO},
        {"ssh required", "type=ssh,id=gh,required=true", PARSER_MOUNT_SSH, NULL, NULL, NULL, "gh",
         NULL, NULL, true, true, NO, NO, NO, NO},
        {"CSV quoting", "'\"type=bind\",\"target=/a,b\"'", PARSER_MOUNT_BIND, "/a,b", NULL, NULL,
         NULL, NULL, NULL, true, false, NO, NO, NO, NO},
        {"variables in paths stay", "type=cache,target=$HOME/.cache,id=${ID}", PARSER_MOUNT_CACHE,
         "$HOME/.cache", NULL, NULL, "${ID}", "shared", NULL, false, false, NO, NO, NO, NO},
};

static bool streq_null(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

#define CHECK_STR_OR_NULL(a, b)                                                                    \
        tap_check(streq_null((a), (b)), __FILE__, __LINE__, "%s: got '%s', want '%s'", #a,         \
                  (a) ? (a) : "(null)", (b) ? (b) : "(null)")

TEST(run_mounts)
{
        for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
                struct kbuf src = KBUF_INIT;
                struct parser_file *f;
                const struct parser_instr *in;

                CASE("%s", mounts[i].name);
                kbuf_printf(&src, "FROM a\nRUN --mount=%s true\n", mounts[i].mount);
                f = parse(src.data);
                in = instr_at(f, 1);
                if (in && CHECK_INTEQ(in->n_mounts, 1)) {
                        const struct parser_mount *m = &in->mounts[0];

                        CHECK_INTEQ(m->type, mounts[i].type);
                        CHECK_STR_OR_NULL(m->target, mounts[i].target);
                        CHECK_STR_OR_NULL(m->source, mounts[i].source);
                        CHECK_STR_OR_NULL(m->from, mounts[i].from);
                        CHECK_STR_OR_NULL(m->id, mounts[i].id);
                        CHECK_STR_OR_NULL(m->sharing, mounts[i].sharing);
                        CHECK_STR_OR_NULL(m->env, mounts[i].env);
                        CHECK_INTEQ(m->readonly, mounts[i].readonly);
                        CHECK_INTEQ(m->required, mounts[i].required);
                        CHECK_INTEQ(m->mode, mounts[i].mode);
                        CHECK_INTEQ(m->uid, mounts[i].uid);
                        CHECK_INTEQ(m->gid, mounts[i].gid);
                        CHECK_INTEQ(m->size, mounts[i].size);
                        CHECK_INTEQ(m->pos.line, 2);
                        CHECK_INTEQ(m->pos.col, 5);
                }
                parser_file_free(f);
                kbuf_release(&src);
        }
}

TEST(several_mounts)
{
        struct parser_file *f =
                parse("FROM a\nRUN --mount=type=cache,target=/a \\\n    --mount=type=ssh true\n");
        const struct parser_instr *in;

        CASE("mounts in order with their positions");
        in = instr_at(f, 1);
        if (in && CHECK_INTEQ(in->n_mounts, 2)) {
                CHECK_INTEQ(in->mounts[0].type, PARSER_MOUNT_CACHE);
                CHECK_INTEQ(in->mounts[1].type, PARSER_MOUNT_SSH);
                CHECK_INTEQ(in->mounts[1].pos.line, 3);
                CHECK_INTEQ(in->mounts[1].pos.col, 5);
                CHECK_INTEQ(in->n_flags, 2);
        }
        parser_file_free(f);
}

#define S 1000000000LL
static const struct {
        const char *name;
        const char *line;
        bool none, json;
        long long interval, timeout, start_period, start_interval, retries;
        const char *args;
} health[] = {
        {"NONE", "HEALTHCHECK NONE", true, false, NO, NO, NO, NO, NO, ""},
        {"none in lower case", "healthcheck none", true, false, NO, NO, NO, NO, NO, ""},
        {"NONE ignores flags", "HEALTHCHECK --interval=5s NONE", true, false, NO, NO, NO, NO, NO,
         ""},
        {"CMD shell form", "HEALTHCHECK CMD curl -f http://x/", false, false, NO, NO, NO, NO, NO,
         "curl -f http://x/"},
        {"CMD exec form", "HEALTHCHECK CMD [\"curl\", \"x\"]", false, true, NO, NO, NO, NO, NO,
         "curl|x"},
        {"cmd in lower case", "HEALTHCHECK cmd true", false, false, NO, NO, NO, NO, NO, "true"},
        {"all flags",
         "HEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --start-interval=500ms "
         "--retries=3 CMD true",
         false, false, 30 * S, 5 * S, 90 * S, 500000000LL, 3, "true"},
        {"hours", "HEALTHCHECK --interval=1h CMD true", false, false, 3600 * S, NO, NO, NO, NO,
         "true"},
        {"fractional seconds", "HEALTHCHECK --timeout=1.5s CMD true", false, false, NO,
         1500000000LL, NO, NO, NO, "true"},
        {"microseconds sum", "HEALTHCHECK --interval=1ms500us CMD true", false, false, 1500000LL,
         NO, NO, NO, NO, "true"},
        {"zero duration", "HEALTHCHECK --timeout=0s CMD true", false, false, NO, 0, NO, NO, NO,
         "true"},
        {"bare zero", "HEALTHCHECK --timeout=0 CMD true", false, false, NO, 0, NO, NO, NO, "true"},
        {"empty value is unset", "HEALTHCHECK --interval= CMD true", false, false, NO, NO, NO, NO,
         NO, "true"},
        {"zero retries", "HEALTHCHECK --retries=0 CMD true", false, false, NO, NO, NO, NO, 0,
         "true"},
        {"retries with a plus", "HEALTHCHECK --retries=+7 CMD true", false, false, NO, NO, NO, NO,
         7, "true"},
};

TEST(healthcheck_settings)
{
        for (size_t i = 0; i < sizeof(health) / sizeof(health[0]); i++) {
                struct kbuf src = KBUF_INIT;
                struct parser_file *f;
                const struct parser_instr *in;

                CASE("%s", health[i].name);
                kbuf_printf(&src, "FROM a\n%s\n", health[i].line);
                f = parse(src.data);
                in = instr_at(f, 1);
                if (in) {
                        char *a = join_args(in);

                        CHECK_INTEQ(in->kind, PARSER_HEALTHCHECK);
                        CHECK_INTEQ(in->health.none, health[i].none);
                        CHECK_INTEQ(in->json, health[i].json);
                        CHECK_INTEQ(in->health.interval, health[i].interval);
                        CHECK_INTEQ(in->health.timeout, health[i].timeout);
                        CHECK_INTEQ(in->health.start_period, health[i].start_period);
                        CHECK_INTEQ(in->health.start_interval, health[i].start_interval);
                        CHECK_INTEQ(in->health.retries, health[i].retries);
                        CHECK_STREQ(a, health[i].args);
                        free(a);
                }
                parser_file_free(f);
                kbuf_release(&src);
        }
}

TEST(onbuild)
{
        static const struct {
                const char *name, *line;
                enum parser_kind kind;
                const char *keyword, *args, *flags;
                unsigned col;
        } rows[] = {
                {"RUN trigger", "ONBUILD RUN echo hi", PARSER_RUN, "RUN", "echo hi", "", 9},
                {"COPY trigger with a flag", "ONBUILD COPY --from=x a b", PARSER_COPY, "COPY",
                 "a|b", "--from=x", 9},
                {"lower-case trigger", "onbuild  add a b", PARSER_ADD, "add", "a|b", "", 10},
                {"exec-form trigger", "ONBUILD CMD [\"a\"]", PARSER_CMD, "CMD", "a", "", 9},
        };

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct kbuf src = KBUF_INIT;
                struct parser_file *f;
                const struct parser_instr *in;

                CASE("%s", rows[i].name);
                kbuf_printf(&src, "FROM a\n%s\n", rows[i].line);
                f = parse(src.data);
                in = instr_at(f, 1);
                if (in && CHECK_INTEQ(in->kind, PARSER_ONBUILD) && CHECK(in->sub)) {
                        char *a = join_args(in->sub), *fl = join_flags(in->sub);

                        CHECK_INTEQ(in->sub->kind, rows[i].kind);
                        CHECK_STREQ(in->sub->keyword, rows[i].keyword);
                        CHECK_STREQ(a, rows[i].args);
                        CHECK_STREQ(fl, rows[i].flags);
                        CHECK_INTEQ(in->sub->pos.line, 2);
                        CHECK_INTEQ(in->sub->pos.col, rows[i].col);
                        CHECK_INTEQ(in->n_args, 0);
                        CHECK_STREQ(in->original, rows[i].line);
                        free(a);
                        free(fl);
                }
                parser_file_free(f);
                kbuf_release(&src);
        }
}

TEST(onbuild_heredoc)
{
        struct parser_file *f = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nRUN x\n");
        const struct parser_instr *in;

        CASE("heredoc of an ONBUILD trigger");
        in = instr_at(f, 1);
        if (in && CHECK(in->sub) && CHECK_INTEQ(in->sub->n_heredocs, 1)) {
                CHECK_STREQ(in->sub->heredocs[0].content, "echo hi\n");
                CHECK_INTEQ(in->end_line, 4);
                CHECK_INTEQ(in->sub->end_line, 4);
        }
        CHECK_INTEQ(f->n_instrs, 3);
        parser_file_free(f);
}

TEST(stage_layout)
{
        struct parser_file *f;
        const struct parser_stage *s;

        CASE("stages, names and meta ARGs");
        f = parse("ARG A=1\nARG B\nFROM base AS Build\nRUN make\nCOPY a b\n"
                  "FROM scratch\nCOPY --from=build /x /x\nFROM build AS final\n");
        CHECK_INTEQ(f->n_diags, 0);
        CHECK_INTEQ(f->n_instrs, 8);
        CHECK_INTEQ(f->n_meta_args, 2);
        if (CHECK_INTEQ(f->n_stages, 3)) {
                CHECK_STREQ(f->stages[0].name, "build");
                CHECK_INTEQ(f->stages[0].index, 0);
                CHECK(f->stages[0].from == f->instrs[2]);
                CHECK_INTEQ(f->stages[0].n_instrs, 2);
                CHECK(f->stages[0].instrs[1] == f->instrs[4]);
                CHECK_NULL(f->stages[1].name);
                CHECK_INTEQ(f->stages[1].n_instrs, 1);
                CHECK_STREQ(f->stages[2].name, "final");
                CHECK_INTEQ(f->stages[2].index, 2);
                CHECK_INTEQ(f->stages[2].n_instrs, 0);
                CHECK_STREQ(f->stages[0].from->stage_name, "build");
                CHECK(f->meta_args[0] == f->instrs[0]);
        }
        s = parser_file_stage(f, "BUILD");
        CHECK(s == &f->stages[0]);
        s = parser_file_stage(f, "1");
        CHECK(s == &f->stages[1]);
        CHECK_NULL(parser_file_stage(f, "nope"));
        parser_file_free(f);

        CASE("stage names with symbols");
        f = parse("FROM a AS my-stage_1.x\n");
        CHECK_INTEQ(f->n_diags, 0);
        if (CHECK_INTEQ(f->n_stages, 1))
                CHECK_STREQ(f->stages[0].name, "my-stage_1.x");
        parser_file_free(f);

        CASE("ARG between stages belongs to the stage");
        f = parse("FROM a\nARG X\nFROM b\n");
        CHECK_INTEQ(f->n_meta_args, 0);
        if (CHECK_INTEQ(f->n_stages, 2))
                CHECK_INTEQ(f->stages[0].n_instrs, 1);
        parser_file_free(f);
}
