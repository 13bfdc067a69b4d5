/* Forward pass of one SDUMC flow (MODEL.md section 2, steps 1-14) and its workspace.
 * Legend: B batch, T_m padded frames, H hidden, C = H/2, R = H/4, K = 7 query views. */
#include "model/flow.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/omp.h"
#include "core/pool.h"
#include "core/real.h"
#include "core/threads.h"
#include "nn/nn_gemm.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- workspace layout ----
 * The workspace is one allocation carved into named buffers. layout() runs twice: with
 * base == NULL to measure, then with the real base to assign pointers. */
typedef struct {
    char *base;
    size_t used;
} arena;

static void *take(arena *a, size_t bytes) {
    size_t off = (a->used + SD_ALIGN - 1) / SD_ALIGN * SD_ALIGN;
    a->used = off + bytes;
    return a->base ? a->base + off : NULL;
}
static real *take_f(arena *a, size_t n) { return take(a, n * sizeof(real)); }
static uint8_t *take_u8(arena *a, size_t n) { return take(a, n); }

static mlp_shape mlp_shape_of(const SD_R(sd_mlp_ptrs) *p, int in, int d0, int d1) {
    mlp_shape s;
    memset(&s, 0, sizeof s);
    s.in = in;
    s.n_layers = p->n;
    s.dims[0] = d0;
    s.dims[1] = d1;
    return s;
}

static void take_mlp(arena *a, SD_R(sd_mlp_buf) *buf, const mlp_shape *s, size_t N) {
    size_t n = SD_R(sd_mlp_cache_len)(s, N);
    buf->relu = take_f(a, n);
    buf->drop = take_f(a, n);
    buf->mask = take_u8(a, n);
    buf->out = take_f(a, N * (size_t)s->dims[s->n_layers - 1]);
}

sd_mlp_shapes SD_R(sd_flow_mlp_shapes)(const SD_R(sd_model) *m) {
    const int H = m->cfg.hidden, C = H / 2;
    sd_mlp_shapes s;
    s.modality = mlp_shape_of(&m->p.modality_mlp[0], H, H, H);
    s.attention = mlp_shape_of(&m->p.attention_mlp, 3 * H, H, H);
    s.query = mlp_shape_of(&m->p.query_mlp[0], H, H, 0);
    s.cross = mlp_shape_of(&m->p.cross_mlp[0], H, H, C);
    s.cross_attention = mlp_shape_of(&m->p.cross_attention_mlp, SD_QUERY_VIEWS * C, H, C);
    return s;
}

/* Cross-attention keeps its projected frames Kt [B,T,H] for the backward when they are at most
 * this many floats (16 MiB); larger ones (long audio in big batches) are recomputed in the
 * backward, chunk by chunk: one more B*T*H*H GEMM (about 5% of a MOSEI training step) for
 * B*T*H fewer floats kept (49 MiB over both flows at the MOSEI point). Evaluation keeps none. */
#define FLOW_KEEP_KT_MAX_FLOATS ((size_t)1 << 22)

static int keep_cross_kt(const SD_R(sd_flow) *f, int m) {
    return f->training && (size_t)f->B * (size_t)f->T[m] * (size_t)f->H <= FLOW_KEEP_KT_MAX_FLOATS;
}

