/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of builder/ only; no other module includes this. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "builder/builder.h"
#include "sandbox/sandbox.h"
#include "common/buf.h"
#include "common/cleanup.h"

struct kbuf;
struct parser_instr;
struct kerr;

/* ======================================================================================
 * Paths (rootfs.c)
 *
 * Paths inside a root (the build context, an image rootfs) are written "/a/b": cleaned as
 * Go's path.Clean does on "/" + path, so ".." never climbs above "/".
 * ====================================================================================== */

/* The cleaned form of path taken from "/" ("a/../b/" -> "/b"). Caller frees. */
char *builder_path_clean(const char *path);
/* dir joined with path (an absolute path replaces dir), cleaned. Caller frees. */
char *builder_path_join(const char *dir, const char *path);

/* Looks up one entry of a root without following a final symlink: 0 and *st on success,
 * -ENOENT / -ENOTDIR when there is none (nothing else set), other < 0 with *err set. When
 * the entry is a symlink, *ret_target (may be NULL) receives its target (caller frees). */
typedef int (*builder_lookup_fn)(void *root, const char *path, struct stat *st, char **ret_target,
                                 struct kerr **err);

/* Resolves path (absolute within the root) through the symlinks of the root as
 * RESOLVE_IN_ROOT does: absolute targets restart at the root, ".." stops at it. The final
 * component is followed only when follow_last; components that do not exist are kept as
 * written. *ret is a cleaned path whose directories are real directories. ELOOP after 40
 * links. */
int builder_path_resolve(builder_lookup_fn lookup, void *root, const char *path, bool follow_last,
                         char **ret, struct kerr **err);

/* ======================================================================================
 * Rootfs views (rootfs.c)
 *
 * A merged view, as overlayfs shows it, of layer directories in overlay format (lowers
 * bottom first, then the writable upper). A 0/0 character device is a whiteout; a directory
 * with trusted.overlay.opaque or user.overlay.opaque = "y" hides what is below it; any
 * non-directory hides a directory below. Paths given to these functions are inside the
 * view ("/etc/passwd"); symlinks are followed inside the view, never on the host.
 * ====================================================================================== */

struct builder_rootfs;

/* Takes copies (F_DUPFD_CLOEXEC) of the n_lowers directory fds and of upper_fd (-1: a
 * read-only view, e.g. of another stage). */
struct builder_rootfs *builder_rootfs_new(const int *lower_fds, size_t n_lowers, int upper_fd,
                                          struct kerr **err);
void builder_rootfs_free(struct builder_rootfs *r);

/* The builder_lookup_fn of a view (root is the struct builder_rootfs *). */
int builder_rootfs_lookup(void *root, const char *path, struct stat *st, char **ret_target,
                          struct kerr **err);
/* Resolves path in the view (see builder_path_resolve). */
int builder_rootfs_resolve(struct builder_rootfs *r, const char *path, bool follow_last, char **ret,
                           struct kerr **err);
/* lstat (follow false) or stat (follow true) of path in the view. A missing path is a
 * KERR_NOTFOUND error. *ret_path (may be NULL) is the resolved path. */
int builder_rootfs_stat(struct builder_rootfs *r, const char *path, bool follow, struct stat *st,
                        char **ret_path, struct kerr **err);
/* Opens the regular file at path (symlinks followed in the view) for reading. */
int builder_rootfs_open(struct builder_rootfs *r, const char *path, struct kerr **err);
/* Reads the file at path into out (at most max bytes; 0: no limit). */
int builder_rootfs_read_file(struct builder_rootfs *r, const char *path, size_t max,
                             struct kbuf *out, struct kerr **err);
/* The names in the directory at path (a resolved path), sorted, whiteouts and hidden lower
 * entries left out. *ret_names is NULL-terminated; caller frees each and the vector. */
int builder_rootfs_readdir(struct builder_rootfs *r, const char *path, char ***ret_names,
                           size_t *ret_n, struct kerr **err);

