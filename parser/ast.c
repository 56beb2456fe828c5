/* SPDX-License-Identifier: Apache-2.0 */
/* The AST's small shared pieces: names, lookups, diagnostics and freeing. */
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
#include "common/banned.h"

static const char *const kind_names[PARSER_KIND_COUNT] = {
        [PARSER_UNKNOWN] = "UNKNOWN", [PARSER_ADD] = "ADD",
        [PARSER_ARG] = "ARG",         [PARSER_CMD] = "CMD",
        [PARSER_COPY] = "COPY",       [PARSER_ENTRYPOINT] = "ENTRYPOINT",
        [PARSER_ENV] = "ENV",         [PARSER_EXPOSE] = "EXPOSE",
        [PARSER_FROM] = "FROM",       [PARSER_HEALTHCHECK] = "HEALTHCHECK",
        [PARSER_LABEL] = "LABEL",     [PARSER_MAINTAINER] = "MAINTAINER",
        [PARSER_ONBUILD] = "ONBUILD", [PARSER_RUN] = "RUN",
        [PARSER_SHELL] = "SHELL",     [PARSER_STOPSIGNAL] = "STOPSIGNAL",
        [PARSER_USER] = "USER",       [PARSER_VOLUME] = "VOLUME",
        [PARSER_WORKDIR] = "WORKDIR",
};

const char *parser_kind_name(enum parser_kind kind)
{
        if ((unsigned)kind >= PARSER_KIND_COUNT)
                return "UNKNOWN";
        return kind_names[kind];
}

enum parser_kind parser_kind_from_name(const char *name)
{
        for (unsigned k = PARSER_UNKNOWN + 1; k < PARSER_KIND_COUNT; k++)
                if (strcasecmp(name, kind_names[k]) == 0)
                        return (enum parser_kind)k;
        return PARSER_UNKNOWN;
}

const char *parser_mount_type_name(enum parser_mount_type type)
{
        switch (type) {
        case PARSER_MOUNT_BIND:
                return "bind";
        case PARSER_MOUNT_CACHE:
                return "cache";
        case PARSER_MOUNT_TMPFS:
                return "tmpfs";
        case PARSER_MOUNT_SECRET:
                return "secret";
        case PARSER_MOUNT_SSH:
                return "ssh";
        }
        return "unknown";
}

const struct parser_flag *parser_instr_flag(const struct parser_instr *in, const char *name)
{
        const struct parser_flag *found = NULL;

        /* The last occurrence wins, as with repeated command-line flags. */
        for (size_t i = 0; i < in->n_flags; i++)
                if (strcmp(in->flags[i].name, name) == 0)
                        found = &in->flags[i];
        return found;
}

void parser_file_diag(struct parser_file *f, enum parser_severity severity, struct parser_pos pos,
                      const char *rule, const char *fmt, ...)
{
        struct parser_diag *d;
        struct kbuf msg = KBUF_INIT;
        va_list ap;

        va_start(ap, fmt);
        kbuf_vprintf(&msg, fmt, ap);
        va_end(ap);
        f->diags = kreallocarray(f->diags, f->n_diags + 1, sizeof(*f->diags));
        d = &f->diags[f->n_diags++];
        d->severity = severity;
        d->pos = pos;
        d->rule = kstrdup(rule);
        d->msg = kbuf_detach(&msg);
}

size_t parser_file_count(const struct parser_file *f, enum parser_severity severity)
{
        size_t n = 0;

        for (size_t i = 0; i < f->n_diags; i++)
                if (f->diags[i].severity == severity)
                        n++;
        return n;
}

void parser_file_sort_diags(struct parser_file *f)
{
        /* Insertion sort: stable, and the lists are short. */
        for (size_t i = 1; i < f->n_diags; i++) {
                struct parser_diag d = f->diags[i];
                size_t j = i;

                while (j > 0 && (f->diags[j - 1].pos.line > d.pos.line ||
                                 (f->diags[j - 1].pos.line == d.pos.line &&
                                  f->diags[j - 1].pos.col > d.pos.col))) {
                        f->diags[j] = f->diags[j - 1];
                        j--;
                }
                f->diags[j] = d;
        }
}

const struct parser_stage *parser_file_stage(const struct parser_file *f, const char *name)
{
        char *end = NULL;
        unsigned long idx;

        for (size_t i = 0; i < f->n_stages; i++)
                if (f->stages[i].name && strcasecmp(f->stages[i].name, name) == 0)
                        return &f->stages[i];
        if (name[0] >= '0' && name[0] <= '9') {
                idx = strtoul(name, &end, 10);
                if (*end == '\0' && idx < f->n_stages)
                        return &f->stages[idx];
        }
        return NULL;
}

static void free_strv(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static void instr_free(struct parser_instr *in)
{
        if (!in)
                return;
        free(in->keyword);
        free(in->original);
        for (size_t i = 0; i < in->n_flags; i++) {
                free(in->flags[i].name);
                free(in->flags[i].value);
        }
        free(in->flags);
        free_strv(in->args, in->n_args);
        for (size_t i = 0; i < in->n_kvs; i++) {
                free(in->kvs[i].key);
                free(in->kvs[i].value);
        }
        free(in->kvs);
        for (size_t i = 0; i < in->n_heredocs; i++) {
                free(in->heredocs[i].name);
                free(in->heredocs[i].content);
        }
        free(in->heredocs);
        for (size_t i = 0; i < in->n_mounts; i++)
                parser_mount_release(&in->mounts[i]);
        free(in->mounts);
        free(in->stage_name);
        instr_free(in->sub);
        free(in);
}

void parser_instr_free(struct parser_instr *in)
{
        instr_free(in);
}

void parser_file_free(struct parser_file *f)
{
        if (!f)
                return;
        free(f->name);
        for (size_t i = 0; i < f->n_directives; i++) {
                free(f->directives[i].name);
                free(f->directives[i].value);
        }
        free(f->directives);
        free(f->meta_args);
        for (size_t i = 0; i < f->n_stages; i++) {
                free(f->stages[i].name);
                free(f->stages[i].instrs);
        }
        free(f->stages);
        for (size_t i = 0; i < f->n_instrs; i++)
                instr_free(f->instrs[i]);
        free(f->instrs);
        for (size_t i = 0; i < f->n_diags; i++) {
                free(f->diags[i].rule);
                free(f->diags[i].msg);
        }
        free(f->diags);
        free(f);
}

struct parser_file *parser_parse(const char *name, const char *data, size_t len, struct kerr **err)
{
        struct parser_file *f = parser_parse_all(name, data, len);

        for (size_t i = 0; i < f->n_diags; i++) {
                const struct parser_diag *d = &f->diags[i];

                if (d->severity != PARSER_ERROR)
                        continue;
                kerr_set_at(err, KERR_PARSE, name, d->pos.line, d->pos.col, "%s", d->msg);
                parser_file_free(f);
                return NULL;
        }
        return f;
}

unsigned parser_edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        unsigned *row;
        unsigned r;

        /* Names compared here are short; long inputs are simply "far". */
        if (la > 64 || lb > 64)
                return 255;
        row = kcalloc(lb + 1, sizeof(*row));
        for (size_t j = 0; j <= lb; j++)
                row[j] = (unsigned)j;
        for (size_t i = 1; i <= la; i++) {
                unsigned diag = row[0];

                row[0] = (unsigned)i;
                for (size_t j = 1; j <= lb; j++) {
                        unsigned up = row[j];
                        unsigned cost =
                                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1])
                                        ? 0
                                        : 1;
                        unsigned best = diag + cost;

                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        r = row[lb];
        free(row);
        return r > 255 ? 255 : r;
}
