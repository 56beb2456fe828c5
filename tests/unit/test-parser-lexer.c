/* SPDX-License-Identifier: Apache-2.0 */
/* The line reader, seen through the parser: how physical lines become instructions (their
 * text, positions and last line), and the directives at the top. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "parser/parser.h"
#include "tap.h"

static struct parser_file *parse_n(const char *src, size_t len)
{
        return parser_parse_all("Containerfile", src, len);
}

static struct parser_file *parse(const char *src)
{
        return parse_n(src, strlen(src));
}

static char *diags(const struct parser_file *f)
{
        struct kbuf b = KBUF_INIT;

        kbuf_puts(&b, "");
        for (size_t i = 0; i < f->n_diags; i++) {
                const struct parser_diag *d = &f->diags[i];

                kbuf_printf(&b, "%u:%u: %s: %s [%s]\n", d->pos.line, d->pos.col,
                            d->severity == PARSER_ERROR ? "error" : "warning", d->msg, d->rule);
        }
        return kbuf_detach(&b);
}

/* One instruction of a file: its logical line, where it starts and its last line. */
static const struct {
        const char *name;
        const char *src;
        size_t idx;
        const char *original;
        unsigned line, col, end_line;
        const char *diags;
} lines[] = {
        {"plain line", "FROM a\nRUN echo hi\n", 1, "RUN echo hi", 2, 1, 2, ""},
        {"first instruction", "FROM alpine\n", 0, "FROM alpine", 1, 1, 1, ""},
        {"leading spaces are stripped", "FROM a\n   RUN x\n", 1, "RUN x", 2, 4, 2, ""},
        {"leading tabs are stripped", "FROM a\n\t\tRUN x\n", 1, "RUN x", 2, 3, 2, ""},
        {"no-break space is white space",
         "\xC2\xA0"
         "FROM a\n",
         0, "FROM a", 1, 3, 1, ""},
        {"continuation joins without separator", "FROM a\nRUN a \\\n  b\n", 1, "RUN a   b", 2, 1, 3,
         ""},
        {"continuation line is not stripped", "FROM a\nRUN a\\\n  b\n", 1, "RUN a  b", 2, 1, 3, ""},
        {"blanks after the escape", "FROM a\nRUN a \\  \t\nb\n", 1, "RUN a b", 2, 1, 3, ""},
        {"three lines", "FROM a\nRUN a \\\nb \\\nc\n", 1, "RUN a b c", 2, 1, 4, ""},
        {"escaped escape does not continue", "FROM a\nRUN a \\\\\nRUN b\n", 1, "RUN a \\\\", 2, 1,
         2, ""},
        {"line after an escaped escape", "FROM a\nRUN a \\\\\nRUN b\n", 2, "RUN b", 3, 1, 3, ""},
        {"escape before a comment is not a continuation", "FROM a\nRUN a \\ # x\nRUN b\n", 1,
         "RUN a \\ # x", 2, 1, 2, ""},
        {"comment line inside a continuation", "FROM a\nRUN a \\\n# c\n  b\n", 1, "RUN a   b", 2, 1,
         4, ""},
        {"indented comment inside a continuation", "FROM a\nRUN a \\\n    # c\nb\n", 1, "RUN a b",
         2, 1, 4, ""},
        {"empty line inside a continuation", "FROM a\nRUN a \\\n\nb\n", 1, "RUN a b", 2, 1, 4,
         "3:1: warning: empty continuation line [NoEmptyContinuation]\n"},
        {"blank line inside a continuation", "FROM a\nRUN a \\\n \t \nb\n", 1, "RUN a b", 2, 1, 4,
         "3:1: warning: empty continuation line [NoEmptyContinuation]\n"},
        {"one warning for several empty lines", "FROM a\nRUN a \\\n\n\nb \\\n\nc\n", 1, "RUN a b c",
         2, 1, 7, "3:1: warning: empty continuation line [NoEmptyContinuation]\n"},
        {"escape alone continues", "FROM a\nRUN a \\\n\\\nb\n", 1, "RUN a b", 2, 1, 4, ""},
        {"escape alone on the first line", "FROM a\n\\\nRUN x\n", 1, "RUN x", 3, 1, 3, ""},
        {"comment lines are skipped", "# c\nFROM a\n", 0, "FROM a", 2, 1, 2, ""},
        {"blank lines are skipped", "\n\n  \nFROM a\n", 0, "FROM a", 4, 1, 4, ""},
        {"hash inside an instruction is kept", "FROM a\nRUN a # not a comment\n", 1,
         "RUN a # not a comment", 2, 1, 2, ""},
        {"CRLF line endings", "FROM a\r\nRUN x\r\n", 1, "RUN x", 2, 1, 2, ""},
        {"CRLF continuation", "FROM a\r\nRUN a \\\r\n b\r\n", 1, "RUN a  b", 2, 1, 3, ""},
        {"byte order mark",
         "\xEF\xBB\xBF"
         "FROM a\n",
         0, "FROM a", 1, 1, 1, ""},
        {"no final newline", "FROM a\nRUN x", 1, "RUN x", 2, 1, 2, ""},
        {"continuation at the end of the input", "FROM a\nRUN x \\", 1, "RUN x ", 2, 1, 2, ""},
        {"keyword alone", "FROM a\nRUN\n", 1, "RUN", 2, 1, 2, ""},
        {"backtick escape continues", "# escape=`\nFROM a\nRUN a `\n b\n", 1, "RUN a  b", 3, 1, 4,
         ""},
        {"backslash is plain with the backtick escape", "# escape=`\nFROM a\nRUN dir c:\\\nRUN b\n",
         1, "RUN dir c:\\", 3, 1, 3, ""},
        {"heredoc body is not an instruction", "FROM a\nRUN <<EOF\nx\nEOF\nRUN y\n", 1, "RUN <<EOF",
         2, 1, 4, ""},
        {"instruction after a heredoc", "FROM a\nRUN <<EOF\nx\nEOF\nRUN y\n", 2, "RUN y", 5, 1, 5,
         ""},
        {"heredoc after a continuation", "FROM a\nRUN \\\n  cat <<EOF\nhi\nEOF\n", 1,
         "RUN   cat <<EOF", 2, 1, 5, ""},
        {"two heredocs", "FROM a\nCOPY <<A <<B /\na\nA\nb\nB\nRUN c\n", 2, "RUN c", 7, 1, 7, ""},
        {"CRLF heredoc terminator", "FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\nRUN y\r\n", 2, "RUN y", 5,
         1, 5, ""},
        {"unicode keyword position", "FROM a\n\xE3\x80\x80RUN x\n", 1, "RUN x", 2, 4, 2, ""},
};

