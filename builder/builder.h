/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The builder module: stages, the instruction executor, the step cache and the build
 * context. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "image/image.h"

struct kbuf;
struct kerr;

/* Reads the Containerfile of a build as podman does: file when given ("-" reads standard
 * input; a relative path is taken from the current directory), otherwise Containerfile,
 * then Dockerfile, in context_dir. *ret_name is the path to use in messages (caller frees);
 * the contents go to out. Files over 16 MiB are refused. */
int builder_read_containerfile(const char *context_dir, const char *file, char **ret_name,
                               struct kbuf *out, struct kerr **err);

/* Progress lines of a build ("STEP 2/5: COPY . /app", "COMMIT hello", "--> 1a2b3c4d5e6f"),
 * without the trailing newline. */
typedef void (*builder_progress_fn)(void *ctx, const char *line);

/* --secret id=ID,src=FILE or id=ID,env=VAR: what RUN --mount=type=secret,id=ID sees. */
struct builder_secret {
        char *id;
        char *src; /* a file to read, or NULL */
        char *env; /* an environment variable of kiln's to read, or NULL */
};

/* Parses a --secret value as podman does (a bare id reads the variable of that name). */
int builder_secret_parse(const char *spec, struct builder_secret *ret, struct kerr **err);
void builder_secret_release(struct builder_secret *s);

struct builder_opts {
        const char *context_dir; /* default "." */
        const char *file;        /* -f; NULL: Containerfile, then Dockerfile in the context */
        const char *const *tags; /* -t, normalised by the store */
        size_t n_tags;
        const char *const *build_args; /* "K=V", or "K" to take K from the environment */
        size_t n_build_args;
        const char *target;             /* --target: a stage name or index; NULL: the last stage */
        const char *format;             /* --format: "oci", "docker" or NULL */
        const char *const *annotations; /* --annotation K=V, for the image's manifests */
        size_t n_annotations;
        const char *const *labels; /* --label K=V */
        size_t n_labels;
        const char *ignorefile; /* --ignorefile; NULL: .containerignore, then .dockerignore */
        int64_t timestamp;      /* --timestamp / SOURCE_DATE_EPOCH; -1 when not given */
        bool no_cache;          /* --no-cache: look nothing up in the step cache, still fill it */
        bool no_layers;         /* --layers=false: neither look up nor fill the step cache */
        /* RUN: --network host|none (NULL: host), --cap-add/--cap-drop, --security-opt
         * seccomp=, --secret. */
        const char *network;
        const char *const *cap_add; /* NULL-terminated, or NULL */
        const char *const *cap_drop;
        const char *seccomp;
        const struct builder_secret *secrets;
        size_t n_secrets;
        /* Where RUN's output goes (the caller's stdout, or stderr when quiet); -1: 1. */
        int run_stdout, run_stderr;
        /* --jobs: how many stages build at once; 0: one per CPU. With more than one, and
         * stages that do not need each other, each stage builds in a process of its own
         * whose fds 1 and 2 (progress lines and RUN output included) reach this process's
         * 1 and 2 a line at a time, behind "[STAGE] ". */
        unsigned jobs;
        builder_progress_fn progress;
        void *progress_ctx;
};

/* Builds the target stage of the Containerfile and stores the image (named by the tags).
 * Returns the image id (config digest). A failed build leaves the store as it was, apart
 * from layers that were complete and may serve later builds. */
int builder_build(struct image_store *s, const struct builder_opts *o, char ret_id[KDIGEST_STRLEN],
                  struct kerr **err);
