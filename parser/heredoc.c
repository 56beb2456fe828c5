/* SPDX-License-Identifier: Apache-2.0 */
/* Finding heredocs on an instruction line, as buildkit does it: the line is split into words
 * by its shell lexer (quotes, escapes and unset variables kept as written, and "<<" taking the
 * blanks after it into the same word), each word is matched against ^(\d*)<<(-?)\s*([^<]*)$,
 * and the rest is lexed twice, without and with quotes, to get the delimiter and to learn
 * whether some part of it was quoted (then the body is not expanded). */
#include "parser/parser.h"
#include "parser/internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "common/banned.h"

struct sh_word {
        char *s;
        size_t len, off;
};

struct sh_words {
        struct sh_word *v;
        size_t n;
        struct kbuf cur;
        size_t cur_off;
        bool in_word;
};

static void words_release(struct sh_words *w)
{
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i].s);
        free(w->v);
        kbuf_release(&w->cur);
        memset(w, 0, sizeof(*w));
}

static void words_push(struct sh_words *w)
{
        size_t len = w->cur.len;

        w->v = parser_grow(w->v, w->n, sizeof(*w->v));
        w->v[w->n++] = (struct sh_word){kbuf_detach(&w->cur), len, w->cur_off};
        w->in_word = false;
}

static void add_raw(struct sh_words *w, const char *p, size_t n, size_t off)
{
        if (w->cur.len == 0)
                w->cur_off = off;
        kbuf_append(&w->cur, p, n);
        w->in_word = true;
}

/* addChar: white space ends a word (when something was collected), anything else is kept. */
static void add_char(struct sh_words *w, const char *p, size_t n, size_t off)
{
        uint32_t cp;

        kutf8_decode(p, n, &cp);
        if (kutf8_is_space(cp)) {
                if (w->in_word && w->cur.len != 0)
                        words_push(w);
                return;
        }
        add_raw(w, p, n, off);
}

static void add_string(struct sh_words *w, const char *p, size_t n, size_t off)
{
        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t k = kutf8_decode(p + i, n - i, &cp);

                add_char(w, p + i, k, off + i);
                i += k;
        }
}

static bool is_name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
}

/* A "$…" reference with no variable set and unset ones kept as written: returns its length
 * (the text to add is s[i, i + len)), or 0 on a syntax error. ${…} is scanned without
 * recursion, quotes skipped, nested braces counted. */
static size_t dollar_len(const char *s, size_t n, size_t i)
{
        size_t j = i + 1, depth = 1;

        if (j >= n || s[j] != '{') {
                if (j < n && s[j] >= '0' && s[j] <= '9') {
                        while (j < n && s[j] >= '0' && s[j] <= '9')
                                j++;
                } else if (j < n && strchr("@*#?-$!0", s[j]) && s[j] != '\0') {
                        j++;
                } else {
                        while (j < n && is_name_char(s[j]))
                                j++;
                }
                return j - i;
        }
        j++;
        if (j >= n || s[j] == '{' || s[j] == '}' || s[j] == ':')
                return 0;
        while (j < n) {
                char c = s[j];

                if (c == '\\') {
                        j += 2;
                        continue;
                }
                if (c == '\'' || c == '"') {
                        const char *q = memchr(s + j + 1, c, n - j - 1);

                        if (!q)
                                return 0;
                        j = (size_t)(q - s) + 1;
                        continue;
                }
                if (c == '$' && j + 1 < n && s[j + 1] == '{') {
                        depth++;
                        j += 2;
                        continue;
                }
                j++;
                if (c == '}' && --depth == 0)
                        return j - i;
        }
        return 0;
}

/* buildkit's shell lexer with escape '\\', no variables set and unset ones kept, splitting
 * s[0, n) into words. Offsets are relative to s plus base. Returns -1 on an unterminated
 * quote or a bad substitution. */
static int sh_split(const char *s, size_t n, size_t base, bool raw_quotes, bool raw_escapes,
                    struct sh_words *w)
{
        size_t i = 0;

