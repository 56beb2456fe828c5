/* SPDX-License-Identifier: Apache-2.0 */
/* What the parser refuses, and where: each row is a Containerfile and the exact diagnostics
 * it gives ("line:col: severity: message [rule]"), in order. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "parser/parser.h"
#include "tap.h"

static char *diags_of(const char *src, size_t len)
{
        struct parser_file *f = parser_parse_all("Containerfile", src, len);
        struct kbuf b = KBUF_INIT;

        kbuf_puts(&b, "");
        for (size_t i = 0; i < f->n_diags; i++) {
                const struct parser_diag *d = &f->diags[i];

                kbuf_printf(&b, "%u:%u: %s: %s [%s]\n", d->pos.line, d->pos.col,
                            d->severity == PARSER_ERROR ? "error" : "warning", d->msg, d->rule);
        }
        parser_file_free(f);
        return kbuf_detach(&b);
}

#define E(l, c, m) #l ":" #c ": error: " m " [Syntax]\n"
#define RUNM(m) "FROM a\nRUN --mount=" m " true\n"
#define MOUNT_E(m) E(2, 5, m)

static const struct {
        const char *name;
        const char *src;
        const char *want;
} cases[] = {
        /* keywords */
        {"unknown instruction with a hint", "FROM a\nCOPPY a b\n",
         "2:1: error: unknown instruction 'COPPY' (did you mean 'COPY'?) [UnknownInstruction]\n"},
        {"lower-case hint", "FROM a\nrunn x\n",
         "2:1: error: unknown instruction 'runn' (did you mean 'run'?) [UnknownInstruction]\n"},
        {"mixed-case hint", "FROM a\nCoppy a b\n",
         "2:1: error: unknown instruction 'Coppy' (did you mean 'COPY'?) [UnknownInstruction]\n"},
        {"unknown instruction without a hint", "FROM a\nFOOBAR x\n",
         "2:1: error: unknown instruction 'FOOBAR' [UnknownInstruction]\n"},
        {"unknown instruction after spaces", "FROM a\n  EXPOSED 80\n",
         "2:3: error: unknown instruction 'EXPOSED' (did you mean 'EXPOSE'?) "
         "[UnknownInstruction]\n"},
        /* FROM */
        {"FROM without image", "FROM\n", E(1, 1, "FROM requires an image")},
        {"FROM with two words", "FROM a b\n",
         E(1, 1, "FROM requires either one or three arguments")},
        {"FROM with four words", "FROM a AS b c\n",
         E(1, 1, "FROM requires either one or three arguments")},
        {"FROM without AS", "FROM a b c\n",
         E(1, 1, "FROM's second argument must be 'AS', not 'b'")},
        {"stage name starting with a digit", "FROM a AS 1x\n",
         E(1, 1,
           "invalid name for build stage '1x': it can't start with a number or contain "
           "symbols")},
        {"stage name with a symbol", "FROM a AS x!\n",
         E(1, 1,
           "invalid name for build stage 'x!': it can't start with a number or contain "
           "symbols")},
        /* flags */
        {"unknown flag for FROM", "FROM --foo=bar a\n", E(1, 6, "unknown flag '--foo' for FROM")},
        {"unknown flag for COPY", "FROM a\nCOPY --foo a b\n",
         E(2, 6, "unknown flag '--foo' for COPY")},
        {"no flags for ENV", "FROM a\nENV --x A=1\n", E(2, 5, "unknown flag '--x' for ENV")},
        {"unknown flag on a continuation line", "FROM a\nRUN \\\n  --mnt=x true\n",
         E(3, 3, "unknown flag '--mnt' for RUN")},
        {"string flag without value", "FROM a\nRUN --mount x\n",
         E(2, 5, "missing value for flag '--mount'")},
        {"COPY --from without value", "FROM a\nCOPY --from a b\n",
         E(2, 6, "missing value for flag '--from'")},
        {"repeated flag", "FROM a\nCOPY --chown=1 --chown=2 a b\n",
         E(2, 16, "duplicate flag '--chown'")},
        {"repeated --mount is fine",
         "FROM a\nRUN --mount=type=cache,target=/a --mount=type=cache,target=/b true\n", ""},
        {"bool flag with a bad value", "FROM a\nCOPY --link=yes a b\n",
         E(2, 6, "invalid value 'yes' for flag '--link' (expected true or false)")},
        {"bool flag with an empty value", "FROM a\nADD --unpack= a b\n",
         E(2, 5, "missing value for flag '--unpack'")},
        {"flag for another instruction", "FROM a\nADD --from=x a b\n",
         E(2, 5, "unknown flag '--from' for ADD")},
        /* arguments */
        {"COPY with one argument", "FROM a\nCOPY a\n",
         E(2, 1, "COPY requires at least two arguments")},
        {"ADD without arguments", "FROM a\nADD\n", E(2, 1, "ADD requires at least two arguments")},
        {"COPY to a heredoc", "FROM a\nCOPY a <<EOF\nx\nEOF\n",
         E(2, 1, "COPY does not accept a heredoc as the destination")},
        {"WORKDIR without path", "FROM a\nWORKDIR\n",
         E(2, 1, "WORKDIR requires exactly one argument")},
        {"USER without name", "FROM a\nUSER\n", E(2, 1, "USER requires exactly one argument")},
        {"MAINTAINER without name", "FROM a\nMAINTAINER\n",
         E(2, 1, "MAINTAINER requires exactly one argument")},
        {"STOPSIGNAL without signal", "FROM a\nSTOPSIGNAL\n",
         E(2, 1, "STOPSIGNAL requires exactly one argument")},
        {"EXPOSE without ports", "FROM a\nEXPOSE\n",
         E(2, 1, "EXPOSE requires at least one argument")},
        {"VOLUME without paths", "FROM a\nVOLUME\n",
         E(2, 1, "VOLUME requires at least one argument")},
        {"VOLUME with a blank path", "FROM a\nVOLUME [\"/a\", \" \"]\n",
         E(2, 1, "VOLUME path can not be empty")},
        {"ENV without pairs", "FROM a\nENV\n", E(2, 1, "ENV requires at least one argument")},
        {"ENV legacy form without value", "FROM a\nENV A\n",
         E(2, 1, "ENV must have two arguments")},
        {"ENV word without =", "FROM a\nENV A=1 B\n",
         E(2, 9, "can't find '=' in 'B' (must be of the form name=value)")},
        {"ENV blank name", "FROM a\nENV =1\n", E(2, 5, "ENV names can not be blank")},
        {"LABEL blank name", "FROM a\nLABEL a=b =c\n", E(2, 11, "LABEL names can not be blank")},
        {"ARG without name", "FROM a\nARG\n", E(2, 1, "ARG requires at least one argument")},
        {"ARG blank name", "FROM a\nARG =x\n", E(2, 5, "ARG names can not be blank")},
        {"SHELL in shell form", "FROM a\nSHELL /bin/sh -c\n",
         E(2, 1, "SHELL requires a JSON array")},
        {"SHELL with an empty array", "FROM a\nSHELL []\n",
         E(2, 1, "SHELL requires at least one argument")},
        {"number in an exec form", "FROM a\nCMD [1]\n",
         E(2, 5, "when using JSON array syntax, arrays must hold strings only")},
        {"null in an exec form", "FROM a\nRUN [\"a\", null]\n",
         E(2, 5, "when using JSON array syntax, arrays must hold strings only")},
        {"object in a COPY array", "FROM a\nCOPY [\"a\", {}]\n",
         E(2, 6, "when using JSON array syntax, arrays must hold strings only")},
        /* HEALTHCHECK */
        {"HEALTHCHECK alone", "FROM a\nHEALTHCHECK\n",
         E(2, 1, "HEALTHCHECK requires at least one argument")},
        {"HEALTHCHECK NONE with arguments", "FROM a\nHEALTHCHECK NONE true\n",
         E(2, 1, "HEALTHCHECK NONE takes no arguments")},
        {"HEALTHCHECK unknown type", "FROM a\nHEALTHCHECK foo true\n",
         E(2, 1, "unknown type 'FOO' in HEALTHCHECK (try CMD)")},
        {"HEALTHCHECK CMD without command", "FROM a\nHEALTHCHECK CMD\n",
         E(2, 1, "missing command after HEALTHCHECK CMD")},
        {"duration without unit", "FROM a\nHEALTHCHECK --interval=5 CMD true\n",
         E(2, 13, "invalid duration '5' for '--interval'")},
        {"duration with an unknown unit", "FROM a\nHEALTHCHECK --interval=1x CMD true\n",
         E(2, 13, "invalid duration '1x' for '--interval'")},
        {"duration under a millisecond", "FROM a\nHEALTHCHECK --timeout=10us CMD true\n",
         E(2, 13, "'--timeout' can not be less than 1ms")},
        {"negative duration", "FROM a\nHEALTHCHECK --start-period=-5s CMD true\n",
         E(2, 13, "'--start-period' can not be less than 1ms")},
        {"negative retries", "FROM a\nHEALTHCHECK --retries=-1 CMD true\n",
         E(2, 13, "'--retries' can not be negative (-1)")},
        {"retries not a number", "FROM a\nHEALTHCHECK --retries=x CMD true\n",
         E(2, 13, "invalid value 'x' for '--retries'")},
        {"retries out of range", "FROM a\nHEALTHCHECK --retries=99999999999 CMD true\n",
         E(2, 13, "invalid value '99999999999' for '--retries'")},
        {"HEALTHCHECK unknown flag", "FROM a\nHEALTHCHECK --foo=1 CMD x\n",
         E(2, 13, "unknown flag '--foo' for HEALTHCHECK")},
        {"HEALTHCHECK repeated flag", "FROM a\nHEALTHCHECK --interval=1s --interval=2s CMD x\n",
         E(2, 27, "duplicate flag '--interval'")},
        /* ONBUILD */
        {"ONBUILD alone", "FROM a\nONBUILD\n", E(2, 1, "ONBUILD requires at least one argument")},
        {"ONBUILD ONBUILD", "FROM a\nONBUILD ONBUILD RUN x\n",
         E(2, 9, "ONBUILD ONBUILD is not allowed")},
        {"ONBUILD FROM", "FROM a\nONBUILD FROM b\n",
         E(2, 9, "FROM is not allowed as an ONBUILD trigger")},
        {"ONBUILD MAINTAINER", "FROM a\nONBUILD MAINTAINER me\n",
         E(2, 9, "MAINTAINER is not allowed as an ONBUILD trigger")},
        {"ONBUILD unknown trigger", "FROM a\nONBUILD RUNN x\n",
         "2:9: error: unknown instruction 'RUNN' (did you mean 'RUN'?) [UnknownInstruction]\n"},
        {"ONBUILD bad trigger", "FROM a\nONBUILD COPY a\n",
         E(2, 9, "COPY requires at least two arguments")},
        {"ONBUILD flag", "FROM a\nONBUILD --x RUN y\n", E(2, 9, "unknown flag '--x' for ONBUILD")},
        /* RUN */
        {"unknown network mode", "FROM a\nRUN --network=bridge true\n",
         E(2, 5, "unsupported network mode 'bridge'")},
        {"unknown security mode", "FROM a\nRUN --security=foo true\n",
         E(2, 5, "unsupported security mode 'foo'")},
        {"mount type typo", RUNM("type=cahce,target=/x"),
         MOUNT_E("unsupported mount type 'cahce' (did you mean 'cache'?)")},
        {"mount key typo", RUNM("type=bind,tagret=/x"),
         MOUNT_E("unknown mount key 'tagret' (did you mean 'target'?)")},
        {"mount key far from any", RUNM("target=/x,colour=red"),
         MOUNT_E("unknown mount key 'colour'")},
        {"mount field without value", RUNM("target=/x,foo"),
         MOUNT_E("invalid mount field 'foo': it must be a key=value pair")},
        {"required on a bind mount", RUNM("target=/x,required"),
         MOUNT_E("mount key 'required' is not allowed for 'bind' mounts")},
        {"required before the type", RUNM("required,type=secret,id=x"),
         MOUNT_E("mount key 'required' is not allowed for 'bind' mounts")},
        {"size on a cache mount", RUNM("type=cache,target=/x,size=1m"),
         MOUNT_E("mount key 'size' is not allowed for 'cache' mounts")},
        {"bad tmpfs size", RUNM("type=tmpfs,target=/x,size=lots"),
         MOUNT_E("invalid value 'lots' for mount key 'size'")},
        {"mode on a bind mount", RUNM("target=/x,mode=0755"),
         MOUNT_E("mount key 'mode' is not allowed for 'bind' mounts")},
        {"mode not octal", RUNM("type=cache,target=/x,mode=999"),
         MOUNT_E("invalid value '999' for mount key 'mode'")},
        {"negative uid", RUNM("type=cache,target=/x,uid=-1"),
         MOUNT_E("invalid value '-1' for mount key 'uid'")},
        {"secret from a stage", RUNM("type=secret,id=a,from=b"),
         MOUNT_E("secret mounts can not have 'from'")},
        {"secret with source and id", RUNM("type=secret,id=a,source=b"),
         MOUNT_E("secret mount can not have both 'source' and 'id'")},
        {"secret without id", RUNM("type=secret"),
         MOUNT_E("secret mount requires an id, a source or a target")},
        {"sharing on a bind mount", RUNM("target=/x,sharing=locked"),
         MOUNT_E("mount key 'sharing' is not allowed for 'bind' mounts")},
        {"sharing typo", RUNM("type=cache,target=/x,sharing=lockd"),
         MOUNT_E("unsupported sharing value 'lockd' (did you mean 'locked'?)")},
        {"cache without target", RUNM("type=cache"), MOUNT_E("'cache' mount requires a target")},
        {"tmpfs without target", RUNM("type=tmpfs"), MOUNT_E("'tmpfs' mount requires a target")},
        {"mount from a variable", RUNM("from=$IMG,target=/x"),
         MOUNT_E("mount 'from' does not support variables (define an alias stage instead)")},
        {"mount type from a variable", RUNM("type=$T,target=/x"),
         MOUNT_E("mount key 'type' does not support variables")},
        {"bare quote in a mount", RUNM("'target=/a\"b'"), MOUNT_E("bare '\"' in non-quoted field")},
        {"bad readonly value", RUNM("type=cache,target=/x,ro=maybe"),
         MOUNT_E("invalid value 'maybe' for mount key 'ro'")},
        {"env on a cache mount", RUNM("type=cache,target=/x,env=A"),
         MOUNT_E("mount key 'env' is not allowed for 'cache' mounts")},
        /* heredocs */
        {"unterminated heredoc", "FROM a\nRUN <<EOF\nx\n",
         E(2, 1, "unterminated heredoc 'EOF' started at 2:5")},
        {"second heredoc unterminated", "FROM a\nCOPY <<A <<B /d\na\nA\nb\n",
         E(2, 1, "unterminated heredoc 'B' started at 2:10")},
        {"heredoc on a continuation line", "FROM a\nRUN \\\n  cat <<EOF\n",
         E(2, 1, "unterminated heredoc 'EOF' started at 3:7")},
        /* lines and directives */
        {"bad escape directive", "# escape=x\nFROM a\n",
         E(1, 1, "invalid escape token 'x' (must be ` or \\)")},
        {"repeated directive", "# syntax=a\n# syntax=b\nFROM a\n",
         E(2, 1, "only one 'syntax' parser directive can be used")},
        {"empty continuation line", "FROM a\nRUN a \\\n\nb\n",
         "3:1: warning: empty continuation line [NoEmptyContinuation]\n"},
        /* stages */
        {"RUN before FROM", "RUN x\nFROM a\n",
         E(1, 1, "RUN is not allowed before the first FROM (only ARG is)")},
        {"COPY after a meta ARG", "ARG A\nCOPY a b\nFROM a\n",
         E(2, 1, "COPY is not allowed before the first FROM (only ARG is)")},
        {"empty file", "", "1:1: error: no FROM instruction [NoFromInstruction]\n"},
        {"only comments", "# just a comment\n\n",
         "1:1: error: no FROM instruction [NoFromInstruction]\n"},
        {"instructions without FROM", "RUN x\nCOPY a b\n",
         "1:1: error: no FROM instruction [NoFromInstruction]\n"},
        {"bad FROM does not cascade", "FROM a AS 1\nRUN x\nCOPY a b\n",
         E(1, 1,
           "invalid name for build stage '1': it can't start with a number or contain "
           "symbols")},
        /* recovery and order */
        {"every bad line is reported", "FROM a\nCOPPY x y\nWORKDIR\nRUN ok\nUSER\n",
         "2:1: error: unknown instruction 'COPPY' (did you mean 'COPY'?) [UnknownInstruction]\n"
         "3:1: error: WORKDIR requires exactly one argument [Syntax]\n"
         "5:1: error: USER requires exactly one argument [Syntax]\n"},
        {"errors before the first FROM", "RUN x\nFROM a\nCOPPY y\n",
         "1:1: error: RUN is not allowed before the first FROM (only ARG is) [Syntax]\n"
         "3:1: error: unknown instruction 'COPPY' (did you mean 'COPY'?) [UnknownInstruction]\n"},
        {"diagnostics are sorted", "FROM a\nRUN --bad <<EOF\n",
         E(2, 1, "unterminated heredoc 'EOF' started at 2:11")
                 E(2, 5, "unknown flag '--bad' for RUN")},
        {"warning and errors in order", "FROM a\nRUN \\\n\n  --bad b\nCOPPY\n",
         "3:1: warning: empty continuation line [NoEmptyContinuation]\n"
         "4:3: error: unknown flag '--bad' for RUN [Syntax]\n"
         "5:1: error: unknown instruction 'COPPY' (did you mean 'COPY'?) [UnknownInstruction]\n"},
};

