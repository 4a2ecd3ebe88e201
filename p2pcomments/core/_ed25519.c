/* Ed25519 verification with a table per public key (p2pcomments.core._signatures).
 *
 * Why: a bulk ingest checks many signatures by the same few authors, and libsodium's check
 * spends most of its time on h*A, a double-and-add over the author's key A redone for every
 * signature. Here a key's multiples (d * 16^i * A for digits d = 1..8 and positions i = 0..63)
 * are computed once for a key that signs several of a call's messages, and kept for the calls
 * after (the tables of recent keys, below), and B's once for all: sB - hA is then 128 point
 * additions, no doublings.
 *
 * Exactness: `ed25519_accepts` returns 1 only where libsodium's crypto_sign_open (1.0.18-1.0.20,
 * crypto_sign/ed25519/ref10/open.c) accepts, and the caller asks libsodium about everything
 * else, so the verdicts are libsodium's whatever this code gets wrong short of a false accept.
 * libsodium accepts a signature (R, s) by key A of message M iff: s < L; R is not the encoding of
 * a point of small order; A's y is canonical (< p) and A is not of small order; A decodes; and
 * the canonical encoding of sB - hA equals R byte for byte, h = SHA-512(R || A || M) mod L. Here
 * the same: a key is used only if its y re-encodes to its own bytes, it decodes and 8A is not the
 * identity (a canonical y of a small-order point is exactly what its list of encodings holds);
 * s < L is compared; R is accepted only as the encoding computed, whose point must not vanish
 * when multiplied by 8. tests/core/test_signature_tables.py checks these against libsodium,
 * torsion and non-canonical encodings included.
 *
 * Field elements: five 51-bit limbs (unsigned __int128 products). Points: extended twisted
 * Edwards coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z, with the unified addition of
 * Hisil, Wong, Carter and Dawson (2008) for a = -1, complete on this curve. Everything here
 * handles public data only, so branches and table lookups may depend on it (variable time). */
#include "_ed25519.h"

#if !defined(__SIZEOF_INT128__) /* no 128-bit products: no tables, libsodium checks everything */
int ed25519_init(void) { return 0; }
int ed25519_key_table(ed25519_table *table, const unsigned char key[32]) { return 0; }
int ed25519_accepts(const ed25519_table *table, const unsigned char signature[64],
                    const unsigned char key[32], const unsigned char *message, size_t size,
                    ed25519_sha512 sha512, unsigned char *scratch) {
    return 0;
}
int ed25519_use_key(ed25519_use *use, const unsigned char key[32], int make) { return 0; }
void ed25519_done(ed25519_use *use) {}
#else

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef struct {
    uint64_t v[5];
} fe;

#define MASK51 ((uint64_t)0x7ffffffffffffULL)

/* -- field arithmetic mod p = 2^255 - 19 ---------------------------------------------------- */

static void fe_carry(fe *h) {
    uint64_t *v = h->v;
    uint64_t c;
    c = v[0] >> 51, v[0] &= MASK51, v[1] += c;
    c = v[1] >> 51, v[1] &= MASK51, v[2] += c;
    c = v[2] >> 51, v[2] &= MASK51, v[3] += c;
    c = v[3] >> 51, v[3] &= MASK51, v[4] += c;
    c = v[4] >> 51, v[4] &= MASK51, v[0] += 19 * c;
}

/* Inputs below 2^53 per limb; the output below 2^54 (what fe_mul takes). */
static void fe_add(fe *h, const fe *f, const fe *g) {
    for (int i = 0; i < 5; i++) {
        h->v[i] = f->v[i] + g->v[i];
    }
}

/* f - g + 4p: f below 2^53 and g at most 4p (2^53 - 4) per limb; the output below 2^54. */
static void fe_sub(fe *h, const fe *f, const fe *g) {
    h->v[0] = f->v[0] + 0x1fffffffffffb4ULL - g->v[0];
    for (int i = 1; i < 5; i++) {
        h->v[i] = f->v[i] + 0x1ffffffffffffcULL - g->v[i];
    }
}

