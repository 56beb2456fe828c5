/* SPDX-License-Identifier: Apache-2.0 */
/* docker's variable expansion: a port of the behaviour of buildkit's shell-word lexer
 * (frontend/dockerfile/shell/lex.go). Quotes and the escape character are processed, $V and
 * ${V…} substituted, and ProcessWords' splitting on unquoted white space is reproduced,
 * quirks included: a modifier's word is expanded before the variable is looked up, the
 * patterns of # % / are anchored globs whose * and ? do not match a newline, and the
 * replacement of ${V//p/r} expands $0 to the matched text as Go's ReplaceAllString does.
 * Heredoc bodies go through the same lexer with quotes left as text (SkipProcessQuotes).
 * Patterns are matched by simulating the pattern's automaton (polynomial, never
 * backtracking), nesting is bounded and results are capped, because the input is hostile. */
#include "parser/parser.h"
#include "parser/internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/utf8.h"
#include "common/banned.h"

#define EOF_RUNE (-1)
#define RUNE_ERROR ((int32_t)KUTF8_ERROR)
/* ${…} nested deeper than this is refused rather than recursed into. */
#define MAX_DEPTH 64
/* A larger result (ENV A=$A$A doubles per line, ${A//?/$A} squares) is an error. */
#define MAX_RESULT (1u << 20)

/* ---- UTF-8, decoded as Go does: an invalid byte is U+FFFD of width 1 ---- */

static size_t utf8_decode(const char *p, size_t n, int32_t *ret)
{
        uint32_t cp;
        size_t w = kutf8_decode(p, n, &cp);

        *ret = (int32_t)cp;
        return w;
}

/* Negative runes (the end-of-input marker) become U+FFFD. */
static void utf8_put(struct kbuf *b, int32_t r)
{
        kutf8_put(b, r < 0 ? KUTF8_ERROR : (uint32_t)r);
}

/* Go's unicode.IsSpace. */
static bool is_space(int32_t r)
{
        return r >= 0 && kutf8_is_space((uint32_t)r);
}

static bool is_digit(int32_t r)
{
        return r >= '0' && r <= '9';
}

static bool is_name_char(int32_t r)
{
        return is_digit(r) || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == '_';
}

/* The runes of s with the byte offset of each (off has n + 1 entries). */
static size_t decode_all(const char *s, size_t len, int32_t **ret_r, size_t **ret_off)
{
        int32_t *r = kcalloc(len + 1, sizeof(*r));
        size_t *off = kcalloc(len + 1, sizeof(*off));
        size_t n = 0;

        for (size_t i = 0; i < len; n++) {
                off[n] = i;
                i += utf8_decode(s + i, len - i, &r[n]);
        }
        off[n] = len;
        *ret_r = r;
        *ret_off = off;
        return n;
}

/* ---- ProcessWords' word splitting ---- */

struct words {
        struct kbuf cur;
        char **v;
        size_t n;
};

static void words_push(struct words *w)
{
        if (w->cur.len == 0)
                return;
        w->v = kreallocarray(w->v, w->n + 2, sizeof(*w->v));
        w->v[w->n++] = kbuf_detach(&w->cur);
        w->v[w->n] = NULL;
}

/* Unquoted: white space ends a word. */
static void words_add_char(struct words *w, int32_t r)
{
        if (!w)
                return;
        if (is_space(r))
                words_push(w);
        else
                utf8_put(&w->cur, r);
}

static void words_add_raw_char(struct words *w, int32_t r)
{
        if (w)
                utf8_put(&w->cur, r);
}

/* A substitution's value is split like unquoted text. */
static void words_add_string(struct words *w, const char *s, size_t len)
{
        int32_t r;

        if (!w)
                return;
        for (size_t i = 0; i < len;) {
                i += utf8_decode(s + i, len - i, &r);
                words_add_char(w, r);
        }
}

/* Quoted text stays in the current word. */
static void words_add_raw(struct words *w, const char *s, size_t len)
{
        if (w)
                kbuf_append(&w->cur, s, len);
}

