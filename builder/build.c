/* SPDX-License-Identifier: Apache-2.0 */
/* The stage executor: resolves the stage graph of a parsed Containerfile, expands each
 * instruction in the scope docker gives it, applies config instructions to the image
 * config, turns COPY/ADD into layers, and commits the target stage as an image. */
#include "builder/builder.h"
#include "builder/internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "parser/parser.h"
#include "registry/registry.h"
#include "common/banned.h"

/* ---- small string vectors ---- */

struct strv {
        char **v;
        size_t n;
};

static void strv_push(struct strv *sv, const char *s)
{
        sv->v = kreallocarray(sv->v, sv->n + 2, sizeof(*sv->v));
        sv->v[sv->n++] = kstrdup(s);
        sv->v[sv->n] = NULL;
}

static void strv_release(struct strv *sv)
{
        for (size_t i = 0; i < sv->n; i++)
                free(sv->v[i]);
        free(sv->v);
        sv->v = NULL;
        sv->n = 0;
}

/* "NAME=value" entries; setting a name replaces its entry. */
static void vars_set(struct strv *vars, const char *name, const char *value)
{
        size_t nl = strlen(name);
        struct kbuf b = KBUF_INIT;

        kbuf_printf(&b, "%s=%s", name, value);
        for (size_t i = 0; i < vars->n; i++) {
                if (strncmp(vars->v[i], name, nl) == 0 && vars->v[i][nl] == '=') {
                        free(vars->v[i]);
                        vars->v[i] = kbuf_detach(&b);
                        return;
                }
        }
        strv_push(vars, b.data);
        kbuf_release(&b);
}

static const char *vars_get(const struct strv *vars, const char *name)
{
        size_t nl = strlen(name);

        for (size_t i = vars->n; i-- > 0;)
                if (strncmp(vars->v[i], name, nl) == 0 && vars->v[i][nl] == '=')
                        return vars->v[i] + nl + 1;
        return NULL;
}

/* ---- the build ---- */

struct stage_result {
        struct image_config *cfg;
        struct strv chain;        /* chain ids, bottom first */
        char key[KDIGEST_STRLEN]; /* the step cache key of the last step */
        bool built;
};

struct build {
        struct image_store *s;
        const struct builder_opts *o;
        struct parser_file *f;
        struct builder_context *ctx;
        struct strv build_args; /* from --build-arg */
        struct strv meta;       /* global ARGs in effect */
        struct strv platform;   /* TARGETPLATFORM and friends */
        struct stage_result *results;
        bool *deps;  /* deps[i * n_stages + j]: stage i names stage j (FROM, --from) */
        bool worker; /* this process is a worker building one stage (jobs.c) */
        char *created;
        char arch[sizeof(((struct utsname *)0)->machine)];
        size_t stage_no, n_needed;
        bool cache_read;                   /* steps are looked up in the step cache */
        bool cache_write;                  /* steps are keyed and recorded */
        struct image_statcache *statcache; /* of the build context, once a COPY needs it */
        struct builder_key *rec;           /* expansions are recorded here when set */
};

static void progress(struct build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void progress(struct build *b, const char *fmt, ...)
{
        struct kbuf line = KBUF_INIT;
        va_list ap;

        if (!b->o->progress)
                return;
        va_start(ap, fmt);
        kbuf_vprintf(&line, fmt, ap);
        va_end(ap);
        b->o->progress(b->o->progress_ctx, line.data);
        kbuf_release(&line);
}

/* Fails with the instruction's position, as the parser's errors do. */
static int instr_fail(struct build *b, const struct parser_instr *in, struct kerr **err)
{
        _cleanup_free_ char *inner = NULL;
        enum kerr_code code = KERR_INVALID;

        if (err && *err) {
                inner = kerr_format(*err);
                code = (*err)->code;
                kerr_free(*err);
                *err = NULL;
        }
        return kerr_set_at(err, code, b->f->name, in->pos.line, in->pos.col,
                           "building at STEP \"%s\": %s", in->original, inner ? inner : "failed");
}

static const char *go_arch(const char *machine)
{
        static const struct {
                const char *uname, *go;
        } map[] = {
                {"x86_64", "amd64"},    {"aarch64", "arm64"},   {"armv7l", "arm"},
                {"i686", "386"},        {"ppc64le", "ppc64le"}, {"s390x", "s390x"},
                {"riscv64", "riscv64"},
        };

        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (strcmp(map[i].uname, machine) == 0)
                        return map[i].go;
        return machine;
}

static char *format_time(int64_t timestamp)
{
        struct timespec ts;
        struct tm tm;
        char buf[64];
        struct kbuf b = KBUF_INIT;

        if (timestamp >= 0) {
                ts.tv_sec = (time_t)timestamp;
                ts.tv_nsec = 0;
        } else {
                clock_gettime(CLOCK_REALTIME, &ts);
        }
        gmtime_r(&ts.tv_sec, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        kbuf_puts(&b, buf);
        if (ts.tv_nsec)
                kbuf_printf(&b, ".%09ld", ts.tv_nsec);
        kbuf_putc(&b, 'Z');
        return kbuf_detach(&b);
}

static void init_platform(struct build *b)
{
        struct utsname u;
        struct kbuf p = KBUF_INIT;

        if (uname(&u) == 0)
                snprintf(b->arch, sizeof(b->arch), "%s", go_arch(u.machine));
        else
                snprintf(b->arch, sizeof(b->arch), "amd64");
        kbuf_printf(&p, "linux/%s", b->arch);
        vars_set(&b->platform, "TARGETPLATFORM", p.data);
        vars_set(&b->platform, "TARGETOS", "linux");
        vars_set(&b->platform, "TARGETARCH", b->arch);
        vars_set(&b->platform, "TARGETVARIANT", "");
        vars_set(&b->platform, "BUILDPLATFORM", p.data);
        vars_set(&b->platform, "BUILDOS", "linux");
        vars_set(&b->platform, "BUILDARCH", b->arch);
        vars_set(&b->platform, "BUILDVARIANT", "");
        kbuf_release(&p);
}

static int parse_build_args(struct build *b, struct kerr **err)
{
        for (size_t i = 0; i < b->o->n_build_args; i++) {
                const char *a = b->o->build_args[i];
                const char *eq = strchr(a, '=');

                if (eq == a || !*a)
                        return kerr_set(err, 0, KERR_USAGE, "invalid --build-arg '%s'", a);
                if (eq) {
                        char *name = kstrndup(a, (size_t)(eq - a));
                        vars_set(&b->build_args, name, eq + 1);
                        free(name);
                } else if (getenv(a)) {
                        /* "--build-arg K" takes K from the environment, as podman does. */
                        vars_set(&b->build_args, a, getenv(a));
                }
        }
        return 0;
}

/* ---- expansion ---- */

/* The environment an instruction of a stage expands in: its declared ARGs, then its ENV
 * (ENV wins over an ARG of the same name, as docker has it). */
static void stage_env(const struct strv *args, const struct image_config *cfg, struct strv *out)
{
        for (size_t i = 0; i < args->n; i++)
                strv_push(out, args->v[i]);
        for (size_t i = 0; cfg && i < cfg->n_env; i++)
                strv_push(out, cfg->env[i]);
}

/* Expansions are the words of an instruction as it runs, so a step that is being keyed
 * records each result as an input. */
static int expand(const struct build *b, const struct strv *env, const char *word, char **ret,
                  struct kerr **err)
{
        struct parser_env pe = {(const char *const *)env->v, env->n};

        if (parser_expand_word(word, b->f->escape, &pe, ret, err) < 0)
                return -1;
        if (b->rec)
                builder_key_add_value(b->rec, *ret);
        return 0;
}

static int expand_words(const struct build *b, const struct strv *env, const char *s,
                        struct strv *out, struct kerr **err)
{
        struct parser_env pe = {(const char *const *)env->v, env->n};
        char **v = NULL;
        size_t n = 0;

        if (parser_expand_words(s, b->f->escape, &pe, &v, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (b->rec)
                        builder_key_add_value(b->rec, v[i]);
                strv_push(out, v[i]);
                free(v[i]);
        }
        free(v);
        return 0;
}

/* ---- global ARGs and the stage graph ---- */

static int eval_meta_args(struct build *b, struct kerr **err)
{
        for (size_t i = 0; i < b->f->n_meta_args; i++) {
                const struct parser_instr *in = b->f->meta_args[i];

                for (size_t k = 0; k < in->n_kvs; k++) {
                        const struct parser_kv *kv = &in->kvs[k];
                        const char *given = vars_get(&b->build_args, kv->key);
                        _cleanup_free_ char *val = NULL;
                        struct strv env = {0};
                        int r = 0;

                        if (given) {
                                vars_set(&b->meta, kv->key, given);
                                continue;
                        }
                        if (!kv->value)
                                continue;
                        stage_env(&b->platform, NULL, &env);
                        for (size_t m = 0; m < b->meta.n; m++)
                                strv_push(&env, b->meta.v[m]);
                        r = expand(b, &env, kv->value, &val, err);
                        strv_release(&env);
                        if (r < 0)
                                return instr_fail(b, in, err);
                        vars_set(&b->meta, kv->key, val);
                }
        }
        return 0;
}

/* The base of a stage: FROM's argument expanded with the global ARGs. */
static int stage_base(const struct build *b, const struct parser_stage *st, char **ret,
                      struct kerr **err)
{
        struct strv env = {0};
        int r;

        if (st->from->n_args < 1)
                return kerr_set(err, 0, KERR_INVALID, "FROM requires an image");
        stage_env(&b->platform, NULL, &env);
        for (size_t i = 0; i < b->meta.n; i++)
                strv_push(&env, b->meta.v[i]);
        r = expand(b, &env, st->from->args[0], ret, err);
        strv_release(&env);
        return r;
}

/* The index of the earlier stage that ref names, or -1 (ref is an image). */
static long stage_ref(const struct build *b, size_t cur, const char *ref)
{
        char *end = NULL;
        unsigned long idx;

        for (size_t i = 0; i < cur; i++)
                if (b->f->stages[i].name && strcasecmp(b->f->stages[i].name, ref) == 0)
                        return (long)i;
        if (ref[0] >= '0' && ref[0] <= '9') {
                idx = strtoul(ref, &end, 10);
                if (*end == '\0' && idx < cur)
                        return (long)idx;
        }
        return -1;
}

static int mark_needed(struct build *b, size_t idx, bool *needed, struct kerr **err);

/* Stage idx names dep (-1: not a stage): an edge of the stage graph. */
static int need_stage(struct build *b, size_t idx, long dep, bool *needed, struct kerr **err)
{
        if (dep < 0)
                return 0;
        b->deps[idx * b->f->n_stages + (size_t)dep] = true;
        return mark_needed(b, (size_t)dep, needed, err);
}

/* Marks the stages that the target needs: itself, the stages its FROM and COPY --from
 * name, recursively. */
static int mark_needed(struct build *b, size_t idx, bool *needed, struct kerr **err)
{
        const struct parser_stage *st = &b->f->stages[idx];
        _cleanup_free_ char *base = NULL;

        if (needed[idx])
                return 0;
        needed[idx] = true;
        if (stage_base(b, st, &base, err) < 0)
                return instr_fail(b, st->from, err);
        if (need_stage(b, idx, stage_ref(b, idx, base), needed, err) < 0)
                return -1;
        for (size_t i = 0; i < st->n_instrs; i++) {
                const struct parser_instr *in = st->instrs[i];
                const struct parser_flag *fl = parser_instr_flag(in, "from");

                if (in->kind == PARSER_RUN) {
                        /* RUN --mount=...,from=STAGE needs that stage as COPY --from does. */
                        for (size_t k = 0; k < in->n_mounts; k++) {
                                if (!in->mounts[k].from)
                                        continue;
                                if (need_stage(b, idx, stage_ref(b, idx, in->mounts[k].from),
                                               needed, err) < 0)
                                        return -1;
                        }
                        continue;
                }
                if ((in->kind != PARSER_COPY && in->kind != PARSER_ADD) || !fl || !fl->value)
                        continue;
                if (need_stage(b, idx, stage_ref(b, idx, fl->value), needed, err) < 0)
                        return -1;
        }
        return 0;
}

static int find_target(const struct build *b, size_t *ret, struct kerr **err)
{
        const struct parser_stage *st;

        if (!b->o->target) {
                *ret = b->f->n_stages - 1;
                return 0;
        }
        st = parser_file_stage(b->f, b->o->target);
        if (!st)
                return kerr_set(err, 0, KERR_NOTFOUND, "target stage '%s' not found in '%s'",
                                b->o->target, b->f->name);
        *ret = st->index;
        return 0;
}

/* ---- bases ---- */

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void result_release(struct stage_result *r)
{
        image_config_free(r->cfg);
        strv_release(&r->chain);
        r->cfg = NULL;
        r->built = false;
}

static int load_image(struct build *b, const char *id, struct stage_result *res, struct kerr **err)
{
        struct kbuf data = KBUF_INIT;
        char parent[KDIGEST_STRLEN] = "";

        if (image_blob_read(b->s, id, 16u << 20, &data, err) < 0)
                return -1;
        res->cfg = image_config_parse(data.data, data.len, id, err);
        kbuf_release(&data);
        if (!res->cfg)
                return -1;
        for (size_t i = 0; i < res->cfg->n_diff_ids; i++) {
                char chain[KDIGEST_STRLEN];

                if (image_chain_id(parent[0] ? parent : NULL, res->cfg->diff_ids[i], chain, err) <
                    0)
                        return -1;
                if (!image_layer_exists(b->s, chain))
                        return kerr_set(err, 0, KERR_NOTFOUND,
                                        "image %s: layer %s (diff_id %s) is not in the store", id,
                                        chain, res->cfg->diff_ids[i]);
                strv_push(&res->chain, chain);
                memcpy(parent, chain, sizeof(parent));
        }
        return 0;
}

/* Loads the base into res; *ret_ident (may be NULL) names it for the step cache:
 * "scratch", "image <id>" or "stage <its last key>". */
static int resolve_base(struct build *b, size_t idx, const char *base, struct stage_result *res,
                        char **ret_ident, struct kerr **err)
{
        char id[KDIGEST_STRLEN];
        long dep = stage_ref(b, idx, base);
        struct kbuf ident = KBUF_INIT;

        if (dep >= 0) {
                const struct stage_result *from = &b->results[dep];

                res->cfg = image_config_dup(from->cfg);
                for (size_t i = 0; i < from->chain.n; i++)
                        strv_push(&res->chain, from->chain.v[i]);
                kbuf_printf(&ident, "stage %s", from->key);
        } else if (strcmp(base, "scratch") == 0) {
                /* docker (both builders) and buildah give scratch the default PATH. */
                res->cfg = image_config_new();
                image_config_set_env(res->cfg, "PATH", DEFAULT_PATH);
                kbuf_puts(&ident, "scratch");
        } else {
                if (image_is_transport(base)) {
                        if (image_import(b->s, base, id, err) < 0)
                                return kerr_wrap(err, "import '%s'", base);
                } else if (image_index_resolve(b->s, base, id, err) < 0) {
                        return -1;
                }
                if (load_image(b, id, res, err) < 0)
                        return -1;
                kbuf_printf(&ident, "image %s", id);
        }
        if (ret_ident)
                *ret_ident = kbuf_detach(&ident);
        kbuf_release(&ident);
        return 0;
}

/* ---- layers ---- */

static int discard_sink(void *ctx, const void *p, size_t n, struct kerr **err)
{
        (void)ctx;
        (void)p;
        (void)n;
        (void)err;
        return 0;
}

static bool dir_is_empty(const char *path)
{
        /* glibc's opendir opens with O_CLOEXEC. */
        DIR *d = opendir(path);
        struct dirent *de;
        bool empty = true;

        if (!d)
                return false;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        empty = false;
                        break;
                }
        closedir(d);
        return empty;
}

/* Turns a step's upper dir into a layer on top of res (or into nothing when the step
 * changed nothing) and records the history entry. The dir is consumed. */
static int commit_layer(struct build *b, struct stage_result *res, const char *upper,
                        const char *created_by, struct kerr **err)
{
        /* Times were clamped in the tree itself, so export regenerates the same stream. */
        struct image_tar_opts topts = {.clamp_mtime = -1};
        char diff_id[KDIGEST_STRLEN], chain[KDIGEST_STRLEN];
        uint64_t size = 0;
        _cleanup_close_ int fd = -1;

        if (dir_is_empty(upper)) {
                image_store_rmtree(upper, NULL);
                image_config_add_history(res->cfg, b->created, created_by, true);
                return 0;
        }
        fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", upper);
        if (image_layer_tar(fd, &topts, discard_sink, NULL, diff_id, &size, err) < 0)
                return kerr_wrap(err, "hash layer");
        if (image_layer_commit(b->s, res->chain.n ? res->chain.v[res->chain.n - 1] : NULL, diff_id,
                               size, upper, chain, err) < 0)
                return -1;
        strv_push(&res->chain, chain);
        image_config_add_diff_id(res->cfg, diff_id);
        image_config_add_history(res->cfg, b->created, created_by, false);
        progress(b, "--> layer %.12s, %llu bytes", diff_id + 7, (unsigned long long)size);
        return 0;
}

/* ---- config instructions ---- */

static void set_strv(char ***dst, size_t *n, bool *has, char *const *src, size_t m)
{
        for (size_t i = 0; i < *n; i++)
                free((*dst)[i]);
        free(*dst);
        *dst = kcalloc(m + 1, sizeof(**dst));
        for (size_t i = 0; i < m; i++)
                (*dst)[i] = kstrdup(src[i]);
        *n = m;
        if (has)
                *has = true;
}

/* CMD, ENTRYPOINT and HEALTHCHECK CMD in shell form run under the stage's SHELL. */
static void command_argv(const struct image_config *cfg, const struct parser_instr *in,
                         struct strv *out)
{
        static const char *const default_shell[] = {"/bin/sh", "-c"};

        if (in->json) {
                for (size_t i = 0; i < in->n_args; i++)
                        strv_push(out, in->args[i]);
                return;
        }
        if (cfg->has_shell && cfg->n_shell) {
                for (size_t i = 0; i < cfg->n_shell; i++)
                        strv_push(out, cfg->shell[i]);
        } else {
                strv_push(out, default_shell[0]);
                strv_push(out, default_shell[1]);
        }
        strv_push(out, in->n_args ? in->args[0] : "");
}

static void add_unique(char ***v, size_t *n, const char *s)
{
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*v)[i], s) == 0)
                        return;
        *v = kreallocarray(*v, *n + 2, sizeof(**v));
        (*v)[(*n)++] = kstrdup(s);
        (*v)[*n] = NULL;
}

