/* SPDX-License-Identifier: Apache-2.0 */
/* Plain downloads for ADD <url>: one easy handle, bounded in size and in stall time. */
#include "registry/registry.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fs.h"
#include "registry/internal.h"
#include "common/banned.h"

struct sink {
        int fd;
        uint64_t written, max;
        int errnum;
        bool too_big;
};

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ctx)
{
        struct sink *s = ctx;
        size_t n = size * nmemb;

        if (s->max && s->written + n > s->max) {
                s->too_big = true;
                return 0;
        }
        if (kfs_write_all(s->fd, p, n) < 0) {
                s->errnum = errno;
                return 0;
        }
        s->written += n;
        return n;
}

int registry_http_fetch(const char *url, int fd, uint64_t max, uint64_t *ret_size,
                        int64_t *ret_mtime, struct kerr **err)
{
        const struct reg_curl *curl;
        char errbuf[CURL_ERROR_SIZE] = "";
        struct sink s = {.fd = fd, .max = max};
        long status = 0, filetime = -1;
        _cleanup_(reg_curl_easy_freep) CURL *h = NULL;
        CURLcode rc;

        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
                return kerr_set(err, 0, KERR_INVALID, "'%s' is not an http or https URL", url);
        curl = reg_curl_load(err);
        if (!curl)
                return kerr_wrap(err, "download '%s'", url);
        h = curl->easy_init();
        if (!h)
                return kerr_set(err, 0, KERR_INTERNAL, "download '%s': no curl handle", url);
        curl->easy_setopt(h, CURLOPT_URL, url);
        curl->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl->easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
        curl->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
        /* A transfer slower than 1 KiB/s for a minute is a stall. */
        curl->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        curl->easy_setopt(h, CURLOPT_FILETIME, 1L);
        curl->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl->easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
        curl->easy_setopt(h, CURLOPT_WRITEDATA, &s);
        curl->easy_setopt(h, CURLOPT_USERAGENT, "kiln");
        rc = curl->easy_perform(h);
        curl->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (s.too_big)
                return kerr_set(err, 0, KERR_INVALID, "download '%s': larger than %llu bytes", url,
                                (unsigned long long)max);
        if (s.errnum)
                return kerr_set(err, s.errnum, KERR_IO, "download '%s': write", url);
        if (rc != CURLE_OK || status < 200 || status > 299)
                return reg_curl_error(err, rc, errbuf, status, "download '%s'", url);
        curl->easy_getinfo(h, CURLINFO_FILETIME, &filetime);
        *ret_size = s.written;
        if (ret_mtime)
                *ret_mtime = filetime;
        return 0;
}
