/* float16 / bfloat16 conversions: every float16 value, every rounding midpoint, and a million random
 * float32 values against an independent oracle (nearest entry of a sorted table of float16 values). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/half.h"

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The value of a float16 from its definition, in double. */
static double f16_value_by_definition(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m, -24);
    else v = ldexp(1024 + m, e - 25);
    return sign ? -v : v;
}

static void test_f16_to_f32_all_values(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = sd_f16_to_f32((uint16_t)h);
        double want = f16_value_by_definition((uint16_t)h);
        if (isnan(want)) { /* quiet, sign and payload kept */
            if (f2u(got) != ((h & 0x8000u) << 16 | 0x7fc00000u | (h & 1023u) << 13)) bad++;
        } else if ((double)got != want || !signbit(got) != !signbit(want)) {
            if (bad++ < 5) EXPECT(0, "f16 0x%04x -> %.9g, want %.9g", h, got, want);
        }
    }
    EXPECT(bad == 0, "%d float16 values decoded wrongly", bad);
}

static void test_f16_round_trip_all_values(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = sd_f32_to_f16(sd_f16_to_f32((uint16_t)h));
        int is_nan = ((h >> 10) & 31) == 31 && (h & 1023);
        if (is_nan) {
            /* NaN stays NaN, same sign, quietened, payload kept */
            if (back != (h | 0x0200u)) bad++;
        } else if (back != h) {
            if (bad++ < 5) EXPECT(0, "0x%04x -> 0x%04x", h, back);
        }
    }
    EXPECT(bad == 0, "%d float16 values did not round-trip", bad);
}

/* Oracle: the non-negative finite float16 values in increasing order (bits 0x0000..0x7bff). */
static double table[0x7c00];

static uint16_t oracle_f32_to_f16(float x) {
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double a = fabs((double)x);
    if (isnan(x)) return 0xffff; /* not used */
    if (a >= 65520.0) return sign | 0x7c00; /* 65504 + half its ulp (32/2) */
    int lo = 0, hi = 0x7bff;                /* largest index with table[i] <= a */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (table[mid] <= a) lo = mid;
        else hi = mid - 1;
    }
    if (lo == 0x7bff) return sign | 0x7bff;
    double d_lo = a - table[lo], d_hi = table[lo + 1] - a;
    int pick = d_lo < d_hi ? lo : d_hi < d_lo ? lo + 1 : ((lo & 1) ? lo + 1 : lo);
    return (uint16_t)(sign | pick);
}

static void fill_table(void) {
    for (int i = 0; i < 0x7c00; i++) table[i] = f16_value_by_definition((uint16_t)i);
}

