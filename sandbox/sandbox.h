/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

/* The sandbox module: user namespaces, mounts, seccomp, capabilities and networking. So
 * far it reports the version of libseccomp it runs with. */

/* Writes the running libseccomp's version ("2.5.4") into buf. */
void sandbox_seccomp_version(char *buf, size_t size);