TEST(diagnostics)
{
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *got;

                CASE("%s", cases[i].name);
                got = diags_of(cases[i].src, strlen(cases[i].src));
                CHECK_STREQ(got, cases[i].want);
                free(got);
        }
}

TEST(bad_instructions_are_left_out)
{
        const char *src = "FROM a\nCOPPY x y\nRUN ok\nWORKDIR\n";
        struct parser_file *f = parser_parse_all("Containerfile", src, strlen(src));

        CASE("only good instructions in the stage");
        CHECK_INTEQ(f->n_instrs, 2);
        if (CHECK_INTEQ(f->n_stages, 1)) {
                CHECK_INTEQ(f->stages[0].n_instrs, 1);
                CHECK_STREQ(f->stages[0].instrs[0]->original, "RUN ok");
        }
        CHECK_INTEQ(parser_file_count(f, PARSER_ERROR), 2);
        parser_file_free(f);
}

TEST(parse_fails_on_the_first_error)
{
        const char *bad = "FROM a\nRUN x\nCOPPY a b\nWORKDIR\n";
        const char *warn = "FROM a\nRUN a \\\n\nb\n";
        struct kerr *err = NULL;
        struct parser_file *f;

        CASE("error carries file, line and column");
        f = parser_parse("Containerfile", bad, strlen(bad), &err);
        CHECK_NULL(f);
        if (CHECK(err)) {
                CHECK_INTEQ(err->code, KERR_PARSE);
                CHECK_STREQ(err->file, "Containerfile");
                CHECK_INTEQ(err->line, 3);
                CHECK_INTEQ(err->col, 1);
                CHECK_STREQ(err->msg, "unknown instruction 'COPPY' (did you mean 'COPY'?)");
        }
        kerr_free(err);
        err = NULL;

        CASE("warnings do not fail");
        f = parser_parse("Containerfile", warn, strlen(warn), &err);
        if (CHECK(f)) {
                CHECK_NULL(err);
                CHECK_INTEQ(f->n_diags, 1);
                CHECK_INTEQ(parser_file_count(f, PARSER_WARNING), 1);
        }
        parser_file_free(f);
        kerr_free(err);
}

