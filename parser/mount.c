/* SPDX-License-Identifier: Apache-2.0 */
/* RUN --mount=…: a CSV list of key[=value] fields, checked as buildkit's
 * commands_runmount.go checks them, plus the defaults its dispatcher fills in (a secret's
 * target, an ssh mount's id). Values stay unexpanded; fields whose meaning depends on their
 * value (type, sharing, numbers, booleans) cannot hold variables. */
#include "parser/parser.h"
#include "parser/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/banned.h"

struct csv_fields {
        char **v;
        size_t n;
};

static void fields_release(struct csv_fields *c)
{
        for (size_t i = 0; i < c->n; i++)
                free(c->v[i]);
        free(c->v);
}

static void fields_push(struct csv_fields *c, char *s)
{
        c->v = parser_grow(c->v, c->n, sizeof(*c->v));
        c->v[c->n++] = s;
}

/* One record of encoding/csv with its defaults: ',' separates, a field starting with '"' is
 * quoted ("" inside for a quote), and a quote anywhere else is an error. */
static int csv_split(const char *s, struct csv_fields *c, struct kbuf *msg)
{
        size_t i = 0, n = strlen(s);

        for (;;) {
                if (i < n && s[i] == '"') {
                        struct kbuf f = KBUF_INIT;

                        i++;
                        for (;;) {
                                if (i >= n) {
                                        kbuf_release(&f);
                                        kbuf_puts(msg,
                                                  "extraneous or missing '\"' in quoted field");
                                        return -1;
                                }
                                if (s[i] == '"') {
                                        if (i + 1 < n && s[i + 1] == '"') {
                                                kbuf_putc(&f, '"');
                                                i += 2;
                                                continue;
                                        }
                                        i++;
                                        break;
                                }
                                kbuf_putc(&f, s[i++]);
                        }
                        fields_push(c, kbuf_detach(&f));
                        if (i == n)
                                return 0;
                        if (s[i] != ',') {
                                kbuf_puts(msg, "extraneous or missing '\"' in quoted field");
                                return -1;
                        }
                        i++;
                        continue;
                }
                size_t j = i;

                while (j < n && s[j] != ',') {
                        if (s[j] == '"') {
                                kbuf_puts(msg, "bare '\"' in non-quoted field");
                                return -1;
                        }
                        j++;
                }
                fields_push(c, kstrndup(s + i, j - i));
                if (j == n)
                        return 0;
                i = j + 1;
        }
}

void parser_mount_release(struct parser_mount *m)
{
        free(m->target);
        free(m->source);
        free(m->from);
        free(m->id);
        free(m->sharing);
        free(m->env);
        memset(m, 0, sizeof(*m));
}

static const char *const mount_types[] = {"bind", "cache", "tmpfs", "secret", "ssh"};
static const char *const sharing_modes[] = {"shared", "private", "locked"};
static const char *const mount_keys[] = {
        "type",        "from", "source", "target",    "readonly", "id",  "sharing",
        "required",    "size", "mode",   "uid",       "gid",      "src", "dst",
        "destination", "ro",   "rw",     "readwrite", "env",
};

static void set_str(char **dst, const char *v)
{
        free(*dst);
        *dst = kstrdup(v);
}

static void lower(char *s)
{
        for (; *s; s++)
                *s = (char)tolower((unsigned char)*s);
}

static const char *basename_of(const char *p, char *buf, size_t size)
{
        /* Go's path.Base. */
        size_t n = strlen(p), e;

        if (n == 0)
                return ".";
        e = n;
        while (e > 0 && p[e - 1] == '/')
                e--;
        if (e == 0)
                return "/";
        n = e;
        while (n > 0 && p[n - 1] != '/')
                n--;
        if (e - n >= size)
                e = n + size - 1;
        memcpy(buf, p + n, e - n);
        buf[e - n] = '\0';
        return buf;
}

