/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

struct kerr;

/* Owners and the user namespace: a file can be given only an owner that the caller's user
 * namespace maps, and chown fails with EINVAL otherwise. These helpers turn that EINVAL
 * into a message that names the id and says how to map it. */

/* Whether id is mapped in the calling process's user namespace (/proc/self/gid_map when
 * gid is true, else uid_map). True when the map cannot be read: nothing is known missing. */
bool kidmap_is_mapped(bool gid, unsigned long id);

/* Sets the advice given with an unmapped owner, e.g. "add subordinate ids for USER to
 * /etc/subuid ...". The string is kept, not copied; NULL (the default) gives none. */
void kidmap_set_hint(const char *hint);

/* The hint set with kidmap_set_hint() when the calling process's user namespace maps only
 * one uid or only one gid (kiln without subordinate ids, where anything that gives a file
 * another owner fails); else NULL. For the error of a command that failed there. */
const char *kidmap_single_id_hint(void);

/* As kerr_set(err, errnum, KERR_IO, fmt, ...) for an operation that gave a file the owner
 * uid:gid, except that EINVAL with uid or gid unmapped gives "FMT: uid U is not mapped in
 * kiln's user namespace (HINT)" with code KERR_INVALID and errnum 0. Returns -1. */
int kidmap_owner_error(struct kerr **err, int errnum, unsigned long uid, unsigned long gid,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