/* EXPOSE: "80" means 80/tcp; a range "7000-7002/udp" exposes each port, as docker does. */
static int expose_port(struct image_config *cfg, const char *spec, struct kerr **err)
{
        const char *slash = strchr(spec, '/');
        _cleanup_free_ char *ports = kstrndup(spec, slash ? (size_t)(slash - spec) : strlen(spec));
        const char *proto = slash ? slash + 1 : "tcp";
        char *dash = strchr(ports, '-'), *end = NULL;
        unsigned long lo, hi;
        struct kbuf b = KBUF_INIT;

        if (strcasecmp(proto, "tcp") != 0 && strcasecmp(proto, "udp") != 0 &&
            strcasecmp(proto, "sctp") != 0)
                return kerr_set(err, 0, KERR_INVALID, "invalid protocol '%s' in EXPOSE '%s'", proto,
                                spec);
        if (dash)
                *dash = '\0';
        lo = strtoul(ports, &end, 10);
        if (!*ports || *end || lo > 65535)
                return kerr_set(err, 0, KERR_INVALID, "invalid port '%s' in EXPOSE", spec);
        hi = lo;
        if (dash) {
                hi = strtoul(dash + 1, &end, 10);
                if (!dash[1] || *end || hi > 65535 || hi < lo)
                        return kerr_set(err, 0, KERR_INVALID, "invalid port range '%s' in EXPOSE",
                                        spec);
        }
        for (unsigned long p = lo; p <= hi; p++) {
                kbuf_truncate(&b, 0);
                kbuf_printf(&b, "%lu/", p);
                for (const char *c = proto; *c; c++)
                        kbuf_putc(&b, (char)tolower((unsigned char)*c));
                add_unique(&cfg->exposed_ports, &cfg->n_exposed_ports, b.data);
        }
        kbuf_release(&b);
        return 0;
}

/* path.Join(base, rel) then Clean, for WORKDIR. */
static char *join_clean(const char *base, const char *rel)
{
        struct kbuf in = KBUF_INIT, out = KBUF_INIT;
        const char *p;

        if (rel[0] != '/')
                kbuf_printf(&in, "%s/", base && *base ? base : "/");
        kbuf_puts(&in, rel);
        kbuf_putc(&out, '/');
        p = in.data;
        while (*p) {
                size_t n;

                while (*p == '/')
                        p++;
                n = strcspn(p, "/");
                if (n == 0)
                        break;
                if (n == 1 && p[0] == '.') {
                        /* nothing */
                } else if (n == 2 && p[0] == '.' && p[1] == '.') {
                        char *last = strrchr(out.data, '/');
                        kbuf_truncate(&out,
                                      last && last != out.data ? (size_t)(last - out.data) : 1);
                } else {
                        if (out.len > 1)
                                kbuf_putc(&out, '/');
                        kbuf_append(&out, p, n);
                }
                p += n;
        }
        kbuf_release(&in);
        return kbuf_detach(&out);
}