static void test_f32_to_f16_midpoints(void) {
    fill_table();
    int bad = 0;
    for (int i = 0; i + 1 < 0x7c00; i++) {
        /* the midpoint of two neighbours has 12 significant bits: exact in float32 */
        float mid = (float)((table[i] + table[i + 1]) / 2);
        float below = nextafterf(mid, 0.0f), above = nextafterf(mid, INFINITY);
        uint16_t even = (i & 1) ? (uint16_t)(i + 1) : (uint16_t)i;
        uint16_t g_mid = sd_f32_to_f16(mid), g_below = sd_f32_to_f16(below), g_above = sd_f32_to_f16(above);
        uint16_t g_neg = sd_f32_to_f16(-mid);
        if (g_mid != even || g_below != i || g_above != i + 1 || g_neg != (0x8000 | even)) {
            if (bad++ < 5)
                EXPECT(0, "around %.9g: mid 0x%04x below 0x%04x above 0x%04x (want 0x%04x 0x%04x 0x%04x)",
                       (double)mid, g_mid, g_below, g_above, even, i, i + 1);
        }
    }
    EXPECT(bad == 0, "%d midpoints rounded wrongly", bad);
    /* overflow edge and tiny values */
    EXPECT(sd_f32_to_f16(65504.0f) == 0x7bff, "65504");
    EXPECT(sd_f32_to_f16(nextafterf(65520.0f, 0)) == 0x7bff, "just under 65520");
    EXPECT(sd_f32_to_f16(65520.0f) == 0x7c00, "65520 -> inf");
    EXPECT(sd_f32_to_f16(-1e30f) == 0xfc00, "-1e30 -> -inf");
    EXPECT(sd_f32_to_f16(INFINITY) == 0x7c00 && sd_f32_to_f16(-INFINITY) == 0xfc00, "inf");
    EXPECT(sd_f32_to_f16(ldexpf(1, -25)) == 0x0000, "2^-25 ties to 0");
    EXPECT(sd_f32_to_f16(nextafterf(ldexpf(1, -25), 1)) == 0x0001, "just above 2^-25");
    EXPECT(sd_f32_to_f16(ldexpf(3, -25)) == 0x0002, "3*2^-25 ties to even 2");
    EXPECT(sd_f32_to_f16(-0.0f) == 0x8000, "-0");
    EXPECT(sd_f32_to_f16(1e-45f) == 0x0000, "float32 subnormal -> 0");
    uint16_t qn = sd_f32_to_f16(NAN);
    EXPECT(((qn >> 10) & 31) == 31 && (qn & 1023) != 0, "NaN -> 0x%04x", qn);
    uint16_t sn = sd_f32_to_f16(u2f(0x7f800001u)); /* signalling NaN with a low payload */
    EXPECT(((sn >> 10) & 31) == 31 && (sn & 1023) != 0, "sNaN must not become inf: 0x%04x", sn);
}

static void test_f32_to_f16_random(void) {
    fill_table();
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int bad = 0, n = 1000000;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t bits = (uint32_t)(s >> 32);
        /* half the samples near the float16 range, where the interesting rounding is */
        if (i & 1) bits = (bits & 0x80ffffffu) | ((uint32_t)(100 + (bits >> 24) % 45) << 23);
        float x = u2f(bits);
        if (isnan(x)) continue;
        uint16_t got = sd_f32_to_f16(x), want = oracle_f32_to_f16(x);
        if (got != want && bad++ < 5) EXPECT(0, "%.9g (0x%08x): got 0x%04x want 0x%04x", (double)x, bits, got, want);
    }
    EXPECT(bad == 0, "%d of %d random values rounded wrongly", bad, n);
}

static void test_bf16(void) {
    int bad = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = sd_bf16_to_f32((uint16_t)b);
        if (f2u(f) != b << 16) bad++;
        int is_nan = ((b >> 7) & 0xff) == 0xff && (b & 0x7f);
        if (!is_nan && sd_f32_to_bf16(f) != b) bad++;
        if (is_nan && !isnan(sd_bf16_to_f32(sd_f32_to_bf16(f)))) bad++;
    }
    EXPECT(bad == 0, "%d bfloat16 values wrong", bad);
    EXPECT(sd_f32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3f80, "tie to even (down)");
    EXPECT(sd_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)) == 0x3f82, "tie to even (up)");
    EXPECT(sd_f32_to_bf16(nextafterf(1.0f + ldexpf(1, -8), 2)) == 0x3f81, "above the tie");
    EXPECT(sd_f32_to_bf16(3.4028235e38f) == 0x7f80, "FLT_MAX rounds to inf");
    EXPECT(sd_f32_to_bf16(u2f(0x7f800001u)) != 0x7f80, "sNaN must not become inf");
}

/* The array conversions give the scalar ones' bits for every value (NaN payloads included), at
 * every offset (vector bodies and scalar tails), and find the first Inf / NaN. */
