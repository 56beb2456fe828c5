/* SPDX-License-Identifier: Apache-2.0 */
#include "common/digest.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/banned.h"

struct kdigest {
        EVP_MD_CTX *ctx;
        bool done;
};

struct kdigest *kdigest_new(struct kerr **err)
{
        struct kdigest *d = kcalloc(1, sizeof(*d));

        d->ctx = EVP_MD_CTX_new();
        if (!d->ctx || EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) != 1) {
                kdigest_free(d);
                kerr_from_ssl(err, "initialise sha256");
                return NULL;
        }
        return d;
}

void kdigest_free(struct kdigest *d)
{
        if (!d)
                return;
        EVP_MD_CTX_free(d->ctx);
        free(d);
}

void kdigest_update(struct kdigest *d, const void *p, size_t n)
{
        /* EVP_DigestUpdate only fails on a misused context, which is a bug. */
        if (n && EVP_DigestUpdate(d->ctx, p, n) != 1)
                abort();
}

int kdigest_final(struct kdigest *d, char out[KDIGEST_STRLEN], struct kerr **err)
{
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;

        if (d->done)
                return kerr_set(err, 0, KERR_INTERNAL, "sha256 finalised twice");
        if (EVP_DigestFinal_ex(d->ctx, md, &len) != 1 || len != 32)
                return kerr_from_ssl(err, "finish sha256");
        d->done = true;
        memcpy(out, "sha256:", 7);
        for (unsigned i = 0; i < len; i++) {
                out[7 + 2 * i] = hex[md[i] >> 4];
                out[7 + 2 * i + 1] = hex[md[i] & 15];
        }
        out[7 + 64] = '\0';
        return 0;
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
