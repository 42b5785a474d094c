/* spawn_proto.c - encoding and bounded decoding of the daemon <-> opsc-spawner packets. */
#include "spawn_proto.h"

#include <string.h>

/* ---- decoding ------------------------------------------------------------------------- */

typedef struct rd {
    const unsigned char *p;
    size_t left;
    bool bad;
} rd;

static uint32_t rd_u32(rd *r)
{
    uint32_t v = 0;
    if (r->left < 4) {
        r->bad = true;
        return 0;
    }
    memcpy(&v, r->p, 4);
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint64_t rd_u64(rd *r)
{
    uint64_t v = 0;
    if (r->left < 8) {
        r->bad = true;
        return 0;
    }
    memcpy(&v, r->p, 8);
    r->p += 8;
    r->left -= 8;
    return v;
}

/* A NUL-terminated string of at most `max` bytes before its NUL. */
static const char *rd_str(rd *r, size_t max)
{
    const unsigned char *nul = r->left ? memchr(r->p, 0, r->left) : NULL;
    if (!nul || (size_t)(nul - r->p) > max) {
        r->bad = true;
        return "";
    }
    const char *s = (const char *)r->p;
    r->left -= (size_t)(nul - r->p) + 1;
    r->p = nul + 1;
    return s;
}

static int decode_spawn(rd *r, sp_msg *m)
{
    m->argc = rd_u32(r);
    m->envc = rd_u32(r);
    if (r->bad || m->argc < 1 || m->argc > SP_MAX_ARGS || m->envc > SP_MAX_ENV)
        return -1;
    m->strings = (const char *)r->p;
    m->strings_len = r->left;
    for (uint32_t i = 0; i < m->argc + m->envc + 1 && !r->bad; i++) {
        const char *s = rd_str(r, SP_MAX_PACKET);
        if (i == 0 && s[0] != '/') /* the program: an absolute path */
            return -1;
        if (i >= m->argc && i < m->argc + m->envc && !strchr(s, '='))
            return -1;
    }
    return r->bad || r->left ? -1 : 0;
}

static int decode_payload(rd *r, sp_msg *m)
{
    switch (m->type) {
    case SP_SPAWN:
        return decode_spawn(r, m);
    case SP_SIGNAL:
    case SP_RELEASE:
        m->u32 = rd_u32(r);
        return m->type == SP_SIGNAL && (m->u32 < 1 || m->u32 > 64) ? -1 : 0;
    case SP_ORPHAN:
        m->a = rd_u64(r);
        m->b = rd_u64(r);
        m->text = rd_str(r, SP_BOOT_ID);
        return m->a < 2 || m->a > 0x3fffffff ? -1 : 0; /* never group 0, 1 or -1 */
    case SP_HELLO:
        m->u32 = rd_u32(r);
        m->uid = rd_u32(r);
        m->gid = rd_u32(r);
        m->flags = rd_u32(r);
        m->text = rd_str(r, SP_TEXT_MAX);
        m->text2 = rd_str(r, SP_BOOT_ID);
        m->text3 = rd_str(r, SP_TEXT_MAX);
        return 0;
    case SP_STARTED:
        m->a = rd_u64(r);
        m->b = rd_u64(r);
        return 0;
    case SP_FAILED:
    case SP_EXITED:
    case SP_DONE:
    case SP_LOG:
        m->i32 = (int32_t)rd_u64(r);
        m->u32 = (uint32_t)m->i32;
        m->text = rd_str(r, SP_TEXT_MAX);
        return 0;
    default:
        return -1;
    }
}

int sp_decode(const void *packet, size_t len, sp_msg *m)
{
    memset(m, 0, sizeof(*m));
    sp_hdr h;
    if (!packet || len < sizeof(h) || len > SP_MAX_PACKET)
        return -1;
    memcpy(&h, packet, sizeof(h));
    if (h.len != len - sizeof(h))
        return -1;
    m->type = h.type;
    m->id = h.id;
    rd r = {(const unsigned char *)packet + sizeof(h), h.len, false};
    if (decode_payload(&r, m) < 0 || r.bad || r.left)
        return -1;
    return 0;
}

void sp_spawn_strings(const sp_msg *m, const char **vec)
{
    const char *s = m->strings;
    uint32_t n = m->argc + m->envc + 1;
    for (uint32_t i = 0; i < n; i++) {
        vec[i] = s;
        s += strlen(s) + 1;
    }
    vec[n] = NULL;
}

/* ---- encoding ------------------------------------------------------------------------- */

typedef struct wr {
    unsigned char *p;
    size_t len, cap;
    bool full;
} wr;

static void put(wr *w, const void *data, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, data, n);
    w->len += n;
}

