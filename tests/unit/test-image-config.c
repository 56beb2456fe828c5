/* SPDX-License-Identifier: Apache-2.0 */
/* Image configs and manifests: round trips of real-looking configs with every unknown field
 * kept, absent versus empty lists, deterministic bytes, and what malformed input gives. */
#include "tap.h"

#include <fcntl.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"

#define D1 "sha256:a483da8ab3e941547542718cacd3258c6c705a63e94183c837c9bc44eb608999"
#define D2 "sha256:c3a0d9b3f6e7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3"

static char *slurp(const char *rel)
{
        const char *src = getenv("KILN_SRCDIR");
        struct kbuf path = KBUF_INIT, data = KBUF_INIT;
        struct kerr *err = NULL;

        kbuf_printf(&path, "%s/testdata/image/%s", src ? src : ".", rel);
        if (kfs_read_file(AT_FDCWD, path.data, 0, &data, &err) < 0) {
                tap_check(false, __FILE__, __LINE__, "read %s: %s", path.data, err->msg);
                kerr_free(err);
                kbuf_release(&path);
                return NULL;
        }
        kbuf_release(&path);
        return kbuf_detach(&data);
}

/* The document re-dumped with sorted keys and no white space: what serialise must give. */
static char *canonical(const char *s)
{
        json_auto_t *j = json_loads(s, 0, NULL);

        return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

static char *serialize(const struct image_config *c)
{
        struct kbuf out = KBUF_INIT;
        struct kerr *err = NULL;

        if (image_config_serialize(c, &out, &err) < 0) {
                tap_check(false, __FILE__, __LINE__, "serialize: %s", err->msg);
                kerr_free(err);
                return NULL;
        }
        return kbuf_detach(&out);
}

static struct image_config *parse(const char *s, struct kerr **err)
{
        return image_config_parse(s, strlen(s), "test.json", err);
}

static void roundtrip_file(const char *file)
{
        _cleanup_free_ char *data = slurp(file), *want = NULL, *got = NULL, *again = NULL;
        struct image_config *c, *d;
        struct kerr *err = NULL;

        if (!data)
                return;
        c = parse(data, &err);
        CHECK(c != NULL);
        if (!c) {
                tap_check(false, __FILE__, __LINE__, "%s", err->msg);
                kerr_free(err);
                return;
        }
        want = canonical(data);
        got = serialize(c);
        CHECK_STREQ(got, want);
        d = image_config_dup(c);
        again = serialize(d);
        CHECK_STREQ(again, want);
        image_config_free(c);
        image_config_free(d);
}

TEST(docker_config_round_trip)
{
        roundtrip_file("docker-config.json");
}

TEST(buildah_config_round_trip)
{
        roundtrip_file("buildah-config.json");
}

TEST(docker_config_fields)
{
        _cleanup_free_ char *data = slurp("docker-config.json");
        struct image_config *c;
        struct kerr *err = NULL;

        if (!data)
                return;
        c = parse(data, &err);
        CHECK(c != NULL);
        if (!c) {
                kerr_free(err);
                return;
        }
        CHECK_STREQ(c->architecture, "amd64");
        CHECK_STREQ(c->os, "linux");
        CHECK_NULL(c->variant);
        CHECK_STREQ(c->user, "nginx");
        CHECK_INTEQ(c->n_env, 3);
        CHECK_STREQ(image_config_get_env(c, "NGINX_VERSION"), "1.25.3");
        CHECK_STREQ(image_config_get_env(c, "EMPTY"), "");
        CHECK_NULL(image_config_get_env(c, "NGINX"));
        CHECK(c->has_cmd);
        CHECK_INTEQ(c->n_cmd, 3);
        CHECK_STREQ(c->cmd[2], "daemon off;");
        CHECK(c->has_entrypoint);
        CHECK_STREQ(c->entrypoint[0], "/docker-entrypoint.sh");
        CHECK(c->has_shell);
        CHECK_INTEQ(c->n_shell, 2);
        CHECK_INTEQ(c->n_exposed_ports, 2);
        CHECK_INTEQ(c->n_volumes, 1);
        CHECK_STREQ(c->volumes[0], "/var/cache/nginx");
        CHECK_INTEQ(c->n_labels, 2);
        CHECK_STREQ(c->stop_signal, "SIGQUIT");
        CHECK(c->healthcheck != NULL);
        if (c->healthcheck) {
                CHECK_INTEQ(c->healthcheck->n_test, 2);
                CHECK_STREQ(c->healthcheck->test[0], "CMD-SHELL");
                CHECK_INTEQ(c->healthcheck->interval, 30000000000LL);
                CHECK_INTEQ(c->healthcheck->timeout, 5000000000LL);
                CHECK_INTEQ(c->healthcheck->start_period, 10000000000LL);
                CHECK_INTEQ(c->healthcheck->start_interval, 2000000000LL);
                CHECK_INTEQ(c->healthcheck->retries, 3);
        }
        CHECK_INTEQ(c->n_onbuild, 2);
        CHECK_STREQ(c->onbuild[1], "COPY . /app");
        CHECK_INTEQ(c->n_diff_ids, 2);
        CHECK_STREQ(c->diff_ids[0], D1);
        CHECK_INTEQ(c->n_history, 3);
        CHECK(!c->history[0].empty_layer);
        CHECK(c->history[1].empty_layer);
        CHECK_STREQ(c->history[2].comment, "buildkit.dockerfile.v0");
        CHECK_STREQ(c->history[2].author, "someone");
        image_config_free(c);
}

TEST(edits_keep_unknown_fields)
{
        _cleanup_free_ char *data = slurp("docker-config.json"), *out = NULL;
        struct image_config *c;
        struct kerr *err = NULL;
        json_auto_t *j = NULL;

        if (!data)
                return;
        c = parse(data, &err);
        CHECK(c != NULL);
        if (!c) {
                kerr_free(err);
                return;
        }
        image_config_set_env(c, "NGINX_VERSION", "1.26.0");
        image_config_set_env(c, "EMPTY", NULL);
        image_config_set_env(c, "NEW", "x=y");
        image_config_set_label(c, "maintainer", NULL);
        image_config_set_label(c, "a", "b");
        image_config_add_history(c, "2024-01-01T00:00:00Z", "RUN true", false);
        image_config_add_diff_id(c, D2);
        free(c->healthcheck->test[0]);
        c->healthcheck->test[0] = strdup("CMD");
        out = serialize(c);
        j = out ? json_loads(out, 0, NULL) : NULL;
        CHECK(j != NULL);
        if (j) {
                json_t *cc = json_object_get(j, "config");
                json_t *env = json_object_get(cc, "Env");
                json_t *h = json_object_get(j, "history");

                CHECK_STREQ(json_string_value(json_object_get(j, "docker_version")), "20.10.23");
                CHECK(json_is_object(json_object_get(j, "container_config")));
                CHECK(json_is_true(json_object_get(cc, "ArgsEscaped")));
                CHECK_STREQ(json_string_value(json_object_get(cc, "Hostname")), "");
                CHECK_INTEQ(json_array_size(env), 3);
                CHECK_STREQ(json_string_value(json_array_get(env, 1)), "NGINX_VERSION=1.26.0");
                CHECK_STREQ(json_string_value(json_array_get(env, 2)), "NEW=x=y");
                CHECK_NULL(json_object_get(json_object_get(cc, "Labels"), "maintainer"));
                CHECK_STREQ(json_string_value(json_object_get(json_object_get(cc, "Labels"), "a")),
                            "b");
                CHECK_STREQ(
                        json_string_value(json_array_get(
                                json_object_get(json_object_get(cc, "Healthcheck"), "Test"), 0)),
                        "CMD");
                CHECK_INTEQ(json_array_size(h), 4);
                CHECK(json_is_false(json_object_get(json_array_get(h, 2), "empty_layer")));
                CHECK_NULL(json_object_get(json_array_get(h, 3), "empty_layer"));
                CHECK_INTEQ(
                        json_array_size(json_object_get(json_object_get(j, "rootfs"), "diff_ids")),
                        3);
                CHECK(json_is_string(json_object_get(j, "os.version")));
        }
        image_config_free(c);
}

TEST(absent_null_and_empty_lists)
{
        static const char *docs[] = {
                "{\"config\":{\"Cmd\":null,\"Entrypoint\":[],\"Env\":[],\"Labels\":{},"
                "\"OnBuild\":null,\"Volumes\":null,\"ExposedPorts\":{}},"
                "\"rootfs\":{\"diff_ids\":[],\"type\":\"layers\"}}",
                "{\"config\":{},\"history\":[],\"rootfs\":{\"diff_ids\":[],\"type\":\"layers\"}}",
                "{\"config\":null,\"history\":null,\"rootfs\":{\"diff_ids\":[],\"type\":"
                "\"layers\"}}",
                "{\"config\":{\"Healthcheck\":{\"Test\":[\"NONE\"]},\"Shell\":[]},\"rootfs\":{"
                "\"diff_ids\":[],\"type\":\"layers\"}}",
                "{\"config\":{\"Healthcheck\":{\"Test\":[],\"X\":1}},\"rootfs\":{"
                "\"diff_ids\":[],\"type\":\"layers\"}}",
                "{\"history\":[{\"empty_layer\":false},{\"author\":null}],\"rootfs\":{"
                "\"diff_ids\":[],\"type\":\"layers\"}}",
        };

        for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
                struct kerr *err = NULL;
                struct image_config *c = parse(docs[i], &err);
                _cleanup_free_ char *want = canonical(docs[i]), *got = NULL;

                CASE("document %zu", i);
                CHECK(c != NULL);
                if (!c) {
                        kerr_free(err);
                        continue;
                }
                got = serialize(c);
                CHECK_STREQ(got, want);
                image_config_free(c);
        }
}

