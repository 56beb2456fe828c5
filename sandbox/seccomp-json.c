/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

/* docker's seccomp profile format, parsed into the same tables as kiln's built-in default
 * profile. This is the one file outside image/ and common/kjson.c that uses jansson
 * (ARCHITECTURE.md says why). */

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/kjson.h"
#include "common/banned.h"

#define MAX_PROFILE (16 * 1024 * 1024)

struct sbx_sc_loaded {
        struct sbx_sc_profile profile;
        void **allocs; /* everything the profile points to */
        size_t n_allocs, cap;
};

static void *keep(struct sbx_sc_loaded *l, void *p)
{
        if (l->n_allocs == l->cap) {
                l->cap = l->cap ? 2 * l->cap : 32;
                l->allocs = kreallocarray(l->allocs, l->cap, sizeof(*l->allocs));
        }
        l->allocs[l->n_allocs++] = p;
        return p;
}

void sbx_seccomp_loaded_free(struct sbx_sc_loaded *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n_allocs; i++)
                free(l->allocs[i]);
        free(l->allocs);
        free(l);
}
DEFINE_CLEANUP(struct sbx_sc_loaded *, sbx_seccomp_loaded_free)

const struct sbx_sc_profile *sbx_seccomp_loaded_profile(const struct sbx_sc_loaded *l)
{
        return &l->profile;
}

/* Errors name the file and the place in it: "seccomp profile 'F': syscalls[2].action: …". */
struct ctx {
        const char *path;
        struct sbx_sc_loaded *l;
        struct kerr **err;
};