/* For writing into the upper dir. path is a resolved path (builder_rootfs_resolve). Makes
 * every directory above path exist in the upper dir: one that the view shows from a lower
 * layer is copied up (mode, owner, times); a missing one is created 0755 and owned by
 * uid:gid. Then removes what the upper dir has at path itself unless it is a directory
 * (a whiteout, or a file being replaced). Returns an O_PATH fd of the parent directory in
 * the upper dir and sets *ret_name to the last component (pointing into path). */
int builder_rootfs_prepare(struct builder_rootfs *r, const char *path, uid_t uid, gid_t gid,
                           const char **ret_name, struct kerr **err);
/* mkdir -p of a resolved path in the view, as builder_rootfs_prepare creates parents;
 * an existing directory in the view is copied up. */
int builder_rootfs_mkdir_p(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                           gid_t gid, struct kerr **err);
/* As builder_rootfs_mkdir_p, but a non-directory at path itself is replaced by the new
 * directory (which hides a lower directory there when one was hidden before). */
int builder_rootfs_mkdir_replace(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                                 gid_t gid, struct kerr **err);
/* The fd of the upper dir (-1 for a read-only view). */
int builder_rootfs_upper_fd(const struct builder_rootfs *r);
/* Removes from a step's upper dir (upper_fd; r is the read-only view of the layers below
 * it) the directories that change nothing: ones the view has with the same mode, owner and
 * kept xattrs that hold nothing once pruned and hide nothing (not opaque, or opaque over an
 * empty directory). overlayfs copies a directory up when anything below it is written,
 * even if that is gone again, and docker's differ leaves such a directory out. */
int builder_rootfs_prune_upper(struct builder_rootfs *r, int upper_fd, struct kerr **err);

/* An entry of a directory listing, with its lstat. */
struct builder_dirent {
        char *name;
        struct stat st;
        bool mount_root; /* context only: another file system is mounted here */
};

void builder_dirents_free(struct builder_dirent *v, size_t n);

/* A directory of a view, held open (one fd per layer that makes it up) so that its entries
 * are looked up, read and written by name, without resolving a path from the root each
 * time. name arguments are single components (no '/', never "." or ".."). */
struct builder_rootfs_dir;

/* Opens the directory at resolved path: KERR_NOTFOUND when the view has no directory
 * there. Caller frees. */
int builder_rootfs_dir_open(struct builder_rootfs *r, const char *path,
                            struct builder_rootfs_dir **ret, struct kerr **err);
/* mkdir -p of a resolved path as builder_rootfs_mkdir_p, then opens it. */
int builder_rootfs_dir_mkdir_p(struct builder_rootfs *r, const char *path, mode_t mode, uid_t uid,
                               gid_t gid, struct builder_rootfs_dir **ret, struct kerr **err);
void builder_rootfs_dir_free(struct builder_rootfs_dir *d);
DEFINE_CLEANUP(struct builder_rootfs_dir *, builder_rootfs_dir_free)
const char *builder_rootfs_dir_path(const struct builder_rootfs_dir *d);
/* lstat of the entry name as the view shows it: 0, -ENOENT (absent or whited out), or -1
 * with *err set. */
int builder_rootfs_dir_stat(struct builder_rootfs_dir *d, const char *name, struct stat *st,
                            struct kerr **err);
/* The entries, sorted by name, whiteouts and hidden lower entries left out. */
int builder_rootfs_dir_list(struct builder_rootfs_dir *d, struct builder_dirent **ret,
                            size_t *ret_n, struct kerr **err);
/* The subdirectory name: 0, -ENOENT, -ENOTDIR (a non-directory is there), or -1. */
int builder_rootfs_dir_child(struct builder_rootfs_dir *d, const char *name,
                             struct builder_rootfs_dir **ret, struct kerr **err);