static void layout(SD_R(sd_flow) *f, arena *a, const sd_mlp_shapes *s) {
    const size_t B = (size_t)f->B, H = (size_t)f->H, C = (size_t)f->C, R = (size_t)f->R;
    const size_t K = SD_QUERY_VIEWS;
    for (int m = 0; m < 3; m++) {
        size_t BT = B * (size_t)f->T[m];
        /* shared frames live in the owner (pointers set by prepare) */
        f->frames[m] = (f->shared >> m) & 1u ? NULL : take_f(a, BT * H);
        f->pool[m].P = take_f(a, BT * H);
        f->pool[m].alpha = take_f(a, BT);
        f->pool[m].u = take_f(a, B * H);
        f->pool[m].mask_out = take_u8(a, B * H);
        f->pooled[m] = take_f(a, B * H);
        take_mlp(a, &f->modality[m], &s->modality, B);
        f->cross[m].Kt = keep_cross_kt(f, m) ? take_f(a, BT * H) : NULL;
        f->cross[m].Qp = take_f(a, B * K * H);
        f->cross[m].A = take_f(a, BT * K);
        f->cross[m].O = take_f(a, B * K * H);
        f->cross[m].mask_out = take_u8(a, B * K * H);
        f->Y[m] = take_f(a, B * K * H);
        take_mlp(a, &f->cross_mlp[m], &s->cross, B * K);
    }
    f->mia1.cat = take_f(a, B * 3 * H);
    f->mia1.h = take_f(a, B * H);
    f->mia1.x_in = take_f(a, B * H);
    f->mia1.lat = take_f(a, B * C);
    f->h_t = take_f(a, B * H);
    f->cat_h = take_f(a, B * 3 * H);
    take_mlp(a, &f->attention, &s->attention, B);
    f->w = take_f(a, B * 3);
    for (int i = 0; i < 4; i++) f->fused[i] = take_f(a, B * H);
    for (size_t q = 0; q < K; q++) take_mlp(a, &f->query[q], &s->query, B);
    f->Q = take_f(a, B * K * H);
    f->mia2.cat = take_f(a, B * K * 3 * C);
    f->mia2.h = take_f(a, B * K * C);
    f->mia2.x_in = take_f(a, B * K * C);
    f->mia2.lat = take_f(a, B * K * R);
    f->C_t = take_f(a, B * K * C);
    f->Wsum = take_f(a, B * K * C);
    take_mlp(a, &f->cross_attention, &s->cross_attention, B);
    f->beta = take_f(a, B * K);
    f->z = take_f(a, B * C);
    f->pred = take_f(a, B);
    f->r_hidden = take_f(a, B * R);
    f->r = take_f(a, B * R);

    /* Frame gradients (own modalities only), zeroed lazily (d_frames_dirty). */
    for (int m = 0; m < 3; m++)
        f->d_frames[m] = (f->shared >> m) & 1u ? NULL : take_f(a, B * (size_t)f->T[m] * H);

    /* Activation gradients: one region, zeroed with one memset per backward. */
    a->used = (a->used + SD_ALIGN - 1) / SD_ALIGN * SD_ALIGN;
    size_t grad_start = a->used;
    for (int m = 0; m < 3; m++) {
        f->d_pooled[m] = take_f(a, B * H);
        f->d_h[m] = take_f(a, B * H);
        f->d_Y[m] = take_f(a, B * K * H);
        f->d_C[m] = take_f(a, B * K * C);
    }
    f->d_h_t = take_f(a, B * H);
    f->d_cat_h = take_f(a, B * 3 * H);
    f->d_att_out = take_f(a, B * H);
    f->d_w = take_f(a, B * 3);
    for (int i = 0; i < 4; i++) f->d_fused[i] = take_f(a, B * H);
    for (size_t q = 0; q < K; q++) f->d_q[q] = take_f(a, B * H);
    f->d_Q = take_f(a, B * K * H);
    f->d_C_t = take_f(a, B * K * C);
    f->d_Wsum = take_f(a, B * K * C);
    f->d_catt_out = take_f(a, B * C);
    f->d_beta = take_f(a, B * K);
    f->d_z = take_f(a, B * C);
    f->d_r_hidden = take_f(a, B * R);
    f->d_pred = take_f(a, B);
    f->grad_area = a->base ? (real *)(a->base + grad_start) : NULL;
    f->grad_area_size = a->used - grad_start;
}

SD_R(sd_flow) *SD_R(sd_flow_new)(void) { return calloc(1, sizeof(SD_R(sd_flow))); }

real *SD_R(sd_flow_work)(SD_R(sd_flow) *f, int modality) {
    return (f->owner ? f->owner->work : f->work) + f->work_offset[modality];
}

/* Evaluation of a small batch (batch-1 latency) runs the three modalities' branches at the same
 * time, one per thread: its products are too small to split well, and each branch is a chain of
 * them. Never in training (dropout draws must come in a fixed order) nor for large batches
 * (their products are split over the threads instead). The results are the same either way. */
#define FLOW_CONCURRENT_MAX_ROWS 1024

static int flow_concurrent(const SD_R(sd_flow) *f) {
    if (f->training) return 0;
    for (int i = 0; i < 3; i++)
        if ((size_t)f->B * (size_t)f->T[i] > FLOW_CONCURRENT_MAX_ROWS) return 0;
    if (sd_pool_active()) return sd_pool_threads(sd_pool_current()) >= 2; /* the API's threads */
#ifdef _OPENMP
    return omp_get_max_threads() >= 2 && !omp_in_parallel();
#else
    return 0;
#endif
}

