/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

struct kerr;

/* The sandbox module: user namespaces, mounts, seccomp, capabilities and networking. So
 * far it puts a non-root kiln into a user namespace and reports libseccomp's version. */

/* Writes the running libseccomp's version ("2.5.4") into buf. */
void sandbox_seccomp_version(char *buf, size_t size);

/* A range of subordinate ids: START and COUNT of a line "NAME:START:COUNT". */
struct sandbox_idrange {
        unsigned long start, count;
};

/* Reads the ranges of the user named user (may be NULL) or numbered id from a subuid-style
 * file, in file order, into a new array *ret_ranges (NULL when none). A missing file has
 * none; malformed lines are skipped. */
int sandbox_subid_ranges(const char *path, const char *user, unsigned long id,
                         struct sandbox_idrange **ret_ranges, size_t *ret_n, struct kerr **err);

/* The user namespace that sandbox_userns_enter() put kiln in. */
struct sandbox_userns {
        unsigned long n_uids, n_gids; /* ids mapped from 0; 1 when only the user's own */
        char *warning; /* why only the user's own ids are mapped, to show once; or NULL */
        char *hint;    /* how to map more ids, for an error about an unmapped owner */
};

/* Without root, moves the (single-threaded) caller into a new user namespace as uid/gid 0
 * over its own ids and its subuid/subgid ranges (ARCHITECTURE.md). Returns 0 as root, doing
 * nothing; 1 with *ret set (release it); -1 on failure, after which the caller should exit. */
int sandbox_userns_enter(struct sandbox_userns *ret, struct kerr **err);
/* Frees what sandbox_userns_enter() put in ns; NULL is fine. */
void sandbox_userns_release(struct sandbox_userns *ns);