static int bad(struct ctx *c, const char *where, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int bad(struct ctx *c, const char *where, const char *fmt, ...)
{
        struct kbuf b = KBUF_INIT;
        va_list ap;

        va_start(ap, fmt);
        kbuf_vprintf(&b, fmt, ap);
        va_end(ap);
        kerr_set(c->err, 0, KERR_INVALID, "seccomp profile '%s': %s: %s", c->path, where, b.data);
        kbuf_release(&b);
        return -1;
}

static int parse_action(struct ctx *c, const char *where, json_t *v, json_t *errno_ret,
                        uint32_t *ret)
{
        const char *s = json_string_value(v);
        long long e = EPERM;

        if (!s)
                return bad(c, where, "an action name is required");
        if (errno_ret && !json_is_null(errno_ret)) {
                if (!json_is_integer(errno_ret) || json_integer_value(errno_ret) < 0 ||
                    json_integer_value(errno_ret) > 0xffff)
                        return bad(c, where, "errnoRet must be a number from 0 to 65535");
                e = json_integer_value(errno_ret);
        }
        if (strcmp(s, "SCMP_ACT_ALLOW") == 0)
                *ret = SCMP_ACT_ALLOW;
        else if (strcmp(s, "SCMP_ACT_ERRNO") == 0)
                *ret = SCMP_ACT_ERRNO((uint32_t)e);
        else if (strcmp(s, "SCMP_ACT_KILL") == 0 || strcmp(s, "SCMP_ACT_KILL_THREAD") == 0)
                *ret = SCMP_ACT_KILL;
        else if (strcmp(s, "SCMP_ACT_KILL_PROCESS") == 0)
                *ret = SCMP_ACT_KILL_PROCESS;
        else if (strcmp(s, "SCMP_ACT_TRAP") == 0)
                *ret = SCMP_ACT_TRAP;
        else if (strcmp(s, "SCMP_ACT_TRACE") == 0)
                *ret = SCMP_ACT_TRACE((uint32_t)e);
        else if (strcmp(s, "SCMP_ACT_LOG") == 0)
                *ret = SCMP_ACT_LOG;
        else if (strcmp(s, "SCMP_ACT_NOTIFY") == 0)
                return bad(c, where, "SCMP_ACT_NOTIFY needs a listener, which kiln does not have");
        else
                return bad(c, where, "unknown action '%s'", s);
        return 0;
}

/* "SCMP_ARCH_X86_64" → libseccomp's token. */
static int parse_arch(struct ctx *c, const char *where, json_t *v, uint32_t *ret)
{
        const char *s = json_string_value(v);
        char name[32];
        size_t i;

        if (!s || strncmp(s, "SCMP_ARCH_", 10) != 0 || strlen(s + 10) >= sizeof(name))
                return bad(c, where, "an architecture like SCMP_ARCH_X86_64 is required");
        for (i = 0; s[10 + i]; i++)
                name[i] = (char)(s[10 + i] >= 'A' && s[10 + i] <= 'Z' ? s[10 + i] + 32 : s[10 + i]);
        name[i] = '\0';
        *ret = seccomp_arch_resolve_name(name);
        if (!*ret)
                return bad(c, where, "unknown architecture '%s'", s);
        return 0;
}

static int parse_arches(struct ctx *c, json_t *root)
{
        json_t *list = json_object_get(root, "architectures");
        json_t *map = json_object_get(root, "archMap");
        uint32_t native = seccomp_arch_native();
        uint32_t *v;
        size_t n = 0;

        if (list && !json_is_null(list) && !json_is_array(list))
                return bad(c, "architectures", "an array is required");
        if (map && !json_is_null(map) && !json_is_array(map))
                return bad(c, "archMap", "an array is required");
        if (json_array_size(list) && json_array_size(map))
                return bad(c, "architectures", "give either architectures or archMap, not both");
        v = keep(c->l, kcalloc(json_array_size(list) + 8, sizeof(*v)));
        c->l->profile.arches = v; /* empty: only the native architecture */
        for (size_t i = 0; i < json_array_size(list); i++) {
                char where[64];

                snprintf(where, sizeof(where), "architectures[%zu]", i);
                if (parse_arch(c, where, json_array_get(list, i), &v[n]) < 0)
                        return -1;
                n++;
        }
        for (size_t i = 0; i < json_array_size(map); i++) {
                json_t *e = json_array_get(map, i), *subs;
                char where[96];
                uint32_t arch;

                snprintf(where, sizeof(where), "archMap[%zu].architecture", i);
                if (parse_arch(c, where, json_object_get(e, "architecture"), &arch) < 0)
                        return -1;
                if (arch != native)
                        continue;
                subs = json_object_get(e, "subArchitectures");
                for (size_t k = 0; k < json_array_size(subs) && n < 7; k++) {
                        snprintf(where, sizeof(where), "archMap[%zu].subArchitectures[%zu]", i, k);
                        if (parse_arch(c, where, json_array_get(subs, k), &v[n]) < 0)
                                return -1;
                        n++;
                }
        }
        return 0;
}

static const char *const *parse_strings(struct ctx *c, const char *where, json_t *a)
{
        const char **v;

        if (!json_is_array(a)) {
                bad(c, where, "an array of strings is required");
                return NULL;
        }
        v = keep(c->l, kcalloc(json_array_size(a) + 1, sizeof(*v)));
        for (size_t i = 0; i < json_array_size(a); i++) {
                const char *s = json_string_value(json_array_get(a, i));

                if (!s) {
                        bad(c, where, "element %zu is not a string", i);
                        return NULL;
                }
                v[i] = keep(c->l, kstrdup(s));
        }
        return v;
}

static int parse_cond(struct ctx *c, const char *where, json_t *o, struct sbx_sc_cond *ret)
{
        json_t *caps, *arches, *kernel;
        char w[256];

        if (!o || json_is_null(o))
                return 0;
        if (!json_is_object(o))
                return bad(c, where, "an object is required");
        caps = json_object_get(o, "caps");
        arches = json_object_get(o, "arches");
        kernel = json_object_get(o, "minKernel");
        if (caps && !json_is_null(caps)) {
                snprintf(w, sizeof(w), "%s.caps", where);
                if (!json_is_array(caps))
                        return bad(c, w, "an array of capability names is required");
                for (size_t i = 0; i < json_array_size(caps); i++) {
                        const char *s = json_string_value(json_array_get(caps, i));
                        int cap = s ? sbx_cap_from_name(s) : -1;

                        if (cap < 0)
                                return bad(c, w, "unknown capability '%s'",
                                           s ? s : "(not a string)");
                        ret->caps |= UINT64_C(1) << cap;
                }
        }
        if (arches && !json_is_null(arches)) {
                snprintf(w, sizeof(w), "%s.arches", where);
                ret->arches = parse_strings(c, w, arches);
                if (!ret->arches)
                        return -1;
        }
        if (kernel && !json_is_null(kernel)) {
                const char *s = json_string_value(kernel);
                char extra;

                snprintf(w, sizeof(w), "%s.minKernel", where);
                if (!s || sscanf(s, "%u.%u%c", &ret->min_major, &ret->min_minor, &extra) != 2)
                        return bad(c, w, "a version like \"4.8\" is required");
        }
        return 0;
}

static const struct {
        const char *name;
        enum scmp_compare op;
} ops[] = {
        {"SCMP_CMP_NE", SCMP_CMP_NE},
        {"SCMP_CMP_LT", SCMP_CMP_LT},
        {"SCMP_CMP_LE", SCMP_CMP_LE},
        {"SCMP_CMP_EQ", SCMP_CMP_EQ},
        {"SCMP_CMP_GE", SCMP_CMP_GE},
        {"SCMP_CMP_GT", SCMP_CMP_GT},
        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

static int parse_u64(struct ctx *c, const char *where, json_t *v, uint64_t *ret)
{
        if (!v || json_is_null(v)) {
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return bad(c, where, "a number from 0 up is required");
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

static int parse_args(struct ctx *c, const char *where, json_t *a, struct sbx_sc_rule *r)
{
        struct sbx_sc_arg *v;

        if (!a || json_is_null(a))
                return 0;
        if (!json_is_array(a))
                return bad(c, where, "an array is required");
        if (json_array_size(a) > SBX_SC_MAX_ARGS * 2)
                return bad(c, where, "at most %d conditions are allowed", SBX_SC_MAX_ARGS * 2);
        v = keep(c->l, kcalloc(json_array_size(a) + 1, sizeof(*v)));
        for (size_t i = 0; i < json_array_size(a); i++) {
                json_t *e = json_array_get(a, i);
                json_t *index = json_object_get(e, "index");
                const char *op = json_string_value(json_object_get(e, "op"));
                char w[256];
                size_t k;

                snprintf(w, sizeof(w), "%s[%zu]", where, i);
                if (!json_is_integer(index) || json_integer_value(index) < 0 ||
                    json_integer_value(index) >= SBX_SC_MAX_ARGS)
                        return bad(c, w, "index must be from 0 to %d", SBX_SC_MAX_ARGS - 1);
                v[i].index = (unsigned)json_integer_value(index);
                for (k = 0; k < ARRAY_SIZE(ops); k++)
                        if (op && strcmp(op, ops[k].name) == 0)
                                break;
                if (k == ARRAY_SIZE(ops))
                        return bad(c, w, "unknown operator '%s'", op ? op : "(none)");
                v[i].op = ops[k].op;
                if (parse_u64(c, w, json_object_get(e, "value"), &v[i].value) < 0 ||
                    parse_u64(c, w, json_object_get(e, "valueTwo"), &v[i].value_two) < 0)
                        return -1;
        }
        r->args = v;
        r->n_args = json_array_size(a);
        return 0;
}

static int parse_rule(struct ctx *c, size_t i, json_t *o, struct sbx_sc_rule *r)
{
        json_t *names = json_object_get(o, "names"), *name = json_object_get(o, "name");
        char where[64], w[128];

        snprintf(where, sizeof(where), "syscalls[%zu]", i);
        if (!json_is_object(o))
                return bad(c, where, "an object is required");
        if (names && !json_is_null(names) && name && !json_is_null(name))
                return bad(c, where, "give either names or name, not both");
        snprintf(w, sizeof(w), "%s.names", where);
        if (names && !json_is_null(names)) {
                r->names = parse_strings(c, w, names);
                if (!r->names)
                        return -1;
        } else if (json_is_string(name)) {
                const char **v = keep(c->l, kcalloc(2, sizeof(*v)));

                v[0] = keep(c->l, kstrdup(json_string_value(name)));
                r->names = v;
        } else {
                return bad(c, where, "names is required");
        }
        snprintf(w, sizeof(w), "%s.action", where);
        if (parse_action(c, w, json_object_get(o, "action"), json_object_get(o, "errnoRet"),
                         &r->action) < 0)
                return -1;
        snprintf(w, sizeof(w), "%s.args", where);
        if (parse_args(c, w, json_object_get(o, "args"), r) < 0)
                return -1;
        snprintf(w, sizeof(w), "%s.includes", where);
        if (parse_cond(c, w, json_object_get(o, "includes"), &r->includes) < 0)
                return -1;
        snprintf(w, sizeof(w), "%s.excludes", where);
        return parse_cond(c, w, json_object_get(o, "excludes"), &r->excludes);
}

int sbx_seccomp_load_json(const char *path, struct sbx_sc_loaded **ret, struct kerr **err)
{
        _cleanup_(sbx_seccomp_loaded_freep) struct sbx_sc_loaded *l = kcalloc(1, sizeof(*l));
        struct kbuf data = KBUF_INIT;
        struct ctx c = {path, l, err};
        json_auto_t *root = NULL;
        json_t *calls;
        struct sbx_sc_rule *rules;

        if (kfs_read_file(AT_FDCWD, path, MAX_PROFILE, &data, err) < 0)
                return kerr_wrap(err, "read the seccomp profile");
        root = kjson_load(data.data ? data.data : "", data.len, path, err);
        kbuf_release(&data);
        if (!root)
                return kerr_wrap(err, "seccomp profile");
        if (!json_is_object(root))
                return bad(&c, "top level", "an object is required");
        if (parse_action(&c, "defaultAction", json_object_get(root, "defaultAction"),
                         json_object_get(root, "defaultErrnoRet"), &l->profile.default_action) < 0)
                return -1;
        if (parse_arches(&c, root) < 0)
                return -1;
        calls = json_object_get(root, "syscalls");
        if (calls && !json_is_null(calls) && !json_is_array(calls))
                return bad(&c, "syscalls", "an array is required");
        rules = keep(l, kcalloc(json_array_size(calls) + 1, sizeof(*rules)));
        for (size_t i = 0; i < json_array_size(calls); i++)
                if (parse_rule(&c, i, json_array_get(calls, i), &rules[i]) < 0)
                        return -1;
        l->profile.rules = rules;
        l->profile.n_rules = json_array_size(calls);
        *ret = TAKE_PTR(l);
        return 0;
}
