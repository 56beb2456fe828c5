/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/sandbox.h"

#include <seccomp.h>
#include <stdio.h>

#include "common/banned.h"

void sandbox_seccomp_version(char *buf, size_t size)
{
        const struct scmp_version *v = seccomp_version();

        snprintf(buf, size, "%u.%u.%u", v->major, v->minor, v->micro);
}