void SD_R(sd_flow_free)(SD_R(sd_flow) *f) {
    if (!f) return;
    sd_free(f->work);
    sd_free(f->mem);
    free(f);
}

static sd_status prepare(SD_R(sd_flow) *f, const SD_R(sd_model) *m, const sd_flow_input *in, sd_error *err) {
    f->B = in->B;
    for (int i = 0; i < 3; i++) f->T[i] = in->T[i];
    f->H = m->cfg.hidden;
    f->C = f->H / 2;
    f->R = f->H / 4;
    sd_mlp_shapes s = SD_R(sd_flow_mlp_shapes)(m);
    arena a = {NULL, 0};
    layout(f, &a, &s);
    if (a.used > f->mem_size) {
        sd_free(f->mem);
        f->mem = sd_alloc(a.used);
        f->mem_size = f->mem ? a.used : 0;
        if (!f->mem) return sd_fail(err, SD_E_NOMEM, "out of memory: flow workspace of %zu bytes", a.used);
    }
    /* The layers' scratch: the largest that any modality's pooling or cross-attention, or any
     * MLP or MIA backward needs, held by the owner when frames are borrowed (flows run one after the other); one region
     * per modality when the modalities run at the same time (flow_concurrent). */
    f->concurrent = flow_concurrent(f);
    const size_t nB = (size_t)f->B, nBK = nB * SD_QUERY_VIEWS;
    const size_t mlp_mia[7] = {
        SD_R(sd_mlp_work_len)(&s.modality, nB),        SD_R(sd_mlp_work_len)(&s.attention, nB),
        SD_R(sd_mlp_work_len)(&s.query, nB),           SD_R(sd_mlp_work_len)(&s.cross, nBK),
        SD_R(sd_mlp_work_len)(&s.cross_attention, nB), SD_R(sd_mia_work_len)(nB, f->H, f->C),
        SD_R(sd_mia_work_len)(nBK, f->C, f->R)};
    size_t back_need = 0; /* the MLP and MIA backwards (one at a time, modality 0's region) */
    for (int k = 0; k < 7; k++)
        if (mlp_mia[k] > back_need) back_need = mlp_mia[k];
    if (back_need == SIZE_MAX)
        return sd_fail(err, SD_E_NOMEM, "out of memory: MLP scratch size overflows");
    size_t work_len = 0;
    for (int i = 0; i < 3; i++) {
        size_t need = SD_R(sd_attn_pool_work_len)(f->B, f->T[i], f->H);
        const size_t cross = SD_R(sd_cross_attn_work_len)(f->B, f->T[i], SD_QUERY_VIEWS, f->H);
        const size_t frames = sd_frames_work_len(in->dtype[i], in->mean[i] != NULL, (size_t)f->B * (size_t)f->T[i], m->cfg.dim[i]);
        if (cross > need) need = cross;
        if (frames > need) need = frames; /* the frame projection converts its input here first */
        if (back_need > need) need = back_need;
        need = (need + 15) / 16 * 16; /* regions start on 64-byte boundaries */
        f->work_offset[i] = f->concurrent ? work_len : 0;
        if (f->concurrent) work_len += need;
        else if (need > work_len) work_len = need;
    }
    SD_R(sd_flow) *holder = f->owner ? f->owner : f;
    if (work_len > holder->work_len) {
        sd_free(holder->work);
        holder->work = sd_alloc(work_len * sizeof(real));
        holder->work_len = holder->work ? work_len : 0;
        if (!holder->work)
            return sd_fail(err, SD_E_NOMEM, "out of memory: layer scratch of %zu floats", work_len);
    }
    arena real_arena = {f->mem, 0};
    layout(f, &real_arena, &s);
    for (int i = 0; i < 3; i++)
        if ((f->shared >> i) & 1u) {
            f->frames[i] = f->owner->frames[i];
            f->d_frames[i] = f->owner->d_frames[i];
        }
    f->d_frames_dirty = 1;
    return SD_OK;
}

static void mlp_run(SD_R(sd_mlp_buf) *buf, const SD_R(sd_mlp_ptrs) *p, const mlp_shape *s, const real *x,
                    size_t N, real drop, sd_rng *rng) {
    const real *W[2] = {p->l[0].W, p->l[1].W};
    const real *b[2] = {p->l[0].b, p->l[1].b};
    SD_R(sd_mlp_forward)(buf->out, buf->relu, buf->drop, buf->mask, x, W, b, s, N, drop, rng);
}

