/* Native int8 LSTM generation: whole completions (step, sampling, stops) in one call.
 *
 * Why: at batch 1 a generation step is bound by the bytes of weights it reads plus a fixed cost
 * per operation. The torch path (models/fast_step.py) pays ~15 operator calls per character and
 * ~20 us of Python per character for sampling and bookkeeping; here a character costs one pass
 * over the int8 weights and a few microseconds of arithmetic.
 *
 * Numbers:
 *   - weights: int8, one scale per output row (symmetric, round to nearest, [-127, 127]);
 *   - inputs of every product are hidden states, in (-1, 1): quantized on the fixed scale 1/127
 *     (round to nearest), stored as u8 = q + 128 for VNNI's u8 x s8 products; the 128 is taken
 *     back by subtracting 128 * (row sum of the weights). The scale does not depend on the other
 *     rows and int32 accumulation is exact, so a row samples the same text alone or in a batch;
 *   - the embedding and layer 0's input product are one float table (a row per character), the
 *     head is float, pointwise work is float with a polynomial exp (relative error ~1e-7).
 * Two kernels for the int8 products, with the same integer results: AVX-512 VNNI (vpdpbusd) and
 * portable C. Everything else is shared code, so both kernels give the same floats.
 *
 * Layouts (models/native_lstm.py builds them):
 *   - layer l's weights, N = 4H outputs (gates i, f, g, o as in torch) by K inputs (K = H for
 *     layer 0: h_0; K = 2H above: [h_{l-1}, h_l]), packed as (N/64, K/4, 64, 4): for a block of
 *     64 outputs, four consecutive inputs of each output are 4 adjacent bytes, so one 64-byte
 *     load feeds one vpdpbusd for 16 outputs;
 *   - state h, c: (L, n, H) float, row r of layer l at (l * n + r) * H.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define MAX_LAYERS 16

typedef struct {
    int32_t layers, hidden, vocab, kernel; /* kernel: 0 portable C, 1 AVX-512 VNNI */
    const float *table0;                   /* (V, 4H) */
    const int8_t *weight[MAX_LAYERS];      /* packed, see above */
    const float *scale[MAX_LAYERS];        /* (4H): the row's weight scale / 127 */
    const int32_t *offset[MAX_LAYERS];     /* (4H): 128 * row sum of the int8 weights */
    const float *bias[MAX_LAYERS];         /* (4H): b_ih + b_hh; layer 0's are in table0 */
    const float *head_t;                   /* (H, V): the head's weight, transposed */
    const float *head_b;                   /* (V) */
} Model;

int lstm_int8_vnni_supported(void) {
#ifdef HAVE_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

/* ---- int8 products: acc (na, N) = x (na, K) u8 @ W^T (K, N) s8 ---- */

static void gemm_portable(const int8_t *w, int N, int K, const uint8_t *x, int na, int32_t *acc, int J0, int J1) {
    int kg_count = K / 4;
    for (int a = 0; a < na; a++) {
        const uint8_t *xr = x + (size_t)a * K;
        for (int J = J0; J < J1; J++) {
            int32_t sum[64] = {0};
            const int8_t *p = w + (size_t)J * kg_count * 256;
            for (int kg = 0; kg < kg_count; kg++, p += 256) {
                const uint8_t *xk = xr + 4 * kg;
                for (int r = 0; r < 64; r++)
                    sum[r] += xk[0] * p[4 * r] + xk[1] * p[4 * r + 1] + xk[2] * p[4 * r + 2] + xk[3] * p[4 * r + 3];
            }
            memcpy(acc + (size_t)a * N + J * 64, sum, sizeof sum);
        }
    }
}

#ifdef HAVE_X86
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

static VNNI inline __m512i broadcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* One row: two sets of four accumulators, so consecutive vpdpbusd do not wait on each other. */
static VNNI void block_row1(const int8_t *p, int kg_count, const uint8_t *x, int32_t *out) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int kg = 0;
    for (; kg + 2 <= kg_count; kg += 2, p += 512) {
        __m512i xa = broadcast4(x + 4 * kg), xb = broadcast4(x + 4 * kg + 4);
        a0 = _mm512_dpbusd_epi32(a0, xa, _mm512_loadu_si512(p));
        a1 = _mm512_dpbusd_epi32(a1, xa, _mm512_loadu_si512(p + 64));
        a2 = _mm512_dpbusd_epi32(a2, xa, _mm512_loadu_si512(p + 128));
        a3 = _mm512_dpbusd_epi32(a3, xa, _mm512_loadu_si512(p + 192));
        b0 = _mm512_dpbusd_epi32(b0, xb, _mm512_loadu_si512(p + 256));
        b1 = _mm512_dpbusd_epi32(b1, xb, _mm512_loadu_si512(p + 320));
        b2 = _mm512_dpbusd_epi32(b2, xb, _mm512_loadu_si512(p + 384));
        b3 = _mm512_dpbusd_epi32(b3, xb, _mm512_loadu_si512(p + 448));
    }
    if (kg < kg_count) {
        __m512i xa = broadcast4(x + 4 * kg);
        a0 = _mm512_dpbusd_epi32(a0, xa, _mm512_loadu_si512(p));
        a1 = _mm512_dpbusd_epi32(a1, xa, _mm512_loadu_si512(p + 64));
        a2 = _mm512_dpbusd_epi32(a2, xa, _mm512_loadu_si512(p + 128));
        a3 = _mm512_dpbusd_epi32(a3, xa, _mm512_loadu_si512(p + 192));
    }
    _mm512_storeu_si512(out, _mm512_add_epi32(a0, b0));
    _mm512_storeu_si512(out + 16, _mm512_add_epi32(a1, b1));
    _mm512_storeu_si512(out + 32, _mm512_add_epi32(a2, b2));
    _mm512_storeu_si512(out + 48, _mm512_add_epi32(a3, b3));
}

