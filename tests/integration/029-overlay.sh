#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# RUN's file systems beyond one overlay of the stage's layers, as root and as a user without
# root (kilntest): RUN --mount=type=bind,rw (writes seen by the step, thrown away after it,
# the context untouched; with an ignore file too) and binds from stages and images of
# several layers (merged: whiteouts honoured, symlinks resolved inside the tree, read-only
# unless rw).
set -u
. "$(dirname "$0")/../lib.sh"

chmod 0755 "$T_TMP"
cd "$T_TMP" || t_bail "cd $T_TMP"

mkdir -p ctx/data ctx-ign/data
printf 'from the context\n' >ctx/data/in.txt
printf 'from the context\n' >ctx-ign/data/in.txt
printf 'hidden\n' >ctx-ign/data/hidden.txt
printf 'data/hidden.txt\n' >ctx-ign/.dockerignore

# A stage of three layers: a file that a later layer deletes, a directory that a later
# layer replaces (opaque), an absolute symlink and one that climbs out of the tree.
cat >ctx/Containerfile.multi <<'CF'
FROM busybox
RUN mkdir -p /m/d /m/r /etc/kiln && echo one >/m/d/one && echo gone >/m/gone && \
    echo old >/m/r/old && echo in-tree >/etc/kiln/marker && ln -s /m/d /m/abs && \
    ln -s ../../../../../../../etc/kiln /m/up
RUN echo two >/m/d/two && rm /m/gone && rm -r /m/r && mkdir /m/r && echo new >/m/r/new
CF
cat >ctx/Containerfile <<'CF'
FROM busybox AS multi
RUN mkdir -p /m/d && echo one >/m/d/one && echo gone >/m/gone
RUN echo two >/m/d/two && rm /m/gone
FROM busybox
RUN --mount=type=bind,from=multi,source=/m,target=/s ls /s/d >/stage.list && \
    (test -e /s/gone || echo gone-hidden) >/stage.gone && \
    (touch /s/x 2>/dev/null || echo refused) >/stage.ro
RUN --mount=type=bind,from=multi-image,source=/m,target=/s \
    ls /s/d /s/r >/image.list && (test -e /s/r/old || echo opaque) >/image.opaque
RUN --mount=type=bind,from=multi-image,source=/m/abs,target=/s cat /s/one /s/two >/image.abs
RUN --mount=type=bind,from=multi-image,source=/m/up/marker,target=/marker cat /marker >/image.up
RUN --mount=type=bind,from=multi-image,source=/m,target=/s,rw \
    echo changed >/s/d/one && rm /s/d/two && touch /s/d/made && \
    cat /s/d/one >/image.rw && ls /s/d >/image.rw.list
RUN --mount=type=bind,from=multi-image,source=/m,target=/s cat /s/d/one >/image.after && \
    ls /s/d >>/image.after
RUN --mount=type=bind,source=data,target=/c,rw echo x >/c/in.txt && echo new >/c/new && \
    cat /c/in.txt /c/new >/ctx.rw
RUN --mount=type=bind,source=data/in.txt,target=/f,rw echo y >/f && cat /f >/ctx.rw.file
RUN --mount=type=bind,source=data,target=/c ls /c >/ctx.after && cat /c/in.txt >>/ctx.after
RUN --mount=type=bind,source=data,target=/c (touch /c/x 2>/dev/null || echo refused) >/ctx.ro
CF
cat >ctx-ign/Containerfile <<'CF'
FROM busybox
RUN --mount=type=bind,source=data,target=/c,rw ls /c >/ign.list && echo x >/c/in.txt && \
    cat /c/in.txt >/ign.rw
CF

# in_image ROOT AS... IMAGE FILE: the contents of FILE in IMAGE, through a RUN.
in_image()
{
        local root=$1 img=$2 file=$3
        shift 3
        printf 'FROM %s\nRUN cat %s\n' "$img" "$file" | "$@" env KILN_ROOT="$root" "$KILN" build \
                --no-cache -q -f - "$T_TMP/ctx" 2>&1 | grep -v '^[0-9a-f]\{64\}$'
}

