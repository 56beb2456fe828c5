/* SPDX-License-Identifier: Apache-2.0 */
/* The .containerignore/.dockerignore matcher, giving the answers of docker's
 * (github.com/moby/patternmatcher with ignorefile.ReadAll). A pattern is checked the way
 * filepath.Match checks it, then classified as docker's compile does: exact, prefix
 * (a trailing double star), suffix (a leading one) or a general pattern. docker turns the general
 * ones into a Go regexp; here they become tokens run as an automaton over the path's runes (no
 * backtracking), keeping the regexp's meaning where a glob would differ: a raw '^' anchors,
 * "\d" is a digit, '.' of "**" stops at a newline, and '*' or '?' inside brackets closes the
 * class the way the generated "[^/]" does. Matching a path also tries its parent
 * directories, the last deciding pattern wins, and "!" patterns re-include. */
#include "parser/parser.h"
#include "parser/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/utf8.h"
#include "common/banned.h"

#define RUNE_ERROR ((int32_t)KUTF8_ERROR)
#define RUNE_MAX 0x10FFFF
/* bufio.Scanner's limit: docker fails to read an ignore file with a longer line. */
#define MAX_LINE 65536

/* ---- UTF-8 as Go decodes it (an invalid byte is U+FFFD of width 1) ---- */

static size_t utf8_decode(const char *p, size_t n, int32_t *ret)
{
        uint32_t cp;
        size_t w = kutf8_decode(p, n, &cp);

        *ret = (int32_t)cp;
        return w;
}

/* Go's unicode.IsSpace. */
static bool is_space(int32_t r)
{
        return r >= 0 && kutf8_is_space((uint32_t)r);
}

/* strings.TrimSpace: narrows [*s, *s + *len) to exclude white space at both ends. */
static void trim_space(const char **s, size_t *len)
{
        size_t start = 0, end = 0, i = 0;
        bool seen = false;
        int32_t r;

        while (i < *len) {
                size_t w = utf8_decode(*s + i, *len - i, &r);

                if (!is_space(r)) {
                        if (!seen)
                                start = i;
                        seen = true;
                        end = i + w;
                }
                i += w;
        }
        if (!seen) {
                *len = 0;
                return;
        }
        *s += start;
        *len = end - start;
}

/* filepath.Clean on Unix; caller frees. */
static char *go_clean(const char *p, size_t n)
{
        char *out = kcalloc(n + 3, 1);
        size_t w = 0, r = 0, dotdot = 0;
        bool rooted = n > 0 && p[0] == '/';

        if (n == 0) {
                out[0] = '.';
                return out;
        }
        if (rooted) {
                out[w++] = '/';
                r = dotdot = 1;
        }
        while (r < n) {
                if (p[r] == '/') {
                        r++;
                } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
                        r++;
                } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
                        r += 2;
                        if (w > dotdot) {
                                w--;
                                while (w > dotdot && out[w] != '/')
                                        w--;
                        } else if (!rooted) {
                                if (w > 0)
                                        out[w++] = '/';
                                out[w++] = '.';
                                out[w++] = '.';
                                dotdot = w;
                        }
                } else {
                        if ((rooted && w != 1) || (!rooted && w != 0))
                                out[w++] = '/';
                        for (; r < n && p[r] != '/'; r++)
                                out[w++] = p[r];
                }
        }
        if (w == 0)
                out[w++] = '.';
        out[w] = '\0';
        return out;
}

/* ---- filepath.Match's syntax check ---- */

/* getEsc: one character of a bracket expression, which must not be the last thing. */
static bool match_get_esc(const char **chunk, const char *end)
{
        const char *c = *chunk;
        int32_t r;
        size_t w;

        if (c == end || *c == '-' || *c == ']')
                return false;
        if (*c == '\\') {
                c++;
                if (c == end)
                        return false;
        }
        w = utf8_decode(c, (size_t)(end - c), &r);
        if (r == RUNE_ERROR && w == 1)
                return false;
        c += w;
        *chunk = c;
        return c != end;
}