/* fe_sub, carried: the output below 2^52. */
static void fe_sub_carried(fe *h, const fe *f, const fe *g) {
    fe_sub(h, f, g);
    fe_carry(h);
}

static void fe_neg(fe *h, const fe *f) {
    fe zero = {{0, 0, 0, 0, 0}};
    fe_sub_carried(h, &zero, f);
}

/* h = the sum of r_i 2^(51 i), r_i products of limbs below 2^54: the output below 2^52. */
static inline void fe_carry_wide(fe *h, u128 r0, u128 r1, u128 r2, u128 r3, u128 r4) {
    r1 += r0 >> 51;
    r2 += r1 >> 51;
    r3 += r2 >> 51;
    r4 += r3 >> 51;
    uint64_t c = (uint64_t)(r4 >> 51);
    uint64_t h0 = ((uint64_t)r0 & MASK51) + 19 * c;
    h->v[1] = ((uint64_t)r1 & MASK51) + (h0 >> 51);
    h->v[0] = h0 & MASK51;
    h->v[2] = (uint64_t)r2 & MASK51;
    h->v[3] = (uint64_t)r3 & MASK51;
    h->v[4] = (uint64_t)r4 & MASK51;
}

/* Inputs below 2^54 per limb; the output below 2^52. */
static void fe_mul(fe *h, const fe *f, const fe *g) {
    const uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
    const uint64_t g0 = g->v[0], g1 = g->v[1], g2 = g->v[2], g3 = g->v[3], g4 = g->v[4];
    const uint64_t g1_19 = 19 * g1, g2_19 = 19 * g2, g3_19 = 19 * g3, g4_19 = 19 * g4;
    u128 r0 = (u128)f0 * g0 + (u128)f1 * g4_19 + (u128)f2 * g3_19 + (u128)f3 * g2_19 +
              (u128)f4 * g1_19;
    u128 r1 = (u128)f0 * g1 + (u128)f1 * g0 + (u128)f2 * g4_19 + (u128)f3 * g3_19 +
              (u128)f4 * g2_19;
    u128 r2 = (u128)f0 * g2 + (u128)f1 * g1 + (u128)f2 * g0 + (u128)f3 * g4_19 +
              (u128)f4 * g3_19;
    u128 r3 = (u128)f0 * g3 + (u128)f1 * g2 + (u128)f2 * g1 + (u128)f3 * g0 + (u128)f4 * g4_19;
    u128 r4 = (u128)f0 * g4 + (u128)f1 * g3 + (u128)f2 * g2 + (u128)f3 * g1 + (u128)f4 * g0;
    fe_carry_wide(h, r0, r1, r2, r3, r4);
}

static void fe_sq(fe *h, const fe *f) {
    const uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
    const uint64_t f0_2 = 2 * f0, f1_2 = 2 * f1;
    const uint64_t f1_38 = 38 * f1, f2_38 = 38 * f2, f3_38 = 38 * f3;
    const uint64_t f3_19 = 19 * f3, f4_19 = 19 * f4;
    u128 r0 = (u128)f0 * f0 + (u128)f1_38 * f4 + (u128)f2_38 * f3;
    u128 r1 = (u128)f0_2 * f1 + (u128)f2_38 * f4 + (u128)f3_19 * f3;
    u128 r2 = (u128)f0_2 * f2 + (u128)f1 * f1 + (u128)f3_38 * f4;
    u128 r3 = (u128)f0_2 * f3 + (u128)f1_2 * f2 + (u128)f4_19 * f4;
    u128 r4 = (u128)f0_2 * f4 + (u128)f1_2 * f3 + (u128)f2 * f2;
    fe_carry_wide(h, r0, r1, r2, r3, r4);
}

static uint64_t load64(const unsigned char *s) {
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--) {
        w = (w << 8) | s[i];
    }
    return w;
}

static void store64(unsigned char *s, uint64_t w) {
    for (int i = 0; i < 8; i++) {
        s[i] = (unsigned char)(w >> (8 * i));
    }
}

