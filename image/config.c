/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/kjson.h"
#include "common/utf8.h"

#include "common/banned.h"

/*
 * An image config is kept as C fields plus `extra`: the parsed document with every field
 * that the C fields carry removed. What stays is what kiln does not model (docker's
 * "container_config", "ArgsEscaped", "os.version", …) and what the C fields cannot tell
 * apart (a null list, an empty Env, "empty_layer": false). Nested parts keep their own
 * leftovers in place: extra["config"] holds the unknown members of "config" (and a leftover
 * "Healthcheck" object), extra["rootfs"] those of "rootfs", and extra["history"] is an array
 * with the leftovers of each history entry, by index. Serialising starts from a copy of
 * extra and sets the C fields over it, so parse -> serialise keeps every byte of meaning.
 */

json_t *image_json_string(const char *s)
{
        json_t *j = json_string(s);
        struct kbuf b = KBUF_INIT;
        size_t n = strlen(s);

        if (j)
                return j;
        /* Not UTF-8: replace the bad bytes with U+FFFD, as Go's encoder does. */
        for (size_t i = 0; i < n;) {
                uint32_t cp;

                i += kutf8_decode(s + i, n - i, &cp);
                kutf8_put(&b, cp);
        }
        j = json_string(b.data ? b.data : "");
        kbuf_release(&b);
        if (!j)
                abort();
        return j;
}