static int field(struct parser_mount *m, const char *fld, bool *ro_auto, struct kbuf *msg)
{
        const char *eq = strchr(fld, '=');
        const char *type = parser_mount_type_name(m->type), *value, *hint;
        bool typed_secret = m->type == PARSER_MOUNT_SECRET || m->type == PARSER_MOUNT_SSH;
        char *key = kstrndup(fld, eq ? (size_t)(eq - fld) : strlen(fld));
        int r = -1;
        bool b;

        lower(key);
        if (!eq) {
                if (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0) {
                        m->readonly = true;
                        *ro_auto = false;
                        r = 0;
                } else if (strcmp(key, "readwrite") == 0 || strcmp(key, "rw") == 0) {
                        m->readonly = false;
                        *ro_auto = false;
                        r = 0;
                } else if (strcmp(key, "required") == 0) {
                        if (typed_secret) {
                                m->required = true;
                                r = 0;
                        } else {
                                kbuf_printf(msg,
                                            "mount key 'required' is not allowed for '%s' "
                                            "mounts",
                                            type);
                        }
                } else {
                        kbuf_printf(msg, "invalid mount field '%s': it must be a key=value pair",
                                    fld);
                }
                free(key);
                return r;
        }
        value = eq + 1;
        if (strcmp(key, "from") == 0) {
                const char *d = strchr(value, '$');

                if (d && d[1] != '\0') {
                        kbuf_puts(msg, "mount 'from' does not support variables (define an "
                                       "alias stage instead)");
                        goto out;
                }
        }
        if (strchr(value, '$') &&
            (strcmp(key, "type") == 0 || strcmp(key, "sharing") == 0 ||
             strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0 ||
             strcmp(key, "readwrite") == 0 || strcmp(key, "rw") == 0 ||
             strcmp(key, "required") == 0 || strcmp(key, "size") == 0 || strcmp(key, "mode") == 0 ||
             strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0)) {
                kbuf_printf(msg, "mount key '%s' does not support variables", key);
                goto out;
        }

        if (strcmp(key, "type") == 0) {
                char *v = kstrdup(value);
                int t = -1;

                lower(v);
                for (size_t i = 0; i < sizeof(mount_types) / sizeof(mount_types[0]); i++)
                        if (strcmp(v, mount_types[i]) == 0)
                                t = (int)i;
                free(v);
                if (t < 0) {
                        hint = parser_suggest(value, mount_types, 5);
                        kbuf_printf(msg, "unsupported mount type '%s'", value);
                        if (hint)
                                kbuf_printf(msg, " (did you mean '%s'?)", hint);
                        goto out;
                }
                m->type = (enum parser_mount_type)t;
        } else if (strcmp(key, "from") == 0) {
                set_str(&m->from, value);
        } else if (strcmp(key, "source") == 0 || strcmp(key, "src") == 0) {
                set_str(&m->source, value);
        } else if (strcmp(key, "target") == 0 || strcmp(key, "dst") == 0 ||
                   strcmp(key, "destination") == 0) {
                set_str(&m->target, value);
        } else if (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0 ||
                   strcmp(key, "readwrite") == 0 || strcmp(key, "rw") == 0) {
                if (parser_parse_bool(value, &b) < 0) {
                        kbuf_printf(msg, "invalid value '%s' for mount key '%s'", value, key);
                        goto out;
                }
                if (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0)
                        m->readonly = b;
                else
                        m->readonly = !b;
                *ro_auto = false;
        } else if (strcmp(key, "required") == 0) {
                if (!typed_secret) {
                        kbuf_printf(msg, "mount key 'required' is not allowed for '%s' mounts",
                                    type);
                        goto out;
                }
                if (parser_parse_bool(value, &m->required) < 0) {
                        kbuf_printf(msg, "invalid value '%s' for mount key '%s'", value, key);
                        goto out;
                }
        } else if (strcmp(key, "size") == 0) {
                if (m->type != PARSER_MOUNT_TMPFS) {
                        kbuf_printf(msg, "mount key 'size' is not allowed for '%s' mounts", type);
                        goto out;
                }
                if (parser_parse_ram_size(value, &m->size) < 0) {
                        kbuf_printf(msg, "invalid value '%s' for mount key '%s'", value, key);
                        goto out;
                }
        } else if (strcmp(key, "id") == 0) {
                set_str(&m->id, value);
        } else if (strcmp(key, "sharing") == 0) {
                char *v = kstrdup(value);
                bool ok = false;

                lower(v);
                for (size_t i = 0; i < sizeof(sharing_modes) / sizeof(sharing_modes[0]); i++)
                        if (strcmp(v, sharing_modes[i]) == 0)
                                ok = true;
                if (!ok) {
                        free(v);
                        hint = parser_suggest(value, sharing_modes, 3);
                        kbuf_printf(msg, "unsupported sharing value '%s'", value);
                        if (hint)
                                kbuf_printf(msg, " (did you mean '%s'?)", hint);
                        goto out;
                }
                free(m->sharing);
                m->sharing = v;
        } else if (strcmp(key, "mode") == 0 || strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
                long long *dst = key[0] == 'm' ? &m->mode : key[0] == 'u' ? &m->uid : &m->gid;

                if (parser_parse_uint32(value, key[0] == 'm' ? 8 : 10, dst) < 0) {
                        kbuf_printf(msg, "invalid value '%s' for mount key '%s'", value, key);
                        goto out;
                }
        } else if (strcmp(key, "env") == 0) {
                set_str(&m->env, value);
        } else {
                hint = parser_suggest(key, mount_keys, sizeof(mount_keys) / sizeof(mount_keys[0]));
                kbuf_printf(msg, "unknown mount key '%s'", key);
                if (hint)
                        kbuf_printf(msg, " (did you mean '%s'?)", hint);
                goto out;
        }
        r = 0;
out:
        free(key);
        return r;
}