/* Opens the regular file name for reading; KERR_NOTFOUND when there is none. */
int builder_rootfs_dir_open_file(struct builder_rootfs_dir *d, const char *name, struct kerr **err);
/* The target of the symlink name (caller frees). */
int builder_rootfs_dir_readlink(struct builder_rootfs_dir *d, const char *name, char **ret,
                                struct kerr **err);
/* The directory's fd in the upper dir (owned by d), copied up first when only a lower layer
 * has it. */
int builder_rootfs_dir_upper(struct builder_rootfs_dir *d, struct kerr **err);
/* Makes the subdirectory name exist in the upper dir as builder_rootfs_mkdir_p makes the
 * last component of its path (replace: as builder_rootfs_mkdir_replace). *ret_existed
 * (may be NULL) says whether the view had a directory there; *ret_child (may be NULL)
 * receives it. */
int builder_rootfs_dir_mkdir(struct builder_rootfs_dir *d, const char *name, mode_t mode, uid_t uid,
                             gid_t gid, bool replace, struct builder_rootfs_dir **ret_child,
                             bool *ret_existed, struct kerr **err);
/* Before a non-directory is created as name: removes what the upper dir has there (a
 * whiteout or a non-directory). A directory in the view is left alone, or refused with
 * EISDIR / KERR_INVALID when keep_dir. Returns the directory's upper fd (owned by d) to
 * create it in. */
int builder_rootfs_dir_prepare(struct builder_rootfs_dir *d, const char *name, bool keep_dir,
                               struct kerr **err);

/* ======================================================================================
 * Build context (context.c)
 * ====================================================================================== */

struct builder_context;

/* Opens the context directory dir and its ignore file: ignorefile when given (a path as
 * given on the command line), else dir/.containerignore, else dir/.dockerignore. */
struct builder_context *builder_context_open(const char *dir, const char *ignorefile,
                                             struct kerr **err);
void builder_context_free(struct builder_context *c);
int builder_context_fd(const struct builder_context *c);
/* The ignore file's name for messages (".containerignore", ".dockerignore" or the given
 * path); ".containerignore" when there is none. */
const char *builder_context_ignore_name(const struct builder_context *c);
/* True when path ("/a/b" or "a/b") is excluded by the ignore file. */
bool builder_context_ignored(const struct builder_context *c, const char *path);
bool builder_context_ignore_has_exceptions(const struct builder_context *c);
/* True when the context has an ignore file with patterns in it. */
bool builder_context_has_ignore(const struct builder_context *c);
/* The builder_lookup_fn of a context (root is the struct builder_context *). Lookups never
 * leave the context (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_XDEV). */
int builder_context_lookup(void *root, const char *path, struct stat *st, char **ret_target,
                           struct kerr **err);
/* Opens the regular file at path (a resolved path; symlinks not followed) for reading. */
int builder_context_open_file(const struct builder_context *c, const char *path, struct kerr **err);
/* The names in the directory at path (resolved), sorted, ignored ones included. */
int builder_context_readdir(const struct builder_context *c, const char *path, char ***ret_names,
                            size_t *ret_n, struct kerr **err);
/* Opens the directory at path (resolved) for walking it by name. */
int builder_context_open_dir(const struct builder_context *c, const char *path, struct kerr **err);
/* The entries of the directory dir_fd (opened by builder_context_open_dir or
 * builder_context_open_at) with their lstat, sorted by name, ignored ones included. path
 * names the directory in messages. */
int builder_context_list(const struct builder_context *c, int dir_fd, const char *path,
                         struct builder_dirent **ret, size_t *ret_n, struct kerr **err);
/* Opens the entry name of the directory dir_fd without following a symlink or crossing a
 * mount (flags: O_RDONLY | O_DIRECTORY for a subdirectory, O_RDONLY for a file). */
int builder_context_open_at(const struct builder_context *c, int dir_fd, const char *path,
                            const char *name, int flags, struct kerr **err);