static void strv_free(char **v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* A NULL-terminated copy (so an empty list is not NULL). */
static char **strv_dup(char *const *v, size_t n)
{
        char **r;

        if (!v)
                return NULL;
        r = kcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                r[i] = kstrdup(v[i]);
        return r;
}

static char *strdup_or_null(const char *s)
{
        return s ? kstrdup(s) : NULL;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
        *v = kreallocarray(*v, *n + 2, sizeof(char *));
        (*v)[(*n)++] = kstrdup(s);
        (*v)[*n] = NULL;
}

static void healthcheck_free(struct image_healthcheck *h)
{
        if (!h)
                return;
        strv_free(h->test, h->n_test);
        free(h);
}

static struct image_healthcheck *healthcheck_dup(const struct image_healthcheck *h)
{
        struct image_healthcheck *r;

        if (!h)
                return NULL;
        r = kcalloc(1, sizeof(*r));
        *r = *h;
        r->test = strv_dup(h->test, h->n_test);
        return r;
}

struct image_config *image_config_new(void)
{
        return kcalloc(1, sizeof(struct image_config));
}

void image_config_free(struct image_config *c)
{
        if (!c)
                return;
        free(c->created);
        free(c->author);
        free(c->architecture);
        free(c->os);
        free(c->variant);
        free(c->user);
        strv_free(c->env, c->n_env);
        strv_free(c->entrypoint, c->n_entrypoint);
        strv_free(c->cmd, c->n_cmd);
        strv_free(c->shell, c->n_shell);
        free(c->working_dir);
        strv_free(c->exposed_ports, c->n_exposed_ports);
        strv_free(c->volumes, c->n_volumes);
        for (size_t i = 0; i < c->n_labels; i++) {
                free(c->labels[i].key);
                free(c->labels[i].value);
        }
        free(c->labels);
        free(c->stop_signal);
        healthcheck_free(c->healthcheck);
        strv_free(c->onbuild, c->n_onbuild);
        strv_free(c->diff_ids, c->n_diff_ids);
        for (size_t i = 0; i < c->n_history; i++) {
                free(c->history[i].created);
                free(c->history[i].created_by);
                free(c->history[i].author);
                free(c->history[i].comment);
        }
        free(c->history);
        json_decref(c->extra);
        free(c);
}

DEFINE_CLEANUP(struct image_config *, image_config_free)

struct image_config *image_config_dup(const struct image_config *c)
{
        struct image_config *r;

        if (!c)
                return NULL;
        r = image_config_new();
        r->created = strdup_or_null(c->created);
        r->author = strdup_or_null(c->author);
        r->architecture = strdup_or_null(c->architecture);
        r->os = strdup_or_null(c->os);
        r->variant = strdup_or_null(c->variant);
        r->user = strdup_or_null(c->user);
        r->env = strv_dup(c->env, c->n_env);
        r->n_env = c->n_env;
        r->has_entrypoint = c->has_entrypoint;
        r->has_cmd = c->has_cmd;
        r->has_shell = c->has_shell;
        r->entrypoint = strv_dup(c->entrypoint, c->n_entrypoint);
        r->n_entrypoint = c->n_entrypoint;
        r->cmd = strv_dup(c->cmd, c->n_cmd);
        r->n_cmd = c->n_cmd;
        r->shell = strv_dup(c->shell, c->n_shell);
        r->n_shell = c->n_shell;
        r->working_dir = strdup_or_null(c->working_dir);
        r->exposed_ports = strv_dup(c->exposed_ports, c->n_exposed_ports);
        r->n_exposed_ports = c->n_exposed_ports;
        r->volumes = strv_dup(c->volumes, c->n_volumes);
        r->n_volumes = c->n_volumes;
        if (c->n_labels) {
                r->labels = kcalloc(c->n_labels, sizeof(*r->labels));
                for (size_t i = 0; i < c->n_labels; i++) {
                        r->labels[i].key = kstrdup(c->labels[i].key);
                        r->labels[i].value = kstrdup(c->labels[i].value);
                }
        }
        r->n_labels = c->n_labels;
        r->stop_signal = strdup_or_null(c->stop_signal);
        r->healthcheck = healthcheck_dup(c->healthcheck);
        r->onbuild = strv_dup(c->onbuild, c->n_onbuild);
        r->n_onbuild = c->n_onbuild;
        r->diff_ids = strv_dup(c->diff_ids, c->n_diff_ids);
        r->n_diff_ids = c->n_diff_ids;
        if (c->n_history) {
                r->history = kcalloc(c->n_history, sizeof(*r->history));
                for (size_t i = 0; i < c->n_history; i++) {
                        const struct image_history *h = &c->history[i];

                        r->history[i].created = strdup_or_null(h->created);
                        r->history[i].created_by = strdup_or_null(h->created_by);
                        r->history[i].author = strdup_or_null(h->author);
                        r->history[i].comment = strdup_or_null(h->comment);
                        r->history[i].empty_layer = h->empty_layer;
                }
        }
        r->n_history = c->n_history;
        if (c->extra) {
                r->extra = json_deep_copy(c->extra);
                if (!r->extra)
                        abort();
        }
        return r;
}

/* ---- parsing ---- */

struct pctx {
        const char *name;
        struct kerr **err;
};

static int bad_type(struct pctx *p, const char *where, const char *key, const char *want)
{
        return kerr_set(p->err, 0, KERR_INVALID, "%s: %s%s%s: expected %s", p->name, where,
                        *where ? "." : "", key, want);
}

/* Moves a string member out of obj into *ret. Absent or null (which stays in obj): NULL. */
static int take_string(struct pctx *p, json_t *obj, const char *where, const char *key, char **ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return bad_type(p, where, key, "a string");
        *ret = kstrdup(json_string_value(v));
        json_object_del(obj, key);
        return 0;
}

/* Moves an array of strings out of obj. *ret_has says it was there and not null. An empty
 * list stays in obj too when keep_empty (for fields whose C form cannot say "present"). */
static int take_strv(struct pctx *p, json_t *obj, const char *where, const char *key,
                     bool keep_empty, char ***ret, size_t *ret_n, bool *ret_has)
{
        json_t *v = json_object_get(obj, key), *e;
        char **r;
        size_t i;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v))
                return bad_type(p, where, key, "an array of strings");
        r = kcalloc(json_array_size(v) + 1, sizeof(char *));
        json_array_foreach(v, i, e)
        {
                if (!json_is_string(e)) {
                        strv_free(r, i);
                        return kerr_set(p->err, 0, KERR_INVALID,
                                        "%s: %s%s%s[%zu]: expected a string", p->name, where,
                                        *where ? "." : "", key, i);
                }
                r[i] = kstrdup(json_string_value(e));
        }
        *ret = r;
        *ret_n = json_array_size(v);
        if (ret_has)
                *ret_has = true;
        if (!(keep_empty && *ret_n == 0))
                json_object_del(obj, key);
        return 0;
}

