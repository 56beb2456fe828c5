/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/kjson.h"
#include "image/image.h"
#include "common/banned.h"

/* Seconds since the epoch of an RFC 3339 time ("2024-05-01T10:20:30.123Z", "…+02:00");
 * -1 when it does not parse. */
static long long parse_rfc3339(const char *s)
{
        struct tm tm = {0};
        int n = 0, oh = 0, om = 0;
        long long t;
        const char *p;

        if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                         &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
                return -1;
        p = s + n;
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                        ;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        t = (long long)timegm(&tm);
        if (*p == 'Z' || *p == 'z')
                return t;
        if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
                return *p == '+' ? t - (oh * 3600 + om * 60) : t + (oh * 3600 + om * 60);
        return -1;
}

/* docker/go-units HumanDuration, as podman prints CREATED. */
static void human_duration(long long secs, char *buf, size_t size)
{
        long long minutes = secs / 60, hours = (secs + 1800) / 3600;

        if (secs < 1)
                snprintf(buf, size, "Less than a second ago");
        else if (secs == 1)
                snprintf(buf, size, "1 second ago");
        else if (secs < 60)
                snprintf(buf, size, "%lld seconds ago", secs);
        else if (minutes == 1)
                snprintf(buf, size, "About a minute ago");
        else if (minutes < 60)
                snprintf(buf, size, "%lld minutes ago", minutes);
        else if (hours == 1)
                snprintf(buf, size, "About an hour ago");
        else if (hours < 48)
                snprintf(buf, size, "%lld hours ago", hours);
        else if (hours < 24 * 7 * 2)
                snprintf(buf, size, "%lld days ago", hours / 24);
        else if (hours < 24 * 30 * 2)
                snprintf(buf, size, "%lld weeks ago", hours / 24 / 7);
        else if (hours < 24 * 365 * 2)
                snprintf(buf, size, "%lld months ago", hours / 24 / 30);
        else
                snprintf(buf, size, "%lld years ago", secs / 3600 / 24 / 365);
}

/* go-units HumanSizeWithPrecision(size, 3) with podman's space before the unit. */
static void human_size(uint64_t size, char *buf, size_t bufsize)
{
        static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
        double v = (double)size;
        size_t i = 0;

        while (v >= 1000.0 && i + 1 < sizeof(units) / sizeof(units[0])) {
                v /= 1000.0;
                i++;
        }
        snprintf(buf, bufsize, "%.3g %s", v, units[i]);
}

struct row {
        char *repo, *tag;
        const struct image_summary *img;
        long long created;
};

static int row_cmp(const void *a, const void *b)
{
        const struct row *x = a, *y = b;
        int c;

        if (x->created != y->created)
                return x->created > y->created ? -1 : 1;
        c = strcmp(x->repo, y->repo);
        return c ? c : strcmp(x->tag, y->tag);
}

/* "localhost/a/b:tag" -> repo "localhost/a/b", tag "tag"; a digest reference has tag
 * <none>. */
static void split_name(const char *name, char **repo, char **tag)
{
        const char *at = strchr(name, '@');
        const char *slash = strrchr(name, '/');
        const char *colon = strrchr(name, ':');

        if (at) {
                *repo = kstrndup(name, (size_t)(at - name));
                *tag = kstrdup("<none>");
                colon = strrchr(*repo, ':');
                slash = strrchr(*repo, '/');
                if (colon && (!slash || colon > slash)) {
                        free(*tag);
                        *tag = kstrdup(colon + 1);
                        (*repo)[colon - *repo] = '\0';
                }
                return;
        }
        if (colon && (!slash || colon > slash)) {
                *repo = kstrndup(name, (size_t)(colon - name));
                *tag = kstrdup(colon + 1);
        } else {
                *repo = kstrdup(name);
                *tag = kstrdup("<none>");
        }
}

