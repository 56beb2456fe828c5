/* SPDX-License-Identifier: Apache-2.0 */
/* The line reader: physical lines to logical ones, as buildkit's Dockerfile parser reads them.
 * A logical line is the first line with left white space and comments stripped, plus every
 * continuation line as written (not stripped), the escape character and the blanks after it
 * removed; comment and empty lines inside a continuation are dropped. Parser directives are
 * recognised at the top. Each piece of a logical line remembers the physical line and column
 * it came from, so positions inside continued instructions stay exact. */
#include "parser/parser.h"
#include "parser/internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "common/banned.h"

void *parser_grow(void *p, size_t n, size_t size)
{
        if (n == 0 || (n & (n - 1)) == 0)
                p = kreallocarray(p, n ? 2 * n : 1, size);
        return p;
}

/* ---- characters ---- */

bool parser_is_space_byte(unsigned char c)
{
        return kutf8_is_space(c);
}

bool parser_is_blank(unsigned char c)
{
        return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

size_t parser_space_prefix(const char *s, size_t n)
{
        size_t i = 0;

        while (i < n) {
                uint32_t cp;
                size_t w = kutf8_decode(s + i, n - i, &cp);

                if (!kutf8_is_space(cp))
                        break;
                i += w;
        }
        return i;
}

size_t parser_space_suffix(const char *s, size_t n)
{
        size_t e = n;

        /* Walk back to the start of each sequence: at most 4 bytes, continuation bytes first. */
        while (e > 0) {
                size_t b = e - 1;
                uint32_t cp;

                while (b > 0 && e - b < 4 && ((unsigned char)s[b] & 0xC0) == 0x80)
                        b--;
                if (kutf8_decode(s + b, e - b, &cp) != e - b) {
                        /* Not one whole sequence: the last byte stands alone. */
                        b = e - 1;
                        kutf8_decode(s + b, 1, &cp);
                }
                if (!kutf8_is_space(cp))
                        break;
                e = b;
        }
        return n - e;
}

/* ---- logical lines ---- */

void parser_line_release(struct parser_line *l)
{
        free(l->text);
        free(l->segs);
        memset(l, 0, sizeof(*l));
}

static void line_append(struct parser_line *l, const char *p, size_t n, unsigned line, unsigned col)
{
        l->segs = parser_grow(l->segs, l->n_segs, sizeof(*l->segs));
        l->segs[l->n_segs++] = (struct parser_seg){.off = l->len, .line = line, .col = col};
        if (l->len + n + 1 > l->cap) {
                size_t cap = l->cap ? l->cap : 64;

                while (cap < l->len + n + 1)
                        cap *= 2;
                l->text = kreallocarray(l->text, cap, 1);
                l->cap = cap;
        }
        memcpy(l->text + l->len, p, n);
        l->len += n;
        l->text[l->len] = '\0';
}

struct parser_pos parser_line_pos(const struct parser_line *l, size_t off)
{
        size_t lo = 0, hi = l->n_segs;

        if (l->n_segs == 0)
                return (struct parser_pos){l->start_line, 1};
        /* The last segment starting at or before off. */
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;

                if (l->segs[mid].off <= off)
                        lo = mid;
                else
                        hi = mid;
        }
        return (struct parser_pos){l->segs[lo].line,
                                   l->segs[lo].col + (unsigned)(off - l->segs[lo].off)};
}

void parser_lexer_init(struct parser_lexer *lx, struct parser_file *f, const char *data, size_t len)
{
        memset(lx, 0, sizeof(*lx));
        lx->f = f;
        lx->data = data;
        lx->len = len;
        f->escape = '\\';
}

/* One physical line: [s, e) without its line ending, [s, next) with it. */
struct phys {
        size_t start, s, e, next;
};

static bool read_phys(struct parser_lexer *lx, struct phys *p)
{
        const char *nl;

        if (lx->off >= lx->len)
                return false;
        p->start = p->s = lx->off;
        nl = memchr(lx->data + lx->off, '\n', lx->len - lx->off);
        p->next = nl ? (size_t)(nl - lx->data) + 1 : lx->len;
        p->e = p->next;
        /* bytes.TrimRight(line, "\r\n") */
        while (p->e > p->s && (lx->data[p->e - 1] == '\n' || lx->data[p->e - 1] == '\r'))
                p->e--;
        lx->off = p->next;
        lx->line++;
        return true;
}