/* An object used as a set ({"80/tcp": {}}): its keys, in the document's order. */
static int take_set(struct pctx *p, json_t *obj, const char *where, const char *key, char ***ret,
                    size_t *ret_n)
{
        json_t *v = json_object_get(obj, key), *e;
        const char *k;
        char **r;
        size_t n = 0;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_object(v))
                return bad_type(p, where, key, "an object");
        r = kcalloc(json_object_size(v) + 1, sizeof(char *));
        json_object_foreach(v, k, e)
        {
                if (!json_is_object(e)) {
                        strv_free(r, n);
                        return kerr_set(p->err, 0, KERR_INVALID,
                                        "%s: %s.%s['%s']: expected an object", p->name, where, key,
                                        k);
                }
                r[n++] = kstrdup(k);
        }
        *ret = r;
        *ret_n = n;
        if (n > 0)
                json_object_del(obj, key);
        return 0;
}

static int take_labels(struct pctx *p, json_t *obj, struct image_config *c)
{
        json_t *v = json_object_get(obj, "Labels"), *e;
        const char *k;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_object(v))
                return bad_type(p, "config", "Labels", "an object");
        c->labels = kcalloc(json_object_size(v) + 1, sizeof(*c->labels));
        json_object_foreach(v, k, e)
        {
                if (!json_is_string(e))
                        return kerr_set(p->err, 0, KERR_INVALID,
                                        "%s: config.Labels['%s']: expected a string", p->name, k);
                c->labels[c->n_labels].key = kstrdup(k);
                c->labels[c->n_labels].value = kstrdup(json_string_value(e));
                c->n_labels++;
        }
        if (c->n_labels > 0)
                json_object_del(obj, "Labels");
        return 0;
}

static int take_int(struct pctx *p, json_t *obj, const char *key, long long min, long long max,
                    long long *ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return bad_type(p, "config.Healthcheck", key, "an integer in range");
        *ret = json_integer_value(v);
        json_object_del(obj, key);
        return 0;
}

static int take_healthcheck(struct pctx *p, json_t *obj, struct image_config *c)
{
        json_t *v = json_object_get(obj, "Healthcheck");
        struct image_healthcheck *h;
        long long retries = 0;
        bool has_test = false;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_object(v))
                return bad_type(p, "config", "Healthcheck", "an object");
        h = c->healthcheck = kcalloc(1, sizeof(*h));
        if (take_strv(p, v, "config.Healthcheck", "Test", false, &h->test, &h->n_test, &has_test) <
                    0 ||
            take_int(p, v, "Interval", LLONG_MIN, LLONG_MAX, &h->interval) < 0 ||
            take_int(p, v, "Timeout", LLONG_MIN, LLONG_MAX, &h->timeout) < 0 ||
            take_int(p, v, "StartPeriod", LLONG_MIN, LLONG_MAX, &h->start_period) < 0 ||
            take_int(p, v, "StartInterval", LLONG_MIN, LLONG_MAX, &h->start_interval) < 0 ||
            take_int(p, v, "Retries", INT_MIN, INT_MAX, &retries) < 0)
                return -1;
        h->retries = (int)retries;
        /* What is left (unknown members) stays in extra under "Healthcheck". */
        return 0;
}

static int parse_container_config(struct pctx *p, json_t *cc, struct image_config *c)
{
        if (take_string(p, cc, "config", "User", &c->user) < 0 ||
            take_strv(p, cc, "config", "Env", true, &c->env, &c->n_env, NULL) < 0 ||
            take_strv(p, cc, "config", "Entrypoint", false, &c->entrypoint, &c->n_entrypoint,
                      &c->has_entrypoint) < 0 ||
            take_strv(p, cc, "config", "Cmd", false, &c->cmd, &c->n_cmd, &c->has_cmd) < 0 ||
            take_strv(p, cc, "config", "Shell", false, &c->shell, &c->n_shell, &c->has_shell) < 0 ||
            take_string(p, cc, "config", "WorkingDir", &c->working_dir) < 0 ||
            take_set(p, cc, "config", "ExposedPorts", &c->exposed_ports, &c->n_exposed_ports) < 0 ||
            take_set(p, cc, "config", "Volumes", &c->volumes, &c->n_volumes) < 0 ||
            take_labels(p, cc, c) < 0 ||
            take_string(p, cc, "config", "StopSignal", &c->stop_signal) < 0 ||
            take_healthcheck(p, cc, c) < 0 ||
            take_strv(p, cc, "config", "OnBuild", true, &c->onbuild, &c->n_onbuild, NULL) < 0)
                return -1;
        return 0;
}

