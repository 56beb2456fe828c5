/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of parser/ only; no other module includes this. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parser/parser.h"

struct kbuf;

void parser_instr_free(struct parser_instr *in);

/* Levenshtein distance between a and b, ignoring ASCII case; saturates at 255. */
unsigned parser_edit_distance(const char *a, const char *b);

/* Grows an array that holds n elements so that one more fits; capacities are powers of two,
 * so appending n elements costs O(n). Only for arrays grown by this function alone. */
void *parser_grow(void *p, size_t n, size_t size);

/* ---- characters (lexer.c) ---- */

/* unicode.IsSpace applied to a single byte taken as a rune, as buildkit's byte-wise loops do
 * (so 0x85 and 0xA0 count). */
bool parser_is_space_byte(unsigned char c);
/* The blanks of buildkit's reWhitespace: [\t\v\f\r ]. */
bool parser_is_blank(unsigned char c);
/* The length of the run of unicode spaces that starts (or ends) s[0..n). */
size_t parser_space_prefix(const char *s, size_t n);
size_t parser_space_suffix(const char *s, size_t n);

/* ---- logical lines (lexer.c) ---- */

/* Where a piece of a logical line came from: text from offset off on comes from physical
 * line `line`, starting at column col. */
struct parser_seg {
        size_t off;
        unsigned line, col;
};

/* One instruction's text: the physical lines it spans joined as buildkit joins them
 * (continuations removed, comment and empty lines dropped). */
struct parser_line {
        char *text; /* NUL-terminated; may contain NULs of the input */
        size_t len, cap;
        struct parser_seg *segs;
        size_t n_segs;
        unsigned start_line, end_line;
        unsigned empty_line; /* the first empty line inside the continuation, 0 when none */
};

void parser_line_release(struct parser_line *l);
/* The physical position of the byte at offset off (off may be len). */
struct parser_pos parser_line_pos(const struct parser_line *l, size_t off);

struct parser_lexer {
        struct parser_file *f;
        const char *data;
        size_t len, off; /* off: the start of the next physical line */
        unsigned line;   /* physical lines consumed so far */
        bool directives_done;
        unsigned seen_directives; /* bit per known directive name */
};

void parser_lexer_init(struct parser_lexer *lx, struct parser_file *f, const char *data,
                       size_t len);
/* Reads the next logical line into *l (released first); false at the end of the input.
 * Directives are recorded into f->directives (and f->escape) on the way. */
bool parser_lexer_next(struct parser_lexer *lx, struct parser_line *l);
/* Reads a heredoc body up to the line that equals name (after leading tabs when chomp),
 * appending each line with its own line ending to content (leading tabs removed when
 * chomp). Returns false when the input ends first. */
bool parser_lexer_heredoc(struct parser_lexer *lx, const char *name, size_t name_len, bool chomp,
                          struct kbuf *content);

/* ---- heredoc words (heredoc.c) ---- */

struct parser_heredoc_word {
        size_t off; /* of the "<<" in the line */
        char *name;
        size_t name_len;
        bool chomp, expand;
};

/* Finds the heredoc words ("<<EOF", "<<-'EOF'", "3<< EOF" …) of line[s, e) as buildkit's
 * heredocsFromLine does. Returns their number; the caller frees each name and the array. */
size_t parser_heredoc_words(const char *line, size_t s, size_t e, struct parser_heredoc_word **ret);
/* True when word (NUL-terminated) is a heredoc word, as MustParseHeredoc. */
bool parser_is_heredoc_word(const char *word);

/* ---- values (values.c) ---- */

/* Go's time.ParseDuration: 0 or -1 (invalid syntax, unknown unit, overflow). */
int parser_parse_duration(const char *s, long long *ret_ns);
/* strconv.ParseBool. */
int parser_parse_bool(const char *s, bool *ret);
/* strconv.ParseUint(s, base, 32). */
int parser_parse_uint32(const char *s, unsigned base, long long *ret);
/* strconv.ParseInt(s, 10, 32). */
int parser_parse_int32(const char *s, long long *ret);
/* docker/go-units RAMInBytes: "64m", "1g", "512", "1.5GiB". */
int parser_parse_ram_size(const char *s, long long *ret);
/* buildkit's suggest, ignoring case: the first option within edit distance 2 of val (the
 * nearest wins), NULL when none or when val is one of the options. */
const char *parser_suggest(const char *val, const char *const *options, size_t n);

/* ---- RUN --mount (mount.c) ---- */

/* Parses one --mount value into *m (initialised here; release with parser_mount_release
 * on failure too). On failure returns -1 with the reason appended to msg. */
int parser_mount_parse(const char *value, struct parser_mount *m, struct kbuf *msg);
void parser_mount_release(struct parser_mount *m);