TEST(absent_versus_empty_fields)
{
        struct kerr *err = NULL;
        struct image_config *c = parse("{\"config\":{\"Cmd\":null,\"Entrypoint\":[]}}", &err);

        CHECK(c != NULL);
        if (!c)
                return;
        CHECK(!c->has_cmd);
        CHECK(c->has_entrypoint);
        CHECK_INTEQ(c->n_entrypoint, 0);
        CHECK(!c->has_shell);
        CHECK_NULL(c->healthcheck);
        /* Setting a list that was null replaces the null. */
        c->has_cmd = true;
        c->cmd = calloc(2, sizeof(char *));
        c->cmd[0] = strdup("sh");
        c->n_cmd = 1;
        {
                _cleanup_free_ char *got = serialize(c);

                CHECK_STREQ(got, "{\"config\":{\"Cmd\":[\"sh\"],\"Entrypoint\":[]},\"rootfs\":{"
                                 "\"diff_ids\":[],\"type\":\"layers\"}}");
        }
        image_config_free(c);
}

TEST(new_config_bytes)
{
        struct image_config *c = image_config_new();
        _cleanup_free_ char *a = NULL, *b = NULL;

        a = serialize(c);
        CHECK_STREQ(a, "{\"rootfs\":{\"diff_ids\":[],\"type\":\"layers\"}}");
        free(a);
        c->architecture = strdup("amd64");
        c->os = strdup("linux");
        c->created = strdup("2024-01-01T00:00:00Z");
        image_config_set_env(c, "PATH", "/bin");
        image_config_set_label(c, "z", "1");
        image_config_set_label(c, "a", "2");
        c->exposed_ports = calloc(3, sizeof(char *));
        c->exposed_ports[0] = strdup("8080/tcp");
        c->exposed_ports[1] = strdup("53/udp");
        c->n_exposed_ports = 2;
        c->healthcheck = calloc(1, sizeof(*c->healthcheck));
        c->healthcheck->interval = 1000000000;
        c->healthcheck->retries = 2;
        image_config_add_diff_id(c, D1);
        image_config_add_history(c, "2024-01-01T00:00:00Z", "COPY a /a", false);
        image_config_add_history(c, "2024-01-01T00:00:00Z", "ENV PATH=/bin", true);
        a = serialize(c);
        CHECK_STREQ(a, "{\"architecture\":\"amd64\",\"config\":{\"Env\":[\"PATH=/bin\"],"
                       "\"ExposedPorts\":{\"53/udp\":{},\"8080/tcp\":{}},\"Healthcheck\":{"
                       "\"Interval\":1000000000,\"Retries\":2},\"Labels\":{\"a\":\"2\",\"z\":"
                       "\"1\"}},\"created\":\"2024-01-01T00:00:00Z\",\"history\":[{\"created\":"
                       "\"2024-01-01T00:00:00Z\",\"created_by\":\"COPY a /a\"},{\"created\":"
                       "\"2024-01-01T00:00:00Z\",\"created_by\":\"ENV PATH=/bin\","
                       "\"empty_layer\":true}],\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[\"" D1
                       "\"],\"type\":\"layers\"}}");
        b = serialize(c);
        CHECK_STREQ(a, b);
        image_config_free(c);
}

