#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The house-rule lint (scripts/lint.py) catches what it promises to catch.
set -u
. "$(dirname "$0")/../lib.sh"

LINT=$KILN_SRCDIR/scripts/lint.py
cd "$T_TMP" || t_bail "cd $T_TMP"
mkdir -p parser image

lint_case() {
        local name=$1 want=$2 pattern=$3 file=$4
        t_fails "$name" "$want" python3 "$LINT" "$file"
        [ -n "$pattern" ] && t_grep "$name: message" "$pattern" "$T_OUT"
}

cat >parser/good.c <<'C'
#include "parser/parser.h"
#include <fcntl.h>
#include "common/banned.h"
static int f(void) { int p[2]; pipe2(p, O_CLOEXEC); return open("x", O_RDONLY | O_CLOEXEC); }
static FILE *g(void) { return fopen("x", "re"); }
C
lint_case "a clean file passes" 0 "" parser/good.c

printf '#include <fcntl.h>\nstatic int f(void) { return open("x",\n    O_RDONLY); }\n#include "common/banned.h"\n' >parser/open.c
lint_case "open without O_CLOEXEC fails" 1 'parser/open\.c:2: open\(\) without O_CLOEXEC' parser/open.c

printf 'static int f(int d) { return openat(d, "x", O_RDONLY); }\n#include "common/banned.h"\n' >parser/openat.c
lint_case "openat without O_CLOEXEC fails" 1 'openat\(\) without O_CLOEXEC' parser/openat.c

printf 'static int f(void) { return socket(AF_UNIX, SOCK_STREAM, 0); }\n#include "common/banned.h"\n' >parser/sock.c
lint_case "socket without SOCK_CLOEXEC fails" 1 'socket\(\) without SOCK_CLOEXEC' parser/sock.c

printf 'static int f(int *p) { return pipe(p); }\n#include "common/banned.h"\n' >parser/pipe.c
lint_case "pipe fails" 1 'pipe\(\) cannot set close-on-exec; use pipe2' parser/pipe.c

printf 'static void *f(void) { return fopen("x", "r"); }\n#include "common/banned.h"\n' >parser/fopen.c
lint_case "fopen without e fails" 1 "fopen\(\) without the 'e' mode flag" parser/fopen.c

printf '/* open("x", O_RDONLY) in a comment is fine */\n#include "common/banned.h"\n' >parser/comment.c
lint_case "calls in comments are ignored" 0 "" parser/comment.c

printf '#include "parser/internal.h"\n#include "common/banned.h"\n' >image/reach.c
lint_case "another module's internal.h fails" 1 'includes parser/internal\.h from another module' image/reach.c

printf '#include "parser/internal.h"\n#include "common/banned.h"\n' >parser/own.c
lint_case "a module's own internal.h passes" 0 "" parser/own.c

printf '#include "common/banned.h"\n#include <stdio.h>\n' >parser/order.c
lint_case "banned.h not last fails" 1 'common/banned\.h must be the last include' parser/order.c

t_done
