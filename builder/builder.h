/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The builder module: stages, the instruction executor, the step cache and the build
 * context. So far it finds and reads the Containerfile of a build. */

struct kbuf;
struct kerr;

/* Reads the Containerfile of a build as podman does: file when given ("-" reads standard
 * input; a relative path is taken from the current directory), otherwise Containerfile,
 * then Dockerfile, in context_dir. *ret_name is the path to use in messages (caller frees);
 * the contents go to out. Files over 16 MiB are refused. */
int builder_read_containerfile(const char *context_dir, const char *file, char **ret_name,
                               struct kbuf *out, struct kerr **err);
