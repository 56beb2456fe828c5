/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The Containerfile parser: a line reader (directives, continuations, comments, heredocs),
 * a recursive-descent parser into stages and instructions with their positions, docker's
 * variable expansion as a separate pass, the .containerignore matcher, and the linter
 * behind `kiln check`. It never prints; problems are diagnostics or kerr errors. */

#include <stdbool.h>
#include <stddef.h>

struct kbuf;
struct kerr;

enum parser_kind {
        PARSER_UNKNOWN = 0,
        PARSER_ADD,
        PARSER_ARG,
        PARSER_CMD,
        PARSER_COPY,
        PARSER_ENTRYPOINT,
        PARSER_ENV,
        PARSER_EXPOSE,
        PARSER_FROM,
        PARSER_HEALTHCHECK,
        PARSER_LABEL,
        PARSER_MAINTAINER,
        PARSER_ONBUILD,
        PARSER_RUN,
        PARSER_SHELL,
        PARSER_STOPSIGNAL,
        PARSER_USER,
        PARSER_VOLUME,
        PARSER_WORKDIR,
        PARSER_KIND_COUNT,
};

/* "FROM", "RUN", …; "UNKNOWN" for PARSER_UNKNOWN. */
const char *parser_kind_name(enum parser_kind kind);
/* Case-insensitive lookup of an instruction keyword; PARSER_UNKNOWN when there is none. */
enum parser_kind parser_kind_from_name(const char *name);

/* 1-based line and column (a column counts bytes of the physical line). */
struct parser_pos {
        unsigned line, col;
};

/* A "--name[=value]" flag of an instruction, as written (value unexpanded). */
struct parser_flag {
        char *name;  /* without the leading "--" */
        char *value; /* NULL when written without "=" */
        struct parser_pos pos;
};

/* ENV, LABEL and ARG pairs; values are raw (quotes kept, unexpanded) as in docker's AST. */
struct parser_kv {
        char *key;
        char *value; /* NULL: an ARG without default */
        struct parser_pos pos;
};

struct parser_heredoc {
        char *name;    /* the delimiter, quotes removed */
        char *content; /* every line with its "\n"; leading tabs gone when chomp */
        bool chomp;    /* <<-EOF */
        bool expand;   /* false when the delimiter was quoted */
        unsigned line; /* the line the heredoc's body starts on */
};

enum parser_mount_type {
        PARSER_MOUNT_BIND = 0,
        PARSER_MOUNT_CACHE,
        PARSER_MOUNT_TMPFS,
        PARSER_MOUNT_SECRET,
        PARSER_MOUNT_SSH,
};

const char *parser_mount_type_name(enum parser_mount_type type);

/* RUN --mount=…, checked per type as buildkit does; absent strings are NULL and absent
 * numbers -1. */
struct parser_mount {
        enum parser_mount_type type;
        char *target;
        char *source;
        char *from;
        char *id;
        char *sharing; /* cache: shared, private or locked (default shared) */
        char *env;     /* secret: also expose as this environment variable */
        bool readonly; /* bind, secret and ssh default to read-only; cache and tmpfs to rw */
        bool required; /* secret and ssh */
        long long mode, uid, gid;
        long long size; /* tmpfs, in bytes */
        struct parser_pos pos;
};

/* HEALTHCHECK: durations in nanoseconds, -1 when not given. */
struct parser_health {
        bool none; /* HEALTHCHECK NONE */
        long long interval, timeout, start_period, start_interval;
        long long retries;
};

struct parser_instr {
        enum parser_kind kind;
        char *keyword;         /* as written, e.g. "run" */
        struct parser_pos pos; /* of the keyword */
        unsigned end_line;     /* last physical line, heredoc bodies included */
        char *original;        /* the logical line: continuations joined, comments dropped */
        struct parser_flag *flags;
        size_t n_flags;
        /* Exec form (a JSON array) versus shell form. In shell form RUN, CMD, ENTRYPOINT,
         * HEALTHCHECK CMD, USER, WORKDIR, STOPSIGNAL and MAINTAINER have one arg, the rest of
         * the line; FROM, EXPOSE, and the non-JSON forms of COPY, ADD and VOLUME have the
         * white-space separated words. */
        bool json;
        char **args;
        size_t n_args;
        struct parser_kv *kvs; /* ENV, LABEL, ARG */
        size_t n_kvs;
        struct parser_heredoc *heredocs;
        size_t n_heredocs;
        struct parser_mount *mounts; /* RUN */
        size_t n_mounts;
        struct parser_health health; /* HEALTHCHECK */
        char *stage_name;            /* FROM … AS name, lowercased */
        struct parser_instr *sub;    /* ONBUILD's trigger */
};

const struct parser_flag *parser_instr_flag(const struct parser_instr *in, const char *name);

struct parser_stage {
        size_t index;
        char *name; /* NULL when unnamed */
        struct parser_instr *from;
        struct parser_instr **instrs; /* after FROM, in order */
        size_t n_instrs;
};

enum parser_severity {
        PARSER_ERROR = 0,
        PARSER_WARNING,
};

