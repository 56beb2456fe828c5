/* SPDX-License-Identifier: Apache-2.0 */
#include "image/image.h"
#include "image/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/banned.h"

/* The grammar of docker's reference package (distribution/reference), for local names as
 * podman normalises them: a name without a registry goes under "localhost/". */

#define NAME_MAX_LEN 255

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
        return is_alnum(c) || c == '_';
}

/* [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)* */
static bool valid_path_component(const char *s, size_t n)
{
        size_t i = 0;

        for (;;) {
                size_t start = i;
                while (i < n && is_lower_alnum(s[i]))
                        i++;
                if (i == start)
                        return false;
                if (i == n)
                        return true;
                if (s[i] == '.') {
                        i++;
                } else if (s[i] == '_') {
                        i++;
                        if (i < n && s[i] == '_')
                                i++;
                } else if (s[i] == '-') {
                        while (i < n && s[i] == '-')
                                i++;
                } else {
                        return false;
                }
        }
}

/* ([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]) joined by '.', then an optional :port */
static bool valid_domain(const char *s, size_t n)
{
        const char *colon = memchr(s, ':', n);
        size_t host_n = colon ? (size_t)(colon - s) : n;
        size_t i = 0;

        if (colon) {
                size_t pn = n - host_n - 1;
                if (pn == 0)
                        return false;
                for (size_t j = 0; j < pn; j++)
                        if (colon[1 + j] < '0' || colon[1 + j] > '9')
                                return false;
        }
        for (;;) {
                size_t start = i;
                while (i < host_n && (is_alnum(s[i]) || s[i] == '-'))
                        i++;
                if (i == start || s[start] == '-' || s[i - 1] == '-')
                        return false;
                if (i == host_n)
                        return true;
                if (s[i] != '.')
                        return false;
                i++;
        }
}

static bool valid_tag(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 128 || !is_word(s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_word(s[i]) && s[i] != '.' && s[i] != '-')
                        return false;
        return true;
}

static bool has_upper(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] >= 'A' && s[i] <= 'Z')
                        return true;
        return false;
}

char *image_normalize_name(const char *name, struct kerr **err)
{
        const char *at, *slash, *colon, *path, *tag = NULL, *digest = NULL;
        char *repo = NULL, *tagbuf = NULL, *out = NULL;
        size_t repo_n, domain_n = 0;
        struct kbuf b = KBUF_INIT;

        if (!name || !name[0]) {
                kerr_set(err, 0, KERR_INVALID, "invalid reference '': the name is empty");
                return NULL;
        }
        at = strchr(name, '@');
        if (at) {
                digest = at + 1;
                if (!kdigest_valid(digest)) {
                        kerr_set(err, 0, KERR_INVALID,
                                 "invalid reference '%s': invalid digest '%s'", name, digest);
                        return NULL;
                }
        }
        repo_n = at ? (size_t)(at - name) : strlen(name);
        repo = kstrndup(name, repo_n);
        slash = strrchr(repo, '/');
        colon = strrchr(repo, ':');
        if (colon && (!slash || colon > slash)) {
                tagbuf = kstrdup(colon + 1);
                tag = tagbuf;
                repo[colon - repo] = '\0';
                repo_n = (size_t)(colon - repo);
                if (!valid_tag(tag)) {
                        kerr_set(err, 0, KERR_INVALID, "invalid reference '%s': invalid tag '%s'",
                                 name, tag);
                        goto out;
                }
        }
        if (repo_n == 0) {
                kerr_set(err, 0, KERR_INVALID, "invalid reference '%s': the name is empty", name);
                goto out;
        }
        slash = strchr(repo, '/');
        if (slash) {
                size_t n = (size_t)(slash - repo);
                if (memchr(repo, '.', n) || memchr(repo, ':', n) ||
                    (n == 9 && memcmp(repo, "localhost", 9) == 0))
                        domain_n = n;
        }
        if (domain_n && !valid_domain(repo, domain_n)) {
                kerr_set(err, 0, KERR_INVALID, "invalid reference '%s': invalid registry '%.*s'",
                         name, (int)domain_n, repo);
                goto out;
        }
        path = domain_n ? repo + domain_n + 1 : repo;
        if (has_upper(path, strlen(path))) {
                kerr_set(err, 0, KERR_INVALID,
                         "invalid reference '%s': repository names must be lowercase", name);
                goto out;
        }
        for (const char *p = path;;) {
                const char *end = strchr(p, '/');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                if (!valid_path_component(p, n)) {
                        kerr_set(err, 0, KERR_INVALID,
                                 "invalid reference '%s': invalid repository name '%s'", name,
                                 path);
                        goto out;
                }
                if (!end)
                        break;
                p = end + 1;
        }
        if (!domain_n)
                kbuf_puts(&b, "localhost/");
        kbuf_puts(&b, repo);
        if (strlen(repo) + (domain_n ? 0 : 10) > NAME_MAX_LEN) {
                kerr_set(err, 0, KERR_INVALID,
                         "invalid reference '%s': the repository name is longer than %d "
                         "characters",
                         name, NAME_MAX_LEN);
                goto out;
        }
        if (tag)
                kbuf_printf(&b, ":%s", tag);
        else if (!digest)
                kbuf_puts(&b, ":latest");
        if (digest)
                kbuf_printf(&b, "@%s", digest);
        out = kbuf_detach(&b);
out:
        kbuf_release(&b);
        free(repo);
        free(tagbuf);
        return out;
}