/* The low 255 bits of s (the top bit, x's sign in a point, dropped). */
static void fe_frombytes(fe *h, const unsigned char s[32]) {
    const uint64_t w0 = load64(s), w1 = load64(s + 8), w2 = load64(s + 16), w3 = load64(s + 24);
    h->v[0] = w0 & MASK51;
    h->v[1] = ((w0 >> 51) | (w1 << 13)) & MASK51;
    h->v[2] = ((w1 >> 38) | (w2 << 26)) & MASK51;
    h->v[3] = ((w2 >> 25) | (w3 << 39)) & MASK51;
    h->v[4] = (w3 >> 12) & MASK51;
}

/* The canonical encoding (the value reduced below p). */
static void fe_tobytes(unsigned char s[32], const fe *f) {
    fe t = *f;
    fe_carry(&t);
    fe_carry(&t); /* now below 2^255 + 2^19 < 2p, every limb at most 2^51 + 19 */
    uint64_t *v = t.v;
    uint64_t q = (v[0] + 19) >> 51; /* q = 1 iff the value is at least p */
    q = (v[1] + q) >> 51;
    q = (v[2] + q) >> 51;
    q = (v[3] + q) >> 51;
    q = (v[4] + q) >> 51;
    v[0] += 19 * q; /* value + 19q - 2^255 q: the top carry is dropped below */
    uint64_t c;
    c = v[0] >> 51, v[0] &= MASK51, v[1] += c;
    c = v[1] >> 51, v[1] &= MASK51, v[2] += c;
    c = v[2] >> 51, v[2] &= MASK51, v[3] += c;
    c = v[3] >> 51, v[3] &= MASK51, v[4] += c;
    v[4] &= MASK51;
    store64(s, v[0] | (v[1] << 51));
    store64(s + 8, (v[1] >> 13) | (v[2] << 38));
    store64(s + 16, (v[2] >> 26) | (v[3] << 25));
    store64(s + 24, (v[3] >> 39) | (v[4] << 12));
}

static int fe_iszero(const fe *f) {
    unsigned char s[32];
    fe_tobytes(s, f);
    unsigned char any = 0;
    for (int i = 0; i < 32; i++) {
        any |= s[i];
    }
    return any == 0;
}

static int fe_isnegative(const fe *f) {
    unsigned char s[32];
    fe_tobytes(s, f);
    return s[0] & 1;
}

static void fe_sq_times(fe *h, const fe *f, int times) {
    fe_sq(h, f);
    for (int i = 1; i < times; i++) {
        fe_sq(h, h);
    }
}

/* z^(2^250 - 1) and z^11, the common start of inverting and of the square root. */
static void fe_pow_2_250_1(fe *z2_250_1, fe *z11, const fe *z) {
    fe z2, z9, t, z2_5_1, z2_10_1, z2_20_1, z2_50_1, z2_100_1;
    fe_sq(&z2, z);
    fe_sq_times(&t, &z2, 2);
    fe_mul(&z9, &t, z);
    fe_mul(z11, &z9, &z2);
    fe_sq(&t, z11);
    fe_mul(&z2_5_1, &t, &z9); /* z^31 */
    fe_sq_times(&t, &z2_5_1, 5);
    fe_mul(&z2_10_1, &t, &z2_5_1);
    fe_sq_times(&t, &z2_10_1, 10);
    fe_mul(&z2_20_1, &t, &z2_10_1);
    fe_sq_times(&t, &z2_20_1, 20);
    fe_mul(&t, &t, &z2_20_1); /* z^(2^40 - 1) */
    fe_sq_times(&t, &t, 10);
    fe_mul(&z2_50_1, &t, &z2_10_1);
    fe_sq_times(&t, &z2_50_1, 50);
    fe_mul(&z2_100_1, &t, &z2_50_1);
    fe_sq_times(&t, &z2_100_1, 100);
    fe_mul(&t, &t, &z2_100_1); /* z^(2^200 - 1) */
    fe_sq_times(&t, &t, 50);
    fe_mul(z2_250_1, &t, &z2_50_1);
}

