/* SPDX-License-Identifier: Apache-2.0 */
/* The parsed file as JSON, for `kiln check --format json` and for tools. Fields that an
 * instruction does not have are left out, so the output stays small and stable. */
#include "parser/parser.h"
#include "parser/internal.h"

#include "common/buf.h"
#include "common/kjson.h"
#include "common/banned.h"

static void write_pos(struct kjson_writer *w, struct parser_pos pos)
{
        kjson_kv_int(w, "line", pos.line);
        kjson_kv_int(w, "col", pos.col);
}

static void write_strv(struct kjson_writer *w, const char *key, char **v, size_t n)
{
        kjson_key(w, key);
        kjson_begin_array(w);
        for (size_t i = 0; i < n; i++)
                kjson_string(w, v[i]);
        kjson_end_array(w);
}

static void write_flags(struct kjson_writer *w, const struct parser_instr *in)
{
        if (!in->n_flags)
                return;
        kjson_key(w, "flags");
        kjson_begin_array(w);
        for (size_t i = 0; i < in->n_flags; i++) {
                const struct parser_flag *fl = &in->flags[i];

                kjson_begin_object(w);
                kjson_kv_string(w, "name", fl->name);
                if (fl->value)
                        kjson_kv_string(w, "value", fl->value);
                write_pos(w, fl->pos);
                kjson_end_object(w);
        }
        kjson_end_array(w);
}

static void write_kvs(struct kjson_writer *w, const struct parser_instr *in)
{
        kjson_key(w, "pairs");
        kjson_begin_array(w);
        for (size_t i = 0; i < in->n_kvs; i++) {
                const struct parser_kv *kv = &in->kvs[i];

                kjson_begin_object(w);
                kjson_kv_string(w, "key", kv->key);
                if (kv->value)
                        kjson_kv_string(w, "value", kv->value);
                write_pos(w, kv->pos);
                kjson_end_object(w);
        }
        kjson_end_array(w);
}

static void write_heredocs(struct kjson_writer *w, const struct parser_instr *in)
{
        if (!in->n_heredocs)
                return;
        kjson_key(w, "heredocs");
        kjson_begin_array(w);
        for (size_t i = 0; i < in->n_heredocs; i++) {
                const struct parser_heredoc *h = &in->heredocs[i];

                kjson_begin_object(w);
                kjson_kv_string(w, "name", h->name);
                kjson_kv_bool(w, "chomp", h->chomp);
                kjson_kv_bool(w, "expand", h->expand);
                kjson_kv_int(w, "line", h->line);
                kjson_kv_string(w, "content", h->content);
                kjson_end_object(w);
        }
        kjson_end_array(w);
}

static void write_opt_str(struct kjson_writer *w, const char *key, const char *v)
{
        if (v)
                kjson_kv_string(w, key, v);
}

static void write_opt_num(struct kjson_writer *w, const char *key, long long v)
{
        if (v >= 0)
                kjson_kv_int(w, key, v);
}

static void write_mounts(struct kjson_writer *w, const struct parser_instr *in)
{
        if (!in->n_mounts)
                return;
        kjson_key(w, "mounts");
        kjson_begin_array(w);
        for (size_t i = 0; i < in->n_mounts; i++) {
                const struct parser_mount *m = &in->mounts[i];

                kjson_begin_object(w);
                kjson_kv_string(w, "type", parser_mount_type_name(m->type));
                write_opt_str(w, "target", m->target);
                write_opt_str(w, "source", m->source);
                write_opt_str(w, "from", m->from);
                write_opt_str(w, "id", m->id);
                write_opt_str(w, "sharing", m->sharing);
                write_opt_str(w, "env", m->env);
                kjson_kv_bool(w, "readonly", m->readonly);
                if (m->type == PARSER_MOUNT_SECRET || m->type == PARSER_MOUNT_SSH)
                        kjson_kv_bool(w, "required", m->required);
                write_opt_num(w, "mode", m->mode);
                write_opt_num(w, "uid", m->uid);
                write_opt_num(w, "gid", m->gid);
                write_opt_num(w, "size", m->size);
                write_pos(w, m->pos);
                kjson_end_object(w);
        }
        kjson_end_array(w);
}