TEST(logical_lines)
{
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
                struct parser_file *f;
                char *d;

                CASE("%s", lines[i].name);
                f = parse(lines[i].src);
                d = diags(f);
                CHECK_STREQ(d, lines[i].diags);
                if (CHECK(lines[i].idx < f->n_instrs)) {
                        const struct parser_instr *in = f->instrs[lines[i].idx];

                        CHECK_STREQ(in->original, lines[i].original);
                        CHECK_INTEQ(in->pos.line, lines[i].line);
                        CHECK_INTEQ(in->pos.col, lines[i].col);
                        CHECK_INTEQ(in->end_line, lines[i].end_line);
                }
                free(d);
                parser_file_free(f);
        }
}

/* Positions inside continued instructions point at the physical line and column. */
static const struct {
        const char *name;
        const char *src;
        size_t idx, flag;
        unsigned line, col;
} flag_positions[] = {
        {"flag on the keyword line", "FROM a\nCOPY --from=x a b\n", 1, 0, 2, 6},
        {"flag after leading spaces", "FROM a\n  COPY --from=x a b\n", 1, 0, 2, 8},
        {"flag on a continuation line", "FROM a\nCOPY \\\n  --from=x \\\n  a b\n", 1, 0, 3, 3},
        {"second flag on a third line", "FROM a\nCOPY \\\n  --from=x \\\n    --chown=1 a b\n", 1, 1,
         4, 5},
        {"flag after a dropped comment", "FROM a\nRUN \\\n# note\n  --network=none true\n", 1, 0, 4,
         3},
        {"flag after an empty line", "FROM a\nRUN \\\n\n --network=host true\n", 1, 0, 4, 2},
        {"flag after a byte order mark",
         "\xEF\xBB\xBF"
         "FROM --platform=linux/amd64 a\n",
         0, 0, 1, 6},
        {"flag of an ONBUILD trigger", "FROM a\nONBUILD COPY --from=x a b\n", 1, 0, 2, 14},
};

TEST(positions)
{
        for (size_t i = 0; i < sizeof(flag_positions) / sizeof(flag_positions[0]); i++) {
                struct parser_file *f;

                CASE("%s", flag_positions[i].name);
                f = parse(flag_positions[i].src);
                if (CHECK(flag_positions[i].idx < f->n_instrs)) {
                        const struct parser_instr *in = f->instrs[flag_positions[i].idx];

                        if (in->sub)
                                in = in->sub;
                        if (CHECK(flag_positions[i].flag < in->n_flags)) {
                                const struct parser_flag *fl = &in->flags[flag_positions[i].flag];

                                CHECK_INTEQ(fl->pos.line, flag_positions[i].line);
                                CHECK_INTEQ(fl->pos.col, flag_positions[i].col);
                        }
                }
                parser_file_free(f);
        }
}