SD_R(mia_weights) SD_R(sd_flow_mia_weights)(const SD_R(sd_mia_ptrs) *p) {
    SD_R(mia_weights) w = {p->transition0.W, p->transition0.b, p->transition2.W, p->transition2.b,
                     p->encoder.W,     p->encoder.b,     p->decoder.W,     p->decoder.b};
    return w;
}

static sd_status flow_forward(SD_R(sd_flow) *f, const SD_R(sd_model) *m, const sd_flow_input *in, int missing,
                              int training, sd_rng *rng, sd_error *err);

/* What the last forward shared or borrowed, forgotten before the next one (model: set again when
 * it succeeds). */
static void forget_sharing(SD_R(sd_flow) *f) {
    f->owner = NULL;
    f->shared = f->borrowed = 0;
    f->model = NULL;
}

sd_status SD_R(sd_flow_forward)(SD_R(sd_flow) *f, const SD_R(sd_model) *m, const sd_flow_input *in, int missing,
                          int training, sd_rng *rng, sd_error *err) {
    forget_sharing(f);
    return flow_forward(f, m, in, missing, training, rng, err);
}

sd_status SD_R(sd_flow_forward_shared)(SD_R(sd_flow) *f, const SD_R(sd_model) *m, const sd_flow_input *in,
                                 int missing, int training, sd_rng *rng, SD_R(sd_flow) *owner,
                                 unsigned share_mask, sd_error *err) {
    forget_sharing(f);
    if (!owner || owner == f || owner->shared)
        return sd_fail(err, SD_E_ARG, "frame sharing needs another flow that owns its frames");
    for (int i = 0; i < 3; i++) {
        if (!((share_mask >> i) & 1u)) continue;
        int same = owner->B == in->B && owner->in.x[i] == in->x[i] && owner->in.dtype[i] == in->dtype[i] &&
                   owner->in.mean[i] == in->mean[i] && owner->in.inv[i] == in->inv[i] &&
                   owner->T[i] == in->T[i] && owner->H == m->cfg.hidden;
        for (int b = 0; same && b < in->B; b++) same = owner->in.len[i][b] == in->len[i][b];
        if (!same)
            return sd_fail(err, SD_E_ARG, "modality %d: input differs from the owner flow's, cannot share frames", i);
    }
    f->owner = owner;
    f->shared = share_mask & 7u;
    /* Without dropout the owner's pooling and modality MLP of a shared modality are this flow's. */
    if ((share_mask & SD_FLOW_SHARE_BRANCHES) && !training && !owner->training && owner->model == (const void *)m)
        f->borrowed = f->shared;
    return flow_forward(f, m, in, missing, training, rng, err);
}

/* The per-modality steps of modality i: stage 0 = steps 1-3 (frame projection, attention
 * pooling, modality MLP), stage 1 = steps 7-8 (cross-attention, cross MLP). */
static void modality_stage(SD_R(sd_flow) *f, const SD_R(sd_model) *m, const sd_mlp_shapes *s, int stage, int i,
                           real p_att, real p_mlp, sd_rng *rng) {
    const SD_R(sd_model_ptrs) *p = &m->p;
    const sd_flow_input *in = &f->in;
    const int B = f->B, H = f->H, K = SD_QUERY_VIEWS;
    const int *len = m->cfg.mask ? in->len[i] : NULL;
    if (stage == 0 && ((f->borrowed >> i) & 1u)) { /* steps 2-3 as the owner ran them (evaluation) */
        memcpy(f->pooled[i], f->owner->pooled[i], sizeof(real) * (size_t)B * (size_t)H);
        memcpy(f->modality[i].out, f->owner->modality[i].out, sizeof(real) * (size_t)B * (size_t)H);
    } else if (stage == 0) {
        const size_t rows = (size_t)B * (size_t)in->T[i];
        sd_frames_std std;
        if (!((f->shared >> i) & 1u)) /* else the frames are borrowed from the owner flow */
            SD_R(sd_frames_forward)(f->frames[i], in->x[i], in->dtype[i], sd_flow_frames_std(in, i, &std),
                                    p->frame[i].W, f->training ? NULL : m->frame_wt[i], /* inference layout, see model.h */
                                    p->frame[i].b, rows, m->cfg.dim[i], H, SD_R(sd_flow_work)(f, i));
        f->pool[i].work = SD_R(sd_flow_work)(f, i);
        SD_R(sd_attn_pool_forward)(f->pooled[i], &f->pool[i], f->frames[i], len, p->pool[i].context,
                          p->pool[i].proj.W, p->pool[i].proj.b, B, in->T[i], H, p_att, rng);
        mlp_run(&f->modality[i], &p->modality_mlp[i], &s->modality, f->pooled[i], (size_t)B, p_mlp, rng);
    } else {
        f->cross[i].work = SD_R(sd_flow_work)(f, i);
        SD_R(sd_cross_attn_forward)(f->Y[i], &f->cross[i], f->frames[i], len, f->Q, p->cross[i].query.W,
                           p->cross[i].query.b, p->cross[i].input.W, p->cross[i].input.b, B,
                           in->T[i], K, H, p_att, rng);
        mlp_run(&f->cross_mlp[i], &p->cross_mlp[i], &s->cross, f->Y[i], (size_t)B * K, p_mlp, rng);
    }
}

