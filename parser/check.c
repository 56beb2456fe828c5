/* SPDX-License-Identifier: Apache-2.0 */
/* The linter behind `kiln check`. Rules are named as BuildKit names its checks where one
 * exists, so a "# check=skip=…" directive written for docker means the same here. */
#include "parser/parser.h"
#include "parser/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/banned.h"

/* Rules the parser itself reports; a check directive cannot silence these. */
static bool rule_is_syntax(const char *rule)
{
        return strcmp(rule, "Syntax") == 0 || strcmp(rule, "UnknownInstruction") == 0 ||
               strcmp(rule, "NoFromInstruction") == 0;
}

static void warn(struct parser_file *f, struct parser_pos pos, const char *rule, const char *msg)
{
        parser_file_diag(f, PARSER_WARNING, pos, rule, "%s", msg);
}

/* ---- stages ---- */

static void check_stage_names(struct parser_file *f)
{
        for (size_t i = 0; i < f->n_stages; i++) {
                const struct parser_stage *s = &f->stages[i];

                if (!s->name)
                        continue;
                if (strcmp(s->name, "scratch") == 0 || strcmp(s->name, "context") == 0)
                        parser_file_diag(f, PARSER_WARNING, s->from->pos, "ReservedStageName",
                                         "stage name '%s' is reserved", s->name);
                for (size_t j = 0; j < i; j++) {
                        const struct parser_stage *t = &f->stages[j];

                        if (t->name && strcmp(t->name, s->name) == 0) {
                                parser_file_diag(f, PARSER_ERROR, s->from->pos,
                                                 "DuplicateStageName",
                                                 "duplicate stage name '%s' (first defined at "
                                                 "%u:%u)",
                                                 s->name, t->from->pos.line, t->from->pos.col);
                                break;
                        }
                }
        }
}

static bool all_digits(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char)*s))
                        return false;
        return true;
}

/* A --from value (or a mount's from=) used in stage `cur`. Images are allowed, so only
 * values that can only mean a stage are judged: an index, a stage defined at or after this
 * one, or a plain name one typo away from a stage's name. */
static void check_from_ref(struct parser_file *f, size_t cur, const char *ref,
                           struct parser_pos pos)
{
        const struct parser_stage *best = NULL;
        unsigned best_d = 255;

        if (strchr(ref, '$'))
                return; /* decided at build time */
        if (all_digits(ref)) {
                unsigned long idx = strtoul(ref, NULL, 10);

                if (strlen(ref) > 9 || idx >= cur)
                        parser_file_diag(f, PARSER_ERROR, pos, "UndefinedStage",
                                         "'--from=%s' names no earlier stage (stage %zu has "
                                         "stages 0 to %zu before it)",
                                         ref, cur, cur ? cur - 1 : 0);
                return;
        }
        for (size_t i = 0; i < f->n_stages; i++) {
                const struct parser_stage *s = &f->stages[i];

                if (!s->name || strcasecmp(s->name, ref) != 0)
                        continue;
                if (i >= cur)
                        parser_file_diag(f, PARSER_ERROR, pos, "UndefinedStage",
                                         "'--from=%s' refers to stage '%s' which is defined at "
                                         "%u:%u, not before this instruction",
                                         ref, s->name, s->from->pos.line, s->from->pos.col);
                return;
        }
        if (strpbrk(ref, "/:@."))
                return; /* an image reference */
        for (size_t i = 0; i < cur && i < f->n_stages; i++) {
                const struct parser_stage *s = &f->stages[i];
                unsigned d;

                if (!s->name)
                        continue;
                d = parser_edit_distance(ref, s->name);
                if (d < best_d) {
                        best_d = d;
                        best = s;
                }
        }
        if (best && best_d <= 2)
                parser_file_diag(f, PARSER_ERROR, pos, "UndefinedStage",
                                 "'--from=%s' names no stage (did you mean '%s'?)", ref,
                                 best->name);
}

static void check_copy_from(struct parser_file *f, size_t cur, const struct parser_instr *in)
{
        const struct parser_flag *fl;

        if (in->kind == PARSER_COPY || in->kind == PARSER_ADD) {
                fl = parser_instr_flag(in, "from");
                if (fl && fl->value)
                        check_from_ref(f, cur, fl->value, fl->pos);
        }
        for (size_t i = 0; i < in->n_mounts; i++)
                if (in->mounts[i].from)
                        check_from_ref(f, cur, in->mounts[i].from, in->mounts[i].pos);
}

/* ---- per-stage instruction rules ---- */