/* Four rows share each weight load: 16 accumulators, 4 loads and 4 broadcasts per 16 vpdpbusd. */
static VNNI void block_row4(const int8_t *p, int kg_count, const uint8_t *x, int K, int32_t *out, int N) {
    __m512i acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_si512();
    for (int kg = 0; kg < kg_count; kg++, p += 256) {
        __m512i w0 = _mm512_loadu_si512(p), w1 = _mm512_loadu_si512(p + 64);
        __m512i w2 = _mm512_loadu_si512(p + 128), w3 = _mm512_loadu_si512(p + 192);
        for (int i = 0; i < 4; i++) {
            __m512i xi = broadcast4(x + (size_t)i * K + 4 * kg);
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], xi, w0);
            acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], xi, w1);
            acc[i][2] = _mm512_dpbusd_epi32(acc[i][2], xi, w2);
            acc[i][3] = _mm512_dpbusd_epi32(acc[i][3], xi, w3);
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) _mm512_storeu_si512(out + (size_t)i * N + 16 * j, acc[i][j]);
}

static VNNI void gemm_vnni(const int8_t *w, int N, int K, const uint8_t *x, int na, int32_t *acc, int J0, int J1) {
    int kg_count = K / 4;
    for (int J = J0; J < J1; J++) {
        const int8_t *p = w + (size_t)J * kg_count * 256;
        int a = 0;
        for (; a + 4 <= na; a += 4)
            block_row4(p, kg_count, x + (size_t)a * K, K, acc + (size_t)a * N + J * 64, N);
        for (; a < na; a++) block_row1(p, kg_count, x + (size_t)a * K, acc + (size_t)a * N + J * 64);
    }
}
#endif

/* Output blocks J0..J1 (of 64) of layer `layer`'s product. */
static void gemm_blocks(const Model *m, int layer, int K, const uint8_t *x, int na, int32_t *acc, int J0, int J1) {
    int N = 4 * m->hidden;
#ifdef HAVE_X86
    if (m->kernel == 1) {
        gemm_vnni(m->weight[layer], N, K, x, na, acc, J0, J1);
        return;
    }
#endif
    gemm_portable(m->weight[layer], N, K, x, na, acc, J0, J1);
}

/* Helpers for one row's products: at batch 1 a product is bound by the rate one core reads the
 * weights at (about 95 GB/s from L3 on a Zen 4), so the other cores each read a share of it.
 * The product's output blocks are cut into a fixed number of chunks that the calling thread and
 * the helpers claim one at a time (a helper that is slow to wake loses its share rather than
 * holding the product up). Helpers spin between products: a step's serial part is a few us. */
typedef struct {
    _Atomic uint32_t generation; /* bumped for each product, and to quit */
    _Atomic int next, finished;  /* next chunk to claim; chunks done */
    _Atomic int quit;
    int chunks, per_chunk, blocks;
    const Model *m; /* the product in hand */
    int layer, K, na;
    const uint8_t *x;
    int32_t *acc;
} Team;

