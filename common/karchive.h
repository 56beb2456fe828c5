/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

struct kerr;

/* Loads libarchive (dlopen of libarchive.so.13, or $KILN_LIBARCHIVE) the first time; 0, or
 * -1 with a KERR_UNSUPPORTED error that names the file, the loader's reason and the Debian
 * package. Call it before making an archive (archive_read_new, archive_write_new,
 * archive_entry_new): kiln does not link libarchive, common/karchive.c defines the functions
 * it calls and forwards them, and a call before a successful load is a bug that aborts.
 * Thread-safe. */
int karchive_load(struct kerr **err);