static int check(struct parser_mount *m, bool ro_auto, struct kbuf *msg)
{
        const char *type = parser_mount_type_name(m->type);
        bool file_info = m->type == PARSER_MOUNT_SECRET || m->type == PARSER_MOUNT_SSH ||
                         m->type == PARSER_MOUNT_CACHE;
        char buf[256];

        if (!file_info) {
                const char *k = m->mode >= 0 ? "mode" : m->uid >= 0 ? "uid" : "gid";

                if (m->mode >= 0 || m->uid >= 0 || m->gid >= 0) {
                        kbuf_printf(msg, "mount key '%s' is not allowed for '%s' mounts", k, type);
                        return -1;
                }
        }
        if (ro_auto)
                m->readonly = !(m->type == PARSER_MOUNT_CACHE || m->type == PARSER_MOUNT_TMPFS);
        if (m->type == PARSER_MOUNT_SECRET) {
                if (m->from) {
                        kbuf_puts(msg, "secret mounts can not have 'from'");
                        return -1;
                }
                if (m->sharing) {
                        kbuf_puts(msg, "secret mounts can not have 'sharing'");
                        return -1;
                }
                if (!m->source && !m->target && !m->id) {
                        kbuf_puts(msg, "secret mount requires an id, a source or a target");
                        return -1;
                }
                if (m->source && m->id) {
                        kbuf_puts(msg, "secret mount can not have both 'source' and 'id'");
                        return -1;
                }
        }
        if (m->sharing && m->type != PARSER_MOUNT_CACHE) {
                kbuf_printf(msg, "mount key 'sharing' is not allowed for '%s' mounts", type);
                return -1;
        }
        if (m->env && m->type != PARSER_MOUNT_SECRET) {
                kbuf_printf(msg, "mount key 'env' is not allowed for '%s' mounts", type);
                return -1;
        }
        if (!m->target && (m->type == PARSER_MOUNT_BIND || m->type == PARSER_MOUNT_CACHE ||
                           m->type == PARSER_MOUNT_TMPFS)) {
                kbuf_printf(msg, "'%s' mount requires a target", type);
                return -1;
        }

        /* The defaults buildkit's dispatcher fills in. */
        if (m->type == PARSER_MOUNT_CACHE && !m->sharing)
                m->sharing = kstrdup("shared");
        if (m->type == PARSER_MOUNT_SECRET) {
                if (!m->id)
                        m->id = kstrdup(m->source ? m->source
                                                  : basename_of(m->target, buf, sizeof(buf)));
                if (!m->target && !m->env) {
                        struct kbuf t = KBUF_INIT;

                        kbuf_printf(&t, "/run/secrets/%s", basename_of(m->id, buf, sizeof(buf)));
                        m->target = kbuf_detach(&t);
                }
        }
        if (m->type == PARSER_MOUNT_SSH && !m->id)
                m->id = kstrdup("default");
        return 0;
}

int parser_mount_parse(const char *value, struct parser_mount *m, struct kbuf *msg)
{
        struct csv_fields fields = {0};
        bool ro_auto = true;
        int r = -1;

        memset(m, 0, sizeof(*m));
        m->type = PARSER_MOUNT_BIND;
        m->mode = m->uid = m->gid = m->size = -1;
        if (csv_split(value, &fields, msg) < 0)
                goto out;
        for (size_t i = 0; i < fields.n; i++)
                if (field(m, fields.v[i], &ro_auto, msg) < 0)
                        goto out;
        r = check(m, ro_auto, msg);
out:
        fields_release(&fields);
        return r;
}