static void words_release(struct words *w)
{
        kbuf_release(&w->cur);
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i]);
        free(w->v);
        w->v = NULL;
        w->n = 0;
}

/* ---- the lexer ---- */

struct lex {
        const char *s;
        size_t len, pos;
        int32_t esc;
        const struct parser_env *env;
        bool refs;        /* only collect names: no lookups, no errors from values */
        bool keep_quotes; /* ' and " are text (heredoc bodies) */
        size_t max;       /* the longest result allowed */
        char **names;
        size_t n_names;
        unsigned depth;
        char *msg; /* why it failed */
};

static int32_t lex_peek(const struct lex *x)
{
        int32_t r;

        if (x->pos >= x->len)
                return EOF_RUNE;
        utf8_decode(x->s + x->pos, x->len - x->pos, &r);
        return r;
}

static int32_t lex_next(struct lex *x)
{
        int32_t r;

        if (x->pos >= x->len)
                return EOF_RUNE;
        x->pos += utf8_decode(x->s + x->pos, x->len - x->pos, &r);
        return r;
}

__attribute__((format(printf, 2, 3))) static int lex_fail(struct lex *x, const char *fmt, ...)
{
        va_list ap;
        char *m = NULL;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                abort();
        va_end(ap);
        free(x->msg);
        x->msg = m;
        return -1;
}

static int check_size(struct lex *x, const struct kbuf *b)
{
        if (b->len > x->max)
                return lex_fail(x, "expansion longer than %zu bytes", x->max);
        return 0;
}

/* The value of name in the environment, the last entry winning; NULL when unset. An entry
 * without "=" sets its whole text to the empty string, as buildkit's EnvsFromSlice does. */
static const char *env_get(const struct parser_env *env, const char *name, size_t len)
{
        if (!env)
                return NULL;
        for (size_t i = env->n; i-- > 0;) {
                const char *e = env->vars[i], *eq;
                size_t klen;

                if (!e)
                        continue;
                eq = strchr(e, '=');
                klen = eq ? (size_t)(eq - e) : strlen(e);
                if (klen == len && memcmp(e, name, len) == 0)
                        return eq ? eq + 1 : "";
        }
        return NULL;
}

static void lex_ref(struct lex *x, const struct kbuf *name)
{
        if (!x->refs || name->len == 0 || is_digit((unsigned char)name->data[0]))
                return;
        for (size_t i = 0; i < name->len; i++)
                if (!is_name_char((unsigned char)name->data[i]))
                        return;
        for (size_t i = 0; i < x->n_names; i++)
                if (strcmp(x->names[i], name->data) == 0)
                        return;
        x->names = kreallocarray(x->names, x->n_names + 2, sizeof(*x->names));
        x->names[x->n_names++] = kstrndup(name->data, name->len);
        x->names[x->n_names] = NULL;
}

/* processName: a run of digits, one special parameter, or [A-Za-z0-9_]*. */
static void lex_name(struct lex *x, struct kbuf *name)
{
        int32_t r;

        kbuf_putc(name, '\0');
        kbuf_truncate(name, 0);
        while ((r = lex_peek(x)) != EOF_RUNE) {
                if (name->len == 0 && is_digit(r)) {
                        while (is_digit(lex_peek(x)))
                                kbuf_putc(name, (char)lex_next(x));
                        return;
                }
                if (name->len == 0 && r < 0x80 && strchr("@*#?-$!0", (int)r)) {
                        kbuf_putc(name, (char)lex_next(x));
                        return;
                }
                if (!is_name_char(r))
                        return;
                kbuf_putc(name, (char)lex_next(x));
        }
}

static int lex_word(struct lex *x, int32_t stop, bool raw, struct kbuf *out, struct words *w);
static int lex_dollar(struct lex *x, struct kbuf *out);

static int lex_single(struct lex *x, struct kbuf *out)
{
        int32_t r;

        lex_next(x);
        for (;;) {
                r = lex_next(x);
                if (r == EOF_RUNE)
                        return lex_fail(x, "unexpected end of statement while looking for "
                                           "matching single-quote");
                if (r == '\'')
                        return 0;
                utf8_put(out, r);
        }
}