static void write_health(struct kjson_writer *w, const struct parser_instr *in)
{
        const struct parser_health *h = &in->health;

        kjson_key(w, "healthcheck");
        kjson_begin_object(w);
        kjson_kv_bool(w, "none", h->none);
        write_opt_num(w, "interval_ns", h->interval);
        write_opt_num(w, "timeout_ns", h->timeout);
        write_opt_num(w, "start_period_ns", h->start_period);
        write_opt_num(w, "start_interval_ns", h->start_interval);
        write_opt_num(w, "retries", h->retries);
        kjson_end_object(w);
}

/* Instructions whose arguments may be written either as a JSON array or as plain text. */
static bool has_form(enum parser_kind kind)
{
        switch (kind) {
        case PARSER_RUN:
        case PARSER_CMD:
        case PARSER_ENTRYPOINT:
        case PARSER_SHELL:
        case PARSER_HEALTHCHECK:
        case PARSER_COPY:
        case PARSER_ADD:
        case PARSER_VOLUME:
                return true;
        default:
                return false;
        }
}

static void write_instr(struct kjson_writer *w, const struct parser_instr *in)
{
        kjson_begin_object(w);
        kjson_kv_string(w, "instruction", parser_kind_name(in->kind));
        kjson_kv_string(w, "keyword", in->keyword);
        write_pos(w, in->pos);
        kjson_kv_int(w, "end_line", in->end_line);
        write_flags(w, in);
        if (has_form(in->kind) && !(in->kind == PARSER_HEALTHCHECK && in->health.none))
                kjson_kv_string(w, "form", in->json ? "exec" : "shell");
        switch (in->kind) {
        case PARSER_ENV:
        case PARSER_LABEL:
        case PARSER_ARG:
                write_kvs(w, in);
                break;
        case PARSER_ONBUILD:
                if (in->sub) {
                        kjson_key(w, "trigger");
                        write_instr(w, in->sub);
                }
                break;
        default:
                write_strv(w, "args", in->args, in->n_args);
                break;
        }
        if (in->kind == PARSER_FROM && in->stage_name)
                kjson_kv_string(w, "stage_name", in->stage_name);
        if (in->kind == PARSER_HEALTHCHECK)
                write_health(w, in);
        write_heredocs(w, in);
        write_mounts(w, in);
        kjson_end_object(w);
}

void parser_file_to_json(const struct parser_file *f, struct kbuf *out, bool pretty)
{
        struct kjson_writer w;
        char esc[2] = {f->escape, '\0'};

        kjson_writer_init(&w, out, pretty);
        kjson_begin_object(&w);
        kjson_kv_string(&w, "file", f->name);
        kjson_kv_string(&w, "escape", esc);

        kjson_key(&w, "directives");
        kjson_begin_array(&w);
        for (size_t i = 0; i < f->n_directives; i++) {
                kjson_begin_object(&w);
                kjson_kv_string(&w, "name", f->directives[i].name);
                kjson_kv_string(&w, "value", f->directives[i].value);
                write_pos(&w, f->directives[i].pos);
                kjson_end_object(&w);
        }
        kjson_end_array(&w);

        kjson_key(&w, "args");
        kjson_begin_array(&w);
        for (size_t i = 0; i < f->n_meta_args; i++)
                write_instr(&w, f->meta_args[i]);
        kjson_end_array(&w);

        kjson_key(&w, "stages");
        kjson_begin_array(&w);
        for (size_t i = 0; i < f->n_stages; i++) {
                const struct parser_stage *s = &f->stages[i];

                kjson_begin_object(&w);
                kjson_kv_int(&w, "index", (long long)s->index);
                kjson_kv_string(&w, "name", s->name);
                kjson_key(&w, "from");
                write_instr(&w, s->from);
                kjson_key(&w, "instructions");
                kjson_begin_array(&w);
                for (size_t j = 0; j < s->n_instrs; j++)
                        write_instr(&w, s->instrs[j]);
                kjson_end_array(&w);
                kjson_end_object(&w);
        }
        kjson_end_array(&w);

        kjson_key(&w, "diagnostics");
        kjson_begin_array(&w);
        for (size_t i = 0; i < f->n_diags; i++) {
                const struct parser_diag *d = &f->diags[i];

                kjson_begin_object(&w);
                kjson_kv_string(&w, "severity", d->severity == PARSER_ERROR ? "error" : "warning");
                write_pos(&w, d->pos);
                kjson_kv_string(&w, "rule", d->rule);
                kjson_kv_string(&w, "message", d->msg);
                kjson_end_object(&w);
        }
        kjson_end_array(&w);
        kjson_end_object(&w);
        kjson_writer_release(&w);
}