static void claim_chunks(Team *t) {
    for (;;) {
        int chunk = atomic_fetch_add(&t->next, 1);
        if (chunk >= t->chunks) return;
        int J0 = chunk * t->per_chunk, J1 = J0 + t->per_chunk < t->blocks ? J0 + t->per_chunk : t->blocks;
        gemm_blocks(t->m, t->layer, t->K, t->x, t->na, t->acc, J0, J1);
        atomic_fetch_add(&t->finished, 1);
    }
}

static inline void spin_pause(void) {
#ifdef HAVE_X86
    _mm_pause();
#endif
}

static void team_helper(Team *t) {
    uint32_t seen = 0;
    for (;;) {
        uint32_t now;
        unsigned spins = 0;
        while ((now = atomic_load(&t->generation)) == seen) {
            spin_pause();
            if (++spins % 4096 == 0) sched_yield(); /* let a descheduled caller run */
        }
        if (atomic_load(&t->quit)) return;
        seen = now;
        claim_chunks(t);
    }
}

static void gemm(const Model *m, int layer, int K, const uint8_t *x, int na, int32_t *acc, Team *team) {
    if (!team) {
        gemm_blocks(m, layer, K, x, na, acc, 0, m->hidden / 16);
        return;
    }
    team->m = m, team->layer = layer, team->K = K, team->na = na, team->x = x, team->acc = acc;
    atomic_store(&team->finished, 0);
    atomic_store(&team->next, 0); /* publishes the product's fields to whoever claims from here */
    atomic_fetch_add(&team->generation, 1);
    claim_chunks(team);
    while (atomic_load(&team->finished) < team->chunks) spin_pause();
}

/* ---- shared float code (the same on both kernels) ---- */

/* Rounds to nearest (ties to even) for |v| < 2^22, with adds only, so loops of it vectorize. */
static inline float round_nearest(float v) { return (v + 12582912.0f) - 12582912.0f; }

static inline void quantize(const float *h, int count, uint8_t *out) {
    for (int k = 0; k < count; k++) {
        float v = h[k] * 127.0f;
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        out[k] = (uint8_t)((int32_t)round_nearest(v) + 128);
    }
}

/* exp(x) for x in [-87, 87] (clamped): Cephes' expf polynomial, relative error ~1e-7. */
static inline float exp_poly(float x) {
    x = x > 87.0f ? 87.0f : (x < -87.0f ? -87.0f : x);
    float n = round_nearest(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } two_n = {.i = ((int32_t)n + 127) << 23};
    return p * two_n.f;
}

static inline float clamp(float x, float bound) { return x > bound ? bound : (x < -bound ? -bound : x); }

/* gates = (acc - offset) * scale + add; then the LSTM cell on them, h and c in place.
 * With e_x = exp(-x): sigmoid(x) = 1 / (1 + e_x) and tanh(x) = (1 - e_2x) / (1 + e_2x), so
 *   c' = c / (1 + e_f) + (1 - e_2g) / ((1 + e_2g) (1 + e_i))  and  h' = (1 - e_2c') / ((1 + e_o) (1 + e_2c')),
 * each written over one common denominator: two divisions per unit instead of five (division is
 * the slowest vector instruction here). Pre-activations are clamped to +-20 (sigmoid is 1 to
 * fp32 precision beyond 17), so the three-factor denominator stays below 1e27. */
__attribute__((target_clones("avx2", "default")))
static void cell_portable(const int32_t *acc, const int32_t *offset, const float *scale, const float *add,
                          float *gates, float *h, float *c, int H) {
    for (int n = 0; n < 4 * H; n++) gates[n] = (float)(acc[n] - offset[n]) * scale[n] + add[n];
    for (int k = 0; k < H; k++) {
        float ei = exp_poly(-clamp(gates[k], 20.0f)), ef = exp_poly(-clamp(gates[H + k], 20.0f));
        float eg = exp_poly(-2.0f * clamp(gates[2 * H + k], 10.0f)), eo = exp_poly(-clamp(gates[3 * H + k], 20.0f));
        float gi = (1.0f + eg) * (1.0f + ei), fd = 1.0f + ef;
        float cn = (c[k] * gi + (1.0f - eg) * fd) / (fd * gi);
        float ec = exp_poly(-2.0f * clamp(cn, 10.0f));
        c[k] = cn;
        h[k] = (1.0f - ec) / ((1.0f + eo) * (1.0f + ec));
    }
}