TEST(invalid_utf8_is_replaced)
{
        struct image_config *c = image_config_new();
        _cleanup_free_ char *a = NULL;

        image_config_set_env(c, "X",
                             "a\xff"
                             "b");
        a = serialize(c);
        CHECK_STREQ(a, "{\"config\":{\"Env\":[\"X=a\xef\xbf\xbd"
                       "b\"]},\"rootfs\":{\"diff_ids\":[],\"type\":\"layers\"}}");
        image_config_free(c);
}

TEST(malformed_configs)
{
        static const struct {
                const char *doc;
                int code;
                const char *msg;
                unsigned line, col;
        } cases[] = {
                {"{\n  \"os\": \"linux\",\n  \"os\": \"x\"\n}", KERR_PARSE, "duplicate", 3, 0},
                {"{\"config\": {\"Env\": [1]}}", KERR_INVALID, "config.Env[0]: expected a string",
                 0, 0},
                {"{\"config\": {\"Cmd\": \"sh\"}}", KERR_INVALID, "config.Cmd: expected", 0, 0},
                {"{\"config\": {\"Labels\": {\"a\": 1}}}", KERR_INVALID, "config.Labels['a']", 0,
                 0},
                {"{\"rootfs\": {\"type\": \"layers\", \"diff_ids\": [\"sha256:12\"]}}",
                 KERR_INVALID, "rootfs.diff_ids[0]: invalid digest 'sha256:12'", 0, 0},
                {"{\"rootfs\": {\"type\": \"other\"}}", KERR_UNSUPPORTED, "rootfs.type", 0, 0},
                {"{\"history\": [{\"empty_layer\": \"yes\"}]}", KERR_INVALID,
                 "history[0].empty_layer", 0, 0},
                {"[]", KERR_INVALID, "must be a JSON object", 0, 0},
                {"{\"config\": {\"Healthcheck\": {\"Retries\": 1e3}}}", KERR_INVALID,
                 "Healthcheck.Retries", 0, 0},
                {"{\"config\": {\"ExposedPorts\": {\"80/tcp\": 1}}}", KERR_INVALID,
                 "config.ExposedPorts['80/tcp']", 0, 0},
                {"{\"os\": \"linux\",\n\"config\": {\"User\": }}", KERR_PARSE, "invalid JSON", 2,
                 20},
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct kerr *err = NULL;
                struct image_config *c = parse(cases[i].doc, &err);

                CASE("malformed %zu: %s", i, cases[i].msg);
                CHECK_NULL(c);
                image_config_free(c);
                CHECK(err != NULL);
                if (!err)
                        continue;
                CHECK_INTEQ(err->code, cases[i].code);
                tap_check(strstr(err->msg, cases[i].msg) != NULL, __FILE__, __LINE__,
                          "message '%s' has '%s'", err->msg, cases[i].msg);
                if (cases[i].line) {
                        CHECK_STREQ(err->file, "test.json");
                        CHECK_INTEQ(err->line, cases[i].line);
                        if (cases[i].col)
                                CHECK_INTEQ(err->col, cases[i].col);
                }
                kerr_free(err);
        }
}

