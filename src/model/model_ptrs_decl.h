/* Named views into one flat buffer of the network's parameters (or gradients), in the reference
 * module's terms; included by model.h once per precision (SD_T, SD_FN): float for the product,
 * double (_f64) for the finite-difference check of the flows. No guard on purpose. */

typedef struct {
    SD_T *W, *b;
} SD_FN(sd_linear_ptrs);
typedef struct {
    int n;
    SD_FN(sd_linear_ptrs) l[2];
} SD_FN(sd_mlp_ptrs);
typedef struct {
    SD_T *context; /* attention_context_vector [1,H] */
    SD_FN(sd_linear_ptrs) proj;
} SD_FN(sd_pool_ptrs);
typedef struct {
    SD_FN(sd_linear_ptrs) query, input;
} SD_FN(sd_cross_ptrs);
typedef struct {
    SD_FN(sd_linear_ptrs) transition0, transition2, encoder, decoder;
} SD_FN(sd_mia_ptrs);

typedef struct {
    SD_FN(sd_linear_ptrs) frame[3];       /* frame_dim_reshape_{0,1,2}: [H, D_m] */
    SD_FN(sd_mia_ptrs) mia1;              /* missing_text_imagination_mlp (D = H, L = C) */
    SD_FN(sd_mia_ptrs) mia2;              /* missing_cross_text_query_imagination_mlp (D = C, L = R) */
    SD_FN(sd_pool_ptrs) pool[3];          /* fra2utt_{0,1,2} */
    SD_FN(sd_mlp_ptrs) modality_mlp[3];   /* audio_mlp, text_mlp, video_mlp: MLP(H, "H,H") */
    SD_FN(sd_mlp_ptrs) attention_mlp;     /* MLP(3H, "H,H") */
    SD_FN(sd_linear_ptrs) fc_att;         /* [3, H] */
    SD_FN(sd_mlp_ptrs) query_mlp[SD_QUERY_VIEWS]; /* cross_{fused,at,tv,av,audio,text,video}_query_mlp */
    SD_FN(sd_cross_ptrs) cross[3];        /* cross_att_fra2utt_{0,1,2} */
    SD_FN(sd_mlp_ptrs) cross_mlp[3];      /* cross_{audio,text,video}_mlp: MLP(H, "H,C") */
    SD_FN(sd_mlp_ptrs) cross_attention_mlp; /* MLP(7C, "H,C") */
    SD_FN(sd_linear_ptrs) cross_fc_att;   /* [7, C] */
    SD_FN(sd_linear_ptrs) fc_out_v;       /* [1, C] */
    SD_FN(sd_linear_ptrs) rnc0, rnc2;     /* orgin_linear_change.0 [R,C], .2 [R,R] */
    /* registered by the reference module but never used: fc_out_e, fc_out_ev, prelu, layer_normali */
} SD_FN(sd_model_ptrs);