struct parser_diag {
        enum parser_severity severity;
        struct parser_pos pos;
        char *rule; /* "Syntax", "UnknownInstruction", "DuplicateStageName", … */
        char *msg;
};

struct parser_directive {
        char *name; /* lowercased */
        char *value;
        struct parser_pos pos;
};

struct parser_file {
        char *name; /* as given, used in messages */
        char escape;
        struct parser_directive *directives;
        size_t n_directives;
        struct parser_instr **meta_args; /* ARGs before the first FROM */
        size_t n_meta_args;
        struct parser_stage *stages;
        size_t n_stages;
        struct parser_instr **instrs; /* every instruction in file order (owned here) */
        size_t n_instrs;
        struct parser_diag *diags; /* sorted by position once parsing is done */
        size_t n_diags;
};

/* Parses a whole Containerfile, recovering after bad instructions so that every problem
 * becomes a diagnostic. Never fails (only OOM aborts). name is used in messages. */
struct parser_file *parser_parse_all(const char *name, const char *data, size_t len);

/* As parser_parse_all, but the first error diagnostic fails the parse with a KERR_PARSE
 * error carrying the file, line and column. */
struct parser_file *parser_parse(const char *name, const char *data, size_t len, struct kerr **err);

void parser_file_free(struct parser_file *f);

/* Appends a diagnostic (used by the parser and the linter). */
void parser_file_diag(struct parser_file *f, enum parser_severity severity, struct parser_pos pos,
                      const char *rule, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
size_t parser_file_count(const struct parser_file *f, enum parser_severity severity);
/* Orders diagnostics by position (stable). */
void parser_file_sort_diags(struct parser_file *f);

/* The stage called name (case-insensitive) or with that index; NULL when there is none. */
const struct parser_stage *parser_file_stage(const struct parser_file *f, const char *name);

/* The linter of `kiln check`: adds warnings and errors for the rules it knows, honouring
 * the "# check=skip=Rule,…;error=true" directive. */
void parser_lint(struct parser_file *f);

/* Writes the parsed file (directives, meta ARGs, stages, instructions with positions and
 * parsed flags, diagnostics) as JSON. */
void parser_file_to_json(const struct parser_file *f, struct kbuf *out, bool pretty);

/* ---- variable expansion (expand.c) ---- */

/* The environment an instruction is expanded in: "NAME=value" entries, a later entry
 * winning over an earlier one of the same name. */
struct parser_env {
        const char *const *vars;
        size_t n;
};

/* Expands one word as docker's shell lexer does: quotes removed, escapes applied, $V and
 * ${V…} substituted; white space is kept. escape is '\\' or '`'. */
int parser_expand_word(const char *word, char escape, const struct parser_env *env, char **ret,
                       struct kerr **err);

/* Expands the body of a COPY/ADD heredoc whose delimiter was not quoted, as buildkit does:
 * $V and ${V…} substituted, an unset V empty, a backslash escaping the next character (whatever
 * the escape directive), quotes kept as text. The error names no input; callers say which body. */
int parser_expand_heredoc(const char *body, const struct parser_env *env, char **ret,
                          struct kerr **err);

/* As parser_expand_word, then split into words on white space outside quotes. *ret_v is
 * NULL-terminated; caller frees each and the vector. */
int parser_expand_words(const char *s, char escape, const struct parser_env *env, char ***ret_v,
                        size_t *ret_n, struct kerr **err);

/* The names s refers to with $NAME or ${NAME…}, in order of first use, duplicates removed;
 * special parameters ($1, $@, …) are not names. Nothing is looked up, so ${V:?} passes;
 * syntax errors fail as in parser_expand_word. *ret_v is NULL-terminated. */
int parser_expand_refs(const char *s, char escape, char ***ret_v, size_t *ret_n, struct kerr **err);

/* True for the instructions docker expands variables in (ADD, ARG, COPY, ENV, EXPOSE, FROM,
 * LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR). */
bool parser_kind_expands(enum parser_kind kind);

/* ---- ignore files (ignore.c) ---- */

struct parser_ignore;

/* Parses .containerignore/.dockerignore text: one pattern a line, "#" comments, "!"
 * exceptions; name is used in errors. */
struct parser_ignore *parser_ignore_parse(const char *name, const char *data, size_t len,
                                          struct kerr **err);
/* Compiles patterns given directly (each already one line), as patternmatcher.New does:
 * trimmed and cleaned, but with no comments and no leading "/" removed. */
struct parser_ignore *parser_ignore_new(const char *const *patterns, size_t n, struct kerr **err);
void parser_ignore_free(struct parser_ignore *ig);
/* True when path ('/'-separated, relative to the context) is excluded: the last pattern
 * matching the path or one of its parent directories decides, as docker's matcher does.
 * The path is cleaned first ("./a//b" is "a/b"); the context itself is never excluded. */
bool parser_ignore_match(const struct parser_ignore *ig, const char *path);
/* True when some "!" pattern exists, so an excluded directory may still hold included
 * files and must be walked. */
bool parser_ignore_has_exceptions(const struct parser_ignore *ig);
size_t parser_ignore_count(const struct parser_ignore *ig);