/* ---- manifests ---- */

#define M_CFG "{\"mediaType\":\"" IMAGE_MT_OCI_CONFIG "\",\"digest\":\"" D1 "\",\"size\":1234}"
#define M_LAYER                                                                                    \
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2          \
        "\",\"size\":5678}"

TEST(manifest_round_trip)
{
        static const char doc[] =
                "{\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"},"
                "\"config\":" M_CFG ",\"layers\":[" M_LAYER
                "],\"mediaType\":\"" IMAGE_MT_OCI_MANIFEST "\",\"schemaVersion\":2}";
        struct kerr *err = NULL;
        struct image_manifest *m = image_manifest_parse(doc, strlen(doc), "m", &err);
        struct kbuf out = KBUF_INIT;

        CHECK(m != NULL);
        if (!m) {
                kerr_free(err);
                return;
        }
        CHECK_STREQ(m->media_type, IMAGE_MT_OCI_MANIFEST);
        CHECK_STREQ(m->config.digest, D1);
        CHECK_INTEQ(m->config.size, 1234);
        CHECK_INTEQ(m->n_layers, 1);
        CHECK_STREQ(m->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
        CHECK_INTEQ(m->layers[0].size, 5678);
        CHECK_INTEQ(m->n_annotations, 1);
        CHECK(image_manifest_serialize(m, &out, &err) == 0);
        {
                _cleanup_free_ char *want = canonical(doc);

                CHECK_STREQ(out.data, want);
        }
        kbuf_release(&out);
        image_manifest_free(m);
}

