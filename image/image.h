/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The image module: content-addressable store, layers and whiteouts, compression,
 * manifests and OCI/docker archives. So far it reports the versions of the libraries it
 * is built on. */

/* Versions of the linked libarchive, zstd and zlib (static strings). */
const char *image_libarchive_version(void);
const char *image_zstd_version(void);
const char *image_zlib_version(void);