static int parse_history(struct pctx *p, json_t *hist, struct image_config *c)
{
        json_t *e;
        size_t i;

        c->history = kcalloc(json_array_size(hist) + 1, sizeof(*c->history));
        json_array_foreach(hist, i, e)
        {
                struct image_history *h = &c->history[i];
                char where[32];
                json_t *el;

                if (!json_is_object(e))
                        return kerr_set(p->err, 0, KERR_INVALID,
                                        "%s: history[%zu]: expected an object", p->name, i);
                c->n_history = i + 1;
                snprintf(where, sizeof(where), "history[%zu]", i);
                if (take_string(p, e, where, "created", &h->created) < 0 ||
                    take_string(p, e, where, "created_by", &h->created_by) < 0 ||
                    take_string(p, e, where, "author", &h->author) < 0 ||
                    take_string(p, e, where, "comment", &h->comment) < 0)
                        return -1;
                el = json_object_get(e, "empty_layer");
                if (el && !json_is_null(el)) {
                        if (!json_is_boolean(el))
                                return bad_type(p, where, "empty_layer", "a boolean");
                        h->empty_layer = json_is_true(el);
                        /* An explicit false stays in extra: the C field cannot say it. */
                        if (h->empty_layer)
                                json_object_del(e, "empty_layer");
                }
        }
        return 0;
}

static int parse_rootfs(struct pctx *p, json_t *rootfs, struct image_config *c)
{
        json_t *type = json_object_get(rootfs, "type");

        if (type && !json_is_string(type))
                return bad_type(p, "rootfs", "type", "a string");
        if (type && strcmp(json_string_value(type), "layers") != 0)
                return kerr_set(p->err, 0, KERR_UNSUPPORTED,
                                "%s: rootfs.type '%s' is not supported", p->name,
                                json_string_value(type));
        if (take_strv(p, rootfs, "rootfs", "diff_ids", false, &c->diff_ids, &c->n_diff_ids, NULL) <
            0)
                return -1;
        for (size_t i = 0; i < c->n_diff_ids; i++)
                if (!kdigest_valid(c->diff_ids[i]))
                        return kerr_set(p->err, 0, KERR_INVALID,
                                        "%s: rootfs.diff_ids[%zu]: invalid digest '%s'", p->name, i,
                                        c->diff_ids[i]);
        return 0;
}

struct image_config *image_config_parse(const void *data, size_t len, const char *name,
                                        struct kerr **err)
{
        json_t *root = kjson_load(data, len, name ? name : "config", err);

        return root ? image_config_from_json(root, name, err) : NULL;
}

struct image_config *image_config_from_json(json_t *root, const char *name, struct kerr **err)
{
        _cleanup_(image_config_freep) struct image_config *c = NULL;
        struct pctx p = {name ? name : "config", err};
        json_t *v;

        c = image_config_new();
        c->extra = root;
        if (!json_is_object(root)) {
                kerr_set(err, 0, KERR_INVALID, "%s: an image config must be a JSON object", p.name);
                return NULL;
        }
        if (take_string(&p, root, "", "created", &c->created) < 0 ||
            take_string(&p, root, "", "author", &c->author) < 0 ||
            take_string(&p, root, "", "architecture", &c->architecture) < 0 ||
            take_string(&p, root, "", "os", &c->os) < 0 ||
            take_string(&p, root, "", "variant", &c->variant) < 0)
                return NULL;
        v = json_object_get(root, "config");
        if (v && !json_is_null(v)) {
                if (!json_is_object(v)) {
                        bad_type(&p, "", "config", "an object");
                        return NULL;
                }
                if (parse_container_config(&p, v, c) < 0)
                        return NULL;
        }
        v = json_object_get(root, "rootfs");
        if (v && !json_is_null(v)) {
                if (!json_is_object(v)) {
                        bad_type(&p, "", "rootfs", "an object");
                        return NULL;
                }
                if (parse_rootfs(&p, v, c) < 0)
                        return NULL;
        }
        v = json_object_get(root, "history");
        if (v && !json_is_null(v)) {
                if (!json_is_array(v)) {
                        bad_type(&p, "", "history", "an array");
                        return NULL;
                }
                if (parse_history(&p, v, c) < 0)
                        return NULL;
        }
        return TAKE_PTR(c);
}

/* ---- serialising ---- */

static void set_new(json_t *obj, const char *key, json_t *v)
{
        if (!v || json_object_set_new(obj, key, v) < 0)
                abort();
}