TEST(manifest_docker_and_missing_media_type)
{
        static const char docker[] =
                "{\"schemaVersion\":2,\"mediaType\":\"" IMAGE_MT_DOCKER_MANIFEST
                "\",\"config\":{\"mediaType\":\"" IMAGE_MT_DOCKER_CONFIG "\",\"size\":7,"
                "\"digest\":\"" D1 "\"},\"layers\":[{\"mediaType\":"
                "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":0,\"digest\":\"" D2
                "\"}]}";
        static const char bare[] = "{\"schemaVersion\":2,\"config\":" M_CFG ",\"layers\":[]}";
        struct kerr *err = NULL;
        struct image_manifest *m = image_manifest_parse(docker, strlen(docker), "m", &err);

        CHECK(m != NULL);
        if (m) {
                CHECK_STREQ(m->media_type, IMAGE_MT_DOCKER_MANIFEST);
                CHECK_STREQ(m->config.media_type, IMAGE_MT_DOCKER_CONFIG);
                CHECK_INTEQ(m->layers[0].size, 0);
        }
        image_manifest_free(m);
        kerr_free(err);
        err = NULL;
        m = image_manifest_parse(bare, strlen(bare), "m", &err);
        CHECK(m != NULL);
        if (m) {
                CHECK_STREQ(m->media_type, IMAGE_MT_OCI_MANIFEST);
                CHECK_INTEQ(m->n_layers, 0);
        }
        image_manifest_free(m);
        kerr_free(err);
}