/* ======================================================================================
 * COPY and ADD (copy.c)
 * ====================================================================================== */

/* Where sources come from: the build context, or a rootfs view (COPY --from). name is
 * used in messages ("stage 'build'"); NULL: "the build context" or "the source image". */
struct builder_copy_src {
        struct builder_context *context;
        struct builder_rootfs *rootfs;
        const char *name;
};

/* COPY <<NAME: data becomes a file named name when the destination is a directory. */
struct builder_copy_heredoc {
        const char *name;
        const char *data;
        size_t len;
};

struct builder_copy_opts {
        bool add;                /* ADD: local tar archives (any compression) are extracted */
        const char *const *srcs; /* expanded source patterns */
        size_t n_srcs;
        const struct builder_copy_heredoc *heredocs; /* already expanded when needed */
        size_t n_heredocs;
        const char *dest;
        const char *workdir;         /* relative destinations start here; NULL: "/" */
        const char *chown;           /* "user[:group]", names looked up in the destination; NULL */
        const char *chmod;           /* octal; NULL */
        const char *const *excludes; /* --exclude patterns */
        size_t n_excludes;
        bool parents; /* --parents */
        bool link;    /* --link: accepted, same result */
        /* Times: sources keep theirs; > clamp becomes clamp when clamp >= 0. Heredoc files
         * get now (or clamp when >= 0). */
        long long mtime_clamp;
};

/* Copies the sources into dst's upper dir with docker's COPY/ADD rules. Errors name the
 * source or destination (KERR_NOTFOUND for missing sources, KERR_INVALID for bad
 * arguments). */
int builder_copy(struct builder_rootfs *dst, const struct builder_copy_src *src,
                 const struct builder_copy_opts *o, struct kerr **err);

/* An entry of the sources of a COPY/ADD, as builder_copy would read it. */
struct builder_copy_entry {
        const char *path;   /* resolved, "/a/b" */
        const char *item;   /* a source itself: its path as matched ("/link"); NULL below it */
        const char *target; /* a symlink's target */
        const struct stat *st;
};

typedef int (*builder_copy_scan_fn)(void *ctx, const struct builder_copy_entry *e,
                                    struct kerr **err);

/* Calls fn for each entry builder_copy would read from src for o: the same globs, ignore
 * file, --exclude and --parents, the same errors for missing sources; each source first,
 * then what lies below it, depth first in name order. Reads directories and symlinks only,
 * never the contents of a file. */
int builder_copy_scan(const struct builder_copy_src *src, const struct builder_copy_opts *o,
                      builder_copy_scan_fn fn, void *ctx, struct kerr **err);

/* Resolves "user[:group]" through dst's /etc/passwd and /etc/group as docker does:
 * numbers pass through, a numeric user without a group keeps its number as gid, a named
 * one gets its primary group. */
int builder_resolve_chown(struct builder_rootfs *dst, const char *spec, uid_t *ret_uid,
                          gid_t *ret_gid, struct kerr **err);

/* Go's filepath.Match for one path component set: '*' and '?' never match '/'. Returns
 * 1 on a match, 0 on none, -1 for a malformed pattern. */
int builder_glob_match(const char *pattern, const char *name);

/* Copies the file in to out; size is what in held when it was looked at (-1: unknown). Once
 * that much is copied the copy ends, so that a file costs one copy_file_range, not two.
 * name is used in errors. */
int builder_copy_data(int in, int out, off_t size, const char *name, struct kerr **err);

/* ======================================================================================
 * Flattened layer stacks (flatten.c)
 *
 * A stack of more lower dirs than BUILDER_FLAT_MAX_LOWERS goes to the sandbox with its
 * bottom part merged into one plain tree (image_layer_flat_path of the topmost layer
 * merged), made once and kept in the store.
 * ====================================================================================== */