static void put_u32(wr *w, uint32_t v)
{
    put(w, &v, 4);
}

static void put_u64(wr *w, uint64_t v)
{
    put(w, &v, 8);
}

static void put_str(wr *w, const char *s)
{
    s = s ? s : "";
    put(w, s, strlen(s) + 1);
}

static wr begin(void *buf, size_t cap, uint32_t type, uint64_t id)
{
    wr w = {buf, 0, cap < SP_MAX_PACKET ? cap : SP_MAX_PACKET, false};
    sp_hdr h = {type, 0, id};
    put(&w, &h, sizeof(h));
    return w;
}

static size_t finish(wr *w)
{
    if (w->full)
        return 0;
    uint32_t len = (uint32_t)(w->len - sizeof(sp_hdr));
    memcpy(w->p + offsetof(sp_hdr, len), &len, 4);
    return w->len;
}

static uint32_t count(const char *const *v)
{
    uint32_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

size_t sp_encode_spawn(void *buf, size_t cap, uint64_t id, const char *const *argv,
                       const char *const *env, const char *cwd)
{
    wr w = begin(buf, cap, SP_SPAWN, id);
    uint32_t argc = count(argv), envc = count(env);
    if (argc < 1 || argc > SP_MAX_ARGS || envc > SP_MAX_ENV)
        return 0;
    put_u32(&w, argc);
    put_u32(&w, envc);
    for (uint32_t i = 0; i < argc; i++)
        put_str(&w, argv[i]);
    for (uint32_t i = 0; i < envc; i++)
        put_str(&w, env[i]);
    put_str(&w, cwd);
    return finish(&w);
}

size_t sp_encode_u32(void *buf, size_t cap, uint32_t type, uint64_t id, uint32_t v)
{
    wr w = begin(buf, cap, type, id);
    put_u32(&w, v);
    return finish(&w);
}

size_t sp_encode_orphan(void *buf, size_t cap, uint64_t id, uint64_t pgid, uint64_t start,
                        const char *boot_id)
{
    wr w = begin(buf, cap, SP_ORPHAN, id);
    put_u64(&w, pgid);
    put_u64(&w, start);
    put_str(&w, boot_id);
    return finish(&w);
}

size_t sp_encode_hello(void *buf, size_t cap, bool ok, uint32_t uid, uint32_t gid, uint32_t flags,
                       const char *user, const char *boot_id, const char *reason)
{
    wr w = begin(buf, cap, SP_HELLO, 0);
    put_u32(&w, ok);
    put_u32(&w, uid);
    put_u32(&w, gid);
    put_u32(&w, flags);
    put_str(&w, user);
    put_str(&w, boot_id);
    put_str(&w, reason);
    return finish(&w);
}

size_t sp_encode_started(void *buf, size_t cap, uint64_t id, uint64_t pid, uint64_t start)
{
    wr w = begin(buf, cap, SP_STARTED, id);
    put_u64(&w, pid);
    put_u64(&w, start);
    return finish(&w);
}

size_t sp_encode_num_text(void *buf, size_t cap, uint32_t type, uint64_t id, int64_t v,
                          const char *text)
{
    wr w = begin(buf, cap, type, id);
    put_u64(&w, (uint64_t)v);
    char t[SP_TEXT_MAX + 1];
    size_t n = text ? strnlen(text, SP_TEXT_MAX) : 0;
    memcpy(t, text ? text : "", n);
    t[n] = '\0';
    put_str(&w, t);
    return finish(&w);
}