typedef struct {
    SD_R(sd_flow) *f;
    const SD_R(sd_model) *m;
    const sd_mlp_shapes *s;
    int stage;
    real p_att, p_mlp;
    sd_rng *rng;
} stage_job;

static void stage_task(void *arg, int i, int worker) {
    (void)worker;
    const stage_job *j = arg;
    modality_stage(j->f, j->m, j->s, j->stage, i, j->p_att, j->p_mlp, j->rng);
}

/* A stage for the three modalities: one after the other (their products split over the
 * threads, dropout draws in modality order), or at the same time, one branch per thread
 * (f->concurrent: evaluation, no draws; every product single-threaded), on the OpenMP threads or
 * the public API's pool (core/pool.h). */
static void modality_steps(SD_R(sd_flow) *f, const SD_R(sd_model) *m, const sd_mlp_shapes *s, int stage,
                           real p_att, real p_mlp, sd_rng *rng) {
    if (!f->concurrent) {
        for (int i = 0; i < 3; i++) modality_stage(f, m, s, stage, i, p_att, p_mlp, rng);
        return;
    }
    const int blas_prev = sd_nn_blas_single_begin();
    if (sd_pool_active()) {
        stage_job j = {f, m, s, stage, p_att, p_mlp, rng};
        sd_pool_run(sd_pool_current(), 3, stage_task, &j);
    } else {
        SD_OMP(omp parallel for schedule(dynamic, 1))
        for (int i = 0; i < 3; i++) modality_stage(f, m, s, stage, i, p_att, p_mlp, rng);
    }
    sd_nn_blas_single_end(blas_prev);
}