static void set_healthcheck(struct image_config *cfg, const struct parser_instr *in)
{
        struct image_healthcheck *h = kcalloc(1, sizeof(*h));
        struct strv test = {0};

        if (in->health.none) {
                strv_push(&test, "NONE");
        } else if (in->json) {
                strv_push(&test, "CMD");
                for (size_t i = 0; i < in->n_args; i++)
                        strv_push(&test, in->args[i]);
        } else {
                strv_push(&test, "CMD-SHELL");
                strv_push(&test, in->n_args ? in->args[0] : "");
        }
        h->test = test.v;
        h->n_test = test.n;
        h->interval = in->health.interval > 0 ? in->health.interval : 0;
        h->timeout = in->health.timeout > 0 ? in->health.timeout : 0;
        h->start_period = in->health.start_period > 0 ? in->health.start_period : 0;
        h->start_interval = in->health.start_interval > 0 ? in->health.start_interval : 0;
        h->retries = in->health.retries > 0 ? (int)in->health.retries : 0;
        if (cfg->healthcheck) {
                for (size_t i = 0; i < cfg->healthcheck->n_test; i++)
                        free(cfg->healthcheck->test[i]);
                free(cfg->healthcheck->test);
                free(cfg->healthcheck);
        }
        cfg->healthcheck = h;
}

static void replace_str(char **dst, const char *src)
{
        free(*dst);
        *dst = src ? kstrdup(src) : NULL;
}

/* ---- stages ---- */

struct stage_run {
        struct build *b;
        size_t idx;
        struct stage_result *res;
        struct strv args; /* the stage's declared ARGs that have a value */
        bool cmd_set;     /* CMD was given in this stage */
        /* The step being keyed (when the cache is on): its key once computed, its inputs,
         * the stages it read (COPY --from), and whether the step before it was new to the
         * cache (for the message that explains a miss). */
        bool keyed;
        struct builder_key key;
        char step_key[KDIGEST_STRLEN];
        char *inputs;
        struct strv deps;
        bool last_new;
};

/* ---- the step cache ----
 *
 * A step is keyed (step_begin) before it runs, so that the words it expands are recorded as
 * they are expanded; step_probe computes the key and, when the cache has it, replaces the
 * stage's config and layers with the entry's; otherwise the step runs, and step_end stores
 * what it left. */

static void step_reset(struct stage_run *sr)
{
        sr->b->rec = NULL;
        if (!sr->keyed)
                return;
        builder_key_release(&sr->key);
        free(sr->inputs);
        sr->inputs = NULL;
        strv_release(&sr->deps);
        sr->step_key[0] = '\0';
        sr->keyed = false;
}

static int step_begin(struct stage_run *sr, const struct parser_instr *in, struct kerr **err)
{
        step_reset(sr);
        if (!sr->b->cache_write)
                return 0;
        if (builder_key_begin(&sr->key, sr->res->key, in->original, err) < 0)
                return -1;
        sr->keyed = true;
        sr->b->rec = &sr->key;
        return 0;
}

/* At --log-level debug, why the step missed. */
static void explain_miss(struct stage_run *sr, const struct parser_instr *in, const char *why)
{
        struct build *b = sr->b;
        struct kbuf old = KBUF_INIT;
        _cleanup_free_ char *diff = NULL;
        char old_key[KDIGEST_STRLEN];

        if (!klog_enabled(KLOG_DEBUG))
                return;
        if (!why) {
                if (image_cache_get_inputs(b->s, sr->key.partial, &old, old_key, NULL) < 0)
                        why = sr->last_new ? "a step before it changed"
                                           : "no build ran this instruction after the same steps";
                else if (strcmp(old_key, sr->step_key) == 0 ||
                         !*(diff = builder_key_diff(old.data ? old.data : "", sr->inputs)))
                        why = "its cached result is gone";
                else
                        why = diff;
        }
        klog_debug("step cache: %s: %s", in->original, why);
        kbuf_release(&old);
}

/* The config and layers of a cache entry become the stage's. */
/* A hit: the entry's config and chain (parsed and checked by image_cache_get) become the
 * stage's. */
static int apply_entry(struct stage_run *sr, struct image_cache_entry *e, struct kerr **err)
{
        struct strv chain = {0};

        if (!e->cfg)
                return kerr_set(err, 0, KERR_INTERNAL, "a step's cache entry without a config");
        for (size_t i = 0; i < e->n_chain; i++)
                strv_push(&chain, e->chain[i]);
        image_config_free(sr->res->cfg);
        sr->res->cfg = TAKE_PTR(e->cfg);
        strv_release(&sr->res->chain);
        sr->res->chain = chain;
        return 0;
}

/* A miss is explained against the inputs of the latest build of the step, hit or miss: a
 * hit of an entry other than the one the inputs describe records its own (a read of one
 * line per hit, a write only when a build goes back to an older state). */
static int note_inputs(struct stage_run *sr, struct kerr **err)
{
        char last[KDIGEST_STRLEN];

        if (image_cache_get_inputs(sr->b->s, sr->key.partial, NULL, last, NULL) == 0 &&
            strcmp(last, sr->step_key) == 0)
                return 0;
        if (image_cache_put_inputs(sr->b->s, sr->key.partial, sr->step_key, sr->inputs,
                                   strlen(sr->inputs), err) < 0)
                return kerr_wrap(err, "step cache");
        return 0;
}

/* Computes the key of the step begun; with lookup, looks it up: 1 when the entry was
 * applied (a hit), 0 when the step must run. */
static int step_key(struct stage_run *sr, const struct parser_instr *in, bool lookup,
                    struct kerr **err)
{
        struct build *b = sr->b;
        struct image_cache_entry e;
        struct kerr *miss = NULL;

        b->rec = NULL;
        if (!sr->keyed)
                return 0;
        if (builder_key_finish(&sr->key, sr->step_key, &sr->inputs, err) < 0)
                return -1;
        if (!lookup) {
                sr->last_new = true;
                explain_miss(sr, in, b->cache_read ? NULL : "--no-cache");
                return 0;
        }
        if (image_cache_get(b->s, sr->step_key, &e, &miss) < 0) {
                if (miss->code != KERR_NOTFOUND) {
                        if (err) {
                                kerr_free(*err);
                                *err = miss;
                        } else {
                                kerr_free(miss);
                        }
                        return kerr_wrap(err, "step cache");
                }
                kerr_free(miss);
                explain_miss(sr, in, NULL);
                sr->last_new = true;
                return 0;
        }
        if (apply_entry(sr, &e, err) < 0) {
                image_cache_entry_release(&e);
                return -1;
        }
        image_cache_entry_release(&e);
        progress(b, "--> Using cache %s", sr->step_key + 7);
        if (note_inputs(sr, err) < 0)
                return -1;
        memcpy(sr->res->key, sr->step_key, KDIGEST_STRLEN);
        sr->last_new = false;
        step_reset(sr);
        return 1;
}

static int step_probe(struct stage_run *sr, const struct parser_instr *in, struct kerr **err)
{
        return step_key(sr, in, sr->b->cache_read, err);
}

/* After the step ran: its result goes into the cache under its key, which the next step
 * builds on. */
static int step_end(struct stage_run *sr, struct kerr **err)
{
        struct build *b = sr->b;
        struct image_cache_entry e = {0};
        struct kbuf cfg = KBUF_INIT;
        int r;

        if (!sr->keyed)
                return 0;
        if (image_config_serialize(sr->res->cfg, &cfg, err) < 0)
                return -1;
        memcpy(e.parent, sr->res->key, KDIGEST_STRLEN);
        memcpy(e.partial, sr->key.partial, KDIGEST_STRLEN);
        e.config = cfg.data;
        e.config_len = cfg.len;
        e.deps = sr->deps.v;
        e.n_deps = sr->deps.n;
        r = image_cache_put(b->s, sr->step_key, &e, err);
        kbuf_release(&cfg);
        if (r == 0)
                r = image_cache_put_inputs(b->s, sr->key.partial, sr->step_key, sr->inputs,
                                           strlen(sr->inputs), err);
        if (r < 0)
                return kerr_wrap(err, "step cache");
        memcpy(sr->res->key, sr->step_key, KDIGEST_STRLEN);
        step_reset(sr);
        return 0;
}

static int stage_copy(struct stage_run *sr, const struct parser_instr *in, const struct strv *env,
                      struct kerr **err);
static int stage_workdir_create(struct stage_run *sr, const char *dir, struct kerr **err);

static char *nop_created_by(const struct parser_instr *in)
{
        struct kbuf b = KBUF_INIT;

        kbuf_printf(&b, "/bin/sh -c #(nop) %s", in->original);
        return kbuf_detach(&b);
}

static int run_arg(struct stage_run *sr, const struct parser_instr *in, const struct strv *env,
                   struct kerr **err)
{
        struct build *b = sr->b;

        for (size_t k = 0; k < in->n_kvs; k++) {
                const struct parser_kv *kv = &in->kvs[k];
                const char *given = vars_get(&b->build_args, kv->key);
                const char *inherited = vars_get(&b->meta, kv->key);
                const char *platform = vars_get(&b->platform, kv->key);
                _cleanup_free_ char *val = NULL;

                if (given) {
                        vars_set(&sr->args, kv->key, given);
                } else if (kv->value) {
                        if (expand(b, env, kv->value, &val, err) < 0)
                                return -1;
                        vars_set(&sr->args, kv->key, val);
                } else if (inherited) {
                        vars_set(&sr->args, kv->key, inherited);
                } else if (platform) {
                        vars_set(&sr->args, kv->key, platform);
                }
        }
        return 0;
}

static int run_config(struct stage_run *sr, const struct parser_instr *in, const struct strv *env,
                      struct kerr **err)
{
        struct image_config *cfg = sr->res->cfg;
        struct build *b = sr->b;
        struct strv words = {0};
        _cleanup_free_ char *val = NULL;
        int r = 0;