#ifdef HAVE_X86
/* cell_portable's arithmetic, 16 units at a time, operation for operation (so the same bits):
 * min/max for the clamps, the same magic-number rounding, mul and add kept apart. */
static VNNI inline __m512 clamp16(__m512 x, float bound) {
    return _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-bound)), _mm512_set1_ps(bound));
}

static VNNI inline __m512 neg16(__m512 x) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int32_t)0x80000000)));
}

static VNNI inline __m512 exp_poly16(__m512 x) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    x = clamp16(x, 87.0f);
    __m512 n = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), magic), magic);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

static VNNI inline __m512 gate16(const int32_t *acc, const int32_t *offset, const float *scale, const float *add) {
    __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(acc), _mm512_loadu_si512(offset)));
    return _mm512_add_ps(_mm512_mul_ps(v, _mm512_loadu_ps(scale)), _mm512_loadu_ps(add));
}

static VNNI void cell_avx512(const int32_t *acc, const int32_t *offset, const float *scale, const float *add,
                             float *h, float *c, int H) {
    const __m512 one = _mm512_set1_ps(1.0f), minus_two = _mm512_set1_ps(-2.0f);
    for (int k = 0; k < H; k += 16) {
        __m512 ei = exp_poly16(neg16(clamp16(gate16(acc + k, offset + k, scale + k, add + k), 20.0f)));
        __m512 ef = exp_poly16(neg16(clamp16(gate16(acc + H + k, offset + H + k, scale + H + k, add + H + k), 20.0f)));
        __m512 eg = exp_poly16(_mm512_mul_ps(
            minus_two, clamp16(gate16(acc + 2 * H + k, offset + 2 * H + k, scale + 2 * H + k, add + 2 * H + k), 10.0f)));
        __m512 eo = exp_poly16(neg16(clamp16(
            gate16(acc + 3 * H + k, offset + 3 * H + k, scale + 3 * H + k, add + 3 * H + k), 20.0f)));
        __m512 gi = _mm512_mul_ps(_mm512_add_ps(one, eg), _mm512_add_ps(one, ei)), fd = _mm512_add_ps(one, ef);
        __m512 cn = _mm512_div_ps(
            _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(c + k), gi), _mm512_mul_ps(_mm512_sub_ps(one, eg), fd)),
            _mm512_mul_ps(fd, gi));
        __m512 ec = exp_poly16(_mm512_mul_ps(minus_two, clamp16(cn, 10.0f)));
        _mm512_storeu_ps(c + k, cn);
        _mm512_storeu_ps(h + k, _mm512_div_ps(_mm512_sub_ps(one, ec),
                                              _mm512_mul_ps(_mm512_add_ps(one, eo), _mm512_add_ps(one, ec))));
    }
}
#endif

static void cell(const Model *m, const int32_t *acc, int layer, const float *add, float *gates, float *h, float *c) {
#ifdef HAVE_X86
    if (m->kernel == 1) {
        cell_avx512(acc, m->offset[layer], m->scale[layer], add, h, c, m->hidden);
        return;
    }
#endif
    cell_portable(acc, m->offset[layer], m->scale[layer], add, gates, h, c, m->hidden);
}

/* logits = head_b + sum over k of head_t[k] * h[k], in that order (both versions round alike). */
static void head_portable(const float *head_t, const float *head_b, const float *h, int H, int V, float *logits) {
    memcpy(logits, head_b, sizeof(float) * V);
    for (int k = 0; k < H; k++) {
        const float *w = head_t + (size_t)k * V;
        float x = h[k];
        for (int v = 0; v < V; v++) logits[v] += w[v] * x;
    }
}

#ifdef HAVE_X86
/* The same sums for four rows at once, 64 logits of each held in registers across k, so each
 * weight load serves four rows (mul then add: no FMA, as above). A group of fewer rows repeats
 * its last row. */
