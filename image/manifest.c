/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/kjson.h"

#include "common/banned.h"

static const struct {
        const char *media_type;
        enum image_compression compression;
} layer_types[] = {
        {"application/vnd.oci.image.layer.v1.tar", IMAGE_COMPRESSION_NONE},
        {"application/vnd.oci.image.layer.v1.tar+gzip", IMAGE_COMPRESSION_GZIP},
        {"application/vnd.oci.image.layer.v1.tar+zstd", IMAGE_COMPRESSION_ZSTD},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar", IMAGE_COMPRESSION_NONE},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", IMAGE_COMPRESSION_GZIP},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", IMAGE_COMPRESSION_ZSTD},
        {"application/vnd.docker.image.rootfs.diff.tar", IMAGE_COMPRESSION_NONE},
        {"application/vnd.docker.image.rootfs.diff.tar.gzip", IMAGE_COMPRESSION_GZIP},
        {"application/vnd.docker.image.rootfs.diff.tar.zstd", IMAGE_COMPRESSION_ZSTD},
};

int image_layer_type_compression(const char *media_type)
{
        for (size_t i = 0; media_type && i < ARRAY_SIZE(layer_types); i++)
                if (strcmp(media_type, layer_types[i].media_type) == 0)
                        return (int)layer_types[i].compression;
        return -1;
}