        switch (in->kind) {
        case PARSER_ENV: {
                struct strv keys = {0}, vals = {0};

                /* Every value sees the environment from before this ENV, as in docker. */
                for (size_t k = 0; k < in->n_kvs && r == 0; k++) {
                        _cleanup_free_ char *v = NULL;

                        r = expand(b, env, in->kvs[k].value ? in->kvs[k].value : "", &v, err);
                        if (r == 0) {
                                strv_push(&keys, in->kvs[k].key);
                                strv_push(&vals, v);
                        }
                }
                for (size_t k = 0; r == 0 && k < keys.n; k++)
                        image_config_set_env(cfg, keys.v[k], vals.v[k]);
                strv_release(&keys);
                strv_release(&vals);
                break;
        }
        case PARSER_LABEL:
                for (size_t k = 0; k < in->n_kvs && r == 0; k++) {
                        _cleanup_free_ char *key = NULL, *v = NULL;

                        r = expand(b, env, in->kvs[k].key, &key, err);
                        if (r == 0)
                                r = expand(b, env, in->kvs[k].value ? in->kvs[k].value : "", &v,
                                           err);
                        if (r == 0)
                                image_config_set_label(cfg, key, v);
                }
                break;
        case PARSER_MAINTAINER:
                replace_str(&cfg->author, in->n_args ? in->args[0] : "");
                break;
        case PARSER_USER:
                if ((r = expand(b, env, in->args[0], &val, err)) == 0)
                        replace_str(&cfg->user, val);
                break;
        case PARSER_STOPSIGNAL:
                if ((r = expand(b, env, in->args[0], &val, err)) == 0)
                        replace_str(&cfg->stop_signal, val);
                break;
        case PARSER_WORKDIR: {
                _cleanup_free_ char *dir = NULL;

                if ((r = expand(b, env, in->args[0], &val, err)) < 0)
                        break;
                dir = join_clean(cfg->working_dir, val);
                /* docker keeps an absolute WORKDIR as written ("/a/../b", "/c/") and joins a
                 * relative one to the current one with path.Join, which cleans. */
                replace_str(&cfg->working_dir, val[0] == '/' ? val : dir);
                r = step_probe(sr, in, err);
                if (r != 0)
                        return r < 0 ? r : 0;
                /* WORKDIR makes a layer only when it creates the directory. */
                if (stage_workdir_create(sr, dir, err) < 0)
                        return -1;
                return step_end(sr, err);
        }
        case PARSER_EXPOSE:
                for (size_t i = 0; i < in->n_args && r == 0; i++) {
                        r = expand_words(b, env, in->args[i], &words, err);
                }
                for (size_t i = 0; i < words.n && r == 0; i++)
                        r = expose_port(cfg, words.v[i], err);
                break;
        case PARSER_VOLUME:
                for (size_t i = 0; i < in->n_args && r == 0; i++) {
                        _cleanup_free_ char *v = NULL;

                        r = expand(b, env, in->args[i], &v, err);
                        if (r == 0 && !*v)
                                r = kerr_set(err, 0, KERR_INVALID,
                                             "VOLUME specified can not be an empty string");
                        if (r == 0)
                                add_unique(&cfg->volumes, &cfg->n_volumes, v);
                }
                break;
        case PARSER_CMD:
                command_argv(cfg, in, &words);
                set_strv(&cfg->cmd, &cfg->n_cmd, &cfg->has_cmd, words.v, words.n);
                sr->cmd_set = true;
                break;
        case PARSER_ENTRYPOINT:
                command_argv(cfg, in, &words);
                set_strv(&cfg->entrypoint, &cfg->n_entrypoint, &cfg->has_entrypoint, words.v,
                         words.n);
                /* An inherited CMD is reset by ENTRYPOINT; one set in this stage stays. */
                if (!sr->cmd_set) {
                        set_strv(&cfg->cmd, &cfg->n_cmd, NULL, NULL, 0);
                        cfg->has_cmd = false;
                }
                break;
        case PARSER_SHELL:
                set_strv(&cfg->shell, &cfg->n_shell, &cfg->has_shell, in->args, in->n_args);
                break;
        case PARSER_HEALTHCHECK:
                set_healthcheck(cfg, in);
                break;
        case PARSER_ONBUILD:
                if (in->sub) {
                        cfg->onbuild = kreallocarray(cfg->onbuild, cfg->n_onbuild + 2,
                                                     sizeof(*cfg->onbuild));
                        cfg->onbuild[cfg->n_onbuild++] = kstrdup(in->sub->original);
                        cfg->onbuild[cfg->n_onbuild] = NULL;
                }
                break;
        default:
                r = kerr_set(err, 0, KERR_INTERNAL, "no handler for %s",
                             parser_kind_name(in->kind));
                break;
        }
        strv_release(&words);
        if (r == 0) {
                _cleanup_free_ char *by = nop_created_by(in);
                image_config_add_history(cfg, b->created, by, true);
        }
        return r;
}

static struct builder_rootfs *open_view(struct build *b, const struct strv *chain, int upper_fd,
                                        struct kerr **err);
static int clamp_times(int dirfd, int64_t clamp, struct kerr **err);

/* The history entry of a RUN, as buildah writes it: the shell and the command for the
 * shell form, the words for the exec form. */
static char *run_created_by(const struct parser_instr *in, const struct builder_run_cmd *cmd)
{
        struct kbuf b = KBUF_INIT;

        if (in->json || cmd->script) {
                for (size_t i = 0; i < in->n_args; i++)
                        kbuf_printf(&b, "%s%s", i ? " " : "", in->args[i]);
        } else {
                for (size_t i = 0; i + 1 < cmd->argc; i++)
                        kbuf_printf(&b, "%s ", cmd->argv[i]);
                kbuf_puts(&b, in->args[0]);
        }
        return kbuf_detach(&b);
}

/* The environment of a RUN: the build args in effect, then the config's ENV, which wins
 * over an arg of the same name; each name once, and PATH as docker sets it when the image
 * has none. */
static void run_env(const struct stage_run *sr, struct strv *out)
{
        struct strv all = {0};
        bool has_path = false;

        stage_env(&sr->args, sr->res->cfg, &all);
        for (size_t i = 0; i < all.n; i++) {
                size_t klen = strcspn(all.v[i], "=");
                bool later = false;

                for (size_t j = i + 1; j < all.n && !later; j++)
                        later = strncmp(all.v[j], all.v[i], klen) == 0 && all.v[j][klen] == '=';
                if (later)
                        continue;
                if (klen == 4 && strncmp(all.v[i], "PATH", 4) == 0)
                        has_path = true;
                strv_push(out, all.v[i]);
        }
        if (!has_path)
                strv_push(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        strv_release(&all);
}

/* RUN --mount=type=bind,from=: the layers of that stage or image, and source resolved in
 * their merged view, which the sandbox merges again with overlayfs. */
static int bind_from_fn(void *ctx, const char *from, const char *source, char ***ret_chain,
                        size_t *ret_n, char **ret_subdir, struct kerr **err)
{
        struct stage_run *sr = ctx;
        struct build *b = sr->b;
        struct stage_result tmp = {0};
        const struct strv *chain;
        struct builder_rootfs *view = NULL;
        _cleanup_free_ char *res = NULL;
        struct stat st;
        long dep = stage_ref(b, sr->idx, from);
        int r = -1;

        if (dep >= 0) {
                chain = &b->results[dep].chain;
        } else {
                if (resolve_base(b, sr->idx, from, &tmp, NULL, err) < 0)
                        goto out;
                chain = &tmp.chain;
        }
        if (chain->n == 0) {
                r = kerr_set(err, ENOENT, KERR_NOTFOUND, "'%s' has no files", from);
                goto out;
        }
        view = open_view(b, chain, -1, err);
        if (!view || builder_rootfs_stat(view, source, true, &st, &res, err) < 0)
                goto out;
        {
                struct strv copy = {0};

                for (size_t i = 0; i < chain->n; i++)
                        strv_push(&copy, chain->v[i]);
                *ret_chain = copy.v;
                *ret_n = copy.n;
        }
        *ret_subdir = TAKE_PTR(res);
        r = 0;
out:
        builder_rootfs_free(view);
        result_release(&tmp);
        return r;
}

static enum sandbox_net net_of(const char *name)
{
        return name && strcmp(name, "none") == 0 ? SANDBOX_NET_NONE : SANDBOX_NET_HOST;
}

/* A step that changed nothing but copied directories up leaves no layer, as in docker,
 * whose differ compares directories by mode, owner and capabilities, not times. */
static int prune_upper(struct build *b, const struct strv *chain, const char *upper,
                       struct kerr **err)
{
        _cleanup_close_ int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct builder_rootfs *view = NULL;
        int r;

        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "open '%s'", upper);
        view = open_view(b, chain, -1, err);
        if (!view)
                return -1;
        r = builder_rootfs_prune_upper(view, fd, err);
        builder_rootfs_free(view);
        return r;
}

/* Runs the command of a RUN step in the sandbox over the stage's layers, then commits what
 * it changed as the step's layer. */
static int run_exec(struct stage_run *sr, const struct parser_instr *in, struct kerr **err)
{
        struct build *b = sr->b;
        const struct image_config *cfg = sr->res->cfg;
        struct builder_run_cmd cmd = {0};
        struct strv env = {0}, lowers = {0};
        _cleanup_free_ char *dir = NULL, *upper = NULL, *by = NULL;
        const char *net = b->o->network;
        const struct parser_flag *fl = parser_instr_flag(in, "network");
        int r = -1;

        if (fl && fl->value && strcmp(fl->value, "default") != 0)
                net = fl->value;
        if (net && strcmp(net, "host") != 0 && strcmp(net, "none") != 0)
                return kerr_set(err, 0, KERR_INVALID,
                                "network '%s' is not supported (use host or none)", net);
        fl = parser_instr_flag(in, "security");
        if (fl && fl->value && strcmp(fl->value, "sandbox") != 0)
                return kerr_set(err, 0, KERR_UNSUPPORTED, "RUN --security=%s is not supported",
                                fl->value);
        if (builder_run_command(in, cfg->has_shell ? (const char *const *)cfg->shell : NULL,
                                cfg->has_shell ? cfg->n_shell : 0, &cmd, err) < 0)
                return -1;
        run_env(sr, &env);
        /* A stack too deep to mount cheaply has its bottom part flattened (flatten.c). */
        if (builder_flat_lowers(b->s, (const char *const *)sr->res->chain.v, sr->res->chain.n,
                                &lowers.v, &lowers.n, err) < 0)
                goto out;
        if (!b->ctx && in->n_mounts) {
                b->ctx = builder_context_open(b->o->context_dir ? b->o->context_dir : ".",
                                              b->o->ignorefile, err);
                if (!b->ctx)
                        goto out;
        }
        struct builder_run_opts ro = {
                .s = b->s,
                .in = in,
                .cmd = &cmd,
                .lowers = (const char *const *)lowers.v,
                .n_lowers = lowers.n,
                .env = (const char *const *)env.v,
                .cwd = cfg->working_dir,
                .user = cfg->user,
                .net = net_of(net),
                .cap_add = b->o->cap_add,
                .cap_drop = b->o->cap_drop,
                .seccomp = b->o->seccomp,
                .secrets = b->o->secrets,
                .n_secrets = b->o->n_secrets,
                .ctx = b->ctx,
                .context_dir = b->o->context_dir ? b->o->context_dir : ".",
                .bind_from = bind_from_fn,
                .bind_ctx = sr,
                .out_fd = b->o->run_stdout >= 0 ? b->o->run_stdout : 1,
                .err_fd = b->o->run_stderr >= 0 ? b->o->run_stderr : 2,
        };
        if (builder_run_step(&ro, &dir, err) < 0)
                goto out;
        {
                struct kbuf u = KBUF_INIT;
                kbuf_printf(&u, "%s/upper", dir);
                upper = kbuf_detach(&u);
        }
        if (prune_upper(b, &sr->res->chain, upper, err) < 0)
                goto out;
        if (b->o->timestamp >= 0) {
                _cleanup_close_ int ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (ufd < 0) {
                        kerr_set(err, errno, KERR_IO, "open '%s'", upper);
                        goto out;
                }
                if (clamp_times(ufd, b->o->timestamp, err) < 0)
                        goto out;
        }
        by = run_created_by(in, &cmd);
        r = commit_layer(b, sr->res, upper, by, err);
out:
        if (dir)
                image_store_rmtree(dir, NULL);
        builder_run_cmd_release(&cmd);
        strv_release(&env);
        strv_release(&lowers);
        return r;
}

static int hash_sources(struct stage_run *sr, const struct builder_copy_src *src,
                        const struct builder_copy_opts *opts, bool downloaded, bool wait,
                        struct builder_hash_job **ret_job, struct kerr **err);