static bool is_directive_space(char c)
{
        /* RE2's \s */
        return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static const char *const directive_names[] = {"syntax", "escape", "check"};

/* A line of the directive block, already stripped on the left; p is where the stripping
 * ended. Follows buildkit's DirectiveParser: "#", white space, then
 * ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$ with a known name; anything else ends the block. */
static void directive_line(struct parser_lexer *lx, const char *s, size_t n, unsigned col)
{
        struct parser_file *f = lx->f;
        struct parser_pos pos = {lx->line, col};
        size_t i, name_s, name_e, val_s, val_e, ws;
        int which = -1;

        if (n == 0 || s[0] != '#') {
                lx->directives_done = true;
                return;
        }
        i = 1 + parser_space_prefix(s + 1, n - 1);
        name_s = i;
        if (i >= n || !is_alpha(s[i])) {
                lx->directives_done = true;
                return;
        }
        while (i < n && (is_alpha(s[i]) || is_digit(s[i])))
                i++;
        name_e = i;
        while (i < n && is_directive_space(s[i]))
                i++;
        if (i >= n || s[i] != '=') {
                lx->directives_done = true;
                return;
        }
        i++;
        ws = i;
        while (i < n && is_directive_space(s[i]))
                i++;
        if (i == n) {
                /* (.+?) needs a character: the regexp gives back the last blank. */
                if (i == ws) {
                        lx->directives_done = true;
                        return;
                }
                val_s = i - 1;
                val_e = i;
        } else {
                val_s = i;
                val_e = n;
                while (val_e > val_s && is_directive_space(s[val_e - 1]))
                        val_e--;
        }
        for (size_t k = 0; k < sizeof(directive_names) / sizeof(directive_names[0]); k++)
                if (strlen(directive_names[k]) == name_e - name_s &&
                    strncasecmp(s + name_s, directive_names[k], name_e - name_s) == 0)
                        which = (int)k;
        if (which < 0) {
                lx->directives_done = true;
                return;
        }
        if (lx->seen_directives & (1u << which)) {
                parser_file_diag(f, PARSER_ERROR, pos, "Syntax",
                                 "only one '%s' parser directive can be used",
                                 directive_names[which]);
                return;
        }
        lx->seen_directives |= 1u << which;
        if (strcmp(directive_names[which], "escape") == 0) {
                if (val_e - val_s != 1 || (s[val_s] != '\\' && s[val_s] != '`')) {
                        char *v = kstrndup(s + val_s, val_e - val_s);

                        parser_file_diag(f, PARSER_ERROR, pos, "Syntax",
                                         "invalid escape token '%s' (must be ` or \\)", v);
                        free(v);
                        return;
                }
                f->escape = s[val_s];
        }
        f->directives = parser_grow(f->directives, f->n_directives, sizeof(*f->directives));
        f->directives[f->n_directives++] = (struct parser_directive){
                .name = kstrdup(directive_names[which]),
                .value = kstrndup(s + val_s, val_e - val_s),
                .pos = pos,
        };
}

/* buildkit's line continuation regexp, ([^\\])\\[ \t]*$|^\\[ \t]*$ (with the escape token):
 * an escape token that is the last non-blank character and not itself escaped. Returns true
 * when the line continues, with *e moved before the escape token. */
static bool trim_continuation(const char *data, size_t s, size_t *e, char escape)
{
        size_t t = *e;

        while (t > s && (data[t - 1] == ' ' || data[t - 1] == '\t'))
                t--;
        if (t == s || data[t - 1] != escape)
                return false;
        if (t - 1 > s && data[t - 2] == escape)
                return false;
        *e = t - 1;
        return true;
}

static bool is_comment(const char *s, size_t n)
{
        size_t i = parser_space_prefix(s, n);

        return i < n && s[i] == '#';
}

bool parser_lexer_next(struct parser_lexer *lx, struct parser_line *l)
{
        char esc = lx->f->escape;
        struct phys p;

        parser_line_release(l);
        while (read_phys(lx, &p)) {
                size_t s = p.s, e = p.e;
                unsigned base = 0;
                bool cont;

                if (lx->line == 1 && e - s >= 3 && memcmp(lx->data + s, "\xEF\xBB\xBF", 3) == 0) {
                        /* The byte order mark is not part of the line: columns start after it. */
                        s += 3;
                        base = 3;
                }
                s += parser_space_prefix(lx->data + s, e - s);
                if (!lx->directives_done) {
                        directive_line(lx, lx->data + s, e - s, (unsigned)(s - p.start - base + 1));
                        esc = lx->f->escape;
                }
                if (s < e && lx->data[s] == '#')
                        e = s;
                cont = trim_continuation(lx->data, s, &e, esc);
                if (!cont && e == s)
                        continue;

                l->start_line = lx->line;
                line_append(l, lx->data + s, e - s, lx->line, (unsigned)(s - p.start - base + 1));
                while (cont && read_phys(lx, &p)) {
                        const char *q = lx->data + p.s;
                        size_t qe = p.e;

                        if (is_comment(q, p.e - p.s))
                                continue;
                        if (parser_space_prefix(q, p.e - p.s) == p.e - p.s) {
                                if (!l->empty_line)
                                        l->empty_line = lx->line;
                                continue;
                        }
                        cont = trim_continuation(lx->data, p.s, &qe, esc);
                        line_append(l, q, qe - p.s, lx->line, 1);
                }
                l->end_line = lx->line;
                return true;
        }
        return false;
}

bool parser_lexer_heredoc(struct parser_lexer *lx, const char *name, size_t name_len, bool chomp,
                          struct kbuf *content)
{
        struct phys p;

        while (read_phys(lx, &p)) {
                size_t t = p.s;

                if (chomp)
                        while (t < p.e && lx->data[t] == '\t')
                                t++;
                if (p.e - t == name_len && memcmp(lx->data + t, name, name_len) == 0)
                        return true;
                kbuf_append(content, lx->data + t, p.next - t);
        }
        return false;
}