static void set_str(json_t *obj, const char *key, const char *s)
{
        if (s)
                set_new(obj, key, image_json_string(s));
}

static json_t *strv_json(char *const *v, size_t n)
{
        json_t *a = json_array();

        if (!a)
                abort();
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(a, image_json_string(v[i])) < 0)
                        abort();
        return a;
}

static json_t *set_json(char *const *v, size_t n)
{
        json_t *o = json_object();

        if (!o)
                abort();
        for (size_t i = 0; i < n; i++) {
                json_auto_t *k = image_json_string(v[i]);

                set_new(o, json_string_value(k), json_object());
        }
        return o;
}

static json_t *copy_object(json_t *parent, const char *key)
{
        json_t *v = parent ? json_object_get(parent, key) : NULL;
        json_t *r = json_is_object(v) ? json_deep_copy(v) : json_object();

        if (!r)
                abort();
        return r;
}

static bool container_config_empty(const struct image_config *c)
{
        return !c->user && c->n_env == 0 && !c->has_entrypoint && !c->has_cmd && !c->has_shell &&
               !c->working_dir && c->n_exposed_ports == 0 && c->n_volumes == 0 &&
               c->n_labels == 0 && !c->stop_signal && !c->healthcheck && c->n_onbuild == 0;
}

static json_t *healthcheck_json(const struct image_healthcheck *h, json_t *extra_cc)
{
        json_t *o = copy_object(extra_cc, "Healthcheck");

        if (h->test)
                set_new(o, "Test", strv_json(h->test, h->n_test));
        if (h->interval)
                set_new(o, "Interval", json_integer(h->interval));
        if (h->timeout)
                set_new(o, "Timeout", json_integer(h->timeout));
        if (h->start_period)
                set_new(o, "StartPeriod", json_integer(h->start_period));
        if (h->start_interval)
                set_new(o, "StartInterval", json_integer(h->start_interval));
        if (h->retries)
                set_new(o, "Retries", json_integer(h->retries));
        return o;
}

int image_config_serialize(const struct image_config *c, struct kbuf *out, struct kerr **err)
{
        json_t *extra = c->extra;
        json_auto_t *root = json_is_object(extra) ? json_deep_copy(extra) : json_object();
        json_t *extra_cc = json_object_get(extra, "config");
        json_t *extra_hist = json_object_get(extra, "history");
        json_t *cc, *rootfs;
        char *s;

        if (!root)
                abort();
        set_str(root, "created", c->created);
        set_str(root, "author", c->author);
        set_str(root, "architecture", c->architecture);
        set_str(root, "os", c->os);
        set_str(root, "variant", c->variant);

        if (!container_config_empty(c) || json_is_object(extra_cc)) {
                cc = json_is_object(extra_cc) ? json_deep_copy(extra_cc) : json_object();
                if (!cc)
                        abort();
                set_str(cc, "User", c->user);
                if (c->n_env)
                        set_new(cc, "Env", strv_json(c->env, c->n_env));
                if (c->has_entrypoint)
                        set_new(cc, "Entrypoint", strv_json(c->entrypoint, c->n_entrypoint));
                if (c->has_cmd)
                        set_new(cc, "Cmd", strv_json(c->cmd, c->n_cmd));
                if (c->has_shell)
                        set_new(cc, "Shell", strv_json(c->shell, c->n_shell));
                set_str(cc, "WorkingDir", c->working_dir);
                if (c->n_exposed_ports)
                        set_new(cc, "ExposedPorts", set_json(c->exposed_ports, c->n_exposed_ports));
                if (c->n_volumes)
                        set_new(cc, "Volumes", set_json(c->volumes, c->n_volumes));
                if (c->n_labels) {
                        json_t *l = json_object();

                        if (!l)
                                abort();
                        for (size_t i = 0; i < c->n_labels; i++) {
                                json_auto_t *k = image_json_string(c->labels[i].key);

                                set_new(l, json_string_value(k),
                                        image_json_string(c->labels[i].value));
                        }
                        set_new(cc, "Labels", l);
                }
                set_str(cc, "StopSignal", c->stop_signal);
                if (c->healthcheck)
                        set_new(cc, "Healthcheck", healthcheck_json(c->healthcheck, extra_cc));
                else if (json_is_object(json_object_get(cc, "Healthcheck")))
                        json_object_del(cc, "Healthcheck");
                if (c->n_onbuild)
                        set_new(cc, "OnBuild", strv_json(c->onbuild, c->n_onbuild));
                set_new(root, "config", cc);
        }

        rootfs = copy_object(extra, "rootfs");
        if (!json_object_get(rootfs, "type"))
                set_new(rootfs, "type", json_string("layers"));
        set_new(rootfs, "diff_ids", strv_json(c->diff_ids, c->n_diff_ids));
        set_new(root, "rootfs", rootfs);

        if (c->n_history || json_is_array(extra_hist)) {
                json_t *hist = json_array();

                if (!hist)
                        abort();
                for (size_t i = 0; i < c->n_history; i++) {
                        const struct image_history *h = &c->history[i];
                        json_t *e = json_array_get(extra_hist, i);

                        e = json_is_object(e) ? json_deep_copy(e) : json_object();
                        if (!e)
                                abort();
                        set_str(e, "created", h->created);
                        set_str(e, "created_by", h->created_by);
                        set_str(e, "author", h->author);
                        set_str(e, "comment", h->comment);
                        if (h->empty_layer)
                                set_new(e, "empty_layer", json_true());
                        if (json_array_append_new(hist, e) < 0)
                                abort();
                }
                set_new(root, "history", hist);
        }

        s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
        if (!s)
                return kerr_set(err, ENOMEM, KERR_INTERNAL, "serialise image config");
        kbuf_puts(out, s);
        free(s);
        return 0;
}

