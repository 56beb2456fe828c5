/* SPDX-License-Identifier: Apache-2.0 */
#include "common/kjson.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/utf8.h"
#include "common/banned.h"

void kjson_writer_init(struct kjson_writer *w, struct kbuf *out, bool pretty)
{
        memset(w, 0, sizeof(*w));
        w->out = out;
        w->pretty = pretty;
        w->cap = 16;
        w->has_items = kcalloc(w->cap, 1);
}

void kjson_writer_release(struct kjson_writer *w)
{
        free(w->has_items);
        w->has_items = NULL;
        w->cap = 0;
}

static void newline_indent(struct kjson_writer *w)
{
        if (!w->pretty)
                return;
        kbuf_putc(w->out, '\n');
        for (unsigned i = 0; i < w->depth; i++)
                kbuf_puts(w->out, "  ");
}

/* Separator and indentation before a value or a key. */
static void before_item(struct kjson_writer *w)
{
        if (w->after_key) {
                w->after_key = false;
                return;
        }
        if (w->depth == 0)
                return;
        if (w->has_items[w->depth])
                kbuf_putc(w->out, ',');
        w->has_items[w->depth] = 1;
        newline_indent(w);
}

static void open_container(struct kjson_writer *w, char c)
{
        before_item(w);
        kbuf_putc(w->out, c);
        w->depth++;
        if (w->depth >= w->cap) {
                w->has_items = kreallocarray(w->has_items, w->cap * 2, 1);
                memset(w->has_items + w->cap, 0, w->cap);
                w->cap *= 2;
        }
        w->has_items[w->depth] = 0;
}

static void close_container(struct kjson_writer *w, char c)
{
        bool had = w->has_items[w->depth];

        w->depth--;
        if (had)
                newline_indent(w);
        kbuf_putc(w->out, c);
}

void kjson_begin_object(struct kjson_writer *w)
{
        open_container(w, '{');
}

void kjson_end_object(struct kjson_writer *w)
{
        close_container(w, '}');
}

void kjson_begin_array(struct kjson_writer *w)
{
        open_container(w, '[');
}

void kjson_end_array(struct kjson_writer *w)
{
        close_container(w, ']');
}

void kjson_quote(struct kbuf *out, const char *s, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;

        kbuf_putc(out, '"');
        while (i < n) {
                unsigned char c = p[i];
                size_t len;

                switch (c) {
                case '"':
                        kbuf_puts(out, "\\\"");
                        i++;
                        continue;
                case '\\':
                        kbuf_puts(out, "\\\\");
                        i++;
                        continue;
                case '\n':
                        kbuf_puts(out, "\\n");
                        i++;
                        continue;
                case '\t':
                        kbuf_puts(out, "\\t");
                        i++;
                        continue;
                case '\r':
                        kbuf_puts(out, "\\r");
                        i++;
                        continue;
                default:
                        break;
                }
                if (c < 0x20 || c == 0x7f) {
                        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
                        kbuf_puts(out, esc);
                        i++;
                        continue;
                }
                if (!kutf8_valid_at(s + i, n - i, &len)) {
                        kbuf_puts(out, "\\ufffd");
                        i++;
                        continue;
                }
                kbuf_append(out, p + i, len);
                i += len;
        }
        kbuf_putc(out, '"');
}

void kjson_key(struct kjson_writer *w, const char *key)
{
        before_item(w);
        kjson_quote(w->out, key, strlen(key));
        kbuf_puts(w->out, w->pretty ? ": " : ":");
        w->after_key = true;
}

void kjson_stringn(struct kjson_writer *w, const char *s, size_t n)
{
        before_item(w);
        kjson_quote(w->out, s, n);
}

void kjson_string(struct kjson_writer *w, const char *s)
{
        if (!s) {
                kjson_null(w);
                return;
        }
        kjson_stringn(w, s, strlen(s));
}

void kjson_int(struct kjson_writer *w, long long v)
{
        before_item(w);
        kbuf_printf(w->out, "%lld", v);
}

void kjson_bool(struct kjson_writer *w, bool v)
{
        before_item(w);
        kbuf_puts(w->out, v ? "true" : "false");
}

void kjson_null(struct kjson_writer *w)
{
        before_item(w);
        kbuf_puts(w->out, "null");
}

void kjson_kv_string(struct kjson_writer *w, const char *key, const char *s)
{
        kjson_key(w, key);
        kjson_string(w, s);
}

void kjson_kv_int(struct kjson_writer *w, const char *key, long long v)
{
        kjson_key(w, key);
        kjson_int(w, v);
}

void kjson_kv_bool(struct kjson_writer *w, const char *key, bool v)
{
        kjson_key(w, key);
        kjson_bool(w, v);
}

int kjson_parse_string_array(const char *data, size_t len, char ***ret_v, size_t *ret_n,
                             struct kerr **err)
{
        json_error_t jerr;
        json_t *root;
        char **v;
        size_t n;

        while (len && (*data == ' ' || *data == '\t' || *data == '\n' || *data == '\r')) {
                data++;
                len--;
        }
        if (!len || *data != '[')
                return kerr_set(err, 0, KERR_PARSE, "not a JSON array");
        root = json_loadb(data, len, 0, &jerr);
        if (!root)
                return kerr_set(err, 0, KERR_PARSE, "invalid JSON: %s", jerr.text);
        if (!json_is_array(root)) {
                json_decref(root);
                return kerr_set(err, 0, KERR_PARSE, "not a JSON array");
        }
        n = json_array_size(root);
        for (size_t i = 0; i < n; i++) {
                if (!json_is_string(json_array_get(root, i))) {
                        json_decref(root);
                        return kerr_set(err, 0, KERR_INVALID,
                                        "when using JSON array syntax, arrays must be comprised "
                                        "of strings only");
                }
        }
        v = kcalloc(n + 1, sizeof(*v));
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(root, i);
                v[i] = kstrndup(json_string_value(s), json_string_length(s));
        }
        json_decref(root);
        *ret_v = v;
        *ret_n = n;
        return 0;
}

json_t *kjson_load(const void *data, size_t len, const char *name, struct kerr **err)
{
        json_error_t jerr;
        json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);

        if (!root) {
                kerr_from_json(err, name, &jerr);
                return NULL;
        }
        return root;
}

const char *kjson_library_version(void)
{
        return jansson_version_str();
}