/* Inside double quotes the escape character escapes only ", $ and itself; elsewhere it
 * stays. With raw (a pattern), the escape is kept in front of what it escapes. */
static int lex_double(struct lex *x, bool raw, struct kbuf *out)
{
        int32_t r;

        lex_next(x);
        for (;;) {
                r = lex_peek(x);
                if (r == EOF_RUNE)
                        return lex_fail(x, "unexpected end of statement while looking for "
                                           "matching double-quote");
                if (r == '"') {
                        lex_next(x);
                        return 0;
                }
                if (r == '$') {
                        if (lex_dollar(x, out) < 0)
                                return -1;
                        if (check_size(x, out) < 0)
                                return -1;
                        continue;
                }
                r = lex_next(x);
                if (r == x->esc) {
                        int32_t p = lex_peek(x);

                        if (raw)
                                utf8_put(out, r);
                        if (p == EOF_RUNE)
                                continue;
                        if (p == '"' || p == '$' || p == x->esc)
                                r = lex_next(x);
                }
                utf8_put(out, r);
        }
}

/* processStopOn: the text up to stop (consumed), or to the end when stop is EOF_RUNE. */
static int lex_word(struct lex *x, int32_t stop, bool raw, struct kbuf *out, struct words *w)
{
        int32_t r;

        while ((r = lex_peek(x)) != EOF_RUNE) {
                if (stop != EOF_RUNE && r == stop) {
                        lex_next(x);
                        return 0;
                }
                if (r == '$' || (!x->keep_quotes && (r == '\'' || r == '"'))) {
                        struct kbuf tmp = KBUF_INIT;
                        int ret = r == '$'    ? lex_dollar(x, &tmp)
                                  : r == '\'' ? lex_single(x, &tmp)
                                              : lex_double(x, raw, &tmp);

                        if (ret < 0) {
                                kbuf_release(&tmp);
                                return -1;
                        }
                        kbuf_append(out, tmp.data, tmp.len);
                        if (r == '$')
                                words_add_string(w, tmp.data, tmp.len);
                        else
                                words_add_raw(w, tmp.data, tmp.len);
                        kbuf_release(&tmp);
                } else {
                        r = lex_next(x);
                        if (r == x->esc) {
                                if (raw) {
                                        words_add_raw_char(w, r);
                                        utf8_put(out, r);
                                }
                                /* An escape at the very end is dropped. */
                                r = lex_next(x);
                                if (r == EOF_RUNE)
                                        break;
                                words_add_raw_char(w, r);
                        } else {
                                words_add_char(w, r);
                        }
                        utf8_put(out, r);
                }
                if (check_size(x, out) < 0)
                        return -1;
        }
        if (stop != EOF_RUNE)
                return lex_fail(x, "unexpected end of statement while looking for matching %c",
                                (char)stop);
        return 0;
}

/* ---- patterns of ${V#p} ${V%p} ${V/p/r} ---- */

enum { G_LIT, G_ANY, G_STAR };

struct glob {
        unsigned char *kind;
        int32_t *lit;
        size_t n;
};

static void glob_release(struct glob *g)
{
        free(g->kind);
        free(g->lit);
}

/* convertShellPatternToRegex: * and ? are wildcards, \* \? \\ literal, \} and \/ the
 * character alone; any other escape is an error. [ ] have no special meaning. */