/* The kernel stacks up to 500 lower dirs (OVL_MAX_STACK), but a deep stack is slow where it
 * matters: a lookup of a name that the upper dir lacks walks the lowers from the top until
 * one has it, so a name that none has (a PATH search, the loader's library path, a
 * compiler's include path: most lookups in a build) costs one lookup in every lower, and a
 * directory listing merges every lower that has the directory. 128 keeps that worst case at
 * a quarter of the kernel's; docker's limit was 127 layers for years (aufs), so images made
 * elsewhere stay below it and are mounted as they are, and only stacks built deeper pay for
 * one flattening. */
#define BUILDER_FLAT_MAX_LOWERS 128
/* Flattened parts end at multiples of this many layers, so that the steps of a stage that
 * grows past the limit share one flat tree (a new one every 64 layers) instead of making one
 * per step. Below BUILDER_FLAT_MAX_LOWERS, so the layers above a flat tree always fit. */
#define BUILDER_FLAT_STEP 64

/* How many bottom layers of a stack of n are flattened when max lower dirs fit in one
 * mount (at most BUILDER_FLAT_MAX_LOWERS count): 0 when n fits as it is; else whole steps of
 * BUILDER_FLAT_STEP layers (half of max, when max is smaller), so that the rest fits beside
 * the flat tree. */
size_t builder_flat_depth_for(size_t n, size_t max);
/* BUILDER_FLAT_MAX_LOWERS, or fewer where one mount of the sandbox takes fewer (mount(2)
 * before Linux 6.8: sandbox_overlay_max_lowers). */
size_t builder_flat_max_lowers(void);
/* builder_flat_depth_for(n, builder_flat_max_lowers()). */
size_t builder_flat_depth(size_t n);

/* The lower dirs for the layers chain (chain ids, bottom first): the layers' diff dirs, the
 * bottom builder_flat_depth(n) of them replaced by their flat tree, which is made first when
 * the store has none. *ret is NULL-terminated (caller frees each and it). */
int builder_flat_lowers(struct image_store *s, const char *const *chain, size_t n, char ***ret,
                        size_t *ret_n, struct kerr **err);

/* As builder_flat_lowers, but opened: O_DIRECTORY fds of those dirs, for a rootfs view
 * (builder_rootfs_new), which then holds one fd per layer and looks a name up in each.
 * *ret_fds has *ret_n fds (caller closes each and frees it). */
int builder_flat_open(struct image_store *s, const char *const *chain, size_t n, int **ret_fds,
                      size_t *ret_n, struct kerr **err);

#define BUILDER_FLATTEN_COPY (1u << 0) /* copy every file instead of linking (tests) */

/* Merges the layer dirs layer_fds (overlay format, bottom first) into the directory dst_fd
 * (empty): whiteouts delete, opaque directories hide what is below them, directories take
 * the owner, mode, xattrs and times of the topmost layer that has them. Files are hard links
 * to the layers' own (copies where the file system refuses a link; device nodes that cannot
 * be made then are left out, as layers leave them out). The tree has no whiteout and no
 * overlay xattr. */
int builder_flatten(const int *layer_fds, size_t n, int dst_fd, unsigned flags, struct kerr **err);

/* ======================================================================================
 * Step cache keys (cache.c)
 *
 * A step's key is the sha256 of its partial key and its inputs. The partial key covers the
 * key of the step before it and the instruction as written; the inputs are lines
 * "WHAT\tNAME\tVALUE" (tabs, newlines and backslashes escaped) naming everything else the
 * step's result depends on: its words after expansion, the build args and environment of a
 * RUN, and for COPY/ADD from the context each source as matched and each file below it,
 * sorted by path, with its type, mode and content digest or link target. Times are not
 * inputs (docker and buildah do the same), so a touched file that did not change hits.
 * The inputs are kept with the cache so that a miss can name what changed.
 * ====================================================================================== */

struct image_statcache;