TEST(hostile)
{
        struct kbuf src = KBUF_INIT;
        char *got;

        CASE("long unknown keyword has no hint");
        kbuf_puts(&src, "FROM a\n");
        for (int i = 0; i < 100000; i++)
                kbuf_putc(&src, 'A');
        kbuf_puts(&src, " x\n");
        {
                struct parser_file *f = parser_parse_all("Containerfile", src.data, src.len);

                if (CHECK_INTEQ(f->n_diags, 1)) {
                        CHECK_STREQ(f->diags[0].rule, "UnknownInstruction");
                        CHECK(strncmp(f->diags[0].msg, "unknown instruction 'AAAA", 25) == 0);
                        CHECK(strstr(f->diags[0].msg, "did you mean") == NULL);
                }
                parser_file_free(f);
        }

        CASE("ONBUILD chain is refused without recursion");
        kbuf_truncate(&src, 0);
        kbuf_puts(&src, "FROM a\nONBUILD");
        for (int i = 0; i < 100000; i++)
                kbuf_puts(&src, " ONBUILD");
        kbuf_puts(&src, " RUN x\n");
        got = diags_of(src.data, src.len);
        CHECK_STREQ(got, E(2, 9, "ONBUILD ONBUILD is not allowed"));
        free(got);

        CASE("binary garbage");
        kbuf_truncate(&src, 0);
        for (int i = 0; i < 4096; i++)
                kbuf_putc(&src, (char)((i * 7919) % 256));
        got = diags_of(src.data, src.len);
        CHECK(got != NULL);
        free(got);

        CASE("unterminated quotes and brackets");
        {
                const char *text = "FROM a\nRUN --mount=\"type=cache\nCOPY [\"a\nENV A=\"x\n"
                                   "RUN cat <<'EOF\n";

                got = diags_of(text, strlen(text));
        }
        CHECK_STREQ(got, MOUNT_E("'cache' mount requires a target")
                                 E(3, 1, "COPY requires at least two arguments"));
        free(got);
        kbuf_release(&src);
}