static int glob_compile(struct lex *x, const char *p, size_t len, struct glob *g)
{
        size_t i = 0;
        int32_t r;

        g->kind = kcalloc(len + 1, 1);
        g->lit = kcalloc(len + 1, sizeof(*g->lit));
        g->n = 0;
        /* text/scanner skips a byte order mark at the start. */
        if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
                i = 3;
        while (i < len) {
                i += utf8_decode(p + i, len - i, &r);
                if (r == '*') {
                        if (g->n == 0 || g->kind[g->n - 1] != G_STAR)
                                g->kind[g->n++] = G_STAR;
                        continue;
                }
                if (r == '?') {
                        g->kind[g->n++] = G_ANY;
                        continue;
                }
                if (r == '\\') {
                        int32_t e = EOF_RUNE;

                        if (i < len)
                                utf8_decode(p + i, len - i, &e);
                        if (e == '}' || e == '/')
                                continue;
                        if (e != '*' && e != '?' && e != '\\') {
                                struct kbuf m = KBUF_INIT;

                                if (e != EOF_RUNE)
                                        utf8_put(&m, e);
                                kbuf_putc(&m, '\0');
                                lex_fail(x,
                                         "invalid pattern (%.*s) in substitution: invalid escape "
                                         "'\\%s'",
                                         (int)len, p, m.data);
                                kbuf_release(&m);
                                glob_release(g);
                                return -1;
                        }
                        i += utf8_decode(p + i, len - i, &r);
                }
                g->kind[g->n] = G_LIT;
                g->lit[g->n++] = r;
        }
        return 0;
}

/* Adds the closure of the states in on: a star may match nothing. */
static void glob_closure(const struct glob *g, unsigned char *on)
{
        for (size_t i = 0; i < g->n; i++)
                if (on[i] && g->kind[i] == G_STAR)
                        on[i + 1] = 1;
}

/* Steps the states on over r into nx; false when none is left. Like Go's '.', the wildcards
 * do not match a newline. */
static bool glob_step(const struct glob *g, const unsigned char *on, unsigned char *nx, int32_t r)
{
        bool any = false;

        memset(nx, 0, g->n + 1);
        for (size_t i = 0; i < g->n; i++) {
                if (!on[i])
                        continue;
                if (g->kind[i] == G_STAR) {
                        if (r != '\n')
                                nx[i] = 1, any = true;
                } else if (g->kind[i] == G_ANY ? r != '\n' : g->lit[i] == r) {
                        nx[i + 1] = 1;
                        any = true;
                }
        }
        glob_closure(g, nx);
        return any;
}

/* The end (a rune index) of the shortest or longest match of g starting at start, or -1.
 * With every star lazy or every star greedy, these are what Go's leftmost-first regexp
 * finds. */
static long glob_match_at(const struct glob *g, const int32_t *v, size_t nv, size_t start,
                          bool longest)
{
        unsigned char *on = kcalloc(g->n + 1, 1), *nx = kcalloc(g->n + 1, 1), *t;
        long best = -1;

        on[0] = 1;
        glob_closure(g, on);
        for (size_t pos = start;; pos++) {
                if (on[g->n]) {
                        best = (long)pos;
                        if (!longest)
                                break;
                }
                if (pos == nv || !glob_step(g, on, nx, v[pos]))
                        break;
                t = on, on = nx, nx = t;
        }
        free(on);
        free(nx);
        return best;
}

/* The leftmost match at or after from and, for that start, the longest: every state carries
 * the smallest start that reaches it, and the scan stops once no live state could still
 * give a match further left. */