struct builder_key_file {
        char *path;
        struct stat st;
        char *target;                /* a symlink's */
        char *link;                  /* a hard link: the path the copy links it to */
        char digest[KDIGEST_STRLEN]; /* a regular file's content; "" until known */
        bool cacheable;              /* hashed, and unchanged while it was read */
        struct timespec read_start;  /* when its reading began */
};

struct builder_key {
        char partial[KDIGEST_STRLEN];
        struct kbuf lines; /* the inputs but files, in order */
        size_t n_values;
        struct builder_key_file *files;
        size_t n_files;
};

/* Starts the key of a step built on parent (a key; NULL or "" for none) for the instruction
 * text as written. */
int builder_key_begin(struct builder_key *k, const char *parent, const char *text,
                      struct kerr **err);
void builder_key_release(struct builder_key *k);
/* Adds the input line what, name, value. */
void builder_key_add(struct builder_key *k, const char *what, const char *name, const char *value);
/* Adds a word of the instruction after expansion (numbered in order). */
void builder_key_add_value(struct builder_key *k, const char *value);
/* RUN: the build args in effect ("K=V", sorted by name here, as docker passes them all to
 * the command) and the environment of the config ("K=V", in order). */
void builder_key_add_run(struct builder_key *k, const char *const *args, size_t n_args,
                         const char *const *env, size_t n_env);
/* Adds the sources of a COPY/ADD from a context (builder_copy_scan): a line per source,
 * a file per entry below it. Regular files' digests are left to builder_key_hash. */
int builder_key_scan(struct builder_key *k, const struct builder_copy_src *src,
                     const struct builder_copy_opts *o, struct kerr **err);
/* Fills the digests the stat cache knows (sc NULL: none); returns how many are left. */
size_t builder_key_known(struct builder_key *k, struct image_statcache *sc);

/* Hashes the files whose digest is still unknown, on threads of their own. */
struct builder_hash_job;

/* Starts hashing on n_threads threads (0: one per CPU, at most 4); the files are opened in
 * ctx by their path, which never leaves it. k must not change until the job is finished. */
int builder_hash_start(struct builder_key *k, const struct builder_context *ctx, unsigned n_threads,
                       struct builder_hash_job **ret, struct kerr **err);
/* Waits for the job and frees it; on success every digest is known and the ones that can be
 * trusted later are recorded in sc (may be NULL). */
int builder_hash_finish(struct builder_hash_job *j, struct image_statcache *sc, struct kerr **err);

/* Sorts the files and computes the key; *ret_inputs (may be NULL) is the text of the
 * inputs (caller frees). Fails when a regular file's digest is unknown. */
int builder_key_finish(struct builder_key *k, char ret_key[KDIGEST_STRLEN], char **ret_inputs,
                       struct kerr **err);

/* The key of FROM: the base ("scratch", "image ID" or "stage KEY"), FROM --platform as
 * expanded ("" when not given) and the build's --timestamp (-1: none). */
int builder_key_from(const char *base, const char *platform, long long timestamp,
                     char ret[KDIGEST_STRLEN], struct kerr **err);

/* What changed between two input texts, for a message: "src/main.c changed", "build arg
 * 'V' changed", at most three of them; "" when nothing did. Caller frees. */
char *builder_key_diff(const char *old_inputs, const char *new_inputs);

/* ======================================================================================
 * Stage executor (build.c)
 * ====================================================================================== */

/* ======================================================================================
 * Worker processes (jobs.c)
 *
 * A parallel build runs each stage in a forked worker. The worker's fds 1 and 2 are pipes:
 * the parent writes each line that comes out of them to its own 1 or 2 behind the prefix
 * "[NAME] ", so the output of stages that run at once stays attributable, and what the
 * worker writes to one of them keeps its order. While workers exist, SIGINT, SIGTERM and
 * SIGHUP are taken by builder_jobs_wait (via a signalfd) rather than killing kiln.
 * ====================================================================================== */

struct builder_jobs;

/* The work of a worker, run in the child: 0 with its answer appended to out, or < 0 with
 * *err set. */