static sd_status flow_forward(SD_R(sd_flow) *f, const SD_R(sd_model) *m, const sd_flow_input *in, int missing,
                              int training, sd_rng *rng, sd_error *err) {
    if (in->B <= 0) return sd_fail(err, SD_E_ARG, "empty batch");
    sd_threads_clamp(); /* (a caller's OMP_NUM_THREADS far above the cores would crash libgomp) */
    for (int i = 0; i < 3; i++) {
        if (in->T[i] <= 0) return sd_fail(err, SD_E_ARG, "modality %d has no frames", i);
        if (!sd_frames_dtype_ok(in->dtype[i]))
            return sd_fail(err, SD_E_ARG, "modality %d: inputs of type %s (float32, float16 or bfloat16 are taken)",
                           i, sd_dtype_name(in->dtype[i]));
        for (int b = 0; b < in->B; b++)
            if (in->len[i][b] < 1 || in->len[i][b] > in->T[i])
                return sd_fail(err, SD_E_ARG, "modality %d sample %d: length %d outside [1, %d]",
                               i, b, in->len[i][b], in->T[i]);
    }
    f->training = training; /* the layout depends on it */
    sd_status st = prepare(f, m, in, err);
    if (st) return st;
    f->in = *in;
    f->missing = missing;
    f->mia = missing && m->cfg.mia;
    const SD_R(sd_model_ptrs) *p = &m->p;
    const sd_mlp_shapes s = SD_R(sd_flow_mlp_shapes)(m);
    const int B = f->B, H = f->H, C = f->C, R = f->R, K = SD_QUERY_VIEWS;
    const real p_mlp = training ? m->cfg.p_mlp : 0.0f;
    const real p_att = training ? m->cfg.p_att : 0.0f;

    /* Steps 1-3: frame projection, attention pooling, modality MLPs. */
    modality_steps(f, m, &s, 0, p_att, p_mlp, rng);
    /* Step 3b: MIA #1 refines the text slot from all three. */
    const real *h[3] = {f->modality[0].out, f->modality[1].out, f->modality[2].out};
    if (f->mia) {
        SD_R(mia_weights) w1 = SD_R(sd_flow_mia_weights)(&p->mia1);
        SD_R(sd_mia_forward)(f->h_t, &f->mia1, h[0], h[1], h[2], &w1, (size_t)B, H, C);
    } else {
        memcpy(f->h_t, h[1], sizeof(real) * (size_t)B * (size_t)H);
    }
    h[1] = f->h_t;

    /* Step 4: raw modality weights w = fc_att(attention_mlp([h_a, h_t, h_v])). */
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 3; i++)
            memcpy(f->cat_h + ((size_t)b * 3 + (size_t)i) * (size_t)H, h[i] + (size_t)b * (size_t)H,
                   sizeof(real) * (size_t)H);
    mlp_run(&f->attention, &p->attention_mlp, &s.attention, f->cat_h, (size_t)B, p_mlp, rng);
    SD_R(sd_linear_forward)(f->w, f->attention.out, p->fc_att.W, p->fc_att.b, (size_t)B, H, 3);

    /* Step 5: fused vectors f (a,t,v), f_at, f_tv, f_av (bit m = modality m). */
    static const unsigned fuse_use[4] = {0x7, 0x3, 0x6, 0x5};
    for (int i = 0; i < 4; i++) SD_R(sd_modality_sum_forward)(f->fused[i], f->w, h, 3, fuse_use[i], B, 1, H);

    /* Step 6: seven query views, stacked Q[b,k,:] in the order f, at, tv, av, a, t, v. */
    const real *query_in[SD_QUERY_VIEWS] = {f->fused[0], f->fused[1], f->fused[2], f->fused[3],
                                             h[0],        h[1],        h[2]};
    for (int q = 0; q < K; q++) {
        mlp_run(&f->query[q], &p->query_mlp[q], &s.query, query_in[q], (size_t)B, p_mlp, rng);
        for (int b = 0; b < B; b++)
            memcpy(f->Q + ((size_t)b * K + (size_t)q) * (size_t)H,
                   f->query[q].out + (size_t)b * (size_t)H, sizeof(real) * (size_t)H);
    }

    /* Steps 7-8: UMCA cross-attention per modality, then the cross MLPs per query row. */
    modality_steps(f, m, &s, 1, p_att, p_mlp, rng);
    /* Step 8b: MIA #2 on the text cross features, per query row. */
    const real *Cm[3] = {f->cross_mlp[0].out, f->cross_mlp[1].out, f->cross_mlp[2].out};
    if (f->mia) {
        SD_R(mia_weights) w2 = SD_R(sd_flow_mia_weights)(&p->mia2);
        SD_R(sd_mia_forward)(f->C_t, &f->mia2, Cm[0], Cm[1], Cm[2], &w2, (size_t)B * K, C, R);
    } else {
        memcpy(f->C_t, Cm[1], sizeof(real) * (size_t)B * K * (size_t)C);
    }
    Cm[1] = f->C_t;

    /* Steps 9-11: W = sum_m w_m C_m; beta = cross_fc_att(cross_attention_mlp(W)); z = sum_k beta_k W_k. */
    SD_R(sd_modality_sum_forward)(f->Wsum, f->w, Cm, 3, 0x7, B, K, C);
    mlp_run(&f->cross_attention, &p->cross_attention_mlp, &s.cross_attention, f->Wsum, (size_t)B,
            p_mlp, rng);
    SD_R(sd_linear_forward)(f->beta, f->cross_attention.out, p->cross_fc_att.W, p->cross_fc_att.b,
                   (size_t)B, C, K);
    SD_R(sd_row_sum_forward)(f->z, f->beta, f->Wsum, B, K, C);

    /* Steps 12-13: prediction and the RnC head. */
    SD_R(sd_linear_forward)(f->pred, f->z, p->fc_out_v.W, p->fc_out_v.b, (size_t)B, C, 1);
    SD_R(sd_linear_forward)(f->r_hidden, f->z, p->rnc0.W, p->rnc0.b, (size_t)B, C, R);
    SD_R(sd_relu_forward)(f->r_hidden, f->r_hidden, (size_t)B * (size_t)R);
    SD_R(sd_linear_forward)(f->r, f->r_hidden, p->rnc2.W, p->rnc2.b, (size_t)B, R, R);
    f->model = m;
    return SD_OK;
}