TEST(pair_and_sub_positions)
{
        struct parser_file *f;

        CASE("ENV pair on a continuation line");
        f = parse("FROM a\nENV A=1 \\\n    B=2\n");
        if (CHECK(f->n_instrs == 2 && f->instrs[1]->n_kvs == 2)) {
                CHECK_INTEQ(f->instrs[1]->kvs[0].pos.line, 2);
                CHECK_INTEQ(f->instrs[1]->kvs[0].pos.col, 5);
                CHECK_INTEQ(f->instrs[1]->kvs[1].pos.line, 3);
                CHECK_INTEQ(f->instrs[1]->kvs[1].pos.col, 5);
        }
        parser_file_free(f);

        CASE("ONBUILD trigger keyword on the next line");
        f = parse("FROM a\nONBUILD \\\n   RUN true\n");
        if (CHECK(f->n_instrs == 2 && f->instrs[1]->sub)) {
                CHECK_INTEQ(f->instrs[1]->sub->pos.line, 3);
                CHECK_INTEQ(f->instrs[1]->sub->pos.col, 4);
                CHECK_STREQ(f->instrs[1]->sub->original, "RUN true");
                CHECK_INTEQ(f->instrs[1]->end_line, 3);
        }
        parser_file_free(f);
}

/* The directive block at the top of the file. */
static const struct {
        const char *name;
        const char *src;
        size_t n;
        char escape;
        const char *dname, *dvalue;
        unsigned line, col;
} directives[] = {
        {"syntax", "# syntax=docker/dockerfile:1\nFROM a\n", 1, '\\', "syntax",
         "docker/dockerfile:1", 1, 1},
        {"escape backtick", "# escape=`\nFROM a\n", 1, '`', "escape", "`", 1, 1},
        {"escape backslash", "# escape=\\\nFROM a\n", 1, '\\', "escape", "\\", 1, 1},
        {"check", "# check=skip=all\nFROM a\n", 1, '\\', "check", "skip=all", 1, 1},
        {"name case and spaces", "#  Syntax = x  \nFROM a\n", 1, '\\', "syntax", "x", 1, 1},
        {"no space after hash", "#escape=`\nFROM a\n", 1, '`', "escape", "`", 1, 1},
        {"value with spaces inside", "# syntax = a b \nFROM a\n", 1, '\\', "syntax", "a b", 1, 1},
        {"indented directive", "  # escape=`\nFROM a\n", 1, '`', "escape", "`", 1, 3},
        {"after a byte order mark", "\xEF\xBB\xBF# escape=`\nFROM a\n", 1, '`', "escape", "`", 1,
         1},
        {"three directives", "# syntax=a\n# escape=`\n# check=error=true\nFROM a\n", 3, '`',
         "syntax", "a", 1, 1},
        {"CRLF directive", "# escape=`\r\nFROM a\r\n", 1, '`', "escape", "`", 1, 1},
        {"after a plain comment it is a comment", "# hello\n# escape=`\nFROM a\n", 0, '\\', NULL,
         NULL, 0, 0},
        {"after a blank line it is a comment", "\n# escape=`\nFROM a\n", 0, '\\', NULL, NULL, 0, 0},
        {"after an instruction it is a comment", "FROM a\n# syntax=x\n", 0, '\\', NULL, NULL, 0, 0},
        {"an unknown directive ends the block", "# foo=bar\n# escape=`\nFROM a\n", 0, '\\', NULL,
         NULL, 0, 0},
        {"no value is no directive", "# escape=\nFROM a\n", 0, '\\', NULL, NULL, 0, 0},
};

TEST(directive_block)
{
        for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]); i++) {
                struct parser_file *f;

                CASE("%s", directives[i].name);
                f = parse(directives[i].src);
                CHECK_INTEQ(f->n_directives, directives[i].n);
                CHECK_INTEQ(f->escape, directives[i].escape);
                CHECK_INTEQ(f->n_diags, 0);
                if (directives[i].n > 0 && CHECK(f->n_directives > 0)) {
                        CHECK_STREQ(f->directives[0].name, directives[i].dname);
                        CHECK_STREQ(f->directives[0].value, directives[i].dvalue);
                        CHECK_INTEQ(f->directives[0].pos.line, directives[i].line);
                        CHECK_INTEQ(f->directives[0].pos.col, directives[i].col);
                }
                parser_file_free(f);
        }
}

