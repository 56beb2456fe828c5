/* SPDX-License-Identifier: Apache-2.0 */
#include "common/digest.h"

#include <nettle/sha2.h>
#include <nettle/version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/banned.h"

/* Nettle: SHA-256 as fast as OpenSSL's (SHA-NI where the CPU has it) without OpenSSL's
 * start-up cost, which every kiln command would pay. */
struct kdigest {
        struct sha256_ctx ctx;
        bool done;
};

struct kdigest *kdigest_new(struct kerr **err)
{
        struct kdigest *d = kcalloc(1, sizeof(*d));

        (void)err;
        sha256_init(&d->ctx);
        return d;
}

void kdigest_free(struct kdigest *d)
{
        free(d);
}

void kdigest_update(struct kdigest *d, const void *p, size_t n)
{
        if (n)
                sha256_update(&d->ctx, n, p);
}

int kdigest_final(struct kdigest *d, char out[KDIGEST_STRLEN], struct kerr **err)
{
        static const char hex[] = "0123456789abcdef";
        uint8_t md[SHA256_DIGEST_SIZE];

        if (d->done)
                return kerr_set(err, 0, KERR_INTERNAL, "sha256 finalised twice");
        sha256_digest(&d->ctx, sizeof(md), md);
        d->done = true;
        memcpy(out, "sha256:", 7);
        for (unsigned i = 0; i < sizeof(md); i++) {
                out[7 + 2 * i] = hex[md[i] >> 4];
                out[7 + 2 * i + 1] = hex[md[i] & 15];
        }
        out[7 + 64] = '\0';
        return 0;
}

const char *kdigest_library_version(void)
{
        static char v[32];

        snprintf(v, sizeof(v), "%d.%d", nettle_version_major(), nettle_version_minor());
        return v;
}

int kdigest_buf(const void *p, size_t n, char out[KDIGEST_STRLEN], struct kerr **err)
{
        struct kdigest *d = kdigest_new(err);
        int r;

        if (!d)
                return -1;
        kdigest_update(d, p, n);
        r = kdigest_final(d, out, err);
        kdigest_free(d);
        return r;
}

bool kdigest_valid(const char *s)
{
        if (!s || strncmp(s, "sha256:", 7) != 0)
                return false;
        s += 7;
        for (int i = 0; i < 64; i++) {
                char c = s[i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return false;
        }
        return s[64] == '\0';
}

const char *kdigest_hex(const char *s)
{
        return kdigest_valid(s) ? s + 7 : NULL;
}