static bool glob_find(const struct glob *g, const int32_t *v, size_t nv, size_t from,
                      size_t *ret_start, size_t *ret_end)
{
        size_t *on = kcalloc(g->n + 1, sizeof(*on)), *nx = kcalloc(g->n + 1, sizeof(*nx)), *t;
        size_t best = SIZE_MAX;
        long end;

        for (size_t i = 0; i <= g->n; i++)
                on[i] = SIZE_MAX;
        for (size_t pos = from;; pos++) {
                bool alive = false;

                if (best == SIZE_MAX && on[0] == SIZE_MAX)
                        on[0] = pos;
                for (size_t i = 0; i < g->n; i++)
                        if (g->kind[i] == G_STAR && on[i] < on[i + 1])
                                on[i + 1] = on[i];
                if (on[g->n] < best)
                        best = on[g->n];
                for (size_t i = 0; i < g->n; i++)
                        if (on[i] < best)
                                alive = true;
                if ((!alive && best != SIZE_MAX) || pos == nv)
                        break;
                for (size_t i = 0; i <= g->n; i++)
                        nx[i] = SIZE_MAX;
                for (size_t i = 0; i < g->n; i++) {
                        int32_t r = v[pos];
                        size_t to;

                        if (on[i] == SIZE_MAX)
                                continue;
                        if (g->kind[i] == G_STAR) {
                                if (r == '\n')
                                        continue;
                                to = i;
                        } else if (g->kind[i] == G_ANY ? r != '\n' : g->lit[i] == r) {
                                to = i + 1;
                        } else {
                                continue;
                        }
                        if (on[i] < nx[to])
                                nx[to] = on[i];
                }
                t = on, on = nx, nx = t;
        }
        free(on);
        free(nx);
        if (best == SIZE_MAX)
                return false;
        end = glob_match_at(g, v, nv, best, true);
        *ret_start = best;
        *ret_end = (size_t)end;
        return true;
}

/* trimPrefix: removes the shortest (or longest) prefix of value that pattern matches. */
static int trim_prefix(struct lex *x, const char *pat, size_t plen, const char *value, bool greedy,
                       struct kbuf *out)
{
        struct glob g;
        int32_t *v;
        size_t *off, nv = decode_all(value, strlen(value), &v, &off);
        long end;

        if (glob_compile(x, pat, plen, &g) < 0) {
                free(v);
                free(off);
                return -1;
        }
        end = glob_match_at(&g, v, nv, 0, greedy);
        kbuf_puts(out, value + (end >= 0 ? off[end] : 0));
        glob_release(&g);
        free(v);
        free(off);
        return 0;
}

/* trimSuffix: buildkit reverses the pattern (keeping "\x" pairs together) and the value,
 * trims a prefix and reverses back, so the value comes back as runes (an invalid byte
 * becomes U+FFFD) and errors quote the reversed pattern. */
static int trim_suffix(struct lex *x, const char *pat, size_t plen, const char *value, bool greedy,
                       struct kbuf *out)
{
        struct kbuf rp = KBUF_INIT;
        struct glob g;
        int32_t *pr, *v, *rv;
        size_t *poff, *off, np = decode_all(pat, plen, &pr, &poff);
        size_t nv = decode_all(value, strlen(value), &v, &off);
        int32_t *rpat = kcalloc(np + 1, sizeof(*rpat));
        long end;
        int ret = -1;

        for (size_t i = 0; i < np;) {
                size_t o = np - 1 - i;

                if (pr[i] == '\\' && i != np - 1) {
                        rpat[o - 1] = pr[i];
                        rpat[o] = pr[i + 1];
                        i += 2;
                } else {
                        rpat[o] = pr[i];
                        i++;
                }
        }
        for (size_t i = 0; i < np; i++)
                utf8_put(&rp, rpat[i]);
        rv = kcalloc(nv + 1, sizeof(*rv));
        for (size_t i = 0; i < nv; i++)
                rv[i] = v[nv - 1 - i];
        if (glob_compile(x, rp.data ? rp.data : "", rp.len, &g) < 0)
                goto out;
        end = glob_match_at(&g, rv, nv, 0, greedy);
        for (size_t i = 0; i < nv - (end >= 0 ? (size_t)end : 0); i++)
                utf8_put(out, v[i]);
        glob_release(&g);
        ret = 0;
out:
        kbuf_release(&rp);
        free(rpat);
        free(pr);
        free(poff);
        free(v);
        free(off);
        free(rv);
        return ret;
}

/* regexp.Expand for a pattern without groups: $0 and ${0} are the match, $$ is "$", other
 * names and numbers are empty and a "$" without a name stays. */