TEST(heredoc_bodies)
{
        struct parser_file *f;

        CASE("CRLF body keeps its line endings");
        f = parse("FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\n");
        if (CHECK(f->n_instrs == 2 && f->instrs[1]->n_heredocs == 1)) {
                CHECK_STREQ(f->instrs[1]->heredocs[0].name, "EOF");
                CHECK_STREQ(f->instrs[1]->heredocs[0].content, "x\r\n");
                CHECK_INTEQ(f->instrs[1]->heredocs[0].line, 3);
        }
        parser_file_free(f);

        CASE("body lines that look like instructions or comments");
        f = parse("FROM a\nRUN <<EOF\n# c\nFROM b\n\n  \\\nEOF\n");
        if (CHECK(f->n_instrs == 2 && f->instrs[1]->n_heredocs == 1)) {
                CHECK_STREQ(f->instrs[1]->heredocs[0].content, "# c\nFROM b\n\n  \\\n");
                CHECK_INTEQ(f->n_stages, 1);
                CHECK_INTEQ(f->instrs[1]->end_line, 7);
        }
        parser_file_free(f);

        CASE("terminator must match exactly");
        f = parse("FROM a\nRUN <<EOF\n EOF\nEOF \nEOF\n");
        if (CHECK(f->n_instrs == 2 && f->instrs[1]->n_heredocs == 1))
                CHECK_STREQ(f->instrs[1]->heredocs[0].content, " EOF\nEOF \n");
        parser_file_free(f);

        CASE("chomp strips tabs from the terminator and the body");
        f = parse("FROM a\nRUN <<-EOF\n\t\tx\n\t y\n\tEOF\n");
        if (CHECK(f->n_instrs == 2 && f->instrs[1]->n_heredocs == 1)) {
                CHECK_STREQ(f->instrs[1]->heredocs[0].content, "x\n y\n");
                CHECK(f->instrs[1]->heredocs[0].chomp);
        }
        parser_file_free(f);

        CASE("without chomp a tabbed terminator is body");
        f = parse("FROM a\nRUN <<EOF\n\tEOF\nEOF\n");
        if (CHECK(f->n_instrs == 2 && f->instrs[1]->n_heredocs == 1))
                CHECK_STREQ(f->instrs[1]->heredocs[0].content, "\tEOF\n");
        parser_file_free(f);
}

TEST(hostile_input)
{
        static const char nul[] = "FROM a\0b\nRUN x\0y\nRUN z\n";
        struct parser_file *f;
        struct kbuf big = KBUF_INIT;

        CASE("NUL bytes");
        f = parse_n(nul, sizeof(nul) - 1);
        CHECK_INTEQ(f->n_instrs, 3);
        if (f->n_instrs == 3)
                CHECK_STREQ(f->instrs[2]->original, "RUN z");
        parser_file_free(f);

        CASE("many lines");
        kbuf_puts(&big, "FROM a\n");
        for (int i = 0; i < 20000; i++)
                kbuf_puts(&big, "RUN x\n");
        f = parse_n(big.data, big.len);
        CHECK_INTEQ(f->n_instrs, 20001);
        if (CHECK(f->n_stages == 1))
                CHECK_INTEQ(f->stages[0].n_instrs, 20000);
        CHECK_INTEQ(f->instrs[20000]->pos.line, 20001);
        parser_file_free(f);

        CASE("one huge continued line");
        kbuf_truncate(&big, 0);
        kbuf_puts(&big, "FROM a\nRUN");
        for (int i = 0; i < 100000; i++)
                kbuf_puts(&big, " x \\\n");
        kbuf_puts(&big, "end\n");
        f = parse_n(big.data, big.len);
        if (CHECK(f->n_instrs == 2)) {
                CHECK_INTEQ(strlen(f->instrs[1]->original), 3 + 100000 * 3 + 3);
                CHECK_INTEQ(f->instrs[1]->end_line, 100002);
        }
        parser_file_free(f);

        CASE("many heredoc words without bodies");
        kbuf_truncate(&big, 0);
        kbuf_puts(&big, "FROM a\nRUN");
        for (int i = 0; i < 50000; i++)
                kbuf_puts(&big, " <<E");
        kbuf_puts(&big, "\n");
        f = parse_n(big.data, big.len);
        CHECK_INTEQ(f->n_instrs, 1);
        CHECK_INTEQ(f->n_diags, 1);
        parser_file_free(f);
        kbuf_release(&big);

        CASE("empty input");
        f = parse_n("", 0);
        CHECK_INTEQ(f->n_instrs, 0);
        CHECK_INTEQ(f->escape, '\\');
        parser_file_free(f);
}
