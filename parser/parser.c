/* SPDX-License-Identifier: Apache-2.0 */
/* Instructions from logical lines, with the rules of buildkit's Dockerfile frontend: the
 * keyword, the leading "--flags" and the arguments are split as splitCommand and
 * extractBuilderFlags split them, each instruction's arguments are read as its line parser
 * reads them (parseMaybeJSON, parseWords, …), then checked as instructions/parse.go checks
 * them. A bad instruction becomes one diagnostic and is left out; parsing goes on with the
 * next line, so that `kiln check` sees every problem. */
#include "parser/parser.h"
#include "parser/internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/kjson.h"
#include "common/utf8.h"
#include "common/banned.h"

struct ctx {
        struct parser_file *f;
        struct parser_lexer lx;
        struct parser_line line;
        bool failed;    /* the current instruction has an error (reported) */
        bool json_like; /* its arguments are a JSON array, good or not */
        char *health_type;
        bool seen_from; /* a FROM, good or bad, was seen */
        bool orphan;    /* the last FROM was bad: what follows has no stage */
        size_t *early;  /* diagnostics about instructions before the first FROM */
        size_t n_early;
};

static void vfail(struct ctx *c, struct parser_pos pos, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

static void vfail(struct ctx *c, struct parser_pos pos, const char *fmt, va_list ap)
{
        struct kbuf msg = KBUF_INIT;

        /* One diagnostic per instruction: what follows the first problem is often its echo. */
        if (c->failed)
                return;
        c->failed = true;
        kbuf_vprintf(&msg, fmt, ap);
        parser_file_diag(c->f, PARSER_ERROR, pos, "Syntax", "%s", msg.data ? msg.data : "");
        kbuf_release(&msg);
}

static void fail(struct ctx *c, struct parser_pos pos, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void fail(struct ctx *c, struct parser_pos pos, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vfail(c, pos, fmt, ap);
        va_end(ap);
}

static struct parser_pos pos_at(struct ctx *c, size_t off)
{
        return parser_line_pos(&c->line, off);
}

static const char *L(struct ctx *c)
{
        return c->line.text;
}

static void push_arg(struct parser_instr *in, const char *s, size_t n)
{
        in->args = parser_grow(in->args, in->n_args, sizeof(*in->args));
        in->args[in->n_args++] = kstrndup(s, n);
}

static void push_kv(struct parser_instr *in, char *key, char *value, struct parser_pos pos)
{
        in->kvs = parser_grow(in->kvs, in->n_kvs, sizeof(*in->kvs));
        in->kvs[in->n_kvs++] = (struct parser_kv){key, value, pos};
}

/* ---- splitting ---- */

static void add_flag(struct ctx *c, struct parser_instr *in, const struct kbuf *word, size_t off)
{
        const char *w = word->data + 2;
        size_t n = word->len - 2;
        const char *eq = memchr(w, '=', n);
        struct parser_flag *fl;

        in->flags = parser_grow(in->flags, in->n_flags, sizeof(*in->flags));
        fl = &in->flags[in->n_flags++];
        fl->name = kstrndup(w, eq ? (size_t)(eq - w) : n);
        fl->value = eq ? kstrndup(eq + 1, n - (size_t)(eq + 1 - w)) : NULL;
        fl->pos = pos_at(c, off);
}

/* extractBuilderFlags: the "--name[=value]" words at the start of line[s, e), with quotes
 * and backslashes processed; a lone "--" ends them. Returns where the arguments start. */
static size_t extract_flags(struct ctx *c, struct parser_instr *in, size_t s, size_t e)
{
        enum { SPACES, WORD, QUOTE } phase = SPACES;
        const char *l = L(c);
        struct kbuf word = KBUF_INIT;
        size_t start = s, ret = e;
        bool blank_ok = false;
        char quote = 0;

        kbuf_puts(&word, "");
        for (size_t pos = s; pos <= e; pos++) {
                char ch = pos < e ? l[pos] : 0;

                if (phase == SPACES) {
                        if (pos == e)
                                break;
                        if (parser_is_space_byte((unsigned char)ch))
                                continue;
                        if (ch != '-' || pos + 1 == e || l[pos + 1] != '-') {
                                ret = pos;
                                break;
                        }
                        phase = WORD;
                        start = pos;
                }
                if (pos == e) {
                        if (strcmp(word.data, "--") != 0 && (blank_ok || word.len > 0))
                                add_flag(c, in, &word, start);
                        break;
                }
                if (phase == WORD) {
                        if (parser_is_space_byte((unsigned char)ch)) {
                                phase = SPACES;
                                if (word.len == 2 && strcmp(word.data, "--") == 0) {
                                        ret = pos;
                                        break;
                                }
                                if (blank_ok || word.len > 0)
                                        add_flag(c, in, &word, start);
                                kbuf_truncate(&word, 0);
                                blank_ok = false;
                                continue;
                        }
                        if (ch == '\'' || ch == '"') {
                                quote = ch;
                                blank_ok = true;
                                phase = QUOTE;
                                continue;
                        }
                        if (ch == '\\') {
                                if (pos + 1 == e)
                                        continue;
                                ch = l[++pos];
                        }
                        kbuf_putc(&word, ch);
                        continue;
                }
                /* QUOTE */
                if (ch == quote) {
                        phase = WORD;
                        continue;
                }
                if (ch == '\\') {
                        if (pos + 1 == e) {
                                phase = WORD;
                                continue;
                        }
                        ch = l[++pos];
                }
                kbuf_putc(&word, ch);
        }
        kbuf_release(&word);
        return ret;
}

struct word {
        char *s;
        size_t len, off;
};

static void words_free(struct word *w, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(w[i].s);
        free(w);
}

static void word_push(struct word **v, size_t *n, struct kbuf *b, size_t off)
{
        size_t len = b->len;

        *v = parser_grow(*v, *n, sizeof(**v));
        (*v)[(*n)++] = (struct word){kbuf_detach(b), len, off};
}

/* parseWords: white-space separated words with quotes and escapes kept as written. */
static size_t parse_words(struct ctx *c, size_t s, size_t e, struct word **ret)
{
        enum { SPACES, WORD, QUOTE } phase = SPACES;
        const char *l = L(c);
        char esc = c->f->escape, quote = 0;
        struct kbuf word = KBUF_INIT;
        struct word *v = NULL;
        size_t n = 0, start = s, w = 0;
        bool blank_ok = false;
        uint32_t ch = 0;

        for (size_t pos = s; pos <= e; pos += w) {
                if (pos != e)
                        w = kutf8_decode(l + pos, e - pos, &ch);
                if (phase == SPACES) {
                        if (pos == e)
                                break;
                        if (kutf8_is_space(ch))
                                continue;
                        phase = WORD;
                        start = pos;
                }
                if (pos == e) {
                        if (blank_ok || word.len > 0)
                                word_push(&v, &n, &word, start);
                        break;
                }
                if (phase == WORD) {
                        if (kutf8_is_space(ch)) {
                                phase = SPACES;
                                if (blank_ok || word.len > 0)
                                        word_push(&v, &n, &word, start);
                                kbuf_truncate(&word, 0);
                                blank_ok = false;
                                continue;
                        }
                        if (ch == '\'' || ch == '"') {
                                quote = (char)ch;
                                blank_ok = true;
                                phase = QUOTE;
                        }
                        if (ch == (uint32_t)esc) {
                                if (pos + w == e)
                                        continue;
                                kbuf_append(&word, l + pos, w);
                                pos += w;
                                w = kutf8_decode(l + pos, e - pos, &ch);
                        }
                        kbuf_append(&word, l + pos, w);
                        continue;
                }
                if (ch == (uint32_t)(unsigned char)quote)
                        phase = WORD;
                if (ch == (uint32_t)esc && quote != '\'') {
                        if (pos + w == e) {
                                phase = WORD;
                                continue;
                        }
                        kbuf_append(&word, l + pos, w);
                        pos += w;
                        w = kutf8_decode(l + pos, e - pos, &ch);
                }
                kbuf_append(&word, l + pos, w);
        }
        kbuf_release(&word);
        *ret = v;
        return n;
}

/* parseStringsWhitespaceDelimited: split on runs of [\t\v\f\r ]. */
static void split_blanks(struct ctx *c, struct parser_instr *in, size_t s, size_t e)
{
        const char *l = L(c);

        while (s < e) {
                size_t j = s;

                while (j < e && !parser_is_blank((unsigned char)l[j]))
                        j++;
                push_arg(in, l + s, j - s);
                while (j < e && parser_is_blank((unsigned char)l[j]))
                        j++;
                s = j;
        }
}

/* parseJSON: 1 when line[s, e) is a JSON array of strings (now the arguments), 0 when it is
 * not JSON, -1 (reported) when it is an array holding something else. */
static int try_json(struct ctx *c, struct parser_instr *in, size_t s, size_t e)
{
        struct kerr *err = NULL;
        char **v = NULL;
        size_t n = 0;
        enum kerr_code code;

        if (kjson_parse_string_array(L(c) + s, e - s, &v, &n, &err) == 0) {
                in->json = true;
                in->args = v;
                in->n_args = n;
                c->json_like = true;
                return 1;
        }
        code = err ? err->code : KERR_PARSE;
        kerr_free(err);
        if (code == KERR_INVALID) {
                c->json_like = true;
                fail(c, pos_at(c, s),
                     "when using JSON array syntax, arrays must hold strings only");
                return -1;
        }
        return 0;
}

/* parseMaybeJSON: a JSON array, or the whole text as one argument. */
static void maybe_json(struct ctx *c, struct parser_instr *in, size_t s, size_t e)
{
        if (s == e)
                return;
        if (try_json(c, in, s, e) == 0)
                push_arg(in, L(c) + s, e - s);
}

/* parseMaybeJSONToList: a JSON array, or the white-space separated words. */
static void maybe_json_list(struct ctx *c, struct parser_instr *in, size_t s, size_t e)
{
        if (try_json(c, in, s, e) == 0)
                split_blanks(c, in, s, e);
}

/* parseNameVal for ENV and LABEL: "name=value …", or the legacy "name value with spaces". */
static void name_vals(struct ctx *c, struct parser_instr *in, size_t s, size_t e)
{
        const char *l = L(c), *kind = parser_kind_name(in->kind);
        struct word *w = NULL;
        size_t n = parse_words(c, s, e, &w);

        if (n == 0)
                goto out;
        if (!memchr(w[0].s, '=', w[0].len)) {
                size_t i = s, j;

                while (i < e && !parser_is_blank((unsigned char)l[i]))
                        i++;
                if (i == e) {
                        fail(c, in->pos, "%s must have two arguments", kind);
                        goto out;
                }
                j = i;
                while (j < e && parser_is_blank((unsigned char)l[j]))
                        j++;
                push_kv(in, kstrndup(l + s, i - s), kstrndup(l + j, e - j), pos_at(c, s));
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                const char *eq = memchr(w[i].s, '=', w[i].len);

                if (!eq) {
                        fail(c, pos_at(c, w[i].off),
                             "can't find '=' in '%s' (must be of the form name=value)", w[i].s);
                        goto out;
                }
                push_kv(in, kstrndup(w[i].s, (size_t)(eq - w[i].s)),
                        kstrndup(eq + 1, w[i].len - (size_t)(eq + 1 - w[i].s)),
                        pos_at(c, w[i].off));
        }
out:
        words_free(w, n);
}

/* parseNameOrNameVal for ARG: "name" or "name=value" words. */
static void arg_words(struct ctx *c, struct parser_instr *in, size_t s, size_t e)
{
        struct word *w = NULL;
        size_t n = parse_words(c, s, e, &w);

        for (size_t i = 0; i < n; i++) {
                const char *eq = memchr(w[i].s, '=', w[i].len);

                if (eq)
                        push_kv(in, kstrndup(w[i].s, (size_t)(eq - w[i].s)),
                                kstrndup(eq + 1, w[i].len - (size_t)(eq + 1 - w[i].s)),
                                pos_at(c, w[i].off));
                else
                        push_kv(in, kstrndup(w[i].s, w[i].len), NULL, pos_at(c, w[i].off));
        }
        words_free(w, n);
}

/* parseHealthConfig: a type word (CMD, NONE), then a command as parseMaybeJSON reads it. */
static void health_args(struct ctx *c, struct parser_instr *in, size_t s, size_t e)
{
        const char *l = L(c);
        size_t sep = s, next;

        while (sep < e && !parser_is_space_byte((unsigned char)l[sep]))
                sep++;
        next = sep;
        while (next < e && parser_is_space_byte((unsigned char)l[next]))
                next++;
        if (sep == s)
                return;
        free(c->health_type);
        c->health_type = kstrndup(l + s, sep - s);
        maybe_json(c, in, next, e);
}

static struct parser_instr *parse_line(struct ctx *c, size_t s, size_t e, bool nested);

static void parse_args(struct ctx *c, struct parser_instr *in, size_t s, size_t e, bool nested)
{
        switch (in->kind) {
        case PARSER_FROM:
        case PARSER_EXPOSE:
                split_blanks(c, in, s, e);
                break;
        case PARSER_RUN:
        case PARSER_CMD:
        case PARSER_ENTRYPOINT:
        case PARSER_SHELL:
                maybe_json(c, in, s, e);
                break;
        case PARSER_COPY:
        case PARSER_ADD:
        case PARSER_VOLUME:
                maybe_json_list(c, in, s, e);
                break;
        case PARSER_ENV:
        case PARSER_LABEL:
                name_vals(c, in, s, e);
                break;
        case PARSER_ARG:
                arg_words(c, in, s, e);
                break;
        case PARSER_USER:
        case PARSER_WORKDIR:
        case PARSER_STOPSIGNAL:
        case PARSER_MAINTAINER:
                if (s < e)
                        push_arg(in, L(c) + s, e - s);
                break;
        case PARSER_HEALTHCHECK:
                health_args(c, in, s, e);
                break;
        case PARSER_ONBUILD:
                /* One level only: a nested ONBUILD is refused below, so its own rest is not
                 * parsed (which also bounds the recursion). */
                if (s < e && !nested)
                        in->sub = parse_line(c, s, e, true);
                break;
        case PARSER_UNKNOWN:
        case PARSER_KIND_COUNT:
                break;
        }
}

/* splitCommand, then the argument parser of the keyword. */
static struct parser_instr *parse_line(struct ctx *c, size_t s, size_t e, bool nested)
{
        struct parser_instr *in = kcalloc(1, sizeof(*in));
        const char *l = L(c);
        size_t ks, ke, rs, as;

        in->original = kstrndup(l + s, e - s);
        ks = s + parser_space_prefix(l + s, e - s);
        e -= parser_space_suffix(l + ks, e - ks);
        ke = ks;
        while (ke < e && !parser_is_blank((unsigned char)l[ke]))
                ke++;
        rs = ke;
        while (rs < e && parser_is_blank((unsigned char)l[rs]))
                rs++;

        in->keyword = kstrndup(l + ks, ke - ks);
        in->kind = strlen(in->keyword) == ke - ks ? parser_kind_from_name(in->keyword)
                                                  : PARSER_UNKNOWN;
        in->pos = pos_at(c, ks);
        in->health.interval = in->health.timeout = -1;
        in->health.start_period = in->health.start_interval = -1;
        in->health.retries = -1;

        as = extract_flags(c, in, rs, e);
        as += parser_space_prefix(l + as, e - as);
        parse_args(c, in, as, e, nested);
        return in;
}

/* ---- checks ---- */

enum flag_type { FLAG_BOOL, FLAG_STRING, FLAG_STRINGS };

struct flag_def {
        const char *name;
        enum flag_type type;
};

static const struct flag_def from_flags[] = {{"platform", FLAG_STRING}, {NULL, 0}};
static const struct flag_def run_flags[] = {
        {"mount", FLAG_STRINGS},
        {"network", FLAG_STRING},
        {"security", FLAG_STRING},
        {NULL, 0},
};
static const struct flag_def copy_flags[] = {
        {"from", FLAG_STRING},
        {"chown", FLAG_STRING},
        {"chmod", FLAG_STRING},
        {"link", FLAG_BOOL},
        {"parents", FLAG_BOOL},
        {"exclude", FLAG_STRINGS},
        {NULL, 0},
};
static const struct flag_def add_flags[] = {
        {"chown", FLAG_STRING},    {"chmod", FLAG_STRING},
        {"link", FLAG_BOOL},       {"keep-git-dir", FLAG_BOOL},
        {"checksum", FLAG_STRING}, {"exclude", FLAG_STRINGS},
        {"unpack", FLAG_BOOL},     {NULL, 0},
};
static const struct flag_def health_flags[] = {
        {"interval", FLAG_STRING},       {"timeout", FLAG_STRING}, {"start-period", FLAG_STRING},
        {"start-interval", FLAG_STRING}, {"retries", FLAG_STRING}, {NULL, 0},
};
static const struct flag_def no_flags[] = {{NULL, 0}};

static const struct flag_def *flag_defs(enum parser_kind kind)
{
        switch (kind) {
        case PARSER_FROM:
                return from_flags;
        case PARSER_RUN:
                return run_flags;
        case PARSER_COPY:
                return copy_flags;
        case PARSER_ADD:
                return add_flags;
        case PARSER_HEALTHCHECK:
                return health_flags;
        default:
                return no_flags;
        }
}

/* BFlags.Parse: known names, no repeats but for lists, booleans true/false, values given. */
static int check_flags(struct ctx *c, const struct parser_instr *in)
{
        const struct flag_def *defs = flag_defs(in->kind);
        unsigned used = 0;

        for (size_t i = 0; i < in->n_flags; i++) {
                const struct parser_flag *fl = &in->flags[i];
                int d = -1;

                for (int k = 0; defs[k].name; k++)
                        if (strcmp(defs[k].name, fl->name) == 0)
                                d = k;
                if (d < 0) {
                        fail(c, fl->pos, "unknown flag '--%s' for %s", fl->name,
                             parser_kind_name(in->kind));
                        return -1;
                }
                if ((used & (1u << d)) && defs[d].type != FLAG_STRINGS) {
                        fail(c, fl->pos, "duplicate flag '--%s'", fl->name);
                        return -1;
                }
                used |= 1u << d;
                if (defs[d].type == FLAG_BOOL) {
                        if (fl->value && !*fl->value) {
                                fail(c, fl->pos, "missing value for flag '--%s'", fl->name);
                                return -1;
                        }
                        if (fl->value && strcasecmp(fl->value, "true") != 0 &&
                            strcasecmp(fl->value, "false") != 0) {
                                fail(c, fl->pos,
                                     "invalid value '%s' for flag '--%s' (expected true or false)",
                                     fl->value, fl->name);
                                return -1;
                        }
                } else if (!fl->value) {
                        fail(c, fl->pos, "missing value for flag '--%s'", fl->name);
                        return -1;
                }
        }
        return 0;
}

static int check_one_of(struct ctx *c, const struct parser_flag *fl, const char *what,
                        const char *const *allowed, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(fl->value, allowed[i]) == 0)
                        return 0;
        fail(c, fl->pos, "unsupported %s '%s'", what, fl->value);
        return -1;
}

/* As buildkit's post-parse hooks, in their order: mounts, then network, then security. */
static void check_run(struct ctx *c, struct parser_instr *in)
{
        static const char *const networks[] = {"default", "none", "host"};
        static const char *const securities[] = {"insecure", "sandbox"};

        if (check_flags(c, in) < 0)
                return;
        for (size_t i = 0; i < in->n_flags; i++) {
                const struct parser_flag *fl = &in->flags[i];
                struct kbuf msg = KBUF_INIT;
                struct parser_mount m;

                if (strcmp(fl->name, "mount") != 0)
                        continue;
                if (parser_mount_parse(fl->value, &m, &msg) < 0) {
                        fail(c, fl->pos, "%s", msg.data ? msg.data : "invalid mount");
                        kbuf_release(&msg);
                        parser_mount_release(&m);
                        return;
                }
                kbuf_release(&msg);
                m.pos = fl->pos;
                in->mounts = parser_grow(in->mounts, in->n_mounts, sizeof(*in->mounts));
                in->mounts[in->n_mounts++] = m;
        }
        for (size_t i = 0; i < in->n_flags; i++) {
                const struct parser_flag *fl = &in->flags[i];

                if (strcmp(fl->name, "network") == 0 &&
                    check_one_of(c, fl, "network mode", networks, 3) < 0)
                        return;
        }
        for (size_t i = 0; i < in->n_flags; i++) {
                const struct parser_flag *fl = &in->flags[i];

                if (strcmp(fl->name, "security") == 0 &&
                    check_one_of(c, fl, "security mode", securities, 2) < 0)
                        return;
        }
}

static int health_duration(struct ctx *c, const struct parser_instr *in, const char *name,
                           long long *ret)
{
        const struct parser_flag *fl = parser_instr_flag(in, name);
        long long d;

        if (!fl || !*fl->value)
                return 0;
        if (parser_parse_duration(fl->value, &d) < 0) {
                fail(c, fl->pos, "invalid duration '%s' for '--%s'", fl->value, name);
                return -1;
        }
        if (d != 0 && d < 1000000) {
                fail(c, fl->pos, "'--%s' can not be less than 1ms", name);
                return -1;
        }
        *ret = d;
        return 0;
}

static void check_health(struct ctx *c, struct parser_instr *in)
{
        struct parser_health *h = &in->health;
        const struct parser_flag *fl;
        char *type = c->health_type;

        if (!type) {
                fail(c, in->pos, "HEALTHCHECK requires at least one argument");
                return;
        }
        for (char *p = type; *p; p++)
                *p = (char)toupper((unsigned char)*p);
        if (strcmp(type, "NONE") == 0) {
                /* As buildkit, flags are not looked at with NONE. */
                if (in->n_args > 0)
                        fail(c, in->pos, "HEALTHCHECK NONE takes no arguments");
                h->none = true;
                return;
        }
        if (check_flags(c, in) < 0)
                return;
        if (strcmp(type, "CMD") != 0) {
                fail(c, in->pos, "unknown type '%s' in HEALTHCHECK (try CMD)", type);
                return;
        }
        if (in->n_args == 0) {
                fail(c, in->pos, "missing command after HEALTHCHECK CMD");
                return;
        }
        if (health_duration(c, in, "interval", &h->interval) < 0 ||
            health_duration(c, in, "timeout", &h->timeout) < 0 ||
            health_duration(c, in, "start-period", &h->start_period) < 0 ||
            health_duration(c, in, "start-interval", &h->start_interval) < 0)
                return;
        fl = parser_instr_flag(in, "retries");
        if (fl && *fl->value) {
                if (parser_parse_int32(fl->value, &h->retries) < 0) {
                        fail(c, fl->pos, "invalid value '%s' for '--retries'", fl->value);
                        return;
                }
                if (h->retries < 0) {
                        fail(c, fl->pos, "'--retries' can not be negative (%lld)", h->retries);
                        return;
                }
        }
}

static bool valid_stage_name(const char *s)
{
        if (!(*s >= 'a' && *s <= 'z'))
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
                      *s == '_' || *s == '.'))
                        return false;
        return true;
}