static void key_strv(struct stage_run *sr, const char *name, const char *const *v)
{
        for (size_t i = 0; v && v[i]; i++)
                builder_key_add(&sr->key, "option", name, v[i]);
}

/* What else a RUN's result depends on: the build's options for RUN, and what its bind
 * mounts show (the files of the context they select, or the layers of the stage or image
 * they come from). Cache, tmpfs and secret mounts are not inputs, as in BuildKit. */
static int key_run_inputs(struct stage_run *sr, const struct parser_instr *in, struct kerr **err)
{
        struct build *b = sr->b;

        builder_key_add(&sr->key, "option", "network", b->o->network ? b->o->network : "host");
        key_strv(sr, "cap-add", b->o->cap_add);
        key_strv(sr, "cap-drop", b->o->cap_drop);
        builder_key_add(&sr->key, "option", "seccomp", b->o->seccomp ? b->o->seccomp : "");
        for (size_t i = 0; i < in->n_mounts; i++) {
                const struct parser_mount *m = &in->mounts[i];
                const char *source = m->source ? m->source : "/";

                if (m->type != PARSER_MOUNT_BIND)
                        continue;
                if (m->from) {
                        long dep = stage_ref(b, sr->idx, m->from);
                        struct stage_result tmp = {0};
                        const struct strv *chain = &tmp.chain;

                        if (dep >= 0)
                                chain = &b->results[dep].chain;
                        else if (resolve_base(b, sr->idx, m->from, &tmp, NULL, err) < 0)
                                return kerr_wrap(err, "--mount=type=bind,from=%s", m->from);
                        builder_key_add(&sr->key, "from", m->from,
                                        chain->n ? chain->v[chain->n - 1] : "");
                        if (dep >= 0)
                                strv_push(&sr->deps, b->results[dep].key);
                        result_release(&tmp);
                        continue;
                }
                if (!b->ctx) {
                        b->ctx = builder_context_open(b->o->context_dir ? b->o->context_dir : ".",
                                                      b->o->ignorefile, err);
                        if (!b->ctx)
                                return -1;
                }
                const char *srcs[] = {source};
                struct builder_copy_src src = {.context = b->ctx};
                struct builder_copy_opts opts = {
                        .srcs = srcs, .n_srcs = 1, .dest = "/", .mtime_clamp = -1};
                struct builder_hash_job *job = NULL;
                if (hash_sources(sr, &src, &opts, false, true, &job, err) < 0)
                        return kerr_wrap(err, "--mount=type=bind,source=%s", source);
        }
        return 0;
}

/* RUN is keyed on its text (flags and --mount included), its heredoc bodies, and, as docker
 * keys it, every build arg in effect and the config's environment. Build options that
 * change how commands run (--network, --cap-add, --security-opt, ...) are inputs too:
 * builder_key_add(&sr->key, "option", NAME, VALUE) each, once they exist. */
static int run_step(struct stage_run *sr, const struct parser_instr *in, struct kerr **err)
{
        const struct image_config *cfg = sr->res->cfg;
        int r = step_begin(sr, in, err);

        if (r < 0)
                return r;
        if (sr->keyed) {
                sr->b->rec = NULL;
                for (size_t i = 0; i < in->n_heredocs; i++)
                        builder_key_add(&sr->key, "heredoc", in->heredocs[i].name,
                                        in->heredocs[i].content);
                builder_key_add_run(&sr->key, (const char *const *)sr->args.v, sr->args.n,
                                    (const char *const *)cfg->env, cfg->n_env);
                if (key_run_inputs(sr, in, err) < 0)
                        return -1;
        }
        r = step_probe(sr, in, err);
        if (r != 0)
                return r < 0 ? r : 0;
        if (run_exec(sr, in, err) < 0)
                return -1;
        return step_end(sr, err);
}

/* A config instruction runs (it costs nothing) and is then looked up: a hit replaces the
 * config with the cached one, whose history keeps the times of the build that made it. */
static int config_step(struct stage_run *sr, const struct parser_instr *in, const struct strv *env,
                       struct kerr **err)
{
        int r = step_begin(sr, in, err);

        if (r == 0)
                r = run_config(sr, in, env, err);
        if (r < 0 || in->kind == PARSER_WORKDIR)
                return r;
        r = step_probe(sr, in, err);
        if (r != 0)
                return r < 0 ? r : 0;
        return step_end(sr, err);
}

static int run_instr(struct stage_run *sr, const struct parser_instr *in, struct kerr **err)
{
        struct build *b = sr->b;
        struct strv env = {0};
        int r;

        stage_env(&sr->args, sr->res->cfg, &env);
        switch (in->kind) {
        case PARSER_ARG:
                /* Not a step of its own: what it sets reaches the keys of the steps that
                 * expand it, and of every RUN. */
                r = run_arg(sr, in, &env, err);
                break;
        case PARSER_COPY:
        case PARSER_ADD:
                r = stage_copy(sr, in, &env, err);
                break;
        case PARSER_RUN:
                r = run_step(sr, in, err);
                break;
        default:
                r = config_step(sr, in, &env, err);
                break;
        }
        strv_release(&env);
        step_reset(sr);
        if (r < 0)
                return instr_fail(b, in, err);
        return 0;
}

/* Triggers recorded by the base image's ONBUILD run right after FROM, then are dropped. */
static int run_triggers(struct stage_run *sr, struct kerr **err)
{
        struct image_config *cfg = sr->res->cfg;
        char **triggers = cfg->onbuild;
        size_t n = cfg->n_onbuild;
        int r = 0;

        cfg->onbuild = NULL;
        cfg->n_onbuild = 0;
        for (size_t i = 0; i < n && r == 0; i++) {
                struct kbuf text = KBUF_INIT;
                struct parser_file *tf;

                kbuf_printf(&text, "FROM scratch\n%s\n", triggers[i]);
                tf = parser_parse("ONBUILD trigger", text.data, text.len, err);
                kbuf_release(&text);
                if (!tf) {
                        r = kerr_wrap(err, "base image trigger '%s'", triggers[i]);
                        break;
                }
                progress(sr->b, "ONBUILD %s", triggers[i]);
                for (size_t k = 0; k < tf->stages[0].n_instrs && r == 0; k++) {
                        struct parser_file *saved = sr->b->f;

                        /* Positions in errors refer to the trigger text. */
                        sr->b->f = tf;
                        r = run_instr(sr, tf->stages[0].instrs[k], err);
                        sr->b->f = saved;
                }
                parser_file_free(tf);
        }
        for (size_t i = 0; i < n; i++)
                free(triggers[i]);
        free(triggers);
        return r;
}

/* FROM --platform=OS/ARCH[/VARIANT]: a base image must be of that platform; scratch takes
 * it on. *ret_platform is the flag as expanded ("" without one; caller frees). */
static int check_platform(struct build *b, const struct parser_stage *st, struct stage_result *res,
                          char **ret_platform, struct kerr **err)
{
        const struct parser_flag *fl = parser_instr_flag(st->from, "platform");
        _cleanup_free_ char *want = NULL;
        struct strv env = {0};
        char *os, *arch, *variant;
        int r;

        *ret_platform = kstrdup("");
        if (!fl || !fl->value)
                return 0;
        stage_env(&b->platform, NULL, &env);
        for (size_t i = 0; i < b->meta.n; i++)
                strv_push(&env, b->meta.v[i]);
        r = expand(b, &env, fl->value, &want, err);
        strv_release(&env);
        if (r < 0)
                return -1;
        free(*ret_platform);
        *ret_platform = kstrdup(want);
        os = want;
        arch = strchr(os, '/');
        if (!arch || !arch[1] || arch == os)
                return kerr_set(err, 0, KERR_INVALID, "--platform '%s' is not OS/ARCH[/VARIANT]",
                                want);
        *arch++ = '\0';
        variant = strchr(arch, '/');
        if (variant)
                *variant++ = '\0';
        if (res->cfg->architecture || res->cfg->os) {
                const char *have_os = res->cfg->os ? res->cfg->os : "";
                const char *have_arch = res->cfg->architecture ? res->cfg->architecture : "";
                const char *have_var = res->cfg->variant ? res->cfg->variant : "";

                if (strcmp(have_os, os) != 0 || strcmp(have_arch, arch) != 0 ||
                    (variant && strcmp(have_var, variant) != 0))
                        return kerr_set(err, 0, KERR_INVALID,
                                        "the base image is %s/%s%s%s, not the requested %s",
                                        have_os, have_arch, *have_var ? "/" : "", have_var,
                                        fl->value);
                return 0;
        }
        replace_str(&res->cfg->os, os);
        replace_str(&res->cfg->architecture, arch);
        replace_str(&res->cfg->variant, variant);
        return 0;
}

static int run_stage(struct build *b, size_t idx, struct kerr **err)
{
        const struct parser_stage *st = &b->f->stages[idx];
        struct stage_result *res = &b->results[idx];
        struct stage_run sr = {.b = b, .idx = idx, .res = res};
        _cleanup_free_ char *base = NULL, *ident = NULL, *platform = NULL;
        struct kbuf prefix = KBUF_INIT;
        size_t n_steps = st->n_instrs + 1;
        int r = 0;

        b->stage_no++;
        /* A worker's lines get the stage's name in front instead (jobs.c). */
        if (b->n_needed > 1 && !b->worker)
                kbuf_printf(&prefix, "[%zu/%zu] ", b->stage_no, b->n_needed);
        else
                kbuf_puts(&prefix, "");
        progress(b, "%sSTEP 1/%zu: %s", prefix.data, n_steps, st->from->original);
        if (stage_base(b, st, &base, err) < 0 || resolve_base(b, idx, base, res, &ident, err) < 0) {
                kbuf_release(&prefix);
                return instr_fail(b, st->from, err);
        }
        if (check_platform(b, st, res, &platform, err) < 0 ||
            (b->cache_write &&
             builder_key_from(ident, platform, (long long)b->o->timestamp, res->key, err) < 0)) {
                kbuf_release(&prefix);
                return instr_fail(b, st->from, err);
        }
        if (run_triggers(&sr, err) < 0) {
                kbuf_release(&prefix);
                strv_release(&sr.args);
                return instr_fail(b, st->from, err);
        }
        for (size_t i = 0; i < st->n_instrs && r == 0; i++) {
                progress(b, "%sSTEP %zu/%zu: %s", prefix.data, i + 2, n_steps,
                         st->instrs[i]->original);
                r = run_instr(&sr, st->instrs[i], err);
        }
        kbuf_release(&prefix);
        strv_release(&sr.args);
        if (r == 0)
                res->built = true;
        return r;
}

/* ---- the image ---- */

static int name_image(struct build *b, const char *id, struct kerr **err)
{
        if (image_index_add(b->s, id, b->o->tags, b->o->n_tags, err) < 0)
                return -1;
        if (!b->o->format && !b->o->n_annotations)
                return 0;
        return image_index_set_build_info(b->s, id, b->o->format, b->o->annotations,
                                          b->o->n_annotations, err);
}