static void fe_invert(fe *h, const fe *z) { /* z^(p - 2) = z^(2^255 - 21) */
    fe t, z11;
    fe_pow_2_250_1(&t, &z11, z);
    fe_sq_times(&t, &t, 5);
    fe_mul(h, &t, &z11);
}

static void fe_pow22523(fe *h, const fe *z) { /* z^((p - 5) / 8) = z^(2^252 - 3) */
    fe t, z11;
    fe_pow_2_250_1(&t, &z11, z);
    fe_sq_times(&t, &t, 2);
    fe_mul(h, &t, z);
}

/* -- points ---------------------------------------------------------------------------------- */

typedef struct {
    fe X, Y, Z, T;
} point; /* extended coordinates */

typedef struct {
    fe YplusX, YminusX, Z2, T2d;
} cached; /* a point ready to be added: Y + X, Y - X, 2Z, 2dT */

static fe curve_d, curve_d2, sqrt_m1;
static cached base_table[64][8]; /* base_table[i][j] = (j + 1) * 16^i * B */
static int ready;                /* the constants and B's table are made and checked */

static void point_identity(point *p) {
    memset(p, 0, sizeof *p);
    p->Y.v[0] = 1;
    p->Z.v[0] = 1;
}

static void point_to_cached(cached *c, const point *p) {
    fe_add(&c->YplusX, &p->Y, &p->X);
    fe_sub(&c->YminusX, &p->Y, &p->X);
    fe_add(&c->Z2, &p->Z, &p->Z);
    fe_mul(&c->T2d, &p->T, &curve_d2);
}

/* r = p + q, or p - q if negate. A = (Y1 - X1)(Y2 - X2), B = (Y1 + X1)(Y2 + X2), C = T1 2d T2,
 * D = Z1 2 Z2, E = B - A, F = D - C, G = D + C, H = B + A: X3 = EF, Y3 = GH, Z3 = FG, T3 = EH.
 * -q is (Y - X, Y + X, 2Z, -2dT): its two sums swap and C changes sign. */
static void point_add(point *r, const point *p, const cached *q, int negate) {
    fe y_plus_x, y_minus_x, a, b, c, d, e, f, g, h;
    fe_add(&y_plus_x, &p->Y, &p->X);
    fe_sub(&y_minus_x, &p->Y, &p->X);
    fe_mul(&a, &y_minus_x, negate ? &q->YplusX : &q->YminusX);
    fe_mul(&b, &y_plus_x, negate ? &q->YminusX : &q->YplusX);
    fe_mul(&c, &p->T, &q->T2d);
    fe_mul(&d, &p->Z, &q->Z2);
    fe_sub(&e, &b, &a);
    fe_add(&h, &b, &a);
    if (negate) {
        fe_add(&f, &d, &c);
        fe_sub(&g, &d, &c);
    } else {
        fe_sub(&f, &d, &c);
        fe_add(&g, &d, &c);
    }
    fe_mul(&r->X, &e, &f);
    fe_mul(&r->Y, &g, &h);
    fe_mul(&r->Z, &f, &g);
    fe_mul(&r->T, &e, &h);
}

/* r = 2p (a = -1): A = X^2, B = Y^2, C = 2Z^2, H = A + B, E = H - (X + Y)^2, G = A - B,
 * F = C + G: X3 = EF, Y3 = GH, Z3 = FG, T3 = EH. */
static void point_double(point *r, const point *p) {
    fe a, b, c, e, f, g, h, x_plus_y, t;
    fe_sq(&a, &p->X);
    fe_sq(&b, &p->Y);
    fe_sq(&c, &p->Z);
    fe_add(&c, &c, &c);
    fe_add(&h, &a, &b);
    fe_add(&x_plus_y, &p->X, &p->Y);
    fe_sq(&t, &x_plus_y);
    fe_sub(&e, &h, &t);
    fe_sub_carried(&g, &a, &b); /* f = c + g must stay below 2^54 */
    fe_add(&f, &c, &g);
    fe_mul(&r->X, &e, &f);
    fe_mul(&r->Y, &g, &h);
    fe_mul(&r->Z, &f, &g);
    fe_mul(&r->T, &e, &h);
}