typedef int (*builder_job_fn)(void *ctx, struct kbuf *out, struct kerr **err);

/* Blocks SIGINT, SIGTERM and SIGHUP into a signalfd until builder_jobs_free. */
struct builder_jobs *builder_jobs_new(struct image_store *s, struct kerr **err);
/* Forks a worker that runs fn(ctx) and exits; id identifies it to builder_jobs_wait, name
 * goes into its prefix and messages. Call it with no other thread running. */
int builder_jobs_start(struct builder_jobs *j, size_t id, const char *name, builder_job_fn fn,
                       void *ctx, struct kerr **err);
/* Workers started and not yet waited for. */
size_t builder_jobs_running(const struct builder_jobs *j);
/* Copies the workers' output until one has exited and its pipes are closed: *ret_id is its
 * id; 0 with its answer appended to out, or < 0 with its error (as fn set it, or how the
 * process died). A signal to kiln fails with errnum EINTR and leaves the workers running
 * for builder_jobs_free. */
int builder_jobs_wait(struct builder_jobs *j, size_t *ret_id, struct kbuf *out, struct kerr **err);
/* Stops the workers still running (SIGTERM, SIGKILL 5 s later), copies the rest of their
 * output, reaps them, removes what they left in the store's tmp/ and restores the signal
 * mask. NULL is fine. */
void builder_jobs_free(struct builder_jobs *j);

/* ======================================================================================
 * RUN (run.c)
 * ====================================================================================== */

/* What a RUN executes: argv, and, for a heredoc that starts with "#!", the script that
 * argv[0] (/dev/pipes/NAME) names. */
struct builder_run_cmd {
        char **argv; /* NULL-terminated */
        size_t argc;
        char *script_name;
        char *script;
};

void builder_run_cmd_release(struct builder_run_cmd *c);
/* The command of a RUN as docker (BuildKit) forms it: exec form as written; shell form
 * under shell (NULL: /bin/sh -c); a lone heredoc's body as the shell's script, or as a
 * file to execute when it starts with "#!"; heredocs in a longer command given back to
 * the shell with their bodies. */
int builder_run_command(const struct parser_instr *in, const char *const *shell, size_t n_shell,
                        struct builder_run_cmd *ret, struct kerr **err);

struct builder_run_opts {
        struct image_store *s;
        const struct parser_instr *in; /* its --mount flags */
        const struct builder_run_cmd *cmd;
        const char *const *lowers; /* the stage's layer dirs, bottom first */
        size_t n_lowers;
        const char *const *env; /* NULL-terminated */
        const char *cwd;        /* the stage's WORKDIR; NULL: "/" */
        const char *user;       /* the stage's USER; NULL: root */
        enum sandbox_net net;
        const char *const *cap_add;
        const char *const *cap_drop;
        const char *seccomp;
        const struct builder_secret *secrets;
        size_t n_secrets;
        struct builder_context *ctx; /* for --mount=type=bind without from */
        const char *context_dir;
        /* For --mount=type=bind,from=: the chain ids of the layers of the stage or image
         * from, bottom first (*ret_chain is NULL-terminated; caller frees each and it), and
         * source resolved inside their merged tree, symlinks followed inside it (caller
         * frees). A source the tree lacks is KERR_NOTFOUND. */
        int (*bind_from)(void *ctx, const char *from, const char *source, char ***ret_chain,
                         size_t *ret_n, char **ret_subdir, struct kerr **err);
        void *bind_ctx;
        int out_fd, err_fd;
};

/* Runs the step in the sandbox over the layers with a fresh upper dir. On success
 * *ret_dir (caller frees, and removes it with image_store_rmtree once done) holds upper/,
 * the step's changes in overlay format, to be committed as its layer; a command that fails
 * is an error saying "exit status N" or "killed by signal N". */
int builder_run_step(const struct builder_run_opts *o, char **ret_dir, struct kerr **err);
