/* SPDX-License-Identifier: Apache-2.0 */
#include "common/digest.h"

#include <string.h>

#include "common/err.h"
#include "tap.h"

TEST(digest_known_vectors)
{
        char out[KDIGEST_STRLEN];

        CHECK(kdigest_buf("", 0, out, NULL) == 0);
        CHECK_STREQ(out, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK(kdigest_buf("abc", 3, out, NULL) == 0);
        CHECK_STREQ(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(digest_streaming_equals_one_shot)
{
        char a[KDIGEST_STRLEN], b[KDIGEST_STRLEN];
        static char data[1 << 16];
        struct kdigest *d = kdigest_new(NULL);

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (char)(i * 7);
        for (size_t off = 0; off < sizeof(data); off += 1000)
                kdigest_update(d, data + off,
                               sizeof(data) - off < 1000 ? sizeof(data) - off : 1000);
        CHECK(kdigest_final(d, a, NULL) == 0);
        CHECK(kdigest_final(d, a, NULL) < 0); /* finalising twice is refused */
        kdigest_free(d);
        CHECK(kdigest_buf(data, sizeof(data), b, NULL) == 0);
        CHECK_STREQ(a, b);
}

TEST(digest_validation)
{
        CHECK(kdigest_valid(
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        CHECK(!kdigest_valid(
                "sha256:E3B0C44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        CHECK(!kdigest_valid("sha256:e3b0"));
        CHECK(!kdigest_valid(
                "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        CHECK(!kdigest_valid(
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550"));
        CHECK(!kdigest_valid(
                "sha256:../../c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        CHECK(!kdigest_valid(NULL));
        CHECK_STREQ(kdigest_hex("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                                "7852b855"),
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
