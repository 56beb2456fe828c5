/* SPDX-License-Identifier: Apache-2.0 */
#include "common/idmap.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/banned.h"

static const char *owner_hint;

void kidmap_set_hint(const char *hint)
{
        owner_hint = hint;
}

bool kidmap_is_mapped(bool gid, unsigned long id)
{
        FILE *f = fopen(gid ? "/proc/self/gid_map" : "/proc/self/uid_map", "re");
        unsigned long inside, outside, count;
        bool found = false;

        if (!f)
                return true;
        /* Each line is "INSIDE OUTSIDE COUNT"; the ids we set are the inside ones. */
        while (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3) {
                if (id >= inside && id - inside < count) {
                        found = true;
                        break;
                }
        }
        fclose(f);
        return found;
}

/* The number of ids /proc/self/uid_map (or gid_map) maps; 0 when it cannot be read. */
static unsigned long map_size(bool gid)
{
        FILE *f = fopen(gid ? "/proc/self/gid_map" : "/proc/self/uid_map", "re");
        unsigned long inside, outside, count, n = 0;

        if (!f)
                return 0;
        while (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
                n += count;
        fclose(f);
        return n;
}

const char *kidmap_single_id_hint(void)
{
        if (!owner_hint)
                return NULL;
        return map_size(false) == 1 || map_size(true) == 1 ? owner_hint : NULL;
}

int kidmap_owner_error(struct kerr **err, int errnum, unsigned long uid, unsigned long gid,
                       const char *fmt, ...)
{
        struct kbuf b = KBUF_INIT;
        bool uid_ok, gid_ok;
        va_list ap;

        va_start(ap, fmt);
        kbuf_vprintf(&b, fmt, ap);
        va_end(ap);
        /* (uid_t)-1 leaves an owner as it is: never the unmapped one. */
        uid_ok = errnum != EINVAL || uid == UINT_MAX || kidmap_is_mapped(false, uid);
        gid_ok = errnum != EINVAL || gid == UINT_MAX || kidmap_is_mapped(true, gid);
        if (uid_ok && gid_ok) {
                kerr_set(err, errnum, KERR_IO, "%s", b.data);
                kbuf_release(&b);
                return -1;
        }
        if (!uid_ok && !gid_ok)
                kbuf_printf(&b, ": uid %lu and gid %lu are not mapped", uid, gid);
        else if (!uid_ok)
                kbuf_printf(&b, ": uid %lu is not mapped", uid);
        else
                kbuf_printf(&b, ": gid %lu is not mapped", gid);
        if (owner_hint)
                kbuf_printf(&b, " in kiln's user namespace (%s)", owner_hint);
        else
                kbuf_puts(&b, " in the user namespace kiln runs in");
        kerr_set(err, 0, KERR_INVALID, "%s", b.data);
        kbuf_release(&b);
        return -1;
}