static void check_repeated(struct parser_file *f, const struct parser_stage *s)
{
        static const enum parser_kind once[] = {PARSER_CMD, PARSER_ENTRYPOINT, PARSER_HEALTHCHECK};

        for (size_t k = 0; k < sizeof(once) / sizeof(once[0]); k++) {
                const struct parser_instr *first = NULL;

                for (size_t i = 0; i < s->n_instrs; i++) {
                        const struct parser_instr *in = s->instrs[i];

                        if (in->kind != once[k])
                                continue;
                        if (!first) {
                                first = in;
                                continue;
                        }
                        parser_file_diag(f, PARSER_ERROR, in->pos, "MultipleInstructionsDisallowed",
                                         "%s given more than once in stage %zu (first at %u:%u); "
                                         "only the last one takes effect",
                                         parser_kind_name(in->kind), s->index, first->pos.line,
                                         first->pos.col);
                }
        }
}

static void check_json_args(struct parser_file *f, const struct parser_instr *in)
{
        if ((in->kind == PARSER_CMD || in->kind == PARSER_ENTRYPOINT) && !in->json)
                parser_file_diag(f, PARSER_WARNING, in->pos, "JSONArgsRecommended",
                                 "%s in shell form runs under /bin/sh -c, which does not pass "
                                 "signals on; use the JSON form %s [\"…\"]",
                                 parser_kind_name(in->kind), parser_kind_name(in->kind));
}

static void check_workdir(struct parser_file *f, const struct parser_instr *in, bool *absolute)
{
        const char *dir;

        if (in->kind != PARSER_WORKDIR || in->n_args == 0)
                return;
        dir = in->args[0];
        if (dir[0] == '/' || dir[0] == '$' || (isalpha((unsigned char)dir[0]) && dir[1] == ':')) {
                *absolute = true;
                return;
        }
        if (!*absolute)
                parser_file_diag(f, PARSER_WARNING, in->pos, "WorkdirRelativePath",
                                 "relative WORKDIR '%s' depends on the base image's working "
                                 "directory; set an absolute one first",
                                 dir);
}

static bool name_looks_secret(const char *name)
{
        static const char *const words[] = {"apikey", "auth",     "credential", "credentials",
                                            "key",    "password", "pass",       "pword",
                                            "passwd", "secret",   "token"};
        bool secret = false, is_public = false;
        const char *p = name;

        while (*p) {
                size_t n = strcspn(p, "_");

                for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                        if (strlen(words[i]) == n && strncasecmp(p, words[i], n) == 0)
                                secret = true;
                if (n == 6 && strncasecmp(p, "public", 6) == 0)
                        is_public = true;
                p += n;
                if (*p == '_')
                        p++;
        }
        return secret && !is_public;
}

static void check_secrets(struct parser_file *f, const struct parser_instr *in)
{
        if (in->kind != PARSER_ARG && in->kind != PARSER_ENV)
                return;
        for (size_t i = 0; i < in->n_kvs; i++)
                if (name_looks_secret(in->kvs[i].key))
                        parser_file_diag(f, PARSER_WARNING, in->kvs[i].pos, "SecretsUsedInArgOrEnv",
                                         "%s '%s' looks like a secret: its value stays in the "
                                         "image; use RUN --mount=type=secret instead",
                                         parser_kind_name(in->kind), in->kvs[i].key);
}

/* ---- variables: ARG used before it is declared ---- */

struct names {
        char **v;
        size_t n;
};

static bool names_has(const struct names *ns, const char *name)
{
        for (size_t i = 0; i < ns->n; i++)
                if (strcmp(ns->v[i], name) == 0)
                        return true;
        return false;
}

static void names_add(struct names *ns, const char *name)
{
        if (names_has(ns, name))
                return;
        ns->v = kreallocarray(ns->v, ns->n + 1, sizeof(*ns->v));
        ns->v[ns->n++] = kstrdup(name);
}

static void names_release(struct names *ns)
{
        for (size_t i = 0; i < ns->n; i++)
                free(ns->v[i]);
        free(ns->v);
        ns->v = NULL;
        ns->n = 0;
}

/* Collects the variable names that s refers to; text that does not lex (shell syntax
 * beyond docker's word rules) contributes nothing. */
static void refs_of(const char *s, char escape, struct names *out)
{
        char **v = NULL;
        size_t n = 0;
        struct kerr *err = NULL;

        if (!s || !strchr(s, '$'))
                return;
        if (parser_expand_refs(s, escape, &v, &n, &err) < 0) {
                kerr_free(err);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                names_add(out, v[i]);
                free(v[i]);
        }
        free(v);
}