static void point_tobytes(unsigned char s[32], const point *p) {
    fe inverse, x, y;
    fe_invert(&inverse, &p->Z);
    fe_mul(&x, &p->X, &inverse);
    fe_mul(&y, &p->Y, &inverse);
    fe_tobytes(s, &y);
    s[31] ^= (unsigned char)(fe_isnegative(&x) << 7);
}

/* Whether 8p is the identity: p is of small order (the group is a cyclic group of prime order
 * L times one of order 8, so 8p is in the prime-order part and vanishes only if x is 0). */
static int point_small_order(const point *p) {
    point q;
    point_double(&q, p);
    point_double(&q, &q);
    point_double(&q, &q);
    return fe_iszero(&q.X);
}

/* Decode s as a point, with x negated if negate; 0 if no point has y = s (mod p) with that sign
 * bit. x = u v^3 (u v^7)^((p - 5) / 8), u = y^2 - 1, v = d y^2 + 1, times sqrt(-1) if v x^2 is
 * -u rather than u. */
static int point_frombytes(point *p, const unsigned char s[32], int negate) {
    fe u, v, v3, x, vxx, check;
    fe_frombytes(&p->Y, s);
    memset(&p->Z, 0, sizeof p->Z);
    p->Z.v[0] = 1;
    fe_sq(&u, &p->Y);
    fe_mul(&v, &u, &curve_d);
    fe_sub_carried(&u, &u, &p->Z); /* u is subtracted below */
    fe_add(&v, &v, &p->Z);
    fe_sq(&v3, &v);
    fe_mul(&v3, &v3, &v);
    fe_sq(&x, &v3);
    fe_mul(&x, &x, &v);
    fe_mul(&x, &x, &u); /* u v^7 */
    fe_pow22523(&x, &x);
    fe_mul(&x, &x, &v3);
    fe_mul(&x, &x, &u);
    fe_sq(&vxx, &x);
    fe_mul(&vxx, &vxx, &v);
    fe_sub(&check, &vxx, &u);
    if (!fe_iszero(&check)) {
        fe_add(&check, &vxx, &u);
        if (!fe_iszero(&check)) {
            return 0;
        }
        fe_mul(&x, &x, &sqrt_m1);
    }
    if (fe_isnegative(&x) != ((s[31] >> 7) ^ (negate ? 1 : 0))) {
        fe_neg(&x, &x);
    }
    p->X = x;
    fe_mul(&p->T, &p->X, &p->Y);
    return 1;
}

static void make_table(cached table[64][8], const point *p) {
    point base = *p, multiple;
    for (int i = 0; i < 64; i++) { /* base = 16^i p */
        point_to_cached(&table[i][0], &base);
        multiple = base;
        for (int j = 1; j < 8; j++) {
            point_add(&multiple, &multiple, &table[i][0], 0);
            point_to_cached(&table[i][j], &multiple);
        }
        point_double(&base, &multiple); /* 2 * 8 * 16^i p */
    }
}

/* -- scalars mod L = 2^252 + 27742317777372353535851937790883648493 ------------------------- */

static const uint64_t order[4] = {0x5812631a5cf5d3edULL, 0x14def9dea2f79cd6ULL, 0, 0x1000000000000000ULL};

static int at_least_order(const uint64_t r[4]) {
    for (int i = 3; i >= 0; i--) {
        if (r[i] != order[i]) {
            return r[i] > order[i];
        }
    }
    return 1;
}

static void subtract_order(uint64_t r[4]) {
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 difference = (u128)r[i] - order[i] - borrow;
        r[i] = (uint64_t)difference;
        borrow = (uint64_t)(difference >> 64) & 1;
    }
}

/* r = the 512-bit little-endian number in mod L, by long division one bit at a time: r starts
 * as the top 252 bits (below L) and takes the other 260 one by one, staying below L. */