static void expand_template(struct kbuf *out, const char *t, const char *m, size_t mlen)
{
        const char *d;

        while ((d = strchr(t, '$'))) {
                const char *name, *p;
                long num = 0;
                size_t nlen;
                bool brace = false;

                kbuf_append(out, t, (size_t)(d - t));
                t = d + 1;
                if (*t == '$') {
                        kbuf_putc(out, '$');
                        t++;
                        continue;
                }
                p = t;
                if (*p == '{') {
                        brace = true;
                        p++;
                }
                name = p;
                while (is_name_char((unsigned char)*p))
                        p++;
                nlen = (size_t)(p - name);
                if (nlen == 0 || (brace && *p != '}')) {
                        kbuf_putc(out, '$');
                        continue;
                }
                if (brace)
                        p++;
                for (size_t i = 0; i < nlen; i++) {
                        if (!is_digit((unsigned char)name[i]) || num >= 100000000) {
                                num = -1;
                                break;
                        }
                        num = num * 10 + (name[i] - '0');
                }
                if (name[0] == '0' && nlen > 1)
                        num = -1;
                if (num == 0)
                        kbuf_append(out, m, mlen);
                t = p;
        }
        kbuf_puts(out, t);
}

/* ${V/p/r} and ${V//p/r}: the first or every leftmost-longest match of p replaced, with Go's
 * rule that an empty match right after a match is not replaced. */
static int replace(struct lex *x, const char *value, const struct kbuf *pat, const struct kbuf *rep,
                   bool all, struct kbuf *out)
{
        struct glob g;
        int32_t *v;
        size_t *off, nv, s, e;
        const char *r = rep->data ? rep->data : "";

        if (glob_compile(x, pat->data ? pat->data : "", pat->len, &g) < 0)
                return -1;
        nv = decode_all(value, strlen(value), &v, &off);
        if (!all) {
                if (glob_find(&g, v, nv, 0, &s, &e)) {
                        kbuf_append(out, value, off[s]);
                        kbuf_puts(out, r);
                        kbuf_puts(out, value + off[e]);
                } else {
                        kbuf_puts(out, value);
                }
        } else {
                size_t last = 0, search = 0;

                while (search <= nv && glob_find(&g, v, nv, search, &s, &e)) {
                        kbuf_append(out, value + off[last], off[s] - off[last]);
                        if (e > last || s == 0)
                                expand_template(out, r, value + off[s], off[e] - off[s]);
                        last = e;
                        search = search + 1 > e ? search + 1 : e;
                        if (out->len > x->max)
                                break;
                }
                kbuf_puts(out, value + off[last]);
        }
        glob_release(&g);
        free(v);
        free(off);
        return check_size(x, out);
}

/* The word of a modifier up to the closing brace; running out of input is "missing '}'"
 * whatever inner construct was open. */
static int lex_operand(struct lex *x, int32_t stop, bool raw, struct kbuf *out, const char *eof)
{
        if (lex_word(x, stop, raw, out, NULL) < 0) {
                if (lex_peek(x) == EOF_RUNE)
                        lex_fail(x, "%s", eof);
                return -1;
        }
        kbuf_putc(out, '\0');
        kbuf_truncate(out, out->len - 1);
        return 0;
}