static VNNI void head_avx512(const float *head_t, const float *head_b, const float *const h[4], int H, int V,
                             float *const logits[4]) {
    for (int v0 = 0; v0 < V; v0 += 64) {
        __mmask16 mask[4];
        __m512 acc[4][4];
        for (int j = 0; j < 4; j++) {
            int left = V - v0 - 16 * j;
            mask[j] = left >= 16 ? 0xFFFF : (left <= 0 ? 0 : (__mmask16)((1u << left) - 1));
            for (int r = 0; r < 4; r++) acc[r][j] = _mm512_maskz_loadu_ps(mask[j], head_b + v0 + 16 * j);
        }
        for (int k = 0; k < H; k++) {
            const float *w = head_t + (size_t)k * V + v0;
            __m512 wj[4];
            for (int j = 0; j < 4; j++) wj[j] = _mm512_maskz_loadu_ps(mask[j], w + 16 * j);
            for (int r = 0; r < 4; r++) {
                __m512 x = _mm512_set1_ps(h[r][k]);
                for (int j = 0; j < 4; j++) acc[r][j] = _mm512_add_ps(acc[r][j], _mm512_mul_ps(wj[j], x));
            }
        }
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 4; j++) _mm512_mask_storeu_ps(logits[r] + v0 + 16 * j, mask[j], acc[r][j]);
    }
}
#endif

/* The head for the na rows listed: logits of row rows[a] from its last layer's h. */
static void heads(const Model *m, int n, const int32_t *rows, int na, const float *h, float *logits) {
    int H = m->hidden, V = m->vocab;
    const float *last = h + (size_t)(m->layers - 1) * n * H;
    for (int a = 0; a < na; a += 4) {
        const float *hs[4];
        float *out[4];
        for (int r = 0; r < 4; r++) {
            int row = rows[a + r < na ? a + r : na - 1];
            hs[r] = last + (size_t)row * H;
            out[r] = logits + (size_t)row * V;
        }
#ifdef HAVE_X86
        if (m->kernel == 1) {
            head_avx512(m->head_t, m->head_b, hs, H, V, out);
            continue;
        }
#endif
        for (int r = 0; r < 4 && a + r < na; r++) head_portable(m->head_t, m->head_b, hs[r], H, V, out[r]);
    }
}

typedef struct {
    uint8_t *x;
    int32_t *acc;
    float *gates;
    Team *team; /* helpers for the products, or NULL */
} Scratch;

static int scratch_init(Scratch *s, const Model *m, int n) {
    size_t H = m->hidden;
    s->x = malloc((size_t)n * 2 * H);
    s->acc = malloc((size_t)n * 4 * H * sizeof(int32_t));
    s->gates = malloc(4 * H * sizeof(float));
    s->team = NULL;
    return s->x && s->acc && s->gates;
}

static void scratch_free(Scratch *s) {
    free(s->x);
    free(s->acc);
    free(s->gates);
}

/* One step for the na rows listed in `rows` (indices into the n rows of h, c and logits), reading
 * character ids[a] for rows[a]. */
static void step_rows(const Model *m, int n, const int32_t *rows, int na, const int64_t *ids, float *h, float *c,
                      float *logits, Scratch *s, int with_head) {
    int H = m->hidden;
    for (int l = 0; l < m->layers; l++) {
        int K = l == 0 ? H : 2 * H;
        for (int a = 0; a < na; a++) {
            uint8_t *x = s->x + (size_t)a * K;
            if (l > 0) {
                quantize(h + ((size_t)(l - 1) * n + rows[a]) * H, H, x);
                x += H;
            }
            quantize(h + ((size_t)l * n + rows[a]) * H, H, x);
        }
        gemm(m, l, K, s->x, na, s->acc, s->team);
        for (int a = 0; a < na; a++) {
            const float *add = l == 0 ? m->table0 + (size_t)ids[a] * 4 * H : m->bias[l];
            size_t at = ((size_t)l * n + rows[a]) * H;
            cell(m, s->acc + (size_t)a * 4 * H, l, add, s->gates, h + at, c + at);
        }
    }
    if (with_head) heads(m, n, rows, na, h, logits);
}

/* One step for all n rows: ids (n) -> logits (n, V); h and c updated in place. 0 on success. */
int lstm_int8_step(const Model *m, int32_t n, const int64_t *ids, float *h, float *c, float *logits) {
    Scratch s;
    int32_t *rows = malloc((size_t)n * sizeof(int32_t));
    int ok = scratch_init(&s, m, n) && rows;
    if (ok) {
        for (int a = 0; a < n; a++) rows[a] = a;
        step_rows(m, n, rows, n, ids, h, c, logits, &s, 1);
    }
    scratch_free(&s);
    free(rows);
    return ok ? 0 : -1;
}

