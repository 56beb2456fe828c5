/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kbuf;

#define KUTF8_ERROR 0xFFFDu

/* Decodes the UTF-8 sequence at s (n > 0 bytes left) as Go does: an invalid or truncated
 * sequence decodes as U+FFFD with width 1. Returns the width. */
size_t kutf8_decode(const char *s, size_t n, uint32_t *ret_cp);
/* True when the sequence at s is valid UTF-8 (a real U+FFFD included); *ret_width is set. */
bool kutf8_valid_at(const char *s, size_t n, size_t *ret_width);
/* Appends cp encoded; anything that is not a Unicode scalar value becomes U+FFFD. */
void kutf8_put(struct kbuf *b, uint32_t cp);
/* Go's unicode.IsSpace. */
bool kutf8_is_space(uint32_t cp);