static int lex_braced(struct lex *x, struct kbuf *out)
{
        struct kbuf name = KBUF_INIT, word = KBUF_INIT, chs = KBUF_INIT, pat = KBUF_INIT;
        const char *value;
        int32_t r = lex_peek(x);
        bool null_is_unset = false, raw;
        int ret = -1;

        if (r == EOF_RUNE)
                return lex_fail(x, "syntax error: missing '}'");
        if (r == '{' || r == '}' || r == ':')
                return lex_fail(x, "syntax error: bad substitution");
        lex_name(x, &name);
        lex_ref(x, &name);
        r = lex_next(x);
        utf8_put(&chs, r == EOF_RUNE ? RUNE_ERROR : r);
        if (r == '}') {
                value = x->refs ? NULL : env_get(x->env, name.data, name.len);
                kbuf_puts(out, value ? value : "");
                ret = 0;
                goto out;
        }
        if (r == EOF_RUNE) {
                /* buildkit says "unsupported modifier (\uFFFD)" here. */
                lex_fail(x, "syntax error: missing '}'");
                goto out;
        }
        if (r == '/') {
                bool all = lex_peek(x) == '/';

                if (all)
                        lex_next(x);
                if (lex_operand(x, '/', true, &pat, "syntax error: missing '/' in ${}") < 0 ||
                    lex_operand(x, '}', true, &word, "syntax error: missing '}'") < 0)
                        goto out;
                if (x->refs) {
                        ret = 0;
                        goto out;
                }
                value = env_get(x->env, name.data, name.len);
                ret = replace(x, value ? value : "", &pat, &word, all, out);
                goto out;
        }
        if (r == ':') {
                null_is_unset = true;
                r = lex_next(x);
                utf8_put(&chs, r == EOF_RUNE ? RUNE_ERROR : r);
        } else if (r != '+' && r != '-' && r != '?' && r != '#' && r != '%') {
                lex_fail(x, "unsupported modifier (%s) in substitution", chs.data);
                goto out;
        }
        raw = r == '#' || r == '%';
        if (null_is_unset && raw) {
                lex_fail(x, "unsupported modifier (%s) in substitution", chs.data);
                goto out;
        }
        if (lex_operand(x, '}', raw, &word, "syntax error: missing '}'") < 0)
                goto out;
        if (x->refs) {
                if (r == '+' || r == '-' || r == '?' || r == '#' || r == '%')
                        ret = 0;
                else
                        lex_fail(x, "unsupported modifier (%s) in substitution", chs.data);
                goto out;
        }
        value = env_get(x->env, name.data, name.len);
        switch (r) {
        case '-':
                kbuf_puts(out, !value || (null_is_unset && !*value) ? word.data : value);
                break;
        case '+':
                if (value && !(null_is_unset && !*value))
                        kbuf_puts(out, word.data);
                break;
        case '?':
                if (!value) {
                        lex_fail(x, "%s: %s", name.data,
                                 word.len ? word.data : "is not allowed to be unset");
                        goto out;
                }
                if (null_is_unset && !*value) {
                        lex_fail(x, "%s: %s", name.data,
                                 word.len ? word.data : "is not allowed to be empty");
                        goto out;
                }
                kbuf_puts(out, value);
                break;
        case '#':
        case '%': {
                /* ## and %% (the word starting with the operator again) are greedy. */
                bool greedy = word.len > 0 && word.data[0] == (char)r;
                const char *p = word.data + (greedy ? 1 : 0);
                size_t plen = word.len - (greedy ? 1 : 0);

                if ((r == '%' ? trim_suffix : trim_prefix)(x, p, plen, value ? value : "", greedy,
                                                           out) < 0)
                        goto out;
                break;
        }
        default:
                lex_fail(x, "unsupported modifier (%s) in substitution", chs.data);
                goto out;
        }
        ret = 0;
out:
        kbuf_release(&name);
        kbuf_release(&word);
        kbuf_release(&chs);
        kbuf_release(&pat);
        return ret;
}

/* processDollar: at a '$'. A '$' not followed by a name or '{' is itself. */
static int lex_dollar(struct lex *x, struct kbuf *out)
{
        struct kbuf name = KBUF_INIT;
        const char *value;
        int ret;

        lex_next(x);
        if (lex_peek(x) != '{') {
                lex_name(x, &name);
                if (name.len == 0) {
                        kbuf_putc(out, '$');
                } else {
                        lex_ref(x, &name);
                        value = x->refs ? NULL : env_get(x->env, name.data, name.len);
                        kbuf_puts(out, value ? value : "");
                }
                kbuf_release(&name);
                return 0;
        }
        lex_next(x);
        if (x->depth >= MAX_DEPTH)
                return lex_fail(x, "substitutions nested more than %d deep", MAX_DEPTH);
        x->depth++;
        ret = lex_braced(x, out);
        x->depth--;
        return ret;
}

