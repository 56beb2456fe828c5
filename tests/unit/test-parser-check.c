/* SPDX-License-Identifier: Apache-2.0 */
/* The linter: each row is a Containerfile and the exact diagnostics kiln check gives. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "parser/parser.h"
#include "tap.h"

static char *lint_text(const char *src)
{
        struct parser_file *f = parser_parse_all("Containerfile", src, strlen(src));
        struct kbuf b = KBUF_INIT;

        parser_lint(f);
        for (size_t i = 0; i < f->n_diags; i++) {
                const struct parser_diag *d = &f->diags[i];

                kbuf_printf(&b, "%u:%u: %s: %s [%s]\n", d->pos.line, d->pos.col,
                            d->severity == PARSER_ERROR ? "error" : "warning", d->msg, d->rule);
        }
        parser_file_free(f);
        return kbuf_detach(&b);
}

static const struct {
        const char *name;
        const char *src;
        const char *want;
} cases[] = {
        {"clean file", "FROM busybox\nCOPY a /a\nCMD [\"sh\"]\n", ""},
        {"duplicate stage name",
         "FROM busybox AS base\nFROM busybox AS other\nFROM alpine AS base\n",
         "3:1: error: duplicate stage name 'base' (first defined at 1:1) [DuplicateStageName]\n"},
        {"duplicate stage name ignores case", "FROM busybox AS Build\nFROM busybox AS build\n",
         "2:1: error: duplicate stage name 'build' (first defined at 1:1) [DuplicateStageName]\n"},
        {"reserved stage name", "FROM busybox AS scratch\n",
         "1:1: warning: stage name 'scratch' is reserved [ReservedStageName]\n"},
        {"copy from a later stage", "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n",
         "2:6: error: '--from=b' refers to stage 'b' which is defined at 3:1, not before this "
         "instruction [UndefinedStage]\n"},
        {"copy from its own stage", "FROM busybox AS a\nCOPY --from=a /x /x\n",
         "2:6: error: '--from=a' refers to stage 'a' which is defined at 1:1, not before this "
         "instruction [UndefinedStage]\n"},
        {"copy from an index out of range", "FROM busybox\nFROM busybox\nCOPY --from=1 /x /x\n",
         "3:6: error: '--from=1' names no earlier stage (stage 1 has stages 0 to 0 before it) "
         "[UndefinedStage]\n"},
        {"copy from an earlier index", "FROM busybox\nFROM busybox\nCOPY --from=0 /x /x\n", ""},
        {"copy from a misspelt stage",
         "FROM busybox AS builder\nFROM busybox\nCOPY --from=buidler /x /x\n",
         "3:6: error: '--from=buidler' names no stage (did you mean 'builder'?) "
         "[UndefinedStage]\n"},
        {"copy from an image",
         "FROM busybox AS builder\nFROM busybox\nCOPY --from=alpine /x /x\n"
         "COPY --from=docker.io/library/nginx:1 /y /y\n",
         ""},
        {"copy from a variable", "FROM busybox\nARG SRC=img\nCOPY --from=$SRC /x /x\n", ""},
        {"cmd twice", "FROM busybox\nCMD [\"a\"]\nRUN true\nCMD [\"b\"]\n",
         "4:1: error: CMD given more than once in stage 0 (first at 2:1); only the last one "
         "takes effect [MultipleInstructionsDisallowed]\n"},
        {"entrypoint twice in the second stage",
         "FROM busybox\nENTRYPOINT [\"a\"]\nFROM busybox\nENTRYPOINT [\"a\"]\n"
         "ENTRYPOINT [\"b\"]\n",
         "5:1: error: ENTRYPOINT given more than once in stage 1 (first at 4:1); only the last "
         "one takes effect [MultipleInstructionsDisallowed]\n"},
        {"cmd once per stage is fine", "FROM busybox\nCMD [\"a\"]\nFROM busybox\nCMD [\"b\"]\n",
         ""},
        {"arg used before declared", "FROM busybox\nCOPY app-${VERSION}.tar /app\nARG VERSION=1\n",
         "2:1: error: '$VERSION' is used before 'ARG VERSION' declares it at 3:1 "
         "[ArgBeforeDeclared]\n"},
        {"arg used in RUN before declared", "FROM busybox\nRUN echo $MODE\nARG MODE\n",
         "2:1: error: '$MODE' is used before 'ARG MODE' declares it at 3:1 "
         "[ArgBeforeDeclared]\n"},
        {"arg declared before use", "FROM busybox\nARG VERSION=1\nCOPY app-${VERSION}.tar /app\n",
         ""},
        {"env declares too", "FROM busybox\nENV DIR=/x\nWORKDIR $DIR\nARG DIR\n", ""},
        {"single quotes are not a use", "FROM busybox\nRUN echo '$MODE'\nARG MODE\n", ""},
        {"global arg used before declared", "ARG TAG=${BASE}\nARG BASE=1\nFROM busybox:$TAG\n",
         "1:1: error: '$BASE' is used before 'ARG BASE' declares it at 2:1 "
         "[ArgBeforeDeclared]\n"},
        {"from uses an undeclared arg", "FROM busybox:$TAG\n",
         "1:1: warning: FROM uses '$TAG', which no ARG before the first FROM declares "
         "[UndefinedArgInFrom]\n"},
        {"from uses a predefined arg", "FROM --platform=$BUILDPLATFORM busybox\n", ""},
        {"shell-form cmd and entrypoint", "FROM busybox\nENTRYPOINT exec app\nCMD run\n",
         "2:1: warning: ENTRYPOINT in shell form runs under /bin/sh -c, which does not pass "
         "signals on; use the JSON form ENTRYPOINT [\"…\"] [JSONArgsRecommended]\n"
         "3:1: warning: CMD in shell form runs under /bin/sh -c, which does not pass signals "
         "on; use the JSON form CMD [\"…\"] [JSONArgsRecommended]\n"},
        {"maintainer", "FROM busybox\nMAINTAINER someone\n",
         "2:1: warning: MAINTAINER is deprecated; use LABEL "
         "org.opencontainers.image.authors=\"…\" [MaintainerDeprecated]\n"},
        {"mixed casing, upper majority", "FROM busybox\nrun true\nCOPY a /a\n",
         "2:1: warning: 'run' should be written 'RUN' like the majority of instructions (upper "
         "case) [ConsistentInstructionCasing]\n"},
        {"mixed casing, lower majority", "from busybox\nrun true\nCopy a /a\n",
         "3:1: warning: 'Copy' should be written 'copy' like the majority of instructions "
         "(lower case) [ConsistentInstructionCasing]\n"},
        {"secret-looking names",
         "ARG GITHUB_TOKEN\nFROM busybox\nENV DB_PASSWORD=x PUBLIC_KEY=y "
         "KEYBOARD=z\n",
         "1:5: warning: ARG 'GITHUB_TOKEN' looks like a secret: its value stays in the image; "
         "use RUN --mount=type=secret instead [SecretsUsedInArgOrEnv]\n"
         "3:5: warning: ENV 'DB_PASSWORD' looks like a secret: its value stays in the image; "
         "use RUN --mount=type=secret instead [SecretsUsedInArgOrEnv]\n"},
        {"relative workdir", "FROM busybox\nWORKDIR app\nWORKDIR /srv\nWORKDIR data\n",
         "2:1: warning: relative WORKDIR 'app' depends on the base image's working directory; "
         "set an absolute one first [WorkdirRelativePath]\n"},
        {"check directive skips a rule",
         "# check=skip=JSONArgsRecommended\nFROM busybox\nCMD run\n", ""},
        {"check directive skips all", "# check=skip=all\nFROM busybox\nMAINTAINER x\nCMD run\n",
         ""},
        {"check directive error=true",
         "# check=error=true;skip=MaintainerDeprecated\nFROM busybox\nMAINTAINER x\nCMD run\n",
         "4:1: error: CMD in shell form runs under /bin/sh -c, which does not pass signals on; "
         "use the JSON form CMD [\"…\"] [JSONArgsRecommended]\n"},
        {"check directive cannot hide syntax errors", "# check=skip=all\nFROM busybox\nCOPPY a b\n",
         "3:1: error: unknown instruction 'COPPY' (did you mean 'COPY'?) [UnknownInstruction]\n"},
        {"no FROM", "ARG A=1\n", "1:1: error: no FROM instruction [NoFromInstruction]\n"},
};

TEST(lint_rules)
{
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *got;

                CASE("%s", cases[i].name);
                got = lint_text(cases[i].src);
                CHECK_STREQ(got, cases[i].want);
                free(got);
        }
}

TEST(lint_json_includes_diagnostics)
{
        const char *src = "FROM busybox\nMAINTAINER me\n";
        struct parser_file *f = parser_parse_all("Containerfile", src, strlen(src));
        struct kbuf b = KBUF_INIT;

        parser_lint(f);
        parser_file_to_json(f, &b, false);
        CHECK(strstr(b.data, "\"diagnostics\":[{\"severity\":\"warning\",\"line\":2,\"col\":1,"
                             "\"rule\":\"MaintainerDeprecated\"") != NULL);
        CHECK(strstr(b.data, "\"instruction\":\"MAINTAINER\"") != NULL);
        kbuf_release(&b);
        parser_file_free(f);
}