        while (i < n) {
                char c = s[i];

                if (c == '\'') {
                        const char *q = memchr(s + i + 1, '\'', n - i - 1);
                        size_t end;

                        if (!q)
                                return -1;
                        end = (size_t)(q - s);
                        if (raw_quotes)
                                add_raw(w, s + i, end + 1 - i, base + i);
                        else
                                add_raw(w, s + i + 1, end - i - 1, base + i);
                        i = end + 1;
                } else if (c == '"') {
                        struct kbuf tmp = KBUF_INIT;
                        size_t start = i;
                        bool closed = false;

                        if (raw_quotes)
                                kbuf_putc(&tmp, '"');
                        i++;
                        while (i < n) {
                                char d = s[i];

                                if (d == '"') {
                                        if (raw_quotes)
                                                kbuf_putc(&tmp, '"');
                                        i++;
                                        closed = true;
                                        break;
                                }
                                if (d == '$') {
                                        size_t k = dollar_len(s, n, i);

                                        if (k == 0) {
                                                kbuf_release(&tmp);
                                                return -1;
                                        }
                                        kbuf_append(&tmp, s + i, k);
                                        i += k;
                                        continue;
                                }
                                i++;
                                if (d == '\\') {
                                        if (raw_escapes)
                                                kbuf_putc(&tmp, '\\');
                                        if (i == n)
                                                continue;
                                        if (s[i] == '"' || s[i] == '$' || s[i] == '\\')
                                                d = s[i++];
                                }
                                kbuf_putc(&tmp, d);
                        }
                        if (!closed) {
                                kbuf_release(&tmp);
                                return -1;
                        }
                        add_raw(w, tmp.data ? tmp.data : "", tmp.len, base + start);
                        kbuf_release(&tmp);
                } else if (c == '$') {
                        size_t k = dollar_len(s, n, i);

                        if (k == 0)
                                return -1;
                        add_string(w, s + i, k, base + i);
                        i += k;
                } else if (c == '<') {
                        size_t start = i;

                        i++;
                        if (i < n && s[i] == '<') {
                                /* The blanks after "<<" belong to the heredoc word. */
                                i++;
                                while (i < n && (s[i] == ' ' || s[i] == '\t'))
                                        i++;
                        }
                        add_raw(w, s + start, i - start, base + start);
                } else if (c == '\\') {
                        uint32_t cp;
                        size_t k;

                        if (raw_escapes)
                                add_raw(w, s + i, 1, base + i);
                        i++;
                        if (i == n)
                                break;
                        k = kutf8_decode(s + i, n - i, &cp);
                        add_raw(w, s + i, k, base + i);
                        i += k;
                } else {
                        uint32_t cp;
                        size_t k = kutf8_decode(s + i, n - i, &cp);

                        add_char(w, s + i, k, base + i);
                        i += k;
                }
        }
        if (w->cur.len > 0)
                words_push(w);
        return 0;
}

static size_t count_quotes(const char *s, size_t n)
{
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                if (s[i] == '\'' || s[i] == '"')
                        k++;
        return k;
}

/* Matches ^(\d*)<<(-?)\s*([^<]*)$ with a non-empty rest; returns the offset of the rest
 * within word or 0 when there is no match. */
static size_t heredoc_match(const char *word, size_t n, size_t *ret_digits, bool *ret_chomp)
{
        size_t i = 0, digits;

        while (i < n && word[i] >= '0' && word[i] <= '9')
                i++;
        digits = i;
        if (n - i < 2 || word[i] != '<' || word[i + 1] != '<')
                return 0;
        i += 2;
        *ret_chomp = i < n && word[i] == '-';
        if (*ret_chomp)
                i++;
        while (i < n && (word[i] == ' ' || word[i] == '\t' || word[i] == '\n' || word[i] == '\f' ||
                         word[i] == '\r'))
                i++;
        if (i == n || memchr(word + i, '<', n - i))
                return 0;
        *ret_digits = digits;
        return i;
}

bool parser_is_heredoc_word(const char *word)
{
        size_t digits;
        bool chomp;

        return heredoc_match(word, strlen(word), &digits, &chomp) != 0;
}

size_t parser_heredoc_words(const char *line, size_t s, size_t e, struct parser_heredoc_word **ret)
{
        struct parser_heredoc_word *docs = NULL;
        struct sh_words words = {0};
        size_t n = 0;

        *ret = NULL;
        if (sh_split(line + s, e - s, s, true, true, &words) < 0) {
                words_release(&words);
                return 0;
        }
        for (size_t i = 0; i < words.n; i++) {
                const struct sh_word *wd = &words.v[i];
                struct sh_words plain = {0}, quoted = {0};
                size_t digits = 0, rest;
                bool chomp = false;

                rest = heredoc_match(wd->s, wd->len, &digits, &chomp);
                if (rest == 0)
                        continue;
                if (sh_split(wd->s + rest, wd->len - rest, 0, false, false, &plain) == 0 &&
                    plain.n == 1 &&
                    sh_split(wd->s + rest, wd->len - rest, 0, true, false, &quoted) == 0 &&
                    quoted.n == 1) {
                        struct sh_word *name = &plain.v[0];

                        docs = parser_grow(docs, n, sizeof(*docs));
                        docs[n++] = (struct parser_heredoc_word){
                                .off = wd->off + digits,
                                .name = name->s,
                                .name_len = name->len,
                                .chomp = chomp,
                                .expand = count_quotes(name->s, name->len) ==
                                          count_quotes(quoted.v[0].s, quoted.v[0].len),
                        };
                        name->s = NULL;
                }
                words_release(&plain);
                words_release(&quoted);
        }
        words_release(&words);
        *ret = docs;
        return n;
}