TEST(manifest_errors)
{
        static const struct {
                const char *doc;
                int code;
                const char *msg;
        } cases[] = {
                {"{\"schemaVersion\":1,\"config\":" M_CFG ",\"layers\":[]}", KERR_UNSUPPORTED,
                 "schemaVersion 1"},
                {"{\"config\":" M_CFG ",\"layers\":[]}", KERR_INVALID, "schemaVersion"},
                {"{\"schemaVersion\":2,\"mediaType\":\"text/plain\",\"config\":" M_CFG
                 ",\"layers\":[]}",
                 KERR_UNSUPPORTED, "'text/plain'"},
                {"{\"schemaVersion\":2,\"mediaType\":\"" IMAGE_MT_OCI_INDEX "\",\"manifests\":[]}",
                 KERR_UNSUPPORTED, "image index"},
                {"{\"schemaVersion\":2,\"manifests\":[]}", KERR_UNSUPPORTED, "image index"},
                {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" IMAGE_MT_OCI_CONFIG
                 "\",\"digest\":\"sha256:ab\",\"size\":1},\"layers\":[]}",
                 KERR_INVALID, "config.digest: invalid digest 'sha256:ab'"},
                {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" IMAGE_MT_OCI_CONFIG
                 "\",\"digest\":\"" D1 "\",\"size\":-1},\"layers\":[]}",
                 KERR_INVALID, "config.size"},
                {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" IMAGE_MT_OCI_CONFIG
                 "\",\"digest\":\"" D1 "\",\"size\":1.5},\"layers\":[]}",
                 KERR_INVALID, "config.size"},
                {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/x-helm\","
                 "\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}",
                 KERR_UNSUPPORTED, "'application/x-helm'"},
                {"{\"schemaVersion\":2,\"config\":" M_CFG ",\"layers\":[{\"mediaType\":"
                 "\"application/x-foo\",\"digest\":\"" D2 "\",\"size\":1}]}",
                 KERR_UNSUPPORTED, "layers[0]: unsupported layer media type 'application/x-foo'"},
                {"{\"schemaVersion\":2,\"config\":" M_CFG "}", KERR_INVALID, "layers"},
                {"{\"schemaVersion\":2,\"schemaVersion\":2}", KERR_PARSE, "duplicate"},
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct kerr *err = NULL;
                struct image_manifest *m =
                        image_manifest_parse(cases[i].doc, strlen(cases[i].doc), "m.json", &err);

                CASE("manifest error %zu: %s", i, cases[i].msg);
                CHECK_NULL(m);
                image_manifest_free(m);
                CHECK(err != NULL);
                if (!err)
                        continue;
                CHECK_INTEQ(err->code, cases[i].code);
                tap_check(strstr(err->msg, cases[i].msg) != NULL, __FILE__, __LINE__,
                          "message '%s' has '%s'", err->msg, cases[i].msg);
                kerr_free(err);
        }
}

TEST(manifest_too_large)
{
        size_t n = 4 * 1024 * 1024 + 1;
        char *big = malloc(n);
        struct kerr *err = NULL;
        struct image_manifest *m;

        memset(big, ' ', n);
        m = image_manifest_parse(big, n, "big", &err);
        CHECK_NULL(m);
        CHECK(err && err->code == KERR_INVALID && strstr(err->msg, "larger"));
        kerr_free(err);
        free(big);
}

TEST(index_parse)
{
        static const char doc[] =
                "{\"schemaVersion\":2,\"mediaType\":\"" IMAGE_MT_OCI_INDEX "\",\"manifests\":["
                "{\"mediaType\":\"" IMAGE_MT_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":10,"
                "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
                "{\"mediaType\":\"" IMAGE_MT_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":11,"
                "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v2\"}}]}";
        static const char list[] = "{\"schemaVersion\":2,\"mediaType\":\"" IMAGE_MT_DOCKER_MANIFEST
                                   "\",\"config\":" M_CFG ",\"layers\":[]}";
        struct image_descriptor *d = NULL;
        size_t n = 0;
        struct kerr *err = NULL;

        CHECK(image_manifest_list_parse(doc, strlen(doc), "index.json", &d, &n, &err) == 0);
        CHECK_INTEQ(n, 2);
        if (n == 2) {
                CHECK_STREQ(d[0].platform_arch, "arm64");
                CHECK_STREQ(d[0].platform_os, "linux");
                CHECK_STREQ(d[0].platform_variant, "v8");
                CHECK_INTEQ(d[1].size, 11);
                CHECK_INTEQ(d[1].n_annotations, 1);
                CHECK_STREQ(d[1].annotations[0].value, "v2");
                CHECK_NULL(d[1].platform_os);
        }
        for (size_t i = 0; i < n; i++)
                image_descriptor_release(&d[i]);
        free(d);
        CHECK(image_manifest_list_parse(list, strlen(list), "x", &d, &n, &err) < 0);
        CHECK(err && err->code == KERR_UNSUPPORTED && strstr(err->msg, IMAGE_MT_DOCKER_MANIFEST));
        kerr_free(err);
}