static void reduce_512(uint64_t r[4], const unsigned char in[64]) {
    uint64_t x[8];
    for (int i = 0; i < 8; i++) {
        x[i] = load64(in + 8 * i);
    }
    r[0] = (x[4] >> 4) | (x[5] << 60);
    r[1] = (x[5] >> 4) | (x[6] << 60);
    r[2] = (x[6] >> 4) | (x[7] << 60);
    r[3] = x[7] >> 4;
    for (int bit = 259; bit >= 0; bit--) {
        r[3] = (r[3] << 1) | (r[2] >> 63);
        r[2] = (r[2] << 1) | (r[1] >> 63);
        r[1] = (r[1] << 1) | (r[0] >> 63);
        r[0] = (r[0] << 1) | ((x[bit >> 6] >> (bit & 63)) & 1);
        if (at_least_order(r)) {
            subtract_order(r);
        }
    }
}

/* Signed base-16 digits of a scalar below 2^255: e[i] in [-8, 8), the last in [0, 8]. */
static void digits(signed char e[64], const uint64_t w[4]) {
    for (int i = 0; i < 64; i++) {
        e[i] = (signed char)((w[i >> 4] >> (4 * (i & 15))) & 15);
    }
    int carry = 0;
    for (int i = 0; i < 63; i++) {
        int digit = e[i] + carry;
        carry = (digit + 8) >> 4;
        e[i] = (signed char)(digit - (carry << 4));
    }
    e[63] = (signed char)(e[63] + carry);
}

static void add_digit(point *acc, const cached row[8], signed char digit) {
    if (digit > 0) {
        point_add(acc, acc, &row[digit - 1], 0);
    } else if (digit < 0) {
        point_add(acc, acc, &row[-digit - 1], 1);
    }
}

/* -- the checks ------------------------------------------------------------------------------- */

static const unsigned char base_encoding[32] = {
    0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66};

static void fe_small(fe *h, uint64_t value) {
    memset(h, 0, sizeof *h);
    h->v[0] = value;
}

int ed25519_init(void) {
    if (ready) {
        return 1;
    }
    fe one, numerator, denominator, two, check;
    fe_small(&one, 1);
    /* d = -121665 / 121666 */
    fe_small(&numerator, 121665);
    fe_neg(&numerator, &numerator);
    fe_small(&denominator, 121666);
    fe_invert(&denominator, &denominator);
    fe_mul(&curve_d, &numerator, &denominator);
    fe_add(&curve_d2, &curve_d, &curve_d);
    fe_carry(&curve_d2);
    /* sqrt(-1) = 2^((p - 1) / 4) = 2^(2^253 - 5): 2^(2^252 - 3) squared, times 2 */
    fe_small(&two, 2);
    fe_pow22523(&sqrt_m1, &two);
    fe_sq(&sqrt_m1, &sqrt_m1);
    fe_mul(&sqrt_m1, &sqrt_m1, &two);
    fe_sq(&check, &sqrt_m1);
    fe_add(&check, &check, &one);
    if (!fe_iszero(&check)) {
        return 0;
    }
    /* B: y = 4/5, x even */
    point base;
    if (!point_frombytes(&base, base_encoding, 0)) {
        return 0;
    }
    unsigned char encoded[32];
    point_tobytes(encoded, &base);
    if (memcmp(encoded, base_encoding, 32) != 0 || point_small_order(&base)) {
        return 0;
    }
    make_table(base_table, &base);
    ready = 1;
    return 1;
}

int ed25519_key_table(ed25519_table *table, const unsigned char key[32]) {
    if (!ready) {
        return 0;
    }
    point negated;
    fe y;
    unsigned char y_bytes[32], key_y[32];
    fe_frombytes(&y, key);
    fe_tobytes(y_bytes, &y);
    memcpy(key_y, key, 32);
    key_y[31] &= 0x7f;
    if (memcmp(y_bytes, key_y, 32) != 0) { /* y not below p: libsodium refuses the key */
        return 0;
    }
    if (!point_frombytes(&negated, key, 1) || point_small_order(&negated)) {
        return 0;
    }
    _Static_assert(sizeof table->rows >= sizeof(cached[64][8]), "ed25519_table too small");
    make_table((cached(*)[8])table->rows, &negated);
    return 1;
}

