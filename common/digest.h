/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct kerr;

/* "sha256:" + 64 hex digits + NUL */
#define KDIGEST_STRLEN 72

/* Streaming sha256 over OpenSSL EVP. */
struct kdigest;

struct kdigest *kdigest_new(struct kerr **err);
void kdigest_free(struct kdigest *d);
void kdigest_update(struct kdigest *d, const void *p, size_t n);
/* Writes "sha256:<hex>" into out; the digest cannot be updated afterwards. */
int kdigest_final(struct kdigest *d, char out[KDIGEST_STRLEN], struct kerr **err);
/* One-shot digest of a buffer. */
int kdigest_buf(const void *p, size_t n, char out[KDIGEST_STRLEN], struct kerr **err);
/* The version of the library that computes the digests (nettle), as "MAJOR.MINOR". */
const char *kdigest_library_version(void);
/* True when s is "sha256:" followed by exactly 64 lowercase hex digits. */
bool kdigest_valid(const char *s);
/* The hex part of a valid digest string, or NULL. */
const char *kdigest_hex(const char *s);