static void test_arrays_match_scalar(void) {
    enum { N = 65536 + 37 };
    uint16_t *h = malloc(N * sizeof *h);
    float *f = malloc(N * sizeof *f);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)(i * 40503u); /* every pattern, shuffled */
    int bad16 = 0, bad_bf = 0;
    for (int off = 0; off < 3; off++) {
        sd_f16_to_f32_n(h + off, f, N - off);
        for (int i = 0; i < N - off; i++) bad16 += f2u(f[i]) != f2u(sd_f16_to_f32(h[i + off]));
        sd_f16_to_f32_n_portable(h + off, f, N - off); /* the loop CPUs without F16C run */
        for (int i = 0; i < N - off; i++) bad16 += f2u(f[i]) != f2u(sd_f16_to_f32(h[i + off]));
        sd_bf16_to_f32_n(h + off, f, N - off);
        for (int i = 0; i < N - off; i++) bad_bf += f2u(f[i]) != f2u(sd_bf16_to_f32(h[i + off]));
    }
    EXPECT(bad16 == 0 && bad_bf == 0, "array conversions differ from scalar: f16 %d, bf16 %d", bad16, bad_bf);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)(i % 0x7000); /* finite in both formats */
    EXPECT(sd_f16_first_nonfinite(h, N) == -1 && sd_bf16_first_nonfinite(h, N) == -1, "finite values flagged");
    const uint16_t f16_bad[3] = {0x7c00, 0xfc00, 0x7e01}, bf16_bad[3] = {0x7f80, 0xff80, 0x7fc1};
    for (int k = 0; k < 3; k++) {
        const int at = 1000 + 17 * k;
        h[at] = f16_bad[k];
        h[at + 5] = f16_bad[k];
        EXPECT(sd_f16_first_nonfinite(h, N) == at, "f16 0x%04x at %d: got %lld", f16_bad[k], at,
               (long long)sd_f16_first_nonfinite(h, N));
        EXPECT(sd_f16_first_nonfinite(h, (size_t)at) == -1, "f16 check reads past n");
        h[at] = bf16_bad[k];
        h[at + 5] = 0;
        EXPECT(sd_bf16_first_nonfinite(h, N) == at, "bf16 0x%04x at %d", bf16_bad[k], at);
        h[at] = 0;
    }
    EXPECT(sd_f16_first_nonfinite(h, 0) == -1, "empty array");
    free(h);
    free(f);
}

/* The conversion with the standardisation's subtraction and product in one pass: the bits of the
 * scalar conversion followed by (x - sub) * mul, for every pattern, at every offset. */
static void test_f16_affine(void) {
    enum { N = 65536 };
    static uint16_t h[N];
    static float f[N], sub[N], mul[N];
    for (int i = 0; i < N; i++) {
        h[i] = (uint16_t)(i * 40503u);
        sub[i] = 0.37f * (float)(i % 13) - 2.0f;
        mul[i] = 0.5f + 0.01f * (float)(i % 29);
    }
    int bad = 0;
    for (int off = 0; off < 3; off++) {
        sd_f16_to_f32_affine_n(h + off, f, N - off, sub, mul);
        for (int i = 0; i < N - off; i++) {
            const float want = (sd_f16_to_f32(h[i + off]) - sub[i]) * mul[i];
            if (f2u(f[i]) != f2u(want) && bad++ < 3)
                EXPECT(0, "0x%04x: 0x%08x, want 0x%08x", h[i + off], f2u(f[i]), f2u(want));
        }
    }
    EXPECT(bad == 0, "%d values differ from conversion then (x - sub) * mul", bad);
}

int main(void) {
    sd_test_run("half_f16_affine", test_f16_affine);
    sd_test_run("half_arrays_match_scalar", test_arrays_match_scalar);
    sd_test_run("half_f16_to_f32_all_values", test_f16_to_f32_all_values);
    sd_test_run("half_f16_round_trip_all_values", test_f16_round_trip_all_values);
    sd_test_run("half_f32_to_f16_midpoints", test_f32_to_f16_midpoints);
    sd_test_run("half_f32_to_f16_random_vs_oracle", test_f32_to_f16_random);
    sd_test_run("half_bf16", test_bf16);
    return sd_test_finish();
}
