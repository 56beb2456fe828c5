/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/banned.h"

/* A message is TYPE (1 byte), LEN (4 bytes, host order: both ends are one program) and LEN
 * bytes of payload:
 *   'R' created: kind (1), mode, uid, gid (4 each), path
 *   'X' about to exec: nothing
 *   'E' error: errnum, code (4 each), message
 *   'F' mounted for fuse-overlayfs: stack index, refusing errno (4 each), the refusal */
#define HDR 5
#define MAX_PAYLOAD (64 * 1024)

void sbx_created_list_release(struct sbx_created_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i].path);
        free(l->v);
        l->v = NULL;
        l->n = l->cap = 0;
}

void sbx_created_list_add(struct sbx_created_list *l, const struct sbx_created *c)
{
        if (l->n == l->cap) {
                l->cap = l->cap ? 2 * l->cap : 16;
                l->v = kreallocarray(l->v, l->cap, sizeof(*l->v));
        }
        l->v[l->n] = *c;
        l->v[l->n].path = kstrdup(c->path);
        l->n++;
}

bool sbx_created_list_has(const struct sbx_created_list *l, const char *path)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i].path, path) == 0)
                        return true;
        return false;
}

static int send_msg(int fd, char type, const void *a, size_t alen, const void *b, size_t blen)
{
        struct kbuf m = KBUF_INIT;
        uint32_t len = (uint32_t)(alen + blen);
        int r;

        kbuf_putc(&m, type);
        kbuf_append(&m, &len, sizeof(len));
        if (alen)
                kbuf_append(&m, a, alen);
        if (blen)
                kbuf_append(&m, b, blen);
        r = kfs_write_all(fd, m.data, m.len);
        kbuf_release(&m);
        return r;
}

int sbx_chan_send_created(int fd, const struct sbx_created *c)
{
        unsigned char head[13];
        uint32_t v;

        head[0] = (unsigned char)c->kind;
        v = (uint32_t)c->mode;
        memcpy(head + 1, &v, 4);
        v = (uint32_t)c->uid;
        memcpy(head + 5, &v, 4);
        v = (uint32_t)c->gid;
        memcpy(head + 9, &v, 4);
        return send_msg(fd, 'R', head, sizeof(head), c->path, strlen(c->path));
}

int sbx_chan_send_exec(int fd)
{
        return send_msg(fd, 'X', NULL, 0, NULL, 0);
}

void sbx_chan_send_error(int fd, const struct kerr *e)
{
        int32_t head[2] = {e ? e->errnum : 0, e ? (int32_t)e->code : KERR_INTERNAL};
        const char *msg = e && e->msg ? e->msg : "container setup failed";
        size_t n = strlen(msg);

        if (n > MAX_PAYLOAD - sizeof(head))
                n = MAX_PAYLOAD - sizeof(head);
        /* Nothing to do on failure: the parent then reports the child's exit. */
        (void)send_msg(fd, 'E', head, sizeof(head), msg, n);
}

int sbx_chan_send_fuse(int fd, size_t idx, int refused, const char *why)
{
        uint32_t head[2] = {(uint32_t)idx, (uint32_t)refused};
        size_t n = why ? strlen(why) : 0;

        if (n > MAX_PAYLOAD - sizeof(head))
                n = MAX_PAYLOAD - sizeof(head);
        return send_msg(fd, 'F', head, sizeof(head), why, n);
}

void sbx_chan_fuse_clear(struct sbx_chan_reader *r)
{
        for (size_t i = 0; i < r->n_fuse; i++)
                free(r->fuse[i].why);
        free(r->fuse);
        r->fuse = NULL;
        r->n_fuse = 0;
}

int sbx_chan_parse(struct sbx_chan_reader *r, struct sbx_created_list *list)
{
        struct kbuf *b = r->buf;
        size_t off = 0;

        while (b->len - off >= HDR) {
                const unsigned char *p = (const unsigned char *)b->data + off;
                uint32_t len;

                memcpy(&len, p + 1, 4);
                if (len > MAX_PAYLOAD)
                        return -1;
                if (b->len - off - HDR < len)
                        break;
                p += HDR;
                switch (b->data[off]) {
                case 'R': {
                        struct sbx_created c;
                        uint32_t v;

                        if (len < 14)
                                return -1;
                        c.kind = (enum sbx_created_kind)p[0];
                        memcpy(&v, p + 1, 4);
                        c.mode = (mode_t)v;
                        memcpy(&v, p + 5, 4);
                        c.uid = (uid_t)v;
                        memcpy(&v, p + 9, 4);
                        c.gid = (gid_t)v;
                        c.path = kstrndup((const char *)p + 13, len - 13);
                        sbx_created_list_add(list, &c);
                        free(c.path);
                        break;
                }
                case 'X':
                        r->exec_started = true;
                        break;
                case 'E': {
                        int32_t head[2];
                        char *msg;

                        if (len < sizeof(head))
                                return -1;
                        memcpy(head, p, sizeof(head));
                        msg = kstrndup((const char *)p + sizeof(head), len - sizeof(head));
                        kerr_free(r->error);
                        r->error = NULL;
                        kerr_set(&r->error, head[0], (enum kerr_code)head[1], "%s", msg);
                        free(msg);
                        break;
                }
                case 'F': {
                        uint32_t head[2];
                        struct sbx_chan_fuse *f;

                        if (len < sizeof(head))
                                return -1;
                        memcpy(head, p, sizeof(head));
                        r->fuse = kreallocarray(r->fuse, r->n_fuse + 1, sizeof(*r->fuse));
                        f = &r->fuse[r->n_fuse++];
                        f->idx = head[0];
                        f->refused = (int)head[1];
                        f->why = kstrndup((const char *)p + sizeof(head), len - sizeof(head));
                        break;
                }
                default:
                        return -1;
                }
                off += HDR + len;
        }
        if (off) {
                memmove(b->data, b->data + off, b->len - off);
                kbuf_truncate(b, b->len - off);
        }
        return 0;
}