/* The key of the commit: the target's last step and what commit adds to its config. Its
 * entry names the image, so a build whose every step hit gives the same image id again,
 * created time included (as buildah tags the cached image of the last step). */
static int commit_key(struct build *b, const struct stage_result *res, char ret[KDIGEST_STRLEN],
                      struct kerr **err)
{
        struct builder_key k;
        int r = builder_key_begin(&k, res->key, "COMMIT", err);

        if (r < 0)
                return r;
        builder_key_add(&k, "platform", "", b->arch);
        for (size_t i = 0; i < b->o->n_labels; i++)
                builder_key_add(&k, "label", "", b->o->labels[i]);
        r = builder_key_finish(&k, ret, NULL, err);
        builder_key_release(&k);
        return r;
}

static int commit_image(struct build *b, struct stage_result *res, char ret_id[KDIGEST_STRLEN],
                        struct kerr **err)
{
        struct image_config *cfg = res->cfg;
        struct kbuf data = KBUF_INIT;
        struct image_cache_entry e = {0};
        char ckey[KDIGEST_STRLEN] = "";
        int r;

        if (b->cache_write && commit_key(b, res, ckey, err) < 0)
                return -1;
        if (ckey[0] && b->cache_read && image_cache_get(b->s, ckey, &e, NULL) == 0) {
                memcpy(ret_id, e.image, KDIGEST_STRLEN);
                image_cache_entry_release(&e);
                return name_image(b, ret_id, err);
        }

        replace_str(&cfg->created, b->created);
        /* A base's platform (or FROM --platform's) stays; scratch gets the host's. */
        if (!cfg->architecture)
                replace_str(&cfg->architecture, b->arch);
        if (!cfg->os)
                replace_str(&cfg->os, "linux");
        for (size_t i = 0; i < b->o->n_labels; i++) {
                const char *l = b->o->labels[i];
                const char *eq = strchr(l, '=');
                _cleanup_free_ char *key = kstrndup(l, eq ? (size_t)(eq - l) : strlen(l));

                image_config_set_label(cfg, key, eq ? eq + 1 : "");
        }
        if (image_config_serialize(cfg, &data, err) < 0)
                return -1;
        r = image_blob_put(b->s, data.data, data.len, ret_id, err);
        kbuf_release(&data);
        if (r < 0)
                return r;
        if (ckey[0]) {
                memcpy(e.parent, res->key, KDIGEST_STRLEN);
                memcpy(e.image, ret_id, KDIGEST_STRLEN);
                if (image_cache_put(b->s, ckey, &e, err) < 0)
                        return kerr_wrap(err, "step cache");
        }
        return name_image(b, ret_id, err);
}

/* ---- scheduling the stages ----
 *
 * Stages name only earlier stages, so index order is an order of the graph. With one job,
 * or when no two needed stages are independent, they build one after another in this
 * process. Otherwise each builds in a worker process (jobs.c) once the stages it names are
 * done, at most jobs at a time, and hands back its result as result_encode writes it. */

/* The stat cache only saves work: a build that could not save it still built. */
static void statcache_close(struct build *b)
{
        struct kerr *e = NULL;

        if (!b->statcache)
                return;
        if (image_statcache_save(b->statcache, &e) < 0)
                klog_debug("%s", e->msg);
        kerr_free(e);
        image_statcache_free(b->statcache);
        b->statcache = NULL;
}

/* A stage's result as a worker hands it back: a line with its key, a line with the number
 * of its chain ids, a line for each, then its config (compact JSON). */
static int result_encode(const struct stage_result *res, struct kbuf *out, struct kerr **err)
{
        kbuf_printf(out, "%s\n%zu\n", res->key, res->chain.n);
        for (size_t i = 0; i < res->chain.n; i++)
                kbuf_printf(out, "%s\n", res->chain.v[i]);
        return image_config_serialize(res->cfg, out, err);
}

/* The next line of [*p, end) (without its newline), or NULL when there is none. */
static char *next_line(const char **p, const char *end)
{
        const char *nl = memchr(*p, '\n', (size_t)(end - *p));
        char *line;

        if (!nl)
                return NULL;
        line = kstrndup(*p, (size_t)(nl - *p));
        *p = nl + 1;
        return line;
}

static int result_decode(const char *data, size_t len, struct stage_result *res, struct kerr **err)
{
        const char *p = data ? data : "", *end = p + len;
        _cleanup_free_ char *key = next_line(&p, end), *count = next_line(&p, end);
        char *stop = NULL;
        unsigned long n;

        if (!key || !count || strlen(key) >= KDIGEST_STRLEN)
                goto bad;
        n = strtoul(count, &stop, 10);
        if (!*count || *stop)
                goto bad;
        for (unsigned long i = 0; i < n; i++) {
                _cleanup_free_ char *c = next_line(&p, end);

                if (!c || !kdigest_valid(c))
                        goto bad;
                strv_push(&res->chain, c);
        }
        res->cfg = image_config_parse(p, (size_t)(end - p), "a stage's config", err);
        if (!res->cfg) {
                result_release(res);
                return -1;
        }
        memcpy(res->key, key, strlen(key) + 1);
        res->built = true;
        return 0;
bad:
        result_release(res);
        return kerr_set(err, 0, KERR_INTERNAL, "a worker's answer is malformed");
}

struct stage_job {
        struct build *b;
        size_t idx;
};

/* Runs in the worker: builds the stage on the results of the stages it names. */
static int stage_worker(void *ctx, struct kbuf *out, struct kerr **err)
{
        const struct stage_job *sj = ctx;
        struct build *b = sj->b;
        int r;

        b->worker = true;
        r = run_stage(b, sj->idx, err);
        if (r == 0)
                r = result_encode(&b->results[sj->idx], out, err);
        statcache_close(b);
        return r;
}

static size_t max_jobs(const struct builder_opts *o)
{
        long cpus;

        if (o->jobs)
                return o->jobs;
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        return cpus > 1 ? (size_t)cpus : 1;
}

/* True when two needed stages could build at once: neither needs the other. */
static bool stages_independent(const struct build *b, const bool *needed)
{
        size_t n = b->f->n_stages;
        _cleanup_free_ bool *reach = kcalloc(n * n, sizeof(*reach));

        /* reach[i * n + j]: i needs j, directly or through others (all earlier than i). */
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++) {
                        if (!b->deps[i * n + j])
                                continue;
                        reach[i * n + j] = true;
                        for (size_t k = 0; k < j; k++)
                                reach[i * n + k] = reach[i * n + k] || reach[j * n + k];
                }
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        if (needed[i] && needed[j] && !reach[j * n + i])
                                return true;
        return false;
}

static bool deps_done(const struct build *b, size_t idx, const bool *done)
{
        for (size_t j = 0; j < idx; j++)
                if (b->deps[idx * b->f->n_stages + j] && !done[j])
                        return false;
        return true;
}

/* The stage's name in its workers' prefix: FROM's AS name, or its index. */
static char *stage_label(const struct build *b, size_t idx)
{
        struct kbuf l = KBUF_INIT;

        if (b->f->stages[idx].name)
                kbuf_puts(&l, b->f->stages[idx].name);
        else
                kbuf_printf(&l, "%zu", idx);
        return kbuf_detach(&l);
}

static int build_parallel(struct build *b, const bool *needed, size_t target, size_t jobs,
                          struct kerr **err)
{
        size_t n = b->f->n_stages;
        _cleanup_free_ bool *started = kcalloc(n, sizeof(*started));
        _cleanup_free_ bool *done = kcalloc(n, sizeof(*done));
        _cleanup_free_ struct stage_job *sj = kcalloc(n, sizeof(*sj));
        struct builder_jobs *j = builder_jobs_new(b->s, err);
        int r = 0;

        if (!j)
                return -1;
        klog_debug("build: stages build in workers, %zu at a time", jobs);
        while (r == 0) {
                struct kbuf answer = KBUF_INIT;
                size_t id = 0;

                for (size_t i = 0; i <= target && r == 0 && builder_jobs_running(j) < jobs; i++) {
                        _cleanup_free_ char *label = NULL;

                        if (!needed[i] || started[i] || !deps_done(b, i, done))
                                continue;
                        sj[i] = (struct stage_job){.b = b, .idx = i};
                        label = stage_label(b, i);
                        r = builder_jobs_start(j, i, label, stage_worker, &sj[i], err);
                        started[i] = true;
                }
                if (r < 0 || builder_jobs_running(j) == 0)
                        break;
                r = builder_jobs_wait(j, &id, &answer, err);
                if (r == 0)
                        r = result_decode(answer.data, answer.len, &b->results[id], err);
                kbuf_release(&answer);
                if (r == 0)
                        done[id] = true;
        }
        /* On a failure, the stages still building are stopped here. */
        builder_jobs_free(j);
        if (r == 0 && !done[target])
                r = kerr_set(err, 0, KERR_INTERNAL, "the target stage was not built");
        return r;
}

int builder_build(struct image_store *s, const struct builder_opts *o, char ret_id[KDIGEST_STRLEN],
                  struct kerr **err)
{
        struct build b = {.s = s, .o = o};
        struct kbuf data = KBUF_INIT;
        _cleanup_free_ char *name = NULL;
        _cleanup_free_ bool *needed = NULL;
        size_t target = 0;
        char id[KDIGEST_STRLEN];
        int r = -1;

        if (builder_read_containerfile(o->context_dir, o->file, &name, &data, err) < 0)
                return -1;
        b.f = parser_parse(name, data.data, data.len, err);
        kbuf_release(&data);
        if (!b.f)
                return -1;
        b.created = format_time(o->timestamp);
        b.cache_write = !o->no_layers;
        b.cache_read = !o->no_layers && !o->no_cache;
        init_platform(&b);
        if (parse_build_args(&b, err) < 0 || eval_meta_args(&b, err) < 0 ||
            find_target(&b, &target, err) < 0)
                goto out;
        needed = kcalloc(b.f->n_stages, sizeof(*needed));
        b.deps = kcalloc(b.f->n_stages * b.f->n_stages, sizeof(*b.deps));
        if (mark_needed(&b, target, needed, err) < 0)
                goto out;
        for (size_t i = 0; i < b.f->n_stages; i++)
                b.n_needed += needed[i];
        b.results = kcalloc(b.f->n_stages, sizeof(*b.results));
        if (max_jobs(o) > 1 && stages_independent(&b, needed)) {
                if (build_parallel(&b, needed, target, max_jobs(o), err) < 0)
                        goto out;
        } else {
                for (size_t i = 0; i <= target; i++) {
                        if (!needed[i])
                                continue;
                        if (run_stage(&b, i, err) < 0)
                                goto out;
                }
        }
        progress(&b, "COMMIT%s%s", o->n_tags ? " " : "", o->n_tags ? o->tags[0] : "");
        if (commit_image(&b, &b.results[target], id, err) < 0)
                goto out;
        progress(&b, "--> %.12s", id + 7);
        memcpy(ret_id, id, KDIGEST_STRLEN);
        r = 0;
out:
        for (size_t i = 0; b.results && i < b.f->n_stages; i++)
                result_release(&b.results[i]);
        free(b.results);
        free(b.deps);
        statcache_close(&b);
        builder_context_free(b.ctx);
        strv_release(&b.build_args);
        strv_release(&b.meta);
        strv_release(&b.platform);
        free(b.created);
        parser_file_free(b.f);
        return r;
}