static void check_from(struct ctx *c, struct parser_instr *in)
{
        if (in->n_args == 0) {
                fail(c, in->pos, "FROM requires an image");
                return;
        }
        if (in->n_args == 3 && strcasecmp(in->args[1], "as") == 0) {
                char *name = kstrdup(in->args[2]);

                for (char *p = name; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                if (!valid_stage_name(name)) {
                        fail(c, in->pos,
                             "invalid name for build stage '%s': it can't start with a number "
                             "or contain symbols",
                             in->args[2]);
                        free(name);
                        return;
                }
                in->stage_name = name;
        } else if (in->n_args == 3) {
                fail(c, in->pos, "FROM's second argument must be 'AS', not '%s'", in->args[1]);
                return;
        } else if (in->n_args != 1) {
                fail(c, in->pos, "FROM requires either one or three arguments");
                return;
        }
        check_flags(c, in);
}

static void check_copy(struct ctx *c, struct parser_instr *in)
{
        const char *kind = parser_kind_name(in->kind);

        if (in->n_args < 2) {
                fail(c, in->pos, "%s requires at least two arguments", kind);
                return;
        }
        if (check_flags(c, in) < 0)
                return;
        if (parser_is_heredoc_word(in->args[in->n_args - 1]))
                fail(c, in->pos, "%s does not accept a heredoc as the destination", kind);
}

static void check_kvs(struct ctx *c, struct parser_instr *in)
{
        const char *kind = parser_kind_name(in->kind);

        if (in->n_kvs == 0) {
                fail(c, in->pos, "%s requires at least one argument", kind);
                return;
        }
        for (size_t i = 0; i < in->n_kvs; i++) {
                if (!in->kvs[i].key[0]) {
                        fail(c, in->kvs[i].pos, "%s names can not be blank", kind);
                        return;
                }
        }
}

static void check_instr(struct ctx *c, struct parser_instr *in);

static void check_onbuild(struct ctx *c, struct parser_instr *in)
{
        const struct parser_instr *sub = in->sub;

        if (!sub) {
                fail(c, in->pos, "ONBUILD requires at least one argument");
                return;
        }
        if (check_flags(c, in) < 0)
                return;
        switch (sub->kind) {
        case PARSER_ONBUILD:
                fail(c, sub->pos, "ONBUILD ONBUILD is not allowed");
                return;
        case PARSER_FROM:
        case PARSER_MAINTAINER:
                fail(c, sub->pos, "%s is not allowed as an ONBUILD trigger",
                     parser_kind_name(sub->kind));
                return;
        default:
                break;
        }
        check_instr(c, in->sub);
}

static void check_unknown(struct ctx *c, const struct parser_instr *in)
{
        const char *names[PARSER_KIND_COUNT - 1];
        const char *hint;
        bool lower = true;
        char buf[16];

        if (c->failed)
                return;
        c->failed = true;
        for (unsigned k = 1; k < PARSER_KIND_COUNT; k++)
                names[k - 1] = parser_kind_name((enum parser_kind)k);
        hint = parser_suggest(in->keyword, names, PARSER_KIND_COUNT - 1);
        if (!hint) {
                parser_file_diag(c->f, PARSER_ERROR, in->pos, "UnknownInstruction",
                                 "unknown instruction '%s'", in->keyword);
                return;
        }
        /* The hint takes the case of what was written: "coppy" gives "copy". */
        for (const char *p = in->keyword; *p; p++)
                if (isupper((unsigned char)*p))
                        lower = false;
        snprintf(buf, sizeof(buf), "%s", hint);
        if (lower)
                for (char *p = buf; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
        parser_file_diag(c->f, PARSER_ERROR, in->pos, "UnknownInstruction",
                         "unknown instruction '%s' (did you mean '%s'?)", in->keyword, buf);
}

/* The checks of instructions/parse.go, in its order, so that the first problem reported is
 * the one docker reports. */
static void check_instr(struct ctx *c, struct parser_instr *in)
{
        const char *kind = parser_kind_name(in->kind);

        switch (in->kind) {
        case PARSER_UNKNOWN:
        case PARSER_KIND_COUNT:
                check_unknown(c, in);
                break;
        case PARSER_FROM:
                check_from(c, in);
                break;
        case PARSER_RUN:
                check_run(c, in);
                break;
        case PARSER_CMD:
        case PARSER_ENTRYPOINT:
                check_flags(c, in);
                break;
        case PARSER_COPY:
        case PARSER_ADD:
                check_copy(c, in);
                break;
        case PARSER_ENV:
        case PARSER_LABEL:
                if (check_flags(c, in) == 0)
                        check_kvs(c, in);
                break;
        case PARSER_ARG:
                /* buildkit does not look at ARG's flags. */
                check_kvs(c, in);
                break;
        case PARSER_EXPOSE:
        case PARSER_VOLUME:
                if (in->n_args == 0) {
                        fail(c, in->pos, "%s requires at least one argument", kind);
                        break;
                }
                if (check_flags(c, in) < 0)
                        break;
                for (size_t i = 0; in->kind == PARSER_VOLUME && i < in->n_args; i++) {
                        const char *a = in->args[i];
                        size_t n = strlen(a);

                        if (parser_space_prefix(a, n) == n) {
                                fail(c, in->pos, "VOLUME path can not be empty");
                                break;
                        }
                }
                break;
        case PARSER_USER:
        case PARSER_WORKDIR:
        case PARSER_MAINTAINER:
        case PARSER_STOPSIGNAL:
                if (in->n_args != 1) {
                        fail(c, in->pos, "%s requires exactly one argument", kind);
                        break;
                }
                /* buildkit does not look at STOPSIGNAL's flags. */
                if (in->kind != PARSER_STOPSIGNAL)
                        check_flags(c, in);
                break;
        case PARSER_SHELL:
                if (check_flags(c, in) < 0)
                        break;
                if (in->n_args == 0)
                        fail(c, in->pos, "SHELL requires at least one argument");
                else if (!in->json)
                        fail(c, in->pos, "SHELL requires a JSON array");
                break;
        case PARSER_HEALTHCHECK:
                check_health(c, in);
                break;
        case PARSER_ONBUILD:
                check_onbuild(c, in);
                break;
        }
}

/* ---- heredocs ---- */

static bool has_heredocs(const struct parser_instr *in)
{
        return in && (in->kind == PARSER_RUN || in->kind == PARSER_COPY || in->kind == PARSER_ADD);
}

/* Reads the bodies of the heredocs the line opens; they follow it in order. */
static void read_heredocs(struct ctx *c, struct parser_instr *in)
{
        struct parser_instr *target = in->kind == PARSER_ONBUILD ? in->sub : in;
        struct parser_heredoc_word *words = NULL;
        size_t n, i;

        if (!has_heredocs(target) || c->json_like || !memmem(L(c), c->line.len, "<<", 2))
                return;
        n = parser_heredoc_words(L(c), 0, c->line.len, &words);
        for (i = 0; i < n; i++) {
                struct kbuf content = KBUF_INIT;
                unsigned first = c->lx.line + 1;
                struct parser_heredoc *h;

                kbuf_puts(&content, "");
                if (!parser_lexer_heredoc(&c->lx, words[i].name, words[i].name_len, words[i].chomp,
                                          &content)) {
                        struct parser_pos at = pos_at(c, words[i].off);

                        kbuf_release(&content);
                        c->failed = true;
                        parser_file_diag(c->f, PARSER_ERROR, in->pos, "Syntax",
                                         "unterminated heredoc '%s' started at %u:%u",
                                         words[i].name, at.line, at.col);
                        break;
                }
                target->heredocs = parser_grow(target->heredocs, target->n_heredocs,
                                               sizeof(*target->heredocs));
                h = &target->heredocs[target->n_heredocs++];
                h->name = words[i].name;
                words[i].name = NULL;
                h->content = kbuf_detach(&content);
                h->chomp = words[i].chomp;
                h->expand = words[i].expand;
                h->line = first;
        }
        for (i = 0; i < n; i++)
                free(words[i].name);
        free(words);
}

/* ---- stages ---- */

static void push_instr(struct parser_file *f, struct parser_instr *in)
{
        f->instrs = parser_grow(f->instrs, f->n_instrs, sizeof(*f->instrs));
        f->instrs[f->n_instrs++] = in;
}

static void place(struct ctx *c, struct parser_instr *in)
{
        struct parser_file *f = c->f;
        struct parser_stage *st;

        if (in->kind == PARSER_FROM) {
                c->seen_from = true;
                c->orphan = false;
                push_instr(f, in);
                f->stages = parser_grow(f->stages, f->n_stages, sizeof(*f->stages));
                st = &f->stages[f->n_stages];
                memset(st, 0, sizeof(*st));
                st->index = f->n_stages++;
                st->name = in->stage_name ? kstrdup(in->stage_name) : NULL;
                st->from = in;
                return;
        }
        if (c->orphan) {
                push_instr(f, in);
                return;
        }
        if (f->n_stages == 0) {
                if (in->kind == PARSER_ARG) {
                        push_instr(f, in);
                        f->meta_args =
                                parser_grow(f->meta_args, f->n_meta_args, sizeof(*f->meta_args));
                        f->meta_args[f->n_meta_args++] = in;
                        return;
                }
                /* Reported in place (so that diagnostics stay nearly sorted), but taken
                 * back at the end if there is no FROM at all: then the one problem is that. */
                c->early = parser_grow(c->early, c->n_early, sizeof(*c->early));
                c->early[c->n_early++] = f->n_diags;
                parser_file_diag(f, PARSER_ERROR, in->pos, "Syntax",
                                 "%s is not allowed before the first FROM (only ARG is)",
                                 parser_kind_name(in->kind));
                parser_instr_free(in);
                return;
        }
        push_instr(f, in);
        st = &f->stages[f->n_stages - 1];
        st->instrs = parser_grow(st->instrs, st->n_instrs, sizeof(*st->instrs));
        st->instrs[st->n_instrs++] = in;
}

/* Removes the diagnostics at the indices idx (ascending). */
static void drop_diags(struct parser_file *f, const size_t *idx, size_t n)
{
        size_t out = 0, k = 0;

        for (size_t i = 0; i < f->n_diags; i++) {
                if (k < n && idx[k] == i) {
                        free(f->diags[i].rule);
                        free(f->diags[i].msg);
                        k++;
                        continue;
                }
                f->diags[out++] = f->diags[i];
        }
        f->n_diags = out;
}

struct parser_file *parser_parse_all(const char *name, const char *data, size_t len)
{
        struct parser_file *f = kcalloc(1, sizeof(*f));
        struct ctx c = {.f = f};

        f->name = kstrdup(name);
        parser_lexer_init(&c.lx, f, data ? data : "", data ? len : 0);
        while (parser_lexer_next(&c.lx, &c.line)) {
                struct parser_instr *in;

                c.failed = false;
                c.json_like = false;
                free(c.health_type);
                c.health_type = NULL;
                if (c.line.empty_line)
                        parser_file_diag(f, PARSER_WARNING,
                                         (struct parser_pos){c.line.empty_line, 1},
                                         "NoEmptyContinuation", "empty continuation line");
                in = parse_line(&c, 0, c.line.len, false);
                check_instr(&c, in);
                read_heredocs(&c, in);
                in->end_line = c.lx.line;
                if (in->sub)
                        in->sub->end_line = c.lx.line;
                if (c.failed) {
                        if (in->kind == PARSER_FROM) {
                                c.seen_from = true;
                                c.orphan = true;
                        }
                        parser_instr_free(in);
                        continue;
                }
                place(&c, in);
        }
        if (!c.seen_from) {
                drop_diags(f, c.early, c.n_early);
                parser_file_diag(f, PARSER_ERROR, (struct parser_pos){1, 1}, "NoFromInstruction",
                                 "no FROM instruction");
        }
        free(c.early);
        free(c.health_type);
        parser_line_release(&c.line);
        parser_file_sort_diags(f);
        return f;
}
