/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the image JSON readers: the input is parsed as a config, a manifest and an index.
 * What parses must serialise, parse again and serialise to the same bytes (the output is
 * canonical), so a round trip can neither lose nor invent anything. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void config_round_trip(const uint8_t *data, size_t size)
{
        struct kerr *err = NULL;
        struct image_config *c = image_config_parse(data, size, "fuzz", &err), *c2, *d;
        struct kbuf a = KBUF_INIT, b = KBUF_INIT, dd = KBUF_INIT;

        kerr_free(err);
        if (!c)
                return;
        if (image_config_serialize(c, &a, NULL) < 0)
                abort();
        c2 = image_config_parse(a.data, a.len, "again", NULL);
        if (!c2 || image_config_serialize(c2, &b, NULL) < 0 || strcmp(a.data, b.data) != 0)
                abort();
        d = image_config_dup(c);
        if (image_config_serialize(d, &dd, NULL) < 0 || strcmp(a.data, dd.data) != 0)
                abort();
        image_config_free(c);
        image_config_free(c2);
        image_config_free(d);
        kbuf_release(&a);
        kbuf_release(&b);
        kbuf_release(&dd);
}

static void manifest_round_trip(const uint8_t *data, size_t size)
{
        struct kerr *err = NULL;
        struct image_manifest *m = image_manifest_parse(data, size, "fuzz", &err), *m2;
        struct kbuf a = KBUF_INIT, b = KBUF_INIT;

        kerr_free(err);
        if (!m)
                return;
        if (image_manifest_serialize(m, &a, NULL) < 0)
                abort();
        m2 = image_manifest_parse(a.data, a.len, "again", NULL);
        if (!m2 || image_manifest_serialize(m2, &b, NULL) < 0 || strcmp(a.data, b.data) != 0)
                abort();
        image_manifest_free(m);
        image_manifest_free(m2);
        kbuf_release(&a);
        kbuf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct image_descriptor *d = NULL;
        struct kerr *err = NULL;
        size_t n = 0;

        config_round_trip(data, size);
        manifest_round_trip(data, size);
        if (image_manifest_list_parse(data, size, "fuzz", &d, &n, &err) == 0) {
                for (size_t i = 0; i < n; i++)
                        image_descriptor_release(&d[i]);
                free(d);
        }
        kerr_free(err);
        return 0;
}