/* ---- rootfs views, COPY/ADD and WORKDIR ---- */

/* A view over the layers of chain (bottom first), writing into upper_fd (-1: read-only).
 * A deep stack has its bottom part flattened, as for RUN: the view holds an fd per layer
 * and looks each name up in every layer that has its directory. */
static struct builder_rootfs *open_view(struct build *b, const struct strv *chain, int upper_fd,
                                        struct kerr **err)
{
        struct builder_rootfs *r;
        int *fds = NULL;
        size_t n = 0;

        if (builder_flat_open(b->s, (const char *const *)chain->v, chain->n, &fds, &n, err) < 0)
                return NULL;
        r = builder_rootfs_new(fds, n, upper_fd, err);
        for (size_t i = 0; i < n; i++)
                kfs_close(fds[i]);
        free(fds);
        return r;
}

/* SOURCE_DATE_EPOCH / --timestamp: no time in the layer is later than the clamp, parent
 * directories whose mtime changed while the step wrote into them included. */
static int clamp_times(int dirfd, int64_t clamp, struct kerr **err)
{
        DIR *d;
        struct dirent *de;
        struct stat st;
        struct timespec ts[2] = {{.tv_sec = clamp}, {.tv_sec = clamp}};
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3), r = 0;

        if (fd < 0)
                return kerr_set(err, errno, KERR_IO, "duplicate a directory fd");
        d = fdopendir(fd);
        if (!d) {
                kfs_close(fd);
                return kerr_set(err, errno, KERR_IO, "read a layer directory");
        }
        while (r == 0 && (de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = kerr_set(err, errno, KERR_IO, "stat '%s'", de->d_name);
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd, de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0) {
                                r = kerr_set(err, errno, KERR_IO, "open '%s'", de->d_name);
                                break;
                        }
                        r = clamp_times(sub, clamp, err);
                        kfs_close(sub);
                        if (r < 0)
                                break;
                }
                if (st.st_mtim.tv_sec >= clamp &&
                    utimensat(dirfd, de->d_name, ts, AT_SYMLINK_NOFOLLOW) < 0 &&
                    errno != EOPNOTSUPP)
                        r = kerr_set(err, errno, KERR_IO, "set the times of '%s'", de->d_name);
        }
        closedir(d);
        return r;
}

/* Runs fn on a fresh upper dir over the stage's layers, then commits what it wrote. */
typedef int (*step_fn)(struct stage_run *sr, struct builder_rootfs *view, void *arg,
                       struct kerr **err);

static int layer_step(struct stage_run *sr, step_fn fn, void *arg, const char *created_by,
                      struct kerr **err)
{
        struct build *b = sr->b;
        _cleanup_free_ char *upper = NULL;
        _cleanup_close_ int ufd = -1;
        struct builder_rootfs *view = NULL;
        int r;

        if (image_store_mkdtemp(b->s, &upper, err) < 0)
                return -1;
        ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ufd < 0) {
                r = kerr_set(err, errno, KERR_IO, "open '%s'", upper);
                goto fail;
        }
        view = open_view(b, &sr->res->chain, ufd, err);
        if (!view) {
                r = -1;
                goto fail;
        }
        r = fn(sr, view, arg, err);
        builder_rootfs_free(view);
        if (r == 0 && b->o->timestamp >= 0)
                r = clamp_times(ufd, b->o->timestamp, err);
        if (r < 0)
                goto fail;
        return commit_layer(b, sr->res, upper, created_by, err);
fail:
        image_store_rmtree(upper, NULL);
        return r;
}

/* The directories WORKDIR creates belong to the stage's USER, as in BuildKit and buildah;
 * a user or group the image's account files do not name gives root, as in buildah. */
static int workdir_fn(struct stage_run *sr, struct builder_rootfs *view, void *arg,
                      struct kerr **err)
{
        const char *user = sr->res->cfg->user;
        uid_t uid = 0;
        gid_t gid = 0;

        if (user && *user) {
                struct kerr *e = NULL;

                if (builder_resolve_chown(view, user, &uid, &gid, &e) < 0) {
                        if (e->code != KERR_NOTFOUND && e->code != KERR_INVALID) {
                                if (err) {
                                        kerr_free(*err);
                                        *err = e;
                                } else {
                                        kerr_free(e);
                                }
                                return kerr_wrap(err, "resolve USER '%s'", user);
                        }
                        kerr_free(e);
                        uid = 0;
                        gid = 0;
                }
        }
        return builder_rootfs_mkdir_p(view, arg, 0755, uid, gid, err);
}

static int stage_workdir_create(struct stage_run *sr, const char *dir, struct kerr **err)
{
        struct builder_rootfs *view = open_view(sr->b, &sr->res->chain, -1, err);
        struct kbuf by = KBUF_INIT;
        struct stat st;
        struct kerr *miss = NULL;
        int r;

        if (!view)
                return -1;
        r = builder_rootfs_stat(view, dir, true, &st, NULL, &miss);
        builder_rootfs_free(view);
        kbuf_printf(&by, "/bin/sh -c #(nop) WORKDIR %s", dir);
        if (r == 0 && S_ISDIR(st.st_mode)) {
                image_config_add_history(sr->res->cfg, sr->b->created, by.data, true);
                r = 0;
        } else if (r == 0 || (miss && miss->code == KERR_NOTFOUND)) {
                r = layer_step(sr, workdir_fn, (void *)dir, by.data, err);
        } else {
                r = -1;
                if (err) {
                        kerr_free(*err);
                        *err = miss;
                        miss = NULL;
                }
        }
        kerr_free(miss);
        kbuf_release(&by);
        return r;
}

struct copy_arg {
        const struct parser_instr *in;
        struct builder_copy_src src;
        struct builder_copy_opts opts;
};

static int copy_fn(struct stage_run *sr, struct builder_rootfs *view, void *arg, struct kerr **err)
{
        struct copy_arg *ca = arg;

        (void)sr;
        return builder_copy(view, &ca->src, &ca->opts, err);
}

static const char *flag_value(const struct parser_instr *in, const char *name)
{
        const struct parser_flag *fl = parser_instr_flag(in, name);

        return fl ? (fl->value ? fl->value : "true") : NULL;
}

/* The source of COPY --from: an earlier stage, or an image (from the store or a
 * transport), as a read-only view. */
static struct builder_rootfs *from_view(struct stage_run *sr, const char *ref,
                                        struct stage_result *tmp, struct kerr **err)
{
        struct build *b = sr->b;
        long dep = stage_ref(b, sr->idx, ref);

        if (dep >= 0)
                return open_view(b, &b->results[dep].chain, -1, err);
        if (resolve_base(b, sr->idx, ref, tmp, NULL, err) < 0) {
                kerr_wrap(err, "--from='%s'", ref);
                return NULL;
        }
        return open_view(b, &tmp->chain, -1, err);
}

static bool is_url(const char *s)
{
        return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static size_t count_urls(const struct strv *srcs)
{
        size_t n = 0;

        for (size_t i = 0; i < srcs->n; i++)
                if (is_url(srcs->v[i]) || strstr(srcs->v[i], "://") ||
                    strncmp(srcs->v[i], "git@", 4) == 0)
                        n++;
        return n;
}

/* The file name ADD gives a download: the last segment of the URL's path. */
static char *url_file_name(const char *url, struct kerr **err)
{
        const char *p = strstr(url, "://") + 3;
        size_t end = strcspn(p, "?#");
        const char *path = memchr(p, '/', end);
        const char *last;
        char *name;

        if (!path) {
                kerr_set(err, 0, KERR_INVALID, "cannot name the file downloaded from '%s'", url);
                return NULL;
        }
        while (end > (size_t)(path - p) + 1 && p[end - 1] == '/')
                end--;
        last = p + end;
        while (last > path && last[-1] != '/')
                last--;
        name = kstrndup(last, (size_t)(p + end - last));
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
                kerr_set(err, 0, KERR_INVALID, "cannot name the file downloaded from '%s'", url);
                free(name);
                return NULL;
        }
        return name;
}

static int verify_checksum(int fd, const char *url, const char *checksum, struct kerr **err)
{
        struct kdigest *d;
        char got[KDIGEST_STRLEN], buf[65536];
        ssize_t n;
        int r = -1;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return kerr_set(err, errno, KERR_IO, "rewind the download of '%s'", url);
        d = kdigest_new(err);
        if (!d)
                return -1;
        while ((n = kfs_read_all(fd, buf, sizeof(buf))) > 0)
                kdigest_update(d, buf, (size_t)n);
        if (n < 0)
                kerr_set(err, errno, KERR_IO, "read the download of '%s'", url);
        else if (kdigest_final(d, got, err) == 0 && strcmp(got, checksum) != 0)
                kerr_set(err, 0, KERR_DIGEST, "'%s' has digest %s, not the expected %s", url, got,
                         checksum);
        else if (n == 0)
                r = 0;
        kdigest_free(d);
        return r;
}

/* Downloads each URL of srcs into a fresh directory under the name ADD gives it (mode
 * 0600, the server's Last-Modified time), verifies --checksum, and replaces the URLs in
 * srcs by those names. */
static int fetch_urls(struct build *b, struct strv *srcs, const char *checksum, char **ret_dir,
                      struct kerr **err)
{
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dfd = -1;

        for (size_t i = 0; i < srcs->n; i++)
                if (!is_url(srcs->v[i]))
                        return kerr_set(err, 0, KERR_UNSUPPORTED,
                                        "ADD '%s': only http and https URLs can be downloaded",
                                        srcs->v[i]);
        if (checksum && srcs->n != 1)
                return kerr_set(err, 0, KERR_INVALID, "--checksum needs exactly one URL");
        if (checksum && !kdigest_valid(checksum))
                return kerr_set(err, 0, KERR_INVALID,
                                "--checksum '%s' is not sha256: and 64 hex digits", checksum);
        if (image_store_mkdtemp(b->s, &dir, err) < 0)
                return -1;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                kerr_set(err, errno, KERR_IO, "open '%s'", dir);
                goto fail;
        }
        for (size_t i = 0; i < srcs->n; i++) {
                _cleanup_free_ char *name = url_file_name(srcs->v[i], err);
                _cleanup_close_ int fd = -1;
                uint64_t size = 0;
                int64_t mtime = -1;

                if (!name)
                        goto fail;
                fd = openat(dfd, name, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0) {
                        kerr_set(err, errno, KERR_IO, "create '%s' in '%s'", name, dir);
                        goto fail;
                }
                if (registry_http_fetch(srcs->v[i], fd, 0, &size, &mtime, err) < 0)
                        goto fail;
                if (checksum && verify_checksum(fd, srcs->v[i], checksum, err) < 0)
                        goto fail;
                if (mtime >= 0) {
                        struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};

                        futimens(fd, ts);
                }
                free(srcs->v[i]);
                srcs->v[i] = TAKE_PTR(name);
        }
        *ret_dir = TAKE_PTR(dir);
        return 0;
