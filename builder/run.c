/* SPDX-License-Identifier: Apache-2.0 */
#include "builder/builder.h"
#include "builder/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/idmap.h"
#include "parser/parser.h"
#include "sandbox/sandbox.h"
#include "common/banned.h"

/* ---- the command line of a RUN ---- */

void builder_run_cmd_release(struct builder_run_cmd *c)
{
        for (size_t i = 0; i < c->argc; i++)
                free(c->argv[i]);
        free(c->argv);
        free(c->script_name);
        free(c->script);
        *c = (struct builder_run_cmd){0};
}

static void cmd_push(struct builder_run_cmd *c, const char *s)
{
        c->argv = kreallocarray(c->argv, c->argc + 2, sizeof(*c->argv));
        c->argv[c->argc++] = kstrdup(s);
        c->argv[c->argc] = NULL;
}

/* True when arg is nothing but the heredoc h: "<<EOF", "<<-EOF", "<<'EOF'", "<<\"EOF\"". */
static bool bare_heredoc(const char *arg, const struct parser_heredoc *h)
{
        const char *p = arg;
        size_t n = strlen(h->name);
        char q = 0;

        while (*p == ' ' || *p == '\t')
                p++;
        if (strncmp(p, "<<", 2) != 0)
                return false;
        p += 2;
        if (*p == '-')
                p++;
        if (*p == '\'' || *p == '"')
                q = *p++;
        if (strncmp(p, h->name, n) != 0)
                return false;
        p += n;
        if (q && *p++ != q)
                return false;
        while (*p == ' ' || *p == '\t' || *p == '\n')
                p++;
        return *p == '\0';
}

int builder_run_command(const struct parser_instr *in, const char *const *shell, size_t n_shell,
                        struct builder_run_cmd *ret, struct kerr **err)
{
        static const char *const default_shell[] = {"/bin/sh", "-c"};
        struct builder_run_cmd c = {0};

        if (in->n_args == 0)
                return kerr_set(err, 0, KERR_INVALID, "RUN needs a command");
        if (!shell || n_shell == 0) {
                shell = default_shell;
                n_shell = 2;
        }
        if (in->json) {
                /* Exec form: the words as written, no shell, no expansion. */
                for (size_t i = 0; i < in->n_args; i++)
                        cmd_push(&c, in->args[i]);
                *ret = c;
                return 0;
        }
        if (in->n_args != 1)
                return kerr_set(err, 0, KERR_INTERNAL, "RUN in shell form has %zu arguments",
                                in->n_args);
        if (in->n_heredocs == 1 && bare_heredoc(in->args[0], &in->heredocs[0])) {
                const struct parser_heredoc *h = &in->heredocs[0];
                if (strncmp(h->content, "#!", 2) == 0) {
                        /* A script with its own interpreter: run as a file, as BuildKit
                         * does, from a read-only /dev/pipes. */
                        struct kbuf p = KBUF_INIT;
                        kbuf_printf(&p, "/dev/pipes/%s", h->name);
                        cmd_push(&c, p.data);
                        kbuf_release(&p);
                        c.script_name = kstrdup(h->name);
                        c.script = kstrdup(h->content);
                        *ret = c;
                        return 0;
                }
                /* The body alone is the shell's script. */
                for (size_t i = 0; i < n_shell; i++)
                        cmd_push(&c, shell[i]);
                cmd_push(&c, h->content);
                *ret = c;
                return 0;
        }
        struct kbuf script = KBUF_INIT;
        kbuf_puts(&script, in->args[0]);
        /* Heredocs within a longer command are given back to the shell to handle. */
        for (size_t i = 0; i < in->n_heredocs; i++)
                kbuf_printf(&script, "\n%s%s", in->heredocs[i].content, in->heredocs[i].name);
        for (size_t i = 0; i < n_shell; i++)
                cmd_push(&c, shell[i]);
        cmd_push(&c, script.data);
        kbuf_release(&script);
        *ret = c;
        return 0;
}