static void instr_refs(const struct parser_instr *in, char escape, struct names *out)
{
        bool shell_run = in->kind == PARSER_RUN && !in->json;

        if (!parser_kind_expands(in->kind) && !shell_run)
                return;
        for (size_t i = 0; i < in->n_args; i++)
                refs_of(in->args[i], escape, out);
        for (size_t i = 0; i < in->n_kvs; i++) {
                if (in->kind == PARSER_LABEL)
                        refs_of(in->kvs[i].key, escape, out);
                refs_of(in->kvs[i].value, escape, out);
        }
        for (size_t i = 0; i < in->n_flags; i++)
                if (in->flags[i].value && strcmp(in->flags[i].name, "mount") != 0)
                        refs_of(in->flags[i].value, escape, out);
}

/* Names an instruction declares: ARG names and ENV keys. */
static void instr_decls(const struct parser_instr *in, struct names *out)
{
        if (in->kind != PARSER_ARG && in->kind != PARSER_ENV)
                return;
        for (size_t i = 0; i < in->n_kvs; i++)
                names_add(out, in->kvs[i].key);
}

static const struct parser_instr *later_arg(struct parser_instr **instrs, size_t n, size_t from,
                                            const char *name)
{
        for (size_t i = from; i < n; i++) {
                const struct parser_instr *in = instrs[i];

                if (in->kind != PARSER_ARG)
                        continue;
                for (size_t k = 0; k < in->n_kvs; k++)
                        if (strcmp(in->kvs[k].key, name) == 0)
                                return in;
        }
        return NULL;
}

static void report_early_use(struct parser_file *f, const struct parser_instr *in, const char *name,
                             const struct parser_instr *decl)
{
        parser_file_diag(f, PARSER_ERROR, in->pos, "ArgBeforeDeclared",
                         "'$%s' is used before 'ARG %s' declares it at %u:%u", name, name,
                         decl->pos.line, decl->pos.col);
}

static bool is_predefined_arg(const char *name)
{
        static const char *const predefined[] = {
                "TARGETPLATFORM", "TARGETOS",    "TARGETARCH",   "TARGETVARIANT", "BUILDPLATFORM",
                "BUILDOS",        "BUILDARCH",   "BUILDVARIANT", "HTTP_PROXY",    "http_proxy",
                "HTTPS_PROXY",    "https_proxy", "FTP_PROXY",    "ftp_proxy",     "NO_PROXY",
                "no_proxy",       "ALL_PROXY",   "all_proxy",
        };

        for (size_t i = 0; i < sizeof(predefined) / sizeof(predefined[0]); i++)
                if (strcmp(predefined[i], name) == 0)
                        return true;
        return false;
}

/* Within one scope (the global ARGs, or one stage's instructions), a name used before the
 * ARG that declares it later in the same scope is an error: it expands to nothing there. */
static void check_var_order(struct parser_file *f, struct parser_instr **instrs, size_t n,
                            struct names *declared)
{
        for (size_t i = 0; i < n; i++) {
                const struct parser_instr *in = instrs[i];
                struct names refs = {0};

                instr_refs(in, f->escape, &refs);
                for (size_t r = 0; r < refs.n; r++) {
                        const struct parser_instr *decl;

                        if (names_has(declared, refs.v[r]))
                                continue;
                        decl = later_arg(instrs, n, i + 1, refs.v[r]);
                        if (decl)
                                report_early_use(f, in, refs.v[r], decl);
                }
                names_release(&refs);
                instr_decls(in, declared);
        }
}

static void check_meta_args(struct parser_file *f)
{
        struct names declared = {0};

        check_var_order(f, f->meta_args, f->n_meta_args, &declared);
        /* FROM sees only the global ARGs (and the predefined platform ARGs). */
        for (size_t s = 0; s < f->n_stages; s++) {
                const struct parser_instr *from = f->stages[s].from;
                struct names refs = {0};

                instr_refs(from, f->escape, &refs);
                for (size_t r = 0; r < refs.n; r++) {
                        if (names_has(&declared, refs.v[r]) || is_predefined_arg(refs.v[r]))
                                continue;
                        parser_file_diag(f, PARSER_WARNING, from->pos, "UndefinedArgInFrom",
                                         "FROM uses '$%s', which no ARG before the first FROM "
                                         "declares",
                                         refs.v[r]);
                }
                names_release(&refs);
        }
        names_release(&declared);
}

static void check_stage_vars(struct parser_file *f, const struct parser_stage *s)
{
        struct names declared = {0};

        check_var_order(f, s->instrs, s->n_instrs, &declared);
        names_release(&declared);
}

/* ---- keyword casing ---- */

enum casing { CASE_UPPER, CASE_LOWER, CASE_MIXED };

static enum casing casing_of(const char *s)
{
        bool up = false, low = false;

        for (; *s; s++) {
                if (isupper((unsigned char)*s))
                        up = true;
                else if (islower((unsigned char)*s))
                        low = true;
        }
        if (up && low)
                return CASE_MIXED;
        return low ? CASE_LOWER : CASE_UPPER;
}