int ed25519_accepts(const ed25519_table *table, const unsigned char signature[64],
                    const unsigned char key[32], const unsigned char *message, size_t size,
                    ed25519_sha512 sha512, unsigned char *scratch) {
    uint64_t s[4], h[4];
    for (int i = 0; i < 4; i++) {
        s[i] = load64(signature + 32 + 8 * i);
    }
    if (at_least_order(s)) {
        return 0;
    }
    unsigned char digest[64];
    memcpy(scratch, signature, 32);
    memcpy(scratch + 32, key, 32);
    memcpy(scratch + 64, message, size);
    if (sha512(digest, scratch, 64 + size) != 0) {
        return 0;
    }
    reduce_512(h, digest);
    signed char s_digits[64], h_digits[64];
    digits(s_digits, s);
    digits(h_digits, h);
    const cached(*key_rows)[8] = (const cached(*)[8])table->rows;
    point acc;
    point_identity(&acc);
    for (int i = 0; i < 64; i++) {
        add_digit(&acc, base_table[i], s_digits[i]);
        add_digit(&acc, key_rows[i], h_digits[i]);
    }
    unsigned char encoded[32];
    point_tobytes(encoded, &acc);
    return memcmp(encoded, signature, 32) == 0 && !point_small_order(&acc);
}

/* -- the tables of recent keys ---------------------------------------------------------------- */

/* A sync or an import brings many calls in a row by the same authors: their tables are kept
 * (CACHE_SLOTS of them, 80 KB each: 10 MB at most), the least recently used one not in use
 * making way. Callers run without the GIL in several threads at once, hence the lock; a table
 * in use (refs) is never freed. */
#define CACHE_SLOTS 128

typedef struct {
    unsigned char key[32];
    ed25519_table *table; /* NULL: an empty slot */
    int refs;
    uint64_t used;
} slot;

static slot cache[CACHE_SLOTS];
static uint64_t cache_clock;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int cached_slot(const unsigned char key[32]) { /* call with the lock held */
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].table != NULL && memcmp(cache[i].key, key, 32) == 0) {
            cache[i].refs++;
            cache[i].used = ++cache_clock;
            return i;
        }
    }
    return -1;
}

int ed25519_use_key(ed25519_use *use, const unsigned char key[32], int make) {
    use->table = NULL;
    use->slot = -1;
    use->own = NULL;
    if (!ready) {
        return 0;
    }
    pthread_mutex_lock(&cache_lock);
    int found = cached_slot(key);
    pthread_mutex_unlock(&cache_lock);
    if (found >= 0) {
        use->slot = found;
        use->table = cache[found].table;
        return 1;
    }
    if (!make) {
        return 0;
    }
    ed25519_table *made = malloc(sizeof(ed25519_table));
    if (made == NULL) {
        return 0;
    }
    if (!ed25519_key_table(made, key)) {
        free(made);
        return 0;
    }
    pthread_mutex_lock(&cache_lock);
    found = cached_slot(key); /* another thread made it meanwhile */
    int victim = -1;
    if (found < 0) {
        for (int i = 0; i < CACHE_SLOTS; i++) {
            if (cache[i].table == NULL) {
                victim = i;
                break;
            }
            if (cache[i].refs == 0 && (victim < 0 || cache[i].used < cache[victim].used)) {
                victim = i;
            }
        }
        if (victim >= 0) {
            free(cache[victim].table);
            memcpy(cache[victim].key, key, 32);
            cache[victim].table = made;
            cache[victim].refs = 1;
            cache[victim].used = ++cache_clock;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    if (found >= 0) {
        free(made);
        use->slot = found;
        use->table = cache[found].table;
    } else if (victim >= 0) {
        use->slot = victim;
        use->table = made;
    } else { /* every slot in use: this table is the caller's alone */
        use->own = made;
        use->table = made;
    }
    return 1;
}

void ed25519_done(ed25519_use *use) {
    if (use->slot >= 0) {
        pthread_mutex_lock(&cache_lock);
        cache[use->slot].refs--;
        pthread_mutex_unlock(&cache_lock);
    }
    free(use->own);
    use->table = NULL;
    use->slot = -1;
    use->own = NULL;
}
#endif