/* ---- --secret id=ID,src=PATH | id=ID,env=VAR ---- */

void builder_secret_release(struct builder_secret *s)
{
        free(s->id);
        free(s->src);
        free(s->env);
        *s = (struct builder_secret){0};
}

int builder_secret_parse(const char *spec, struct builder_secret *ret, struct kerr **err)
{
        _cleanup_free_ char *copy = kstrdup(spec);
        struct builder_secret s = {0};
        char *save = copy;
        const char *type = NULL;

        while (save && *save) {
                char *item = save;
                char *comma = strchr(item, ',');
                if (comma) {
                        *comma = '\0';
                        save = comma + 1;
                } else {
                        save = NULL;
                }
                char *eq = strchr(item, '=');
                if (!eq) {
                        builder_secret_release(&s);
                        return kerr_set(err, 0, KERR_USAGE, "--secret '%s': '%s' is not KEY=VALUE",
                                        spec, item);
                }
                *eq = '\0';
                const char *v = eq + 1;
                char **slot = NULL;
                if (strcmp(item, "id") == 0)
                        slot = &s.id;
                else if (strcmp(item, "src") == 0 || strcmp(item, "source") == 0)
                        slot = &s.src;
                else if (strcmp(item, "env") == 0)
                        slot = &s.env;
                else if (strcmp(item, "type") == 0)
                        type = v;
                else {
                        builder_secret_release(&s);
                        return kerr_set(err, 0, KERR_USAGE, "--secret '%s': unknown key '%s'", spec,
                                        item);
                }
                if (slot) {
                        free(*slot);
                        *slot = kstrdup(v);
                }
        }
        if (type && strcmp(type, "file") != 0 && strcmp(type, "env") != 0) {
                builder_secret_release(&s);
                return kerr_set(err, 0, KERR_USAGE, "--secret '%s': type must be file or env",
                                spec);
        }
        if (type && strcmp(type, "env") == 0 && s.src && !s.env) {
                /* type=env,src=VAR names the variable with src, as podman allows. */
                s.env = TAKE_PTR(s.src);
        }
        if (!s.id || !*s.id) {
                builder_secret_release(&s);
                return kerr_set(err, 0, KERR_USAGE, "--secret '%s': id is required", spec);
        }
        if (!s.src && !s.env) {
                /* As podman: a bare id takes the environment variable of that name. */
                s.env = kstrdup(s.id);
        }
        if (s.src && s.env) {
                builder_secret_release(&s);
                return kerr_set(err, 0, KERR_USAGE,
                                "--secret '%s': give either src (a file) or env (a variable)",
                                spec);
        }
        *ret = s;
        return 0;
}

/* ---- running a RUN step ---- */

/* The mounts of a step, and the strings and locks they hold. */
struct run_mounts {
        struct sandbox_mount *v;
        size_t n;
        char **paths;
        size_t n_paths;
        int *locks;
        size_t n_locks;
};

static const char *keep_path(struct run_mounts *m, char *p)
{
        m->paths = kreallocarray(m->paths, m->n_paths + 1, sizeof(*m->paths));
        m->paths[m->n_paths++] = p;
        return p;
}

static struct sandbox_mount *add_mount(struct run_mounts *m)
{
        m->v = kreallocarray(m->v, m->n + 1, sizeof(*m->v));
        m->v[m->n] = (struct sandbox_mount){0};
        return &m->v[m->n++];
}

static void run_mounts_release(struct run_mounts *m)
{
        for (size_t i = 0; i < m->n_paths; i++)
                free(m->paths[i]);
        free(m->paths);
        for (size_t i = 0; i < m->n_locks; i++)
                kfs_close(m->locks[i]);
        free(m->locks);
        free(m->v);
        *m = (struct run_mounts){0};
}

static const char *mount_target(struct run_mounts *m, const struct builder_run_opts *o,
                                const char *target)
{
        return keep_path(m, builder_path_join(o->cwd ? o->cwd : "/", target));
}