bind_case()
{
        local label=$1 root=$2
        shift 2
        local -a as=("$@")
        local -a k=("${as[@]}" env KILN_ROOT="$root" "$KILN")
        local before

        t_ok "$label: the busybox base builds" "${as[@]}" env KILN_ROOT="$root" \
                bash "$KILN_SRCDIR/testdata/base/busybox.sh" "$KILN" busybox
        t_ok "$label: an image of three layers" "${k[@]}" build -f ctx/Containerfile.multi \
                -t multi-image ctx
        before=$(cd ctx && find . -printf '%p %s %T@\n' | sort)
        t_ok "$label: the binds build" "${k[@]}" build -t binds ctx
        t_eq "$label: the context is as it was" "$(cd ctx && find . -printf '%p %s %T@\n' | sort)" \
                "$before"
        t_eq "$label: from a stage of three layers: both layers" "$(in_image "$root" binds /stage.list "${as[@]}")" "one
two"
        t_eq "$label: from a stage: a deleted file is gone" "$(in_image "$root" binds /stage.gone "${as[@]}")" "gone-hidden"
        t_eq "$label: from a stage: read-only" "$(in_image "$root" binds /stage.ro "${as[@]}")" "refused"
        t_eq "$label: from an image: a replaced directory holds only the new" \
                "$(in_image "$root" binds /image.list "${as[@]}")" "/s/d:
one
two

/s/r:
new"
        t_eq "$label: from an image: opaque" "$(in_image "$root" binds /image.opaque "${as[@]}")" "opaque"
        t_eq "$label: source through an absolute symlink, inside the tree" \
                "$(in_image "$root" binds /image.abs "${as[@]}")" "one
two"
        t_eq "$label: a symlink that climbs stops at the tree's root" \
                "$(in_image "$root" binds /image.up "${as[@]}")" "in-tree"
        t_eq "$label: rw: the step sees its writes" "$(in_image "$root" binds /image.rw "${as[@]}")" "changed"
        t_eq "$label: rw: and its deletions" "$(in_image "$root" binds /image.rw.list "${as[@]}")" "made
one"
        t_eq "$label: rw: the next step sees none of them" \
                "$(in_image "$root" binds /image.after "${as[@]}")" "one
one
two"
        t_eq "$label: rw context: the step sees its writes" "$(in_image "$root" binds /ctx.rw "${as[@]}")" "x
new"
        t_eq "$label: rw context file" "$(in_image "$root" binds /ctx.rw.file "${as[@]}")" "y"
        t_eq "$label: rw context: the next step sees the context" \
                "$(in_image "$root" binds /ctx.after "${as[@]}")" "in.txt
from the context"
        t_eq "$label: a context bind is read-only by default" \
                "$(in_image "$root" binds /ctx.ro "${as[@]}")" "refused"
        t_ok "$label: no mount point is left in the image" bash -c \
                "printf 'FROM binds\nRUN test ! -e /s && test ! -e /c && test ! -e /f && test ! -e /marker\n' |
                 ${k[*]} build --no-cache -f - ctx"
        t_eq "$label: nothing is left in tmp/" "$(ls -A "$root/tmp" 2>/dev/null)" ""

        before=$(cd ctx-ign && find . -printf '%p %s %T@\n' | sort)
        t_ok "$label: rw with an ignore file" "${k[@]}" build -t ign ctx-ign
        t_eq "$label: rw with an ignore file: the ignored file is not there" \
                "$(in_image "$root" ign /ign.list "${as[@]}")" "in.txt"
        t_eq "$label: rw with an ignore file: the step sees its write" \
                "$(in_image "$root" ign /ign.rw "${as[@]}")" "x"
        t_eq "$label: rw with an ignore file: the context is as it was" \
                "$(cd ctx-ign && find . -printf '%p %s %T@\n' | sort)" "$before"
}

if [ "$(id -u)" = 0 ]; then
        bind_case root "$T_TMP/store-root" env
else
        t_skip "root" "not running as root"
fi

if t_rootless_users && runuser -u kilntest -- test -x "$KILN"; then
        mkdir -p home-kilntest
        chown kilntest: home-kilntest
        # A user builds a context of their own: files the user namespace maps.
        chown -R kilntest: ctx ctx-ign
        bind_case rootless "$T_TMP/home-kilntest/store" \
                runuser -u kilntest -- env HOME="$T_TMP/home-kilntest"
else
        t_skip "rootless" "${T_SKIP_REASON:-kilntest cannot run $KILN}"
fi
t_done