static void check_casing(struct parser_file *f)
{
        size_t upper = 0, lower = 0;
        enum casing majority;

        for (size_t i = 0; i < f->n_instrs; i++) {
                enum casing c = casing_of(f->instrs[i]->keyword);

                if (c == CASE_UPPER)
                        upper++;
                else if (c == CASE_LOWER)
                        lower++;
        }
        majority = lower > upper ? CASE_LOWER : CASE_UPPER;
        for (size_t i = 0; i < f->n_instrs; i++) {
                const struct parser_instr *in = f->instrs[i];
                char want[16] = "";
                const char *name = parser_kind_name(in->kind);

                if (casing_of(in->keyword) == majority)
                        continue;
                for (size_t k = 0; name[k] && k + 1 < sizeof(want); k++)
                        want[k] = majority == CASE_UPPER ? name[k] : (char)tolower(name[k]);
                parser_file_diag(f, PARSER_WARNING, in->pos, "ConsistentInstructionCasing",
                                 "'%s' should be written '%s' like the majority of instructions "
                                 "(%s case)",
                                 in->keyword, want, majority == CASE_UPPER ? "upper" : "lower");
        }
}

/* ---- the check directive ---- */

struct check_config {
        bool skip_all;
        bool error;
        struct names skip;
};

static void parse_check_directive(const struct parser_file *f, struct check_config *cfg)
{
        for (size_t i = 0; i < f->n_directives; i++) {
                const char *p;

                if (strcmp(f->directives[i].name, "check") != 0)
                        continue;
                p = f->directives[i].value;
                while (*p) {
                        size_t n = strcspn(p, ";");
                        char *part = kstrndup(p, n);
                        char *eq = strchr(part, '=');
                        char *key = part, *val = eq ? eq + 1 : NULL;

                        if (eq)
                                *eq = '\0';
                        while (isspace((unsigned char)*key))
                                key++;
                        for (char *e = key + strlen(key); e > key && isspace((unsigned char)e[-1]);)
                                *--e = '\0';
                        if (val && strcmp(key, "skip") == 0) {
                                char *q = val;

                                while (*q) {
                                        size_t m = strcspn(q, ",");
                                        char *rule = kstrndup(q, m);
                                        char *r = rule;

                                        while (isspace((unsigned char)*r))
                                                r++;
                                        for (char *e = r + strlen(r);
                                             e > r && isspace((unsigned char)e[-1]);)
                                                *--e = '\0';
                                        if (strcasecmp(r, "all") == 0)
                                                cfg->skip_all = true;
                                        else if (*r)
                                                names_add(&cfg->skip, r);
                                        free(rule);
                                        q += m;
                                        if (*q == ',')
                                                q++;
                                }
                        } else if (val && strcmp(key, "error") == 0) {
                                cfg->error = strcasecmp(val, "true") == 0;
                        }
                        free(part);
                        p += n;
                        if (*p == ';')
                                p++;
                }
        }
}

static void apply_check_config(struct parser_file *f, const struct check_config *cfg)
{
        size_t out = 0;

        for (size_t i = 0; i < f->n_diags; i++) {
                struct parser_diag *d = &f->diags[i];
                bool syntax = rule_is_syntax(d->rule);

                if (!syntax && (cfg->skip_all || names_has(&cfg->skip, d->rule))) {
                        free(d->rule);
                        free(d->msg);
                        continue;
                }
                if (!syntax && cfg->error)
                        d->severity = PARSER_ERROR;
                f->diags[out++] = *d;
        }
        f->n_diags = out;
}

void parser_lint(struct parser_file *f)
{
        struct check_config cfg = {0};

        check_stage_names(f);
        check_meta_args(f);
        for (size_t s = 0; s < f->n_stages; s++) {
                const struct parser_stage *st = &f->stages[s];
                bool absolute_workdir = false;

                check_repeated(f, st);
                check_stage_vars(f, st);
                for (size_t i = 0; i < st->n_instrs; i++) {
                        const struct parser_instr *in = st->instrs[i];

                        check_copy_from(f, s, in);
                        check_json_args(f, in);
                        check_workdir(f, in, &absolute_workdir);
                        check_secrets(f, in);
                        if (in->kind == PARSER_MAINTAINER)
                                warn(f, in->pos, "MaintainerDeprecated",
                                     "MAINTAINER is deprecated; use LABEL "
                                     "org.opencontainers.image.authors=\"…\"");
                }
        }
        for (size_t i = 0; i < f->n_meta_args; i++)
                check_secrets(f, f->meta_args[i]);
        check_casing(f);
        parse_check_directive(f, &cfg);
        apply_check_config(f, &cfg);
        names_release(&cfg.skip);
        parser_file_sort_diags(f);
}