static void kvs_free(struct image_kv *kv, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

void image_descriptor_release(struct image_descriptor *d)
{
        if (!d)
                return;
        free(d->media_type);
        kvs_free(d->annotations, d->n_annotations);
        free(d->platform_os);
        free(d->platform_arch);
        free(d->platform_variant);
        memset(d, 0, sizeof(*d));
}

void image_manifest_free(struct image_manifest *m)
{
        if (!m)
                return;
        free(m->media_type);
        image_descriptor_release(&m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                image_descriptor_release(&m->layers[i]);
        free(m->layers);
        kvs_free(m->annotations, m->n_annotations);
        free(m);
}

DEFINE_CLEANUP(struct image_manifest *, image_manifest_free)

/* ---- serialising ---- */

static void set_new(json_t *obj, const char *key, json_t *v)
{
        if (!v || json_object_set_new(obj, key, v) < 0)
                abort();
}

static json_t *kvs_json(const struct image_kv *kv, size_t n)
{
        json_t *o = json_object();

        if (!o)
                abort();
        for (size_t i = 0; i < n; i++) {
                json_auto_t *k = image_json_string(kv[i].key);

                set_new(o, json_string_value(k), image_json_string(kv[i].value));
        }
        return o;
}

static json_t *descriptor_json(const struct image_descriptor *d, struct kerr **err)
{
        json_auto_t *o = json_object();

        if (!o)
                abort();
        if (!d->media_type) {
                kerr_set(err, 0, KERR_INVALID, "descriptor of %s has no media type", d->digest);
                return NULL;
        }
        if (!kdigest_valid(d->digest)) {
                kerr_set(err, 0, KERR_INVALID, "descriptor has an invalid digest '%s'", d->digest);
                return NULL;
        }
        if (d->size > (uint64_t)INT64_MAX) {
                kerr_set(err, 0, KERR_INVALID, "descriptor of %s: size out of range", d->digest);
                return NULL;
        }
        set_new(o, "mediaType", image_json_string(d->media_type));
        set_new(o, "digest", json_string(d->digest));
        set_new(o, "size", json_integer((json_int_t)d->size));
        if (d->n_annotations)
                set_new(o, "annotations", kvs_json(d->annotations, d->n_annotations));
        if (d->platform_os || d->platform_arch) {
                json_t *p = json_object();

                if (!p)
                        abort();
                set_new(p, "architecture",
                        image_json_string(d->platform_arch ? d->platform_arch : ""));
                set_new(p, "os", image_json_string(d->platform_os ? d->platform_os : ""));
                if (d->platform_variant)
                        set_new(p, "variant", image_json_string(d->platform_variant));
                set_new(o, "platform", p);
        }
        return json_incref(o);
}

int image_manifest_serialize(const struct image_manifest *m, struct kbuf *out, struct kerr **err)
{
        json_auto_t *root = json_object();
        json_t *layers, *d;
        char *s;

        if (!root)
                abort();
        set_new(root, "schemaVersion", json_integer(2));
        set_new(root, "mediaType",
                image_json_string(m->media_type ? m->media_type : IMAGE_MT_OCI_MANIFEST));
        d = descriptor_json(&m->config, err);
        if (!d)
                return kerr_wrap(err, "serialise manifest config");
        set_new(root, "config", d);
        layers = json_array();
        if (!layers)
                abort();
        set_new(root, "layers", layers);
        for (size_t i = 0; i < m->n_layers; i++) {
                d = descriptor_json(&m->layers[i], err);
                if (!d)
                        return kerr_wrap(err, "serialise manifest layer %zu", i);
                if (json_array_append_new(layers, d) < 0)
                        abort();
        }
        if (m->n_annotations)
                set_new(root, "annotations", kvs_json(m->annotations, m->n_annotations));
        s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
        if (!s)
                return kerr_set(err, ENOMEM, KERR_INTERNAL, "serialise manifest");
        kbuf_puts(out, s);
        free(s);
        return 0;
}

/* ---- parsing ---- */

static int parse_kvs(json_t *v, const char *name, const char *where, struct image_kv **ret,
                     size_t *ret_n, struct kerr **err)
{
        struct image_kv *kv;
        const char *k;
        json_t *e;
        size_t n = 0;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_object(v))
                return kerr_set(err, 0, KERR_INVALID, "%s: %s: expected an object", name, where);
        kv = kcalloc(json_object_size(v) + 1, sizeof(*kv));
        json_object_foreach(v, k, e)
        {
                if (!json_is_string(e)) {
                        kvs_free(kv, n);
                        return kerr_set(err, 0, KERR_INVALID, "%s: %s['%s']: expected a string",
                                        name, where, k);
                }
                kv[n].key = kstrdup(k);
                kv[n].value = kstrdup(json_string_value(e));
                n++;
        }
        *ret = kv;
        *ret_n = n;
        return 0;
}

static int opt_string(json_t *obj, const char *key, const char *name, const char *where, char **ret,
                      struct kerr **err)
{
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return kerr_set(err, 0, KERR_INVALID, "%s: %s.%s: expected a string", name, where,
                                key);
        *ret = kstrdup(json_string_value(v));
        return 0;
}

/* Fills d (zeroed by the caller) from a descriptor object. */
static int parse_descriptor(json_t *v, const char *name, const char *where,
                            struct image_descriptor *d, struct kerr **err)
{
        json_t *mt, *dg, *sz, *plat;
        char ann_where[64];

        if (!json_is_object(v))
                return kerr_set(err, 0, KERR_INVALID, "%s: %s: expected an object", name, where);
        mt = json_object_get(v, "mediaType");
        dg = json_object_get(v, "digest");
        sz = json_object_get(v, "size");
        if (!json_is_string(mt))
                return kerr_set(err, 0, KERR_INVALID, "%s: %s.mediaType: expected a string", name,
                                where);
        if (!json_is_string(dg) || !kdigest_valid(json_string_value(dg)))
                return kerr_set(err, 0, KERR_INVALID, "%s: %s.digest: invalid digest '%s'", name,
                                where, json_is_string(dg) ? json_string_value(dg) : "");
        if (!json_is_integer(sz) || json_integer_value(sz) < 0)
                return kerr_set(err, 0, KERR_INVALID,
                                "%s: %s.size: expected a non-negative integer", name, where);
        d->media_type = kstrdup(json_string_value(mt));
        memcpy(d->digest, json_string_value(dg), strlen(json_string_value(dg)) + 1);
        d->size = (uint64_t)json_integer_value(sz);
        snprintf(ann_where, sizeof(ann_where), "%s.annotations", where);
        if (parse_kvs(json_object_get(v, "annotations"), name, ann_where, &d->annotations,
                      &d->n_annotations, err) < 0)
                return -1;
        plat = json_object_get(v, "platform");
        if (plat && !json_is_null(plat)) {
                char pw[64];

                snprintf(pw, sizeof(pw), "%s.platform", where);
                if (!json_is_object(plat))
                        return kerr_set(err, 0, KERR_INVALID, "%s: %s: expected an object", name,
                                        pw);
                if (opt_string(plat, "os", name, pw, &d->platform_os, err) < 0 ||
                    opt_string(plat, "architecture", name, pw, &d->platform_arch, err) < 0 ||
                    opt_string(plat, "variant", name, pw, &d->platform_variant, err) < 0)
                        return -1;
        }
        return 0;
}

static json_t *load_checked(const void *data, size_t len, const char *name, struct kerr **err)
{
        json_auto_t *root = NULL;
        json_t *sv;

        if (len > IMAGE_MANIFEST_MAX) {
                kerr_set(err, 0, KERR_INVALID, "%s: manifest of %zu bytes is larger than %d", name,
                         len, IMAGE_MANIFEST_MAX);
                return NULL;
        }
        root = kjson_load(data, len, name, err);
        if (!root)
                return NULL;
        if (!json_is_object(root)) {
                kerr_set(err, 0, KERR_INVALID, "%s: a manifest must be a JSON object", name);
                return NULL;
        }
        sv = json_object_get(root, "schemaVersion");
        if (!json_is_integer(sv)) {
                kerr_set(err, 0, KERR_INVALID, "%s: schemaVersion: expected an integer", name);
                return NULL;
        }
        if (json_integer_value(sv) != 2) {
                kerr_set(err, 0, KERR_UNSUPPORTED, "%s: schemaVersion %lld is not supported", name,
                         (long long)json_integer_value(sv));
                return NULL;
        }
        return json_incref(root);
}

static bool is_list_type(const char *mt)
{
        return strcmp(mt, IMAGE_MT_OCI_INDEX) == 0 || strcmp(mt, IMAGE_MT_DOCKER_LIST) == 0;
}

struct image_manifest *image_manifest_parse(const void *data, size_t len, const char *name,
                                            struct kerr **err)
{
        _cleanup_(image_manifest_freep) struct image_manifest *m = NULL;
        json_auto_t *root = NULL;
        json_t *mt, *layers, *e;
        size_t i;

        if (!name)
                name = "manifest";
        root = load_checked(data, len, name, err);
        if (!root)
                return NULL;
        mt = json_object_get(root, "mediaType");
        if (mt && !json_is_string(mt)) {
                kerr_set(err, 0, KERR_INVALID, "%s: mediaType: expected a string", name);
                return NULL;
        }
        if (!mt && json_object_get(root, "manifests")) {
                kerr_set(err, 0, KERR_UNSUPPORTED, "%s: is an image index, not a manifest", name);
                return NULL;
        }
        m = kcalloc(1, sizeof(*m));
        m->media_type = kstrdup(mt ? json_string_value(mt) : IMAGE_MT_OCI_MANIFEST);
        if (is_list_type(m->media_type)) {
                kerr_set(err, 0, KERR_UNSUPPORTED, "%s: is an image index ('%s'), not a manifest",
                         name, m->media_type);
                return NULL;
        }
        if (strcmp(m->media_type, IMAGE_MT_OCI_MANIFEST) != 0 &&
            strcmp(m->media_type, IMAGE_MT_DOCKER_MANIFEST) != 0) {
                kerr_set(err, 0, KERR_UNSUPPORTED, "%s: unsupported manifest media type '%s'", name,
                         m->media_type);
                return NULL;
        }
        if (!json_object_get(root, "config")) {
                kerr_set(err, 0, KERR_INVALID, "%s: config: missing", name);
                return NULL;
        }
        if (parse_descriptor(json_object_get(root, "config"), name, "config", &m->config, err) < 0)
                return NULL;
        /* Either config type goes with either manifest type, as containers/image accepts. */
        if (strcmp(m->config.media_type, IMAGE_MT_OCI_CONFIG) != 0 &&
            strcmp(m->config.media_type, IMAGE_MT_DOCKER_CONFIG) != 0) {
                kerr_set(err, 0, KERR_UNSUPPORTED, "%s: unsupported config media type '%s'", name,
                         m->config.media_type);
                return NULL;
        }
        layers = json_object_get(root, "layers");
        if (!json_is_array(layers)) {
                kerr_set(err, 0, KERR_INVALID, "%s: layers: expected an array", name);
                return NULL;
        }
        m->layers = kcalloc(json_array_size(layers) + 1, sizeof(*m->layers));
        json_array_foreach(layers, i, e)
        {
                char where[32];

                snprintf(where, sizeof(where), "layers[%zu]", i);
                m->n_layers = i + 1;
                if (parse_descriptor(e, name, where, &m->layers[i], err) < 0)
                        return NULL;
                if (image_layer_type_compression(m->layers[i].media_type) < 0) {
                        kerr_set(err, 0, KERR_UNSUPPORTED,
                                 "%s: %s: unsupported layer media type '%s'", name, where,
                                 m->layers[i].media_type);
                        return NULL;
                }
        }
        if (parse_kvs(json_object_get(root, "annotations"), name, "annotations", &m->annotations,
                      &m->n_annotations, err) < 0)
                return NULL;
        return TAKE_PTR(m);
}

int image_manifest_list_parse(const void *data, size_t len, const char *name,
                              struct image_descriptor **ret, size_t *ret_n, struct kerr **err)
{
        json_auto_t *root = NULL;
        json_t *mt, *list, *e;
        struct image_descriptor *d;
        size_t i;

        if (!name)
                name = "index";
        root = load_checked(data, len, name, err);
        if (!root)
                return -1;
        mt = json_object_get(root, "mediaType");
        if (mt && (!json_is_string(mt) || !is_list_type(json_string_value(mt))))
                return kerr_set(err, 0, KERR_UNSUPPORTED, "%s: unsupported index media type '%s'",
                                name, json_is_string(mt) ? json_string_value(mt) : "");
        list = json_object_get(root, "manifests");
        if (!json_is_array(list))
                return kerr_set(err, 0, KERR_INVALID, "%s: manifests: expected an array", name);
        d = kcalloc(json_array_size(list) + 1, sizeof(*d));
        json_array_foreach(list, i, e)
        {
                char where[32];

                snprintf(where, sizeof(where), "manifests[%zu]", i);
                if (parse_descriptor(e, name, where, &d[i], err) < 0) {
                        for (size_t j = 0; j <= i; j++)
                                image_descriptor_release(&d[j]);
                        free(d);
                        return -1;
                }
        }
        *ret = d;
        *ret_n = json_array_size(list);
        return 0;
}