static void lex_init(struct lex *x, const char *s, char escape, const struct parser_env *env,
                     bool refs)
{
        memset(x, 0, sizeof(*x));
        x->s = s ? s : "";
        x->len = strlen(x->s);
        x->esc = (unsigned char)escape;
        x->env = env;
        x->refs = refs;
        x->max = MAX_RESULT;
        /* text/scanner skips a byte order mark at the start. */
        if (x->len >= 3 && memcmp(x->s, "\xef\xbb\xbf", 3) == 0)
                x->pos = 3;
}

static int lex_run(struct lex *x, struct kbuf *out, struct words *w, struct kerr **err)
{
        if (lex_word(x, EOF_RUNE, false, out, w) == 0)
                return 0;
        /* A heredoc body is many lines: the caller names it instead of quoting it. */
        if (x->keep_quotes)
                kerr_set(err, 0, KERR_INVALID, "%s", x->msg ? x->msg : "unknown error");
        else
                kerr_set(err, 0, KERR_INVALID, "failed to process '%s': %s", x->s,
                         x->msg ? x->msg : "unknown error");
        free(x->msg);
        x->msg = NULL;
        return -1;
}

int parser_expand_word(const char *word, char escape, const struct parser_env *env, char **ret,
                       struct kerr **err)
{
        struct lex x;
        struct kbuf out = KBUF_INIT;

        lex_init(&x, word, escape, env, false);
        if (lex_run(&x, &out, NULL, err) < 0) {
                kbuf_release(&out);
                return -1;
        }
        *ret = kbuf_detach(&out);
        return 0;
}

int parser_expand_heredoc(const char *body, const struct parser_env *env, char **ret,
                          struct kerr **err)
{
        struct lex x;
        struct kbuf out = KBUF_INIT;

        /* buildkit expands heredoc bodies with a lexer of its own, NewLex('\\') with
         * SkipProcessQuotes: the escape is '\\' whatever the escape directive says. */
        lex_init(&x, body, '\\', env, false);
        x.keep_quotes = true;
        /* The body itself may be long; what expansion adds is capped as for a word. */
        x.max = MAX_RESULT + x.len;
        if (lex_run(&x, &out, NULL, err) < 0) {
                kbuf_release(&out);
                return -1;
        }
        *ret = kbuf_detach(&out);
        return 0;
}

int parser_expand_words(const char *s, char escape, const struct parser_env *env, char ***ret_v,
                        size_t *ret_n, struct kerr **err)
{
        struct lex x;
        struct kbuf out = KBUF_INIT;
        struct words w = {KBUF_INIT, NULL, 0};

        lex_init(&x, s, escape, env, false);
        if (lex_run(&x, &out, &w, err) < 0) {
                kbuf_release(&out);
                words_release(&w);
                return -1;
        }
        kbuf_release(&out);
        words_push(&w);
        kbuf_release(&w.cur);
        if (!w.v)
                w.v = kcalloc(1, sizeof(*w.v));
        *ret_v = w.v;
        *ret_n = w.n;
        return 0;
}

int parser_expand_refs(const char *s, char escape, char ***ret_v, size_t *ret_n, struct kerr **err)
{
        struct lex x;
        struct kbuf out = KBUF_INIT;

        lex_init(&x, s, escape, NULL, true);
        if (lex_run(&x, &out, NULL, err) < 0) {
                kbuf_release(&out);
                for (size_t i = 0; i < x.n_names; i++)
                        free(x.names[i]);
                free(x.names);
                return -1;
        }
        kbuf_release(&out);
        if (!x.names)
                x.names = kcalloc(1, sizeof(*x.names));
        *ret_v = x.names;
        *ret_n = x.n_names;
        return 0;
}

bool parser_kind_expands(enum parser_kind kind)
{
        switch (kind) {
        case PARSER_ADD:
        case PARSER_ARG:
        case PARSER_COPY:
        case PARSER_ENV:
        case PARSER_EXPOSE:
        case PARSER_FROM:
        case PARSER_LABEL:
        case PARSER_STOPSIGNAL:
        case PARSER_USER:
        case PARSER_VOLUME:
        case PARSER_WORKDIR:
                return true;
        default:
                return false;
        }
}