/* ---- helpers ---- */

void image_config_set_env(struct image_config *c, const char *name, const char *value)
{
        size_t nl = strlen(name);
        struct kbuf b = KBUF_INIT;

        for (size_t i = 0; i < c->n_env; i++) {
                if (strncmp(c->env[i], name, nl) != 0 || c->env[i][nl] != '=')
                        continue;
                free(c->env[i]);
                if (value) {
                        kbuf_printf(&b, "%s=%s", name, value);
                        c->env[i] = kbuf_detach(&b);
                        return;
                }
                memmove(&c->env[i], &c->env[i + 1], (c->n_env - i - 1) * sizeof(char *));
                c->env[--c->n_env] = NULL;
                return;
        }
        if (!value)
                return;
        kbuf_printf(&b, "%s=%s", name, value);
        c->env = kreallocarray(c->env, c->n_env + 2, sizeof(char *));
        c->env[c->n_env++] = kbuf_detach(&b);
        c->env[c->n_env] = NULL;
}

const char *image_config_get_env(const struct image_config *c, const char *name)
{
        size_t nl = strlen(name);

        for (size_t i = 0; i < c->n_env; i++)
                if (strncmp(c->env[i], name, nl) == 0 && c->env[i][nl] == '=')
                        return c->env[i] + nl + 1;
        return NULL;
}

void image_config_set_label(struct image_config *c, const char *key, const char *value)
{
        for (size_t i = 0; i < c->n_labels; i++) {
                if (strcmp(c->labels[i].key, key) != 0)
                        continue;
                if (value) {
                        free(c->labels[i].value);
                        c->labels[i].value = kstrdup(value);
                        return;
                }
                free(c->labels[i].key);
                free(c->labels[i].value);
                memmove(&c->labels[i], &c->labels[i + 1],
                        (c->n_labels - i - 1) * sizeof(*c->labels));
                c->n_labels--;
                return;
        }
        if (!value)
                return;
        c->labels = kreallocarray(c->labels, c->n_labels + 1, sizeof(*c->labels));
        c->labels[c->n_labels].key = kstrdup(key);
        c->labels[c->n_labels].value = kstrdup(value);
        c->n_labels++;
}

void image_config_add_history(struct image_config *c, const char *created, const char *created_by,
                              bool empty_layer)
{
        struct image_history *h;

        c->history = kreallocarray(c->history, c->n_history + 1, sizeof(*c->history));
        h = &c->history[c->n_history++];
        memset(h, 0, sizeof(*h));
        h->created = strdup_or_null(created);
        h->created_by = strdup_or_null(created_by);
        h->empty_layer = empty_layer;
}

void image_config_add_diff_id(struct image_config *c, const char *diff_id)
{
        strv_push(&c->diff_ids, &c->n_diff_ids, diff_id);
}
