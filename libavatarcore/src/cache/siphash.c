/*
 * SipHash-2-4 (Aumasson and Bernstein), 64-bit output, fed in pieces:
 * the keyed hash of the shared cache's tables, so that keys chosen by
 * users (query texts, session ids) cannot be made to collide without the
 * region's random key.
 */
#include "cache_internal.h"

#define avc_sip_rotl(x, b)  (((x) << (b)) | ((x) >> (64 - (b))))

static void
avc_sip_rounds(uint64_t v[4], int n)
{
    while (n-- > 0) {
        v[0] += v[1];
        v[1] = avc_sip_rotl(v[1], 13);
        v[1] ^= v[0];
        v[0] = avc_sip_rotl(v[0], 32);
        v[2] += v[3];
        v[3] = avc_sip_rotl(v[3], 16);
        v[3] ^= v[2];
        v[0] += v[3];
        v[3] = avc_sip_rotl(v[3], 21);
        v[3] ^= v[0];
        v[2] += v[1];
        v[1] = avc_sip_rotl(v[1], 17);
        v[1] ^= v[2];
        v[2] = avc_sip_rotl(v[2], 32);
    }
}

static void
avc_sip_word(avc__sip_t *s, uint64_t m)
{
    s->v[3] ^= m;
    avc_sip_rounds(s->v, 2);
    s->v[0] ^= m;
}

void
avc__sip_init(avc__sip_t *s, const uint64_t key[2])
{
    s->v[0] = key[0] ^ 0x736f6d6570736575ULL;
    s->v[1] = key[1] ^ 0x646f72616e646f6dULL;
    s->v[2] = key[0] ^ 0x6c7967656e657261ULL;
    s->v[3] = key[1] ^ 0x7465646279746573ULL;
    s->tail = 0;
    s->total = 0;
}

void
avc__sip_update(avc__sip_t *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t m;
    unsigned k;

    /* complete a word begun by an earlier piece */
    while (n > 0 && (s->total & 7)) {
        s->tail |= (uint64_t) *p++ << (8 * (s->total & 7));
        s->total++;
        n--;
        if ((s->total & 7) == 0) {
            avc_sip_word(s, s->tail);
            s->tail = 0;
        }
    }
    while (n >= 8) {
        m = 0;
        for (k = 0; k < 8; k++) {
            m |= (uint64_t) p[k] << (8 * k);
        }
        avc_sip_word(s, m);
        p += 8;
        n -= 8;
        s->total += 8;
    }
    while (n > 0) {
        s->tail |= (uint64_t) *p++ << (8 * (s->total & 7));
        s->total++;
        n--;
    }
}

uint64_t
avc__sip_final(avc__sip_t *s)
{
    uint64_t b = (s->total << 56) | s->tail;

    avc_sip_word(s, b);
    s->v[2] ^= 0xff;
    avc_sip_rounds(s->v, 4);
    return s->v[0] ^ s->v[1] ^ s->v[2] ^ s->v[3];
}
