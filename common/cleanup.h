/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include "common/fs.h"

/* Scope-bound cleanup, after systemd's and crun's macros. */
#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void kfree_p(void *p)
{
        free(*(void **)p);
}

static inline void kclose_p(int *fd)
{
        if (*fd >= 0)
                kfs_close(*fd);
}

static inline void kfclose_p(FILE **f)
{
        if (*f)
                fclose(*f);
}

#define _cleanup_free_ _cleanup_(kfree_p)
#define _cleanup_close_ _cleanup_(kclose_p)
#define _cleanup_fclose_ _cleanup_(kfclose_p)

/* DEFINE_CLEANUP(struct foo *, foo_free) gives _cleanup_(foo_freep). */
#define DEFINE_CLEANUP(type, fn)                                                                   \
        static inline void fn##p(type *p)                                                          \
        {                                                                                          \
                if (*p)                                                                            \
                        fn(*p);                                                                    \
        }

/* Move ownership out of a cleanup variable. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _tp = (p);                                                           \
                (p) = NULL;                                                                        \
                _tp;                                                                               \
        })

#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _tf = (fd);                                                                    \
                (fd) = -1;                                                                         \
                _tf;                                                                               \
        })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