fail:
        image_store_rmtree(dir, NULL);
        return -1;
}

/* The stat cache of the build context, opened on first use; NULL when the context's path
 * cannot be known (then every file is hashed). */
static struct image_statcache *context_statcache(struct build *b, struct kerr **err)
{
        _cleanup_free_ char *path = NULL;

        if (b->statcache)
                return b->statcache;
        path = realpath(b->o->context_dir ? b->o->context_dir : ".", NULL);
        if (!path)
                return NULL;
        b->statcache = image_statcache_open(b->s, path, err);
        return b->statcache;
}

/* Adds the files src selects to the step's key. The files of a context that the stat cache
 * does not know are hashed first; unless wait, when the cache cannot have the step anyway
 * (--no-cache, or no build ever ran this instruction after these steps), they are hashed on
 * other cores while the copy runs, and *ret_job is that work, for the caller to finish
 * before it computes the key. */
static int hash_sources(struct stage_run *sr, const struct builder_copy_src *src,
                        const struct builder_copy_opts *opts, bool downloaded, bool wait,
                        struct builder_hash_job **ret_job, struct kerr **err)
{
        struct build *b = sr->b;
        struct image_statcache *sc = NULL;
        struct builder_hash_job *job = NULL;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        bool background;
        size_t left;

        *ret_job = NULL;
        if (src->context) {
                if (builder_key_scan(&sr->key, src, opts, err) < 0)
                        return -1;
                if (!downloaded && sr->key.n_files) {
                        sc = context_statcache(b, err);
                        if (!sc && err && *err)
                                return -1;
                }
                /* --no-cache trusts nothing it remembered, the stat cache included. */
                left = builder_key_known(&sr->key, b->cache_read ? sc : NULL);
                if (left) {
                        background = !wait && (!b->cache_read ||
                                               !image_cache_has_inputs(b->s, sr->key.partial));
                        if (builder_hash_start(&sr->key, src->context,
                                               background ? (cpus > 2 ? (unsigned)cpus - 1 : 1) : 0,
                                               &job, err) < 0)
                                return -1;
                        if (background) {
                                *ret_job = job;
                                return 0;
                        }
                        if (builder_hash_finish(job, sc, err) < 0)
                                return -1;
                }
        }
        return 0;
}

/* Keys a COPY/ADD on its sources and looks it up (step_probe's answer), unless the hashing
 * goes on in *ret_job. */
static int key_sources(struct stage_run *sr, const struct parser_instr *in,
                       const struct builder_copy_src *src, const struct builder_copy_opts *opts,
                       bool downloaded, struct builder_hash_job **ret_job, struct kerr **err)
{
        if (hash_sources(sr, src, opts, downloaded, false, ret_job, err) < 0)
                return -1;
        return *ret_job ? 0 : step_probe(sr, in, err);
}

static int stage_copy(struct stage_run *sr, const struct parser_instr *in, const struct strv *env,
                      struct kerr **err)
{
        struct build *b = sr->b;
        struct copy_arg ca = {.in = in};
        struct strv srcs = {0}, excludes = {0};
        struct builder_copy_heredoc *docs = NULL;
        char **expanded = NULL; /* the bodies expansion changed, by heredoc */
        struct parser_env pe = {(const char *const *)env->v, env->n};
        struct stage_result tmp = {0};
        _cleanup_free_ char *dest = NULL, *from = NULL, *chown = NULL, *chmod = NULL;
        _cleanup_free_ char *by = NULL;
        struct builder_rootfs *from_rootfs = NULL;
        struct builder_context *url_ctx = NULL;
        struct builder_hash_job *job = NULL;
        char *url_dir = NULL;
        size_t n_docs = 0, n_urls = 0;
        bool probed = false; /* the key is known and was looked up */
        int r = -1;

        if (in->n_args < 2)
                return kerr_set(err, 0, KERR_INVALID, "%s requires at least two arguments",
                                parser_kind_name(in->kind));
        if (step_begin(sr, in, err) < 0)
                return -1;
        if (expand(b, env, in->args[in->n_args - 1], &dest, err) < 0)
                goto out;
        docs = kcalloc(in->n_heredocs + 1, sizeof(*docs));
        expanded = kcalloc(in->n_heredocs + 1, sizeof(*expanded));
        for (size_t i = 0; i + 1 < in->n_args; i++) {
                const char *a = in->args[i];
                const struct parser_heredoc *h = NULL;

                /* "<<EOF" names the next heredoc body (quotes and "-" were the parser's). */
                if (!in->json && a[0] == '<' && a[1] == '<' && n_docs < in->n_heredocs)
                        h = &in->heredocs[n_docs];
                if (h) {
                        const char *data = h->content;

                        /* As buildkit: the body is expanded unless the delimiter was quoted,
                         * with quotes kept as text. */
                        if (h->expand) {
                                char *v = NULL;

                                if (parser_expand_heredoc(h->content, &pe, &v, err) < 0) {
                                        kerr_wrap(err, "heredoc '%s'", h->name);
                                        goto out;
                                }
                                data = expanded[n_docs] = v;
                        }
                        docs[n_docs].name = h->name;
                        docs[n_docs].data = data;
                        docs[n_docs].len = strlen(data);
                        n_docs++;
                        continue;
                }
                {
                        _cleanup_free_ char *v = NULL;

                        if (expand(b, env, a, &v, err) < 0)
                                goto out;
                        strv_push(&srcs, v);
                }
        }
        for (size_t i = 0; i < in->n_flags; i++) {
                const struct parser_flag *fl = &in->flags[i];
                char **slot = NULL;

                if (strcmp(fl->name, "exclude") == 0) {
                        _cleanup_free_ char *v = NULL;

                        if (expand(b, env, fl->value ? fl->value : "", &v, err) < 0)
                                goto out;
                        strv_push(&excludes, v);
                        continue;
                }
                if (strcmp(fl->name, "from") == 0)
                        slot = &from;
                else if (strcmp(fl->name, "chown") == 0)
                        slot = &chown;
                else if (strcmp(fl->name, "chmod") == 0)
                        slot = &chmod;
                else if (strcmp(fl->name, "keep-git-dir") == 0)
                        return kerr_set(err, 0, KERR_UNSUPPORTED,
                                        "ADD --keep-git-dir: kiln cannot fetch git sources yet");
                if (!slot)
                        continue;
                free(*slot);
                *slot = NULL;
                if (expand(b, env, fl->value ? fl->value : "", slot, err) < 0)
                        goto out;
        }
        n_urls = count_urls(&srcs);
        if (n_urls && in->kind == PARSER_COPY) {
                r = kerr_set(err, 0, KERR_INVALID,
                             "COPY does not take URLs ('%s'); use ADD to download", srcs.v[0]);
                goto out;
        }
        if (n_urls && (n_urls != srcs.n || from)) {
                r = kerr_set(err, 0, KERR_INVALID,
                             "ADD cannot mix URLs with local or --from sources");
                goto out;
        }
        if (!n_urls && flag_value(in, "checksum")) {
                r = kerr_set(err, 0, KERR_INVALID, "--checksum is only for ADD of a URL");
                goto out;
        }
        if (sr->keyed) {
                b->rec = NULL;
                for (size_t i = 0; i < n_docs; i++)
                        builder_key_add(&sr->key, "heredoc", docs[i].name, docs[i].data);
        }
        if (sr->keyed && n_urls && flag_value(in, "checksum")) {
                /* The checksum names what will be downloaded: a hit needs no download. */
                r = step_probe(sr, in, err);
                if (r != 0) {
                        r = r < 0 ? r : 0;
                        goto out;
                }
                probed = true;
                r = -1;
        }
        if (n_urls) {
                if (fetch_urls(b, &srcs, flag_value(in, "checksum"), &url_dir, err) < 0)
                        goto out;
                url_ctx = builder_context_open(url_dir, NULL, err);
                if (!url_ctx)
                        goto out;
        }
        if (from) {
                from_rootfs = from_view(sr, from, &tmp, err);
                if (!from_rootfs)
                        goto out;
                ca.src.rootfs = from_rootfs;
                ca.src.name = from;
                if (sr->keyed) {
                        /* What is copied is a function of the source's layers. */
                        long dep = stage_ref(b, sr->idx, from);
                        const struct strv *chain = dep >= 0 ? &b->results[dep].chain : &tmp.chain;

                        builder_key_add(&sr->key, "from", from,
                                        chain->n ? chain->v[chain->n - 1] : "");
                        if (dep >= 0)
                                strv_push(&sr->deps, b->results[dep].key);
                }
        } else if (url_ctx) {
                ca.src.context = url_ctx;
                ca.src.name = "the downloaded files";
        } else {
                if (!b->ctx) {
                        b->ctx = builder_context_open(b->o->context_dir ? b->o->context_dir : ".",
                                                      b->o->ignorefile, err);
                        if (!b->ctx)
                                goto out;
                }
                ca.src.context = b->ctx;
        }
        /* Downloaded archives are not unpacked, as in docker. */
        ca.opts.add = in->kind == PARSER_ADD && !n_urls;
        ca.opts.srcs = (const char *const *)srcs.v;
        ca.opts.n_srcs = srcs.n;
        ca.opts.heredocs = docs;
        ca.opts.n_heredocs = n_docs;
        ca.opts.dest = dest;
        ca.opts.workdir = sr->res->cfg->working_dir;
        ca.opts.chown = chown;
        ca.opts.chmod = chmod;
        ca.opts.excludes = (const char *const *)excludes.v;
        ca.opts.n_excludes = excludes.n;
        ca.opts.parents = flag_value(in, "parents") && strcmp(flag_value(in, "parents"), "false");
        ca.opts.link = flag_value(in, "link") && strcmp(flag_value(in, "link"), "false");
        ca.opts.mtime_clamp = b->o->timestamp;
        by = nop_created_by(in);
        if (sr->keyed && !probed) {
                r = key_sources(sr, in, &ca.src, &ca.opts, url_ctx != NULL, &job, err);
                if (r != 0) {
                        r = r < 0 ? r : 0;
                        goto out;
                }
        }
        r = layer_step(sr, copy_fn, &ca, by, err);
        if (job) {
                int h = builder_hash_finish(job, url_ctx ? NULL : b->statcache, r < 0 ? NULL : err);

                job = NULL;
                if (r == 0 && h < 0)
                        r = -1;
                if (r == 0)
                        r = step_key(sr, in, false, err);
        }
        if (r == 0)
                r = step_end(sr, err);
out:
        if (job)
                builder_hash_finish(job, NULL, NULL);
        builder_context_free(url_ctx);
        if (url_dir)
                image_store_rmtree(url_dir, NULL);
        free(url_dir);
        builder_rootfs_free(from_rootfs);
        result_release(&tmp);
        strv_release(&srcs);
        strv_release(&excludes);
        for (size_t i = 0; expanded && i < n_docs; i++)
                free(expanded[i]);
        free(expanded);
        free(docs);
        return r;
}