/* matchChunk's errors: a trailing backslash, or a bad or unterminated bracket expression. */
static bool match_chunk_ok(const char *c, const char *end)
{
        while (c < end) {
                if (*c == '[') {
                        unsigned nrange = 0;

                        c++;
                        if (c < end && *c == '^')
                                c++;
                        for (;;) {
                                if (c < end && *c == ']' && nrange > 0) {
                                        c++;
                                        break;
                                }
                                if (!match_get_esc(&c, end))
                                        return false;
                                if (*c == '-') {
                                        c++;
                                        if (!match_get_esc(&c, end))
                                                return false;
                                }
                                nrange++;
                        }
                } else if (*c == '\\') {
                        c++;
                        if (c == end)
                                return false;
                        c++;
                } else {
                        c++;
                }
        }
        return true;
}

/* filepath.Match(p, ".") fails exactly when one of p's chunks (the text between stars
 * outside brackets) is malformed. */
static bool match_syntax_ok(const char *p, size_t n)
{
        const char *end = p + n;

        while (p < end) {
                const char *c;
                bool inrange = false;

                while (p < end && *p == '*')
                        p++;
                for (c = p; c < end; c++) {
                        if (*c == '\\') {
                                if (c + 1 < end)
                                        c++;
                        } else if (*c == '[') {
                                inrange = true;
                        } else if (*c == ']') {
                                inrange = false;
                        } else if (*c == '*' && !inrange) {
                                break;
                        }
                }
                if (!match_chunk_ok(p, c))
                        return false;
                p = c;
        }
        return true;
}

/* ---- compiled patterns ---- */

enum ig_type { IG_EXACT, IG_PREFIX, IG_SUFFIX, IG_REGEXP };
enum tok_kind { T_LIT, T_CLASS, T_DOT, T_DSTAR, T_BOL };

struct ig_range {
        int32_t lo, hi;
};

struct ig_class {
        bool neg;
        struct ig_range *r;
        size_t n;
};

struct ig_tok {
        unsigned char kind;
        bool star; /* T_LIT, T_CLASS, T_DOT: zero or more */
        int32_t cp;
        size_t cls;
};

struct ig_pattern {
        char *text; /* cleaned, without the '!' */
        size_t len;
        bool exclusion;
        enum ig_type type;
        struct ig_tok *toks;
        size_t n_toks;
        struct ig_class *classes;
        size_t n_classes;
};

struct parser_ignore {
        struct ig_pattern *p;
        size_t n;
        size_t max_toks;
        bool exclusions;
};

/* What docker's compile writes into its regexp, one character at a time: RAW as is,
 * QUOTED with a backslash it adds, ESC a backslash-escape from the pattern. */
enum { I_RAW, I_QUOTED, I_ESC };

struct item {
        int32_t cp;
        unsigned char kind;
};

struct items {
        struct item *v;
        size_t n, cap;
};

static void items_add(struct items *it, int32_t cp, unsigned char kind)
{
        if (it->n == it->cap) {
                it->cap = it->cap ? it->cap * 2 : 32;
                it->v = kreallocarray(it->v, it->cap, sizeof(*it->v));
        }
        it->v[it->n].cp = cp;
        it->v[it->n++].kind = kind;
}

static void items_raw(struct items *it, const char *s)
{
        for (; *s; s++)
                items_add(it, (unsigned char)*s, I_RAW);
}

/* docker's compile: classifies the pattern and lists what its regexp would hold. */
static enum ig_type compile_items(const char *p, size_t n, struct items *it)
{
        enum ig_type type = IG_EXACT;
        size_t pos = 0;
        int32_t r, pk;