/* ---- sampling (models/sampling.py's rules, per row) ---- */

/* Sorts ids by value, largest first (stable merge sort; V is small). tmp: V ints. */
static void sort_descending(int32_t *order, int32_t *tmp, const float *value, int V) {
    for (int v = 0; v < V; v++) order[v] = v;
    for (int width = 1; width < V; width *= 2) {
        for (int lo = 0; lo < V; lo += 2 * width) {
            int mid = lo + width < V ? lo + width : V, hi = lo + 2 * width < V ? lo + 2 * width : V;
            int i = lo, j = mid, o = lo;
            while (i < mid && j < hi) tmp[o++] = value[order[j]] > value[order[i]] ? order[j++] : order[i++];
            while (i < mid) tmp[o++] = order[i++];
            while (j < hi) tmp[o++] = order[j++];
        }
        memcpy(order, tmp, sizeof(int32_t) * V);
    }
}

static int argmax_from(const float *v, int from, int V) {
    int best = from;
    for (int i = from + 1; i < V; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Draw the next id of one row from its logits (V): argmax over ids >= 1 when cold; else the
 * Gumbel-max draw argmax(logits / T + noise) over the top-k / top-p candidates (noise[0] is -inf).
 * work: 2V floats, order: 2V ints of scratch. */
static int sample_row(const float *logits, int V, float inv_temp, int hot, const float *noise, int top_k, float top_p,
                      float *work, int32_t *order) {
    if (!hot) return argmax_from(logits, 1, V);
    float *scaled = work, *probs = work + V;
    for (int v = 0; v < V; v++) scaled[v] = logits[v] * inv_temp;
    if ((top_k > 0 && top_k < V) || top_p < 1.0f) {
        sort_descending(order, order + V, scaled, V);
        if (top_k > 0 && top_k < V) {
            float kth = scaled[order[top_k - 1]];
            for (int v = 0; v < V; v++)
                if (scaled[v] < kth) scaled[v] = -__builtin_inff();
        }
        if (top_p < 1.0f) {
            float top = scaled[order[0]], total = 0.0f;
            for (int v = 0; v < V; v++) total += probs[v] = __builtin_expf(scaled[v] - top);
            float before = 0.0f;
            for (int j = 0; j < V; j++) {
                int v = order[j];
                float p = probs[v] / total;
                if (before >= top_p) scaled[v] = -__builtin_inff();
                before += p;
            }
        }
    }
    for (int v = 0; v < V; v++) scaled[v] += noise[v];
    return argmax_from(scaled, 0, V);
}

/* Whole completions, prompts included. One job per thread, each a range of rows (rows are
 * independent: a row samples the same text whichever thread runs it). */
typedef struct {
    const Model *m;
    int n, r0, r1, P, T, top_k;
    float top_p;
    const int64_t *prompt;
    const int32_t *prompt_len, *limits;
    float *h, *c, *logits;
    const float *noise, *inv_temp;
    const uint8_t *hot, *is_stop;
    int64_t *out;
    int32_t *lengths;
    uint8_t *stopped;
    int failed;
} Job;

static void run_job(Job *j, Team *team) {
    const Model *m = j->m;
    int V = m->vocab, count = j->r1 - j->r0;
    Scratch s;
    int32_t *rows = malloc((size_t)count * sizeof(int32_t)), *order = malloc((size_t)2 * V * sizeof(int32_t));
    int32_t *ending_rows = malloc((size_t)count * sizeof(int32_t));
    int64_t *ids = malloc((size_t)count * sizeof(int64_t));
    float *work = malloc((size_t)2 * V * sizeof(float));
    if (!(scratch_init(&s, m, count) && rows && order && ids && work && ending_rows)) {
        j->failed = 1;
    } else {
        s.team = team;
        /* burn-in: row r reads its prompt from the zero state; its logits come after its last char */
        for (int t = 0; t < j->P; t++) {
            int na = 0;
            for (int r = j->r0; r < j->r1; r++)
                if (t < j->prompt_len[r]) {
                    rows[na] = r;
                    ids[na++] = j->prompt[(size_t)r * j->P + t];
                }
            if (na == 0) break;
            step_rows(m, j->n, rows, na, ids, j->h, j->c, j->logits, &s, 0);
            int ending = 0; /* rows whose prompt ends here: their logits are needed */
            for (int a = 0; a < na; a++)
                if (t == j->prompt_len[rows[a]] - 1) ending_rows[ending++] = rows[a];
            heads(m, j->n, ending_rows, ending, j->h, j->logits);
        }
        int na = count;
        for (int a = 0; a < count; a++) {
            int r = j->r0 + a;
            rows[a] = r;
            j->lengths[r] = j->limits[r];
            j->stopped[r] = 0;
        }
        for (int t = 0; t < j->T && na > 0; t++) {
            int kept = 0;
            for (int a = 0; a < na; a++) {
                int r = rows[a];
                int id = sample_row(j->logits + (size_t)r * V, V, j->inv_temp[r], j->hot[r],
                                    j->noise + ((size_t)r * j->T + t) * V, j->top_k, j->top_p, work, order);
                j->out[(size_t)r * j->T + t] = id;
                if (j->is_stop[id]) {
                    j->lengths[r] = t;
                    j->stopped[r] = 1;
                } else if (t + 1 < j->limits[r]) {
                    rows[kept] = r;
                    ids[kept++] = id;
                }
            }
            na = kept;
            if (na > 0) step_rows(m, j->n, rows, na, ids, j->h, j->c, j->logits, &s, 1);
        }
    }
    scratch_free(&s);
    free(rows);
    free(ending_rows);
    free(order);
    free(ids);
    free(work);
}

/* Completes n prompts on up to `threads` threads: rows are shared out among them, or, for one
 * row, its products are. The threads are OpenMP's: in a process that has PyTorch loaded they are
 * PyTorch's own pool (the same libgomp), already spinning after its last parallel region; threads
 * of our own would compete with those for the CPUs for a few milliseconds after every torch op.
 *   prompt (n, P) ids, prompt_len (n) >= 1: each row's prompt; h and c (L, n, H) zero on entry;
 *   noise (n, T, V): row r's Gumbel noise at step t, noise[..., 0] = -inf; inv_temp, hot (n): 1/T
 *   and T > 0; top_k <= 0 and top_p >= 1 mean off; is_stop (V): ids that end a row (not part of
 *   its text); limits (n): each row's length cap (<= T).
 * Writes out (n, T) ids, lengths (n) and stopped (n). 0 on success, -1 when memory ran out. */
int lstm_int8_generate(const Model *m, int32_t n, int32_t threads, int32_t P, const int64_t *prompt,
                       const int32_t *prompt_len, float *h, float *c, int32_t T, const float *noise,
                       const float *inv_temp, const uint8_t *hot, int32_t top_k, float top_p, const uint8_t *is_stop,
                       const int32_t *limits, int64_t *out, int32_t *lengths, uint8_t *stopped) {
    enum { MAX_THREADS = 64 };
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads < 1) threads = 1;
    int jobs_count = threads < n ? threads : n, failed = 0;
    float *logits = malloc((size_t)n * m->vocab * sizeof(float));
    if (!logits) return -1;
    Job jobs[MAX_THREADS];
    for (int i = 0; i < jobs_count; i++)
        jobs[i] = (Job){m, n, (int)((int64_t)n * i / jobs_count), (int)((int64_t)n * (i + 1) / jobs_count), P, T,
                        top_k, top_p, prompt, prompt_len, limits, h, c, logits, noise, inv_temp, hot, is_stop, out,
                        lengths, stopped, 0};
#ifdef _OPENMP
    if (jobs_count == 1 && threads > 1) {
        Team team = {0};
        team.blocks = m->hidden / 16;
        team.per_chunk = team.blocks >= 32 ? team.blocks / 16 : 1;
        team.chunks = (team.blocks + team.per_chunk - 1) / team.per_chunk;
#pragma omp parallel num_threads(threads)
        {
            if (omp_get_thread_num() == 0) {
                run_job(&jobs[0], omp_get_num_threads() > 1 ? &team : NULL);
                atomic_store(&team.quit, 1);
                atomic_fetch_add(&team.generation, 1);
            } else {
                team_helper(&team);
            }
        }
    } else {
#pragma omp parallel for num_threads(jobs_count) schedule(static, 1)
        for (int i = 0; i < jobs_count; i++) run_job(&jobs[i], NULL);
    }
#else
    for (int i = 0; i < jobs_count; i++) run_job(&jobs[i], NULL);
#endif
    for (int i = 0; i < jobs_count; i++) failed |= jobs[i].failed;
    free(logits);
    return failed ? -1 : 0;
}
