/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct kbuf;
struct kerr;
struct json_t;

/* A JSON writer into a kbuf: deterministic output, for tools and goldens.
 * Strings are escaped; bytes that are not valid UTF-8 become U+FFFD. */
struct kjson_writer {
        struct kbuf *out;
        bool pretty;
        bool after_key;
        unsigned depth;
        unsigned char *has_items; /* per depth: an element was written already */
        size_t cap;
};

void kjson_writer_init(struct kjson_writer *w, struct kbuf *out, bool pretty);
void kjson_writer_release(struct kjson_writer *w);
void kjson_begin_object(struct kjson_writer *w);
void kjson_end_object(struct kjson_writer *w);
void kjson_begin_array(struct kjson_writer *w);
void kjson_end_array(struct kjson_writer *w);
void kjson_key(struct kjson_writer *w, const char *key);
/* NULL writes null. */
void kjson_string(struct kjson_writer *w, const char *s);
void kjson_stringn(struct kjson_writer *w, const char *s, size_t n);
void kjson_int(struct kjson_writer *w, long long v);
void kjson_bool(struct kjson_writer *w, bool v);
void kjson_null(struct kjson_writer *w);
void kjson_kv_string(struct kjson_writer *w, const char *key, const char *s);
void kjson_kv_int(struct kjson_writer *w, const char *key, long long v);
void kjson_kv_bool(struct kjson_writer *w, const char *key, bool v);

/* Appends s to out as a quoted JSON string. */
void kjson_quote(struct kbuf *out, const char *s, size_t n);

/* Parses data as a JSON array of strings, as docker's exec form does: leading white space
 * allowed, nothing but white space after the array. On success *ret_v is a NULL-terminated
 * vector (caller frees each string and the vector) and *ret_n its length. Fails with code
 * KERR_PARSE when data is not a JSON array, KERR_INVALID when an element is not a string. */
int kjson_parse_string_array(const char *data, size_t len, char ***ret_v, size_t *ret_n,
                             struct kerr **err);

/* Loads one JSON document, rejecting duplicate keys; name is used in the error. */
struct json_t *kjson_load(const void *data, size_t len, const char *name, struct kerr **err);

/* The version of the linked jansson. */
const char *kjson_library_version(void);
