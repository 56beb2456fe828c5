/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/kjson.h"
#include "common/banned.h"

#define CONFIG_MAX (64u << 20)

static json_t *load_config(struct image_store *s, const char *id, struct kerr **err)
{
        struct kbuf data = KBUF_INIT;
        json_t *cfg = NULL;

        if (image_blob_read(s, id, CONFIG_MAX, &data, err) == 0)
                cfg = kjson_load(data.data, data.len, id, err);
        kbuf_release(&data);
        if (cfg && !json_is_object(cfg)) {
                json_decref(cfg);
                kerr_set(err, 0, KERR_PARSE, "config %s is not a JSON object", id);
                return NULL;
        }
        return cfg;
}

static json_t *diff_ids_of(json_t *cfg)
{
        return json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
}

/* Walks the layers of cfg; returns the summed tar size, and fills layers (if not NULL)
 * with one object per layer. */
static int walk_layers(struct image_store *s, json_t *cfg, json_t *layers, uint64_t *ret_size,
                       struct kerr **err)
{
        char chain[KDIGEST_STRLEN] = "";
        uint64_t total = 0;
        size_t i;
        json_t *e;

        json_array_foreach(diff_ids_of(cfg), i, e)
        {
                const char *diff_id = json_string_value(e);
                struct image_layer l = {0};
                json_t *o, *blobs;
                bool have;

                if (image_chain_id(chain, diff_id, chain, err) < 0)
                        return kerr_wrap(err, "layer %zu", i);
                have = image_layer_get(s, chain, &l, NULL) == 0;
                if (have)
                        total += l.tar_size;
                if (layers) {
                        o = json_object();
                        json_object_set_new(o, "DiffID", json_string(diff_id));
                        json_object_set_new(o, "ChainID", json_string(chain));
                        json_object_set_new(o, "Size",
                                            have ? json_integer((json_int_t)l.tar_size)
                                                 : json_null());
                        blobs = json_array();
                        for (size_t j = 0; j < l.n_blobs; j++) {
                                json_t *b = json_object();
                                json_object_set_new(b, "digest", json_string(l.blobs[j].digest));
                                json_object_set_new(b, "mediaType",
                                                    json_string(l.blobs[j].media_type));
                                json_object_set_new(b, "size",
                                                    json_integer((json_int_t)l.blobs[j].size));
                                json_array_append_new(blobs, b);
                        }
                        json_object_set_new(o, "Blobs", blobs);
                        json_array_append_new(layers, o);
                }
                image_layer_release(&l);
        }
        *ret_size = total;
        return 0;
}

static json_t *strv_json(char **v, size_t n)
{
        json_t *a = json_array();

        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, json_string(v[i]));
        return a;
}

static json_t *string_or_null(json_t *v)
{
        return json_is_string(v) ? json_incref(v) : json_null();
}

int image_inspect_json(struct image_store *s, const char *id, struct kbuf *out, struct kerr **err)
{
        struct image_record *recs = NULL, *r = NULL;
        size_t n = 0;
        json_auto_t *cfg = NULL;
        json_auto_t *o = NULL;
        json_t *layers;
        _cleanup_free_ char *text = NULL;
        uint64_t size = 0;
        int ret = -1;

        if (image_index_list(s, &recs, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n; i++)
                if (id && strcmp(recs[i].id, id) == 0)
                        r = &recs[i];
        if (!r) {
                kerr_set(err, 0, KERR_NOTFOUND, "image '%s' not found", id ? id : "");
                goto out;
        }
        cfg = load_config(s, r->id, err);
        if (!cfg) {
                kerr_wrap(err, "image %s", r->id);
                goto out;
        }
        layers = json_array();
        o = json_object();
        json_object_set_new(o, "Id", json_string(r->id));
        json_object_set_new(o, "Names", strv_json(r->names, r->n_names));
        json_object_set_new(o, "Created", string_or_null(json_object_get(cfg, "created")));
        json_object_set_new(o, "Architecture",
                            string_or_null(json_object_get(cfg, "architecture")));
        json_object_set_new(o, "Os", string_or_null(json_object_get(cfg, "os")));
        if (walk_layers(s, cfg, layers, &size, err) < 0) {
                json_decref(layers);
                kerr_wrap(err, "image %s", r->id);
                goto out;
        }
        json_object_set_new(o, "Size", json_integer((json_int_t)size));
        json_object_set(o, "Config", cfg);
        json_object_set_new(o, "Layers", layers);
        json_object_set_new(o, "Manifests", strv_json(r->manifests, r->n_manifests));
        text = json_dumps(o, JSON_INDENT(4));
        if (!text)
                abort();
        kbuf_puts(out, text);
        ret = 0;
out:
        image_records_free(recs, n);
        return ret;
}

int image_list_summaries(struct image_store *s, struct image_summary **ret, size_t *ret_n,
                         struct kerr **err)
{
        struct image_record *recs = NULL;
        struct image_summary *v;
        size_t n = 0;

        if (image_index_list(s, &recs, &n, err) < 0)
                return -1;
        v = kcalloc(n + 1, sizeof(*v));
        for (size_t i = 0; i < n; i++) {
                json_t *cfg = load_config(s, recs[i].id, NULL);
                const char *created = json_string_value(json_object_get(cfg, "created"));

                memcpy(v[i].id, recs[i].id, KDIGEST_STRLEN);
                v[i].names = TAKE_PTR(recs[i].names);
                v[i].n_names = recs[i].n_names;
                recs[i].n_names = 0;
                v[i].created = created ? kstrdup(created) : NULL;
                if (cfg && walk_layers(s, cfg, NULL, &v[i].size, NULL) < 0)
                        v[i].size = 0;
                json_decref(cfg);
        }
        image_records_free(recs, n);
        *ret = v;
        *ret_n = n;
        return 0;
}

void image_summaries_free(struct image_summary *v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < v[i].n_names; j++)
                        free(v[i].names[j]);
                free(v[i].names);
                free(v[i].created);
        }
        free(v);
}