        /* text/scanner skips a byte order mark at the start. */
        if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
                pos = 3;
#define PEEK() (pos < n ? (utf8_decode(p + pos, n - pos, &pk), pk) : -1)
        for (size_t i = 0; pos < n; i++) {
                pos += utf8_decode(p + pos, n - pos, &r);
                if (r == '*') {
                        if (PEEK() == '*') {
                                pos++;
                                if (PEEK() == '/')
                                        pos++;
                                if (PEEK() == -1) {
                                        if (type == IG_EXACT) {
                                                type = IG_PREFIX;
                                        } else {
                                                items_raw(it, ".*");
                                                type = IG_REGEXP;
                                        }
                                } else {
                                        items_raw(it, "(.*/)?");
                                        type = IG_REGEXP;
                                }
                                if (i == 0)
                                        type = IG_SUFFIX;
                        } else {
                                items_raw(it, "[^/]*");
                                type = IG_REGEXP;
                        }
                } else if (r == '?') {
                        items_raw(it, "[^/]");
                        type = IG_REGEXP;
                } else if (r < 0x80 && strchr(".+()|{}$", (int)r)) {
                        items_add(it, r, I_QUOTED);
                } else if (r == '\\') {
                        if (pos < n) {
                                pos += utf8_decode(p + pos, n - pos, &r);
                                items_add(it, r, I_ESC);
                                type = IG_REGEXP;
                        } else {
                                items_add(it, '\\', I_RAW);
                        }
                } else if (r == '[' || r == ']') {
                        items_add(it, r, I_RAW);
                        type = IG_REGEXP;
                } else {
                        items_add(it, r, I_RAW);
                }
        }
#undef PEEK
        return type;
}

/* ---- the regexp meaning of the items, as Go's regexp/syntax parses them ---- */

struct cparse {
        const struct items *it;
        size_t k;
        struct ig_pattern *pat;
        const char *why;
        char why_buf[64];
};