/* With an ignore file, what the ignore file excludes must not be seen through the mount
 * either (docker never sends it): the selected files are copied, as COPY would, into a
 * directory of the step's, and that is bound instead. */
static int filtered_copy(const struct builder_run_opts *o, const char *src, bool is_dir,
                         const char *dir, size_t n, char **ret, struct kerr **err)
{
        struct kbuf p = KBUF_INIT;
        struct builder_rootfs *view = NULL;
        _cleanup_close_ int fd = -1;
        const char *srcs[] = {src};
        int r = -1;

        kbuf_printf(&p, "%s/bind-%zu", dir, n);
        if (mkdir(p.data, 0755) < 0) {
                kerr_set(err, errno, KERR_IO, "create '%s'", p.data);
                goto out;
        }
        fd = open(p.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        view = fd < 0 ? NULL : builder_rootfs_new(NULL, 0, fd, err);
        if (!view)
                goto out;
        struct builder_copy_src cs = {.context = o->ctx};
        struct builder_copy_opts co = {
                .srcs = srcs, .n_srcs = 1, .dest = is_dir ? "/" : "/f", .mtime_clamp = -1};
        if (builder_copy(view, &cs, &co, err) < 0)
                goto out;
        if (!is_dir)
                kbuf_puts(&p, "/f");
        *ret = kbuf_detach(&p);
        r = 0;
out:
        builder_rootfs_free(view);
        kbuf_release(&p);
        return r;
}

/* For a bind with rw: dir/bind-N/{upper,work}, where the sandbox's overlay puts what the
 * step writes, gone with the step's dir. The upper dir is the merged tree's root, so it
 * takes the mode and owner of the top lower's. */
static int discard_dirs(const char *dir, size_t n, const char *top, struct run_mounts *m,
                        const char **ret_upper, const char **ret_work, struct kerr **err)
{
        struct kbuf base = KBUF_INIT, up = KBUF_INIT, wk = KBUF_INIT;
        struct stat st;
        int r = -1;

        kbuf_printf(&base, "%s/bind-%zu", dir, n);
        kbuf_printf(&up, "%s/upper", base.data);
        kbuf_printf(&wk, "%s/work", base.data);
        if (stat(top, &st) < 0) {
                kerr_set(err, errno, KERR_IO, "stat '%s'", top);
                goto out;
        }
        if (mkdir(base.data, 0700) < 0 || mkdir(up.data, 0755) < 0 || mkdir(wk.data, 0700) < 0 ||
            chown(up.data, st.st_uid, st.st_gid) < 0 || chmod(up.data, st.st_mode & 07777) < 0) {
                kerr_set(err, errno, KERR_IO, "create the directories of a writable bind in '%s'",
                         base.data);
                goto out;
        }
        *ret_upper = keep_path(m, kbuf_detach(&up));
        *ret_work = keep_path(m, kbuf_detach(&wk));
        r = 0;
out:
        kbuf_release(&base);
        kbuf_release(&up);
        kbuf_release(&wk);
        return r;
}

/* A mount of subdir inside the merged tree of lowers (kept by m), writable with the
 * writes thrown away when rw. */
static int add_overlay(const struct builder_run_opts *o, const struct parser_mount *pm,
                       const char *dir, char **lowers, size_t n, char *subdir, struct run_mounts *m,
                       struct kerr **err)
{
        size_t idx = m->n;
        const char *upper = NULL, *work = NULL;

        keep_path(m, (char *)lowers);
        for (size_t i = 0; i < n; i++)
                keep_path(m, lowers[i]);
        keep_path(m, subdir);
        if (!pm->readonly && discard_dirs(dir, idx, lowers[n - 1], m, &upper, &work, err) < 0)
                return -1;
        struct sandbox_mount *sm = add_mount(m);
        sm->type = SANDBOX_MOUNT_OVERLAY;
        sm->lowers = (const char *const *)lowers;
        sm->n_lowers = n;
        sm->upper = upper;
        sm->work = work;
        sm->subdir = subdir;
        sm->target = mount_target(m, o, pm->target);
        sm->readonly = pm->readonly;
        return 0;
}

/* --mount=type=bind from the context: read-only by default; with rw the step may write,
 * and what it writes is thrown away with the step (the context stays as it is). */
static int bind_from_context(const struct builder_run_opts *o, const struct parser_mount *pm,
                             const char *dir, struct run_mounts *m, struct kerr **err)
{
        _cleanup_free_ char *res = NULL;
        struct stat st;
        const char *src = pm->source ? pm->source : "/";
        int r;

        if (!o->ctx || !o->context_dir)
                return kerr_set(err, 0, KERR_INTERNAL, "--mount=type=bind: no build context");
        /* Resolved inside the context, as COPY's sources are: nothing outside it is bound. */
        if (builder_path_resolve(builder_context_lookup, o->ctx, src, true, &res, err) < 0)
                return kerr_wrap(err, "--mount=type=bind,source=%s", src);
        r = builder_context_lookup(o->ctx, res, &st, NULL, err);
        if (r == -ENOENT || r == -ENOTDIR || builder_context_ignored(o->ctx, res))
                return kerr_set(err, ENOENT, KERR_NOTFOUND,
                                "--mount=type=bind,source=%s: not found in the build context", src);
        if (r < 0)
                return -1;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                return kerr_set(err, EINVAL, KERR_INVALID,
                                "--mount=type=bind,source=%s: neither a file nor a directory", src);
        if (builder_context_has_ignore(o->ctx)) {
                /* The copy is the step's own: a writable bind writes into it, and it goes
                 * with the step's dir. */
                char *copy = NULL;
                if (filtered_copy(o, res, S_ISDIR(st.st_mode), dir, m->n, &copy, err) < 0)
                        return kerr_wrap(err, "--mount=type=bind,source=%s", src);
                struct sandbox_mount *sm = add_mount(m);
                sm->type = SANDBOX_MOUNT_BIND;
                sm->source = keep_path(m, copy);
                sm->target = mount_target(m, o, pm->target);
                sm->readonly = pm->readonly;
                return 0;
        }
        /* The context dir as the one lower dir, and source opened inside it again by the
         * sandbox (RESOLVE_IN_ROOT): a symlink swapped in meanwhile still cannot lead out. */
        char **lowers = kcalloc(2, sizeof(*lowers));
        lowers[0] = realpath(o->context_dir, NULL);
        if (!lowers[0]) {
                free(lowers);
                return kerr_set(err, errno, KERR_IO, "resolve the build context '%s'",
                                o->context_dir);
        }
        if (add_overlay(o, pm, dir, lowers, 1, TAKE_PTR(res), m, err) < 0)
                return kerr_wrap(err, "--mount=type=bind,source=%s", src);
        return 0;
}

/* --mount=type=bind,from=STAGE|IMAGE: source in the merged tree of its layers. */
static int bind_from_stage(const struct builder_run_opts *o, const struct parser_mount *pm,
                           const char *dir, struct run_mounts *m, struct kerr **err)
{
        char **chain = NULL, *subdir = NULL;
        size_t n = 0;

        if (!o->bind_from)
                return kerr_set(err, 0, KERR_INTERNAL, "--mount=type=bind,from: no resolver");
        if (o->bind_from(o->bind_ctx, pm->from, pm->source ? pm->source : "/", &chain, &n, &subdir,
                         err) < 0)
                return kerr_wrap(err, "--mount=type=bind,from=%s", pm->from);
        char **lowers = NULL;
        size_t n_lowers = 0;
        /* As the step's own root: a deep stack has its bottom part flattened. */
        int r = builder_flat_lowers(o->s, (const char *const *)chain, n, &lowers, &n_lowers, err);
        for (size_t i = 0; i < n; i++)
                free(chain[i]);
        free(chain);
        if (r < 0) {
                free(subdir);
                return kerr_wrap(err, "--mount=type=bind,from=%s", pm->from);
        }
        if (add_overlay(o, pm, dir, lowers, n_lowers, subdir, m, err) < 0)
                return kerr_wrap(err, "--mount=type=bind,from=%s", pm->from);
        return 0;
}

static int cache_mount(const struct builder_run_opts *o, const struct parser_mount *pm,
                       const char *dir, struct run_mounts *m, struct kerr **err)
{
        const char *id = pm->id ? pm->id : pm->target;
        const char *sharing = pm->sharing ? pm->sharing : "shared";
        mode_t mode = pm->mode >= 0 ? (mode_t)pm->mode : 0755;
        uid_t uid = pm->uid >= 0 ? (uid_t)pm->uid : 0;
        gid_t gid = pm->gid >= 0 ? (gid_t)pm->gid : 0;
        bool lock = strcmp(sharing, "shared") != 0;
        bool wait = strcmp(sharing, "locked") == 0;
        char *path = NULL;
        int lfd = -1;

        if (pm->from || pm->source)
                return kerr_set(err, 0, KERR_UNSUPPORTED,
                                "--mount=type=cache with from or source is not supported yet");
        if (image_store_cache_mount(o->s, id, mode, uid, gid, lock, wait, &path, &lfd, err) < 0) {
                struct kerr *e = err ? *err : NULL;
                if (!e || e->errnum != EWOULDBLOCK)
                        return -1;
                /* private: another build has it, so this one gets a new, empty one. */
                kerr_free(e);
                *err = NULL;
                struct kbuf p = KBUF_INIT;
                kbuf_printf(&p, "%s/cache-%zu", dir, m->n);
                if (mkdir(p.data, 0700) < 0 || chown(p.data, uid, gid) < 0 ||
                    chmod(p.data, mode) < 0) {
                        kbuf_release(&p);
                        return kerr_set(err, errno, KERR_IO, "create a private cache mount");
                }
                path = kbuf_detach(&p);
        }
        if (lfd >= 0) {
                m->locks = kreallocarray(m->locks, m->n_locks + 1, sizeof(*m->locks));
                m->locks[m->n_locks++] = lfd;
        }
        struct sandbox_mount *sm = add_mount(m);
        sm->type = SANDBOX_MOUNT_BIND;
        sm->source = keep_path(m, path);
        sm->target = mount_target(m, o, pm->target);
        sm->readonly = pm->readonly;
        return 0;
}

static const struct builder_secret *find_secret(const struct builder_run_opts *o, const char *id)
{
        for (size_t i = 0; i < o->n_secrets; i++)
                if (strcmp(o->secrets[i].id, id) == 0)
                        return &o->secrets[i];
        return NULL;
}

/* Extra environment of the process (secrets with env=): never in the config or the key. */
struct envv {
        char **v;
        size_t n;
};

static void envv_push(struct envv *e, char *s)
{
        e->v = kreallocarray(e->v, e->n + 2, sizeof(*e->v));
        e->v[e->n++] = s;
        e->v[e->n] = NULL;
}

static void envv_release(struct envv *e)
{
        for (size_t i = 0; i < e->n; i++) {
                explicit_bzero(e->v[i], strlen(e->v[i]));
                free(e->v[i]);
        }
        free(e->v);
        *e = (struct envv){0};
}

/* Secrets become files of their own in the step's directory (mode and owner as asked),
 * bound read-only into the container: never in the upper dir, the history or the key. */
static int secret_mount(const struct builder_run_opts *o, const struct parser_mount *pm,
                        const char *dir, struct run_mounts *m, struct envv *env, struct kerr **err)
{
        const char *id = pm->id;
        const struct builder_secret *sec;
        struct kbuf data = KBUF_INIT;
        struct kbuf p = KBUF_INIT;
        int r = -1;

        if (!id || !*id) {
                /* BuildKit's default id is the target's base name. */
                id = pm->target ? strrchr(pm->target, '/') : NULL;
                id = id ? id + 1 : pm->target;
        }
        if (!id || !*id)
                return kerr_set(err, 0, KERR_INVALID, "--mount=type=secret needs an id");
        sec = find_secret(o, id);
        if (!sec) {
                if (pm->required)
                        return kerr_set(err, ENOENT, KERR_NOTFOUND,
                                        "secret '%s' is required: give it with --secret "
                                        "id=%s,src=FILE",
                                        id, id);
                return 0;
        }
        if (sec->src) {
                if (kfs_read_file(AT_FDCWD, sec->src, 1u << 20, &data, err) < 0)
                        return kerr_wrap(err, "read secret '%s'", id);
        } else {
                const char *v = getenv(sec->env);
                if (!v)
                        return kerr_set(err, ENOENT, KERR_NOTFOUND,
                                        "secret '%s': the environment variable '%s' is not set", id,
                                        sec->env);
                kbuf_puts(&data, v);
        }
        if (pm->env) {
                struct kbuf e = KBUF_INIT;
                kbuf_printf(&e, "%s=%.*s", pm->env, (int)data.len, data.data ? data.data : "");
                envv_push(env, kbuf_detach(&e));
        }
        if (pm->env && !pm->target) {
                r = 0;
                goto out;
        }
        kbuf_printf(&p, "%s/secret-%zu", dir, m->n);
        {
                mode_t mode = pm->mode >= 0 ? (mode_t)pm->mode : 0400;
                _cleanup_close_ int fd =
                        open(p.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 || kfs_write_all(fd, data.data ? data.data : "", data.len) < 0 ||
                    fchown(fd, pm->uid >= 0 ? (uid_t)pm->uid : 0,
                           pm->gid >= 0 ? (gid_t)pm->gid : 0) < 0 ||
                    fchmod(fd, mode) < 0) {
                        kerr_set(err, errno, KERR_IO, "write secret '%s' for the step", id);
                        goto out;
                }
        }
        struct sandbox_mount *sm = add_mount(m);
        sm->type = SANDBOX_MOUNT_BIND;
        sm->source = keep_path(m, kbuf_detach(&p));
        {
                struct kbuf t = KBUF_INIT;
                if (pm->target)
                        kbuf_puts(&t, pm->target);
                else
                        kbuf_printf(&t, "/run/secrets/%s", id);
                sm->target = mount_target(m, o, t.data);
                kbuf_release(&t);
        }
        sm->readonly = true;
        r = 0;
out:
        /* The secret's bytes do not outlive the step in kiln's memory either. */
        if (data.data)
                explicit_bzero(data.data, data.len);
        kbuf_release(&data);
        kbuf_release(&p);
        return r;
}

static int mounts_of(const struct builder_run_opts *o, const char *dir, struct run_mounts *m,
                     struct envv *env, struct kerr **err)
{
        for (size_t i = 0; i < o->in->n_mounts; i++) {
                const struct parser_mount *pm = &o->in->mounts[i];
                int r = 0;

                switch (pm->type) {
                case PARSER_MOUNT_BIND:
                        if (pm->from)
                                r = bind_from_stage(o, pm, dir, m, err);
                        else
                                r = bind_from_context(o, pm, dir, m, err);
                        break;
                case PARSER_MOUNT_CACHE:
                        r = cache_mount(o, pm, dir, m, err);
                        break;
                case PARSER_MOUNT_TMPFS: {
                        struct sandbox_mount *sm = add_mount(m);
                        sm->type = SANDBOX_MOUNT_TMPFS;
                        sm->target = mount_target(m, o, pm->target);
                        sm->size = pm->size > 0 ? (size_t)pm->size : 0;
                        break;
                }
                case PARSER_MOUNT_SECRET:
                        r = secret_mount(o, pm, dir, m, env, err);
                        break;
                case PARSER_MOUNT_SSH:
                        r = kerr_set(err, 0, KERR_UNSUPPORTED, "--mount=type=ssh is not supported");
                        break;
                }
                if (r < 0)
                        return -1;
        }
        return 0;
}

static char *join_dir(const char *dir, const char *name)
{
        struct kbuf b = KBUF_INIT;

        kbuf_printf(&b, "%s/%s", dir, name);
        return kbuf_detach(&b);
}

int builder_run_step(const struct builder_run_opts *o, char **ret_dir, struct kerr **err)
{
        _cleanup_free_ char *dir = NULL, *upper = NULL, *work = NULL, *etc = NULL;
        struct run_mounts m = {0};
        struct envv extra = {0};
        struct sandbox_result res = {0};
        char **env = NULL;
        size_t n_env = 0;
        int r = -1;

        if (image_store_mkdtemp(o->s, &dir, err) < 0)
                return -1;
        upper = join_dir(dir, "upper");
        work = join_dir(dir, "work");
        etc = join_dir(dir, "etc");
        if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0) {
                kerr_set(err, errno, KERR_IO, "create the step's directories in '%s'", dir);
                goto out;
        }
        if (o->cmd->script) {
                /* A heredoc with a shebang: a read-only /dev/pipes holds it. */
                _cleanup_free_ char *pipes = join_dir(dir, "pipes");
                _cleanup_free_ char *file = NULL;
                _cleanup_close_ int fd = -1;
                if (mkdir(pipes, 0755) < 0) {
                        kerr_set(err, errno, KERR_IO, "create '%s'", pipes);
                        goto out;
                }
                file = join_dir(pipes, o->cmd->script_name);
                fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
                if (fd < 0 || kfs_write_all(fd, o->cmd->script, strlen(o->cmd->script)) < 0 ||
                    fchmod(fd, 0755) < 0) {
                        kerr_set(err, errno, KERR_IO, "write the heredoc script '%s'", file);
                        goto out;
                }
                struct sandbox_mount *sm = add_mount(&m);
                sm->type = SANDBOX_MOUNT_BIND;
                sm->source = keep_path(&m, TAKE_PTR(pipes));
                sm->target = "/dev/pipes";
                sm->readonly = true;
        }
        if (mounts_of(o, dir, &m, &extra, err) < 0)
                goto out;
        for (size_t i = 0; o->env && o->env[i]; i++) {
                env = kreallocarray(env, n_env + 2, sizeof(*env));
                env[n_env++] = (char *)o->env[i];
        }
        for (size_t i = 0; i < extra.n; i++) {
                env = kreallocarray(env, n_env + 2, sizeof(*env));
                env[n_env++] = extra.v[i];
        }
        if (!env)
                env = kcalloc(1, sizeof(*env));
        env[n_env] = NULL;

        struct sandbox_spec spec = {
                .lowers = o->lowers,
                .n_lowers = o->n_lowers,
                .upper = upper,
                .work = work,
                .argv = (const char *const *)o->cmd->argv,
                .env = (const char *const *)env,
                .cwd = o->cwd && *o->cwd ? o->cwd : "/",
                .user = o->user,
                .net = o->net,
                .cap_add = o->cap_add,
                .cap_drop = o->cap_drop,
                .seccomp = o->seccomp,
                .mounts = m.v,
                .n_mounts = m.n,
                .etc_dir = etc,
                .stdin_fd = -1,
                .stdout_fd = o->out_fd,
                .stderr_fd = o->err_fd,
        };
        if (sandbox_run(&spec, &res, err) < 0)
                goto out;
        if (res.signaled || res.status != 0) {
                /* Without subordinate ids a chown in the step fails with EINVAL inside the
                 * container, where kiln cannot see it: say what may have been missing. */
                const char *hint = kidmap_single_id_hint();
                kerr_set(err, 0, KERR_INVALID, "%s %d%s%s%s",
                         res.signaled ? "killed by signal" : "exit status", res.status,
                         hint ? " (kiln's user namespace maps only your own uid and gid, as 0, "
                                "so a step cannot give a file another owner; "
                              : "",
                         hint ? hint : "", hint ? ")" : "");
                goto out;
        }
        r = 0;
out:
        free(env);
        envv_release(&extra);
        run_mounts_release(&m);
        if (r < 0) {
                image_store_rmtree(dir, NULL);
                return -1;
        }
        *ret_dir = TAKE_PTR(dir);
        return 0;
}