static void print_table(const struct image_summary *v, size_t n)
{
        struct row *rows = NULL;
        size_t nrows = 0, wr = strlen("REPOSITORY"), wt = strlen("TAG"), wc = strlen("CREATED");
        long long now = (long long)time(NULL);
        char when[64], size[32];

        for (size_t i = 0; i < n; i++) {
                long long created = parse_rfc3339(v[i].created);
                size_t k = v[i].n_names ? v[i].n_names : 1;

                rows = kreallocarray(rows, nrows + k, sizeof(*rows));
                for (size_t j = 0; j < k; j++) {
                        struct row *r = &rows[nrows++];
                        if (v[i].n_names) {
                                split_name(v[i].names[j], &r->repo, &r->tag);
                        } else {
                                r->repo = kstrdup("<none>");
                                r->tag = kstrdup("<none>");
                        }
                        r->img = &v[i];
                        r->created = created;
                }
        }
        if (nrows)
                qsort(rows, nrows, sizeof(*rows), row_cmp);
        for (size_t i = 0; i < nrows; i++) {
                if (strlen(rows[i].repo) > wr)
                        wr = strlen(rows[i].repo);
                if (strlen(rows[i].tag) > wt)
                        wt = strlen(rows[i].tag);
        }
        wc = 20 > wc ? 20 : wc;
        printf("%-*s  %-*s  %-12s  %-*s  %s\n", (int)wr, "REPOSITORY", (int)wt, "TAG", "IMAGE ID",
               (int)wc, "CREATED", "SIZE");
        for (size_t i = 0; i < nrows; i++) {
                const struct row *r = &rows[i];

                if (r->created < 0)
                        snprintf(when, sizeof(when), "unknown");
                else
                        human_duration(now - r->created, when, sizeof(when));
                human_size(r->img->size, size, sizeof(size));
                printf("%-*s  %-*s  %.12s  %-*s  %s\n", (int)wr, r->repo, (int)wt, r->tag,
                       r->img->id + 7, (int)wc, when, size);
                free(r->repo);
                free(r->tag);
        }
        free(rows);
}

static void print_json(const struct image_summary *v, size_t n)
{
        struct kbuf out = KBUF_INIT;
        struct kjson_writer w;

        kjson_writer_init(&w, &out, true);
        kjson_begin_array(&w);
        for (size_t i = 0; i < n; i++) {
                kjson_begin_object(&w);
                kjson_kv_string(&w, "Id", v[i].id + 7);
                kjson_key(&w, "Names");
                kjson_begin_array(&w);
                for (size_t j = 0; j < v[i].n_names; j++)
                        kjson_string(&w, v[i].names[j]);
                kjson_end_array(&w);
                kjson_kv_string(&w, "Created", v[i].created);
                kjson_kv_int(&w, "Size", (long long)v[i].size);
                kjson_end_object(&w);
        }
        kjson_end_array(&w);
        kjson_writer_release(&w);
        kbuf_putc(&out, '\n');
        fwrite(out.data, 1, out.len, stdout);
        kbuf_release(&out);
}

int cmd_images(int argc, char **argv)
{
        static const struct option opts[] = {
                {"format", required_argument, NULL, 'F'},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        bool json = false, quiet = false;
        struct image_summary *v = NULL;
        struct image_store *s;
        struct kerr *err = NULL;
        size_t n = 0;
        int opt, r;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
                switch (opt) {
                case 'F':
                        if (strcmp(optarg, "json") == 0)
                                json = true;
                        else if (strcmp(optarg, "table") == 0)
                                json = false;
                        else
                                return cmd_usage_error("images",
                                                       "unknown format '%s' (use table or json)",
                                                       optarg);
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        cmd_print_help(kiln_cmd_find("images"));
                        return KILN_EXIT_OK;
                default:
                        return cmd_bad_option("images", opt, argv, optind);
                }
        }
        if (optind < argc)
                return cmd_usage_error("images", "unexpected argument '%s'", argv[optind]);
        s = image_store_open(kiln_globals.root, 0, &err);
        if (!s || image_list_summaries(s, &v, &n, &err) < 0) {
                r = cmd_fail(err);
                kerr_free(err);
                image_store_free(s);
                return r;
        }
        if (quiet) {
                for (size_t i = 0; i < n; i++)
                        printf("%.12s\n", v[i].id + 7);
        } else if (json) {
                print_json(v, n);
        } else {
                print_table(v, n);
        }
        image_summaries_free(v, n);
        image_store_free(s);
        return KILN_EXIT_OK;
}