static bool is_alnum(int32_t r)
{
        return (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
}

static int hexval(int32_t r)
{
        if (r >= '0' && r <= '9')
                return r - '0';
        if (r >= 'a' && r <= 'f')
                return r - 'a' + 10;
        if (r >= 'A' && r <= 'F')
                return r - 'A' + 10;
        return -1;
}

static const struct item *cp_at(const struct cparse *c, size_t k)
{
        return k < c->it->n ? &c->it->v[k] : NULL;
}

static bool cp_raw_is(const struct cparse *c, size_t k, int32_t r)
{
        const struct item *i = cp_at(c, k);

        return i && i->kind == I_RAW && i->cp == r;
}

static bool cp_is_octal(const struct cparse *c, size_t k)
{
        const struct item *i = cp_at(c, k);

        return i && i->kind == I_RAW && i->cp >= '0' && i->cp <= '7';
}

static int cp_fail(struct cparse *c, const char *why, int32_t r)
{
        if (r >= 0x20 && r < 0x7f) {
                size_t n = strlen(why);

                if (n + 8 > sizeof(c->why_buf))
                        n = sizeof(c->why_buf) - 8;
                memcpy(c->why_buf, why, n);
                c->why_buf[n++] = ' ';
                c->why_buf[n++] = '\'';
                c->why_buf[n++] = '\\';
                c->why_buf[n++] = (char)r;
                c->why_buf[n++] = '\'';
                c->why_buf[n] = '\0';
                c->why = c->why_buf;
        } else {
                c->why = why;
        }
        return -1;
}

/* parseEscape: the escaped character at c->k (an I_ESC item), with octal digits and the
 * two hex digits of \xHH taken from the raw items after it. */
static int cp_escape(struct cparse *c, int32_t *ret)
{
        int32_t r = c->it->v[c->k++].cp, v;
        int h1, h2;

        if (r < 0x80 && !is_alnum(r)) {
                *ret = r;
                return 0;
        }
        if (r >= '0' && r <= '7') {
                /* A single non-zero digit would be a backreference. */
                if (r != '0' && !cp_is_octal(c, c->k))
                        return cp_fail(c, "invalid escape sequence", r);
                v = r - '0';
                for (int i = 1; i < 3 && cp_is_octal(c, c->k); i++)
                        v = v * 8 + (c->it->v[c->k++].cp - '0');
                *ret = v;
                return 0;
        }
        switch (r) {
        case 'x':
                if (!cp_at(c, c->k) || !cp_at(c, c->k + 1) || c->it->v[c->k].kind != I_RAW ||
                    c->it->v[c->k + 1].kind != I_RAW)
                        break;
                h1 = hexval(c->it->v[c->k].cp);
                h2 = hexval(c->it->v[c->k + 1].cp);
                if (h1 < 0 || h2 < 0)
                        break;
                c->k += 2;
                *ret = h1 * 16 + h2;
                return 0;
        case 'a':
                *ret = '\a';
                return 0;
        case 'f':
                *ret = '\f';
                return 0;
        case 'n':
                *ret = '\n';
                return 0;
        case 'r':
                *ret = '\r';
                return 0;
        case 't':
                *ret = '\t';
                return 0;
        case 'v':
                *ret = '\v';
                return 0;
        default:
                break;
        }
        return cp_fail(c, "invalid escape sequence", r);
}

static size_t class_new(struct ig_pattern *p, bool neg)
{
        p->classes = kreallocarray(p->classes, p->n_classes + 1, sizeof(*p->classes));
        p->classes[p->n_classes].neg = neg;
        p->classes[p->n_classes].r = NULL;
        p->classes[p->n_classes].n = 0;
        return p->n_classes++;
}

static void class_add(struct ig_class *cl, int32_t lo, int32_t hi)
{
        cl->r = kreallocarray(cl->r, cl->n + 1, sizeof(*cl->r));
        cl->r[cl->n].lo = lo;
        cl->r[cl->n++].hi = hi;
}

/* Adds ranges (sorted, disjoint), or everything outside them. */
static void class_add_set(struct ig_class *cl, const struct ig_range *r, size_t n, bool negate)
{
        int32_t next = 0;

        if (!negate) {
                for (size_t i = 0; i < n; i++)
                        class_add(cl, r[i].lo, r[i].hi);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                if (r[i].lo > next)
                        class_add(cl, next, r[i].lo - 1);
                next = r[i].hi + 1;
        }
        if (next <= RUNE_MAX)
                class_add(cl, next, RUNE_MAX);
}

static const struct ig_range R_DIGIT[] = {{'0', '9'}};
static const struct ig_range R_SPACE[] = {{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}};
static const struct ig_range R_WORD[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};

/* \d \s \w and their negations, which Go defines over ASCII. */
static bool perl_class(int32_t r, struct ig_class *cl)
{
        switch (r) {
        case 'd':
        case 'D':
                class_add_set(cl, R_DIGIT, ARRAY_SIZE(R_DIGIT), r == 'D');
                return true;
        case 's':
        case 'S':
                class_add_set(cl, R_SPACE, ARRAY_SIZE(R_SPACE), r == 'S');
                return true;
        case 'w':
        case 'W':
                class_add_set(cl, R_WORD, ARRAY_SIZE(R_WORD), r == 'W');
                return true;
        default:
                return false;
        }
}

struct posix_class {
        const char *name;
        struct ig_range r[4];
        size_t n;
};

/* Go's posixGroup, over ASCII. */
static const struct posix_class POSIX[] = {
        {"alnum", {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}}, 3},
        {"alpha", {{'A', 'Z'}, {'a', 'z'}}, 2},
        {"ascii", {{0, 0x7F}}, 1},
        {"blank", {{'\t', '\t'}, {' ', ' '}}, 2},
        {"cntrl", {{0, 0x1F}, {0x7F, 0x7F}}, 2},
        {"digit", {{'0', '9'}}, 1},
        {"graph", {{'!', '~'}}, 1},
        {"lower", {{'a', 'z'}}, 1},
        {"print", {{' ', '~'}}, 1},
        {"punct", {{'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}}, 4},
        {"space", {{'\t', '\r'}, {' ', ' '}}, 2},
        {"upper", {{'A', 'Z'}}, 1},
        {"word", {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}, 4},
        {"xdigit", {{'0', '9'}, {'A', 'F'}, {'a', 'f'}}, 3},
};

/* "[:name:]" inside brackets, at c->k: 1 when it was one, 0 when the text is not of that
 * form (no ":]" follows), -1 for an unknown name. */
static int cp_posix(struct cparse *c, struct ig_class *cl)
{
        size_t j = c->k + 2, n;
        char name[16];
        bool neg = false;

        while (j + 1 < c->it->n &&
               !(c->it->v[j].cp == ':' && c->it->v[j].kind != I_QUOTED && cp_raw_is(c, j + 1, ']')))
                j++;
        if (j + 1 >= c->it->n)
                return 0;
        /* The name is what lies between "[:" and ":]"; an escape in it names nothing. */
        for (size_t k = c->k; k <= j + 1; k++)
                if (c->it->v[k].kind != I_RAW)
                        return cp_fail(c, "invalid character class range", -1);
        n = 0;
        for (size_t k = c->k + 2; k < j; k++) {
                if (n + 1 >= sizeof(name))
                        return cp_fail(c, "invalid character class range", -1);
                name[n++] = (char)(c->it->v[k].cp < 0x80 ? c->it->v[k].cp : 0x7f);
        }
        name[n] = '\0';
        if (name[0] == '^')
                neg = true;
        for (size_t i = 0; i < ARRAY_SIZE(POSIX); i++) {
                if (strcmp(POSIX[i].name, name + (neg ? 1 : 0)) != 0)
                        continue;
                class_add_set(cl, POSIX[i].r, POSIX[i].n, neg);
                c->k = j + 2;
                return 1;
        }
        return cp_fail(c, "invalid character class range", -1);
}

static int cp_class_char(struct cparse *c, int32_t *ret)
{
        const struct item *i = cp_at(c, c->k);

        if (!i)
                return cp_fail(c, "missing closing ]", -1);
        if (i->kind == I_ESC)
                return cp_escape(c, ret);
        *ret = i->cp;
        c->k++;
        return 0;
}

/* A bracket expression, c->k just after its '['. */
static int cp_class(struct cparse *c, size_t *ret)
{
        struct ig_pattern *p = c->pat;
        bool neg = false, first = true;
        size_t ci;

        if (cp_raw_is(c, c->k, '^')) {
                neg = true;
                c->k++;
        }
        ci = class_new(p, neg);
        for (;;) {
                const struct item *i = cp_at(c, c->k);
                int32_t lo, hi;

                if (!i)
                        return cp_fail(c, "missing closing ]", -1);
                if (i->kind == I_RAW && i->cp == ']' && !first) {
                        c->k++;
                        break;
                }
                first = false;
                if (i->kind == I_RAW && i->cp == '[' && cp_raw_is(c, c->k + 1, ':') &&
                    cp_at(c, c->k + 2)) {
                        int r = cp_posix(c, &p->classes[ci]);

                        if (r < 0)
                                return -1;
                        if (r > 0)
                                continue;
                }
                if (i->kind == I_ESC && (i->cp == 'p' || i->cp == 'P'))
                        return cp_fail(c, "unsupported escape sequence", i->cp);
                if (i->kind == I_ESC && perl_class(i->cp, &p->classes[ci])) {
                        c->k++;
                        continue;
                }
                if (cp_class_char(c, &lo) < 0)
                        return -1;
                hi = lo;
                if (cp_raw_is(c, c->k, '-') && cp_at(c, c->k + 1) && !cp_raw_is(c, c->k + 1, ']')) {
                        c->k++;
                        if (cp_class_char(c, &hi) < 0)
                                return -1;
                        if (hi < lo)
                                return cp_fail(c, "invalid character class range", -1);
                }
                class_add(&p->classes[ci], lo, hi);
        }
        *ret = ci;
        return 0;
}

static struct ig_tok *tok_push(struct ig_pattern *p, unsigned char kind)
{
        struct ig_tok *t;

        p->toks = kreallocarray(p->toks, p->n_toks + 1, sizeof(*p->toks));
        t = &p->toks[p->n_toks++];
        memset(t, 0, sizeof(*t));
        t->kind = kind;
        return t;
}

/* The items as Go's regexp parser reads them; only what docker's compile can produce is
 * accepted. */
static int cp_parse(struct cparse *c)
{
        struct ig_pattern *p = c->pat;

        while (c->k < c->it->n) {
                const struct item *i = &c->it->v[c->k];
                struct ig_tok *t;
                int32_t r = i->cp;
                size_t ci;

                if (i->kind == I_QUOTED) {
                        tok_push(p, T_LIT)->cp = r;
                        c->k++;
                } else if (i->kind == I_ESC) {
                        if (r == 'C')
                                return cp_fail(c, "invalid escape sequence", r);
                        /* Assertions, \Q…\E and Unicode classes are valid in Go but not
                         * supported here. */
                        if (r < 0x80 && strchr("AzbBQpP", (int)r))
                                return cp_fail(c, "unsupported escape sequence", r);
                        if (r < 0x80 && strchr("dDsSwW", (int)r)) {
                                ci = class_new(p, false);
                                perl_class(r, &p->classes[ci]);
                                tok_push(p, T_CLASS)->cls = ci;
                                c->k++;
                        } else {
                                if (cp_escape(c, &r) < 0)
                                        return -1;
                                tok_push(p, T_LIT)->cp = r;
                        }
                } else if (r == '[') {
                        c->k++;
                        if (cp_class(c, &ci) < 0)
                                return -1;
                        tok_push(p, T_CLASS)->cls = ci;
                } else if (r == '.') {
                        tok_push(p, T_DOT);
                        c->k++;
                } else if (r == '(') {
                        static const char dstar[] = "(.*/)?";

                        for (size_t k = 0; k < sizeof(dstar) - 1; k++)
                                if (!cp_raw_is(c, c->k + k, (unsigned char)dstar[k]))
                                        return cp_fail(c, "unsupported pattern", -1);
                        tok_push(p, T_DSTAR);
                        c->k += sizeof(dstar) - 1;
                } else if (r == '*') {
                        t = p->n_toks ? &p->toks[p->n_toks - 1] : NULL;
                        if (!t || t->kind == T_DSTAR || t->kind == T_BOL)
                                return cp_fail(c, "missing argument to repetition operator", -1);
                        if (t->star)
                                return cp_fail(c, "invalid nested repetition operator", -1);
                        t->star = true;
                        c->k++;
                } else if (r == '^') {
                        tok_push(p, T_BOL);
                        c->k++;
                } else if (r < 0x80 && strchr("?+)|{}$\\", (int)r)) {
                        return cp_fail(c, "unsupported pattern", -1);
                } else {
                        tok_push(p, T_LIT)->cp = r;
                        c->k++;
                }
        }
        return 0;
}

/* ---- matching ---- */

static bool tok_match(const struct ig_pattern *p, const struct ig_tok *t, int32_t r)
{
        const struct ig_class *cl;
        bool in = false;

        switch (t->kind) {
        case T_LIT:
                return t->cp == r;
        case T_DOT:
                return r != '\n';
        case T_CLASS:
                cl = &p->classes[t->cls];
                for (size_t i = 0; i < cl->n && !in; i++)
                        in = r >= cl->r[i].lo && r <= cl->r[i].hi;
                return in != cl->neg;
        default:
                return false;
        }
}

/* Follows the transitions that consume nothing; they all lead forward, so one pass does. */
static void nfa_closure(const struct ig_pattern *p, unsigned char *on, unsigned char *inner,
                        size_t pos)
{
        for (size_t i = 0; i < p->n_toks; i++) {
                const struct ig_tok *t = &p->toks[i];

                if (!on[i])
                        continue;
                if (t->kind == T_DSTAR) {
                        on[i + 1] = 1;
                        inner[i] = 1;
                } else if (t->kind == T_BOL) {
                        if (pos == 0)
                                on[i + 1] = 1;
                } else if (t->star) {
                        on[i + 1] = 1;
                }
        }
}

/* Whether p matches the whole of v or a prefix of it that ends before a '/' (a parent
 * directory), in one pass. State i waits at token i; inner[i] is inside the any-run-then-slash of
 * a T_DSTAR token. buf holds 4 * (n_toks + 1) bytes. */
static bool match_regexp(const struct ig_pattern *p, const int32_t *v, size_t nv,
                         unsigned char *buf)
{
        size_t n = p->n_toks;
        unsigned char *on = buf, *inner = on + n + 1, *non = inner + n + 1, *ninner = non + n + 1;
        unsigned char *t;

        memset(buf, 0, 4 * (n + 1));
        on[0] = 1;
        nfa_closure(p, on, inner, 0);
        for (size_t k = 0;; k++) {
                bool any = false;

                if (on[n] && (k == nv || v[k] == '/'))
                        return true;
                if (k == nv)
                        return false;
                memset(non, 0, 2 * (n + 1));
                for (size_t i = 0; i < n; i++) {
                        const struct ig_tok *tk = &p->toks[i];

                        if (on[i] && tok_match(p, tk, v[k])) {
                                non[tk->star ? i : i + 1] = 1;
                                any = true;
                        }
                        if (inner[i] && v[k] != '\n') {
                                ninner[i] = 1;
                                if (v[k] == '/')
                                        non[i + 1] = 1;
                                any = true;
                        }
                }
                if (!any)
                        return false;
                nfa_closure(p, non, ninner, k + 1);
                t = on, on = non, non = t;
                t = inner, inner = ninner, ninner = t;
        }
}

/* The exact, prefix and suffix patterns compare bytes, as docker does, against s[0:b]. */
static bool match_plain_at(const struct ig_pattern *p, const char *s, size_t b)
{
        const char *suf;
        size_t n;

        switch (p->type) {
        case IG_EXACT:
                return b == p->len && memcmp(s, p->text, b) == 0;
        case IG_PREFIX:
                n = p->len - 2;
                return b >= n && memcmp(s, p->text, n) == 0;
        case IG_SUFFIX:
                suf = p->text + 2;
                n = p->len - 2;
                if (b >= n && memcmp(s + b - n, suf, n) == 0)
                        return true;
                /* "**" + "/foo" also matches "foo" itself. */
                return n > 0 && suf[0] == '/' && b == n - 1 && memcmp(s, suf + 1, n - 1) == 0;
        default:
                return false;
        }
}

struct subject {
        const char *s;
        size_t len;
        int32_t *runes;
        size_t n_runes;
        unsigned char *buf;
};

/* MatchesOrParentMatches for one pattern: the path itself or one of its parents. */
static bool pattern_match(const struct ig_pattern *p, struct subject *sub)
{
        if (p->type == IG_REGEXP) {
                if (!sub->runes) {
                        sub->runes = kcalloc(sub->len + 1, sizeof(*sub->runes));
                        for (size_t i = 0; i < sub->len;)
                                i += utf8_decode(sub->s + i, sub->len - i,
                                                 &sub->runes[sub->n_runes++]);
                }
                return match_regexp(p, sub->runes, sub->n_runes, sub->buf);
        }
        for (size_t b = 0; b <= sub->len; b++)
                if ((b == sub->len || sub->s[b] == '/') && match_plain_at(p, sub->s, b))
                        return true;
        return false;
}

bool parser_ignore_match(const struct parser_ignore *ig, const char *path)
{
        struct subject sub = {0};
        char *clean;
        bool matched = false;

        if (!ig || !path || ig->n == 0)
                return false;
        clean = go_clean(path, strlen(path));
        /* Paths are relative to the context: "/a" is "a", and the context itself ("." or
         * "/") is never excluded. */
        sub.s = clean;
        while (*sub.s == '/')
                sub.s++;
        sub.len = strlen(sub.s);
        if (sub.len == 0 || strcmp(sub.s, ".") == 0) {
                free(clean);
                return false;
        }
        sub.buf = kcalloc(4, ig->max_toks + 1);
        for (size_t i = 0; i < ig->n; i++) {
                const struct ig_pattern *p = &ig->p[i];

                /* An inclusion cannot change a match, an exclusion only undo one. */
                if (p->exclusion != matched)
                        continue;
                if (pattern_match(p, &sub))
                        matched = !p->exclusion;
        }
        free(sub.runes);
        free(sub.buf);
        free(clean);
        return matched;
}

/* ---- building ---- */

static void pattern_release(struct ig_pattern *p)
{
        free(p->text);
        free(p->toks);
        for (size_t i = 0; i < p->n_classes; i++)
                free(p->classes[i].r);
        free(p->classes);
}

void parser_ignore_free(struct parser_ignore *ig)
{
        if (!ig)
                return;
        for (size_t i = 0; i < ig->n; i++)
                pattern_release(&ig->p[i]);
        free(ig->p);
        free(ig);
}

static int ig_fail(struct kerr **err, const char *file, unsigned line, const char *shown,
                   const char *why)
{
        if (file)
                return kerr_set_at(err, KERR_PARSE, file, line, 0, "invalid pattern '%s': %s",
                                   shown, why);
        return kerr_set(err, 0, KERR_INVALID, "invalid pattern '%s': %s", shown, why);
}

/* patternmatcher.New for one pattern: trimmed, cleaned, "!" split off, checked as
 * filepath.Match checks it, then compiled. An empty pattern is skipped. */
static int ig_add(struct parser_ignore *ig, const char *text, size_t len, const char *shown,
                  const char *file, unsigned line, struct kerr **err)
{
        struct ig_pattern pat = {0};
        struct items it = {0};
        struct cparse c = {0};
        char *clean;
        const char *body;

        trim_space(&text, &len);
        if (len == 0)
                return 0;
        clean = go_clean(text, len);
        body = clean;
        if (body[0] == '!') {
                if (body[1] == '\0') {
                        free(clean);
                        return ig_fail(err, file, line, shown, "illegal exclusion pattern");
                }
                pat.exclusion = true;
                body++;
        }
        if (!match_syntax_ok(body, strlen(body))) {
                free(clean);
                return ig_fail(err, file, line, shown, "syntax error in pattern");
        }
        pat.text = kstrdup(body);
        pat.len = strlen(body);
        free(clean);
        pat.type = compile_items(pat.text, pat.len, &it);
        if (pat.type == IG_REGEXP) {
                c.it = &it;
                c.pat = &pat;
                if (cp_parse(&c) < 0) {
                        ig_fail(err, file, line, shown, c.why ? c.why : "unsupported pattern");
                        free(it.v);
                        pattern_release(&pat);
                        return -1;
                }
        }
        free(it.v);
        if (pat.exclusion)
                ig->exclusions = true;
        if (pat.n_toks > ig->max_toks)
                ig->max_toks = pat.n_toks;
        ig->p = kreallocarray(ig->p, ig->n + 1, sizeof(*ig->p));
        ig->p[ig->n++] = pat;
        return 0;
}

struct parser_ignore *parser_ignore_new(const char *const *patterns, size_t n, struct kerr **err)
{
        struct parser_ignore *ig = kcalloc(1, sizeof(*ig));

        for (size_t i = 0; i < n; i++) {
                if (!patterns[i])
                        continue;
                if (ig_add(ig, patterns[i], strlen(patterns[i]), patterns[i], NULL, 0, err) < 0) {
                        parser_ignore_free(ig);
                        return NULL;
                }
        }
        return ig;
}

/* ignorefile.ReadAll, then New: lines split on "\n" (a "\r" before it dropped), a byte order
 * mark dropped from the first, "#" comments only at the very start of a line, the rest
 * trimmed and cleaned, with one leading "/" removed. */
struct parser_ignore *parser_ignore_parse(const char *name, const char *data, size_t len,
                                          struct kerr **err)
{
        struct parser_ignore *ig = kcalloc(1, sizeof(*ig));
        size_t pos = 0;
        unsigned line = 0;

        while (pos < len) {
                const char *s = data + pos, *nl = memchr(s, '\n', len - pos);
                size_t l = nl ? (size_t)(nl - s) : len - pos, blen;
                struct kbuf pat = KBUF_INIT;
                char *shown, *body;
                int ret;

                pos += l + (nl ? 1 : 0);
                line++;
                if (l >= MAX_LINE) {
                        kerr_set_at(err, KERR_PARSE, name, line, 0, "line longer than %u bytes",
                                    MAX_LINE - 1);
                        goto fail;
                }
                if (l > 0 && s[l - 1] == '\r')
                        l--;
                if (line == 1 && l >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
                        s += 3;
                        l -= 3;
                }
                if (l > 0 && s[0] == '#')
                        continue;
                if (memchr(s, '\0', l)) {
                        kerr_set_at(err, KERR_PARSE, name, line, 0, "invalid pattern: NUL byte");
                        goto fail;
                }
                trim_space(&s, &l);
                if (l == 0)
                        continue;
                shown = kstrndup(s, l);
                if (s[0] == '!') {
                        kbuf_putc(&pat, '!');
                        s++;
                        l--;
                        trim_space(&s, &l);
                }
                if (l > 0) {
                        body = go_clean(s, l);
                        blen = strlen(body);
                        /* "/a" means "a" in the context. */
                        kbuf_puts(&pat, blen > 1 && body[0] == '/' ? body + 1 : body);
                        free(body);
                }
                ret = ig_add(ig, pat.data, pat.len, shown, name, line, err);
                kbuf_release(&pat);
                free(shown);
                if (ret < 0)
                        goto fail;
        }
        return ig;
fail:
        parser_ignore_free(ig);
        return NULL;
}

bool parser_ignore_has_exceptions(const struct parser_ignore *ig)
{
        return ig && ig->exclusions;
}

size_t parser_ignore_count(const struct parser_ignore *ig)
{
        return ig ? ig->n : 0;
}
