/* Causal self-attention with rotary embeddings for short sequences, forward and backward.
 *
 * Built and loaded by overshadow_lab/lab/short_attention.py, which explains why it exists; the
 * tests compare it with torch's scaled_dot_product_attention. Plain C, no torch headers: it
 * compiles in about a second and is called through ctypes with raw float32 pointers.
 *
 * Layout (GPT-NeoX): qkv is [N, T, H, 3D], each head's query, key and value side by side; the
 * output is [N, T, H, D]. The first `rot` dimensions of each query and key are rotated by the
 * tables cos and sin, [T, rot] each (rotate_half convention: the first half of the rotary
 * dimensions pairs with the second). probs, [N, H, T, T], keeps the attention probabilities
 * for the backward (zeros above the diagonal).
 *
 * One (sequence, head) at a time, in local arrays that stay in the first-level cache. Every
 * (sequence, head) is independent, so the result does not depend on how the work is split.
 */
#include <math.h>
#include <string.h>

#define MAX_T 32
#define MAX_D 128

int short_attention_max_length(void) { return MAX_T; }
int short_attention_max_head(void) { return MAX_D; }

/* out = x * cos + rotate_half(x) * sin on the first rot dimensions, x elsewhere */
static void rotate(const float *x, float *out, const float *c, const float *s, int d, int rot)
{
    int half = rot / 2;
    for (int i = 0; i < half; i++)
        out[i] = x[i] * c[i] + (-x[i + half]) * s[i];
    for (int i = half; i < rot; i++)
        out[i] = x[i] * c[i] + x[i - half] * s[i];
    for (int i = rot; i < d; i++)
        out[i] = x[i];
}

/* the transpose of rotate: the gradient with respect to x of rotate(x), given dy */
static void unrotate(const float *dy, float *dx, const float *c, const float *s, int d, int rot)
{
    int half = rot / 2;
    for (int i = 0; i < half; i++)
        dx[i] = dy[i] * c[i] + dy[i + half] * s[i + half];
    for (int i = half; i < rot; i++)
        dx[i] = dy[i] * c[i] + (-dy[i - half]) * s[i - half];
    for (int i = rot; i < d; i++)
        dx[i] = dy[i];
}

static float dot(const float *a, const float *b, int d)
{
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < d; i++)
        acc += a[i] * b[i];
    return acc;
}

/* asks for `bytes` bytes from `p` to be brought into the cache (for reading or writing)
 * while the current sequence is computed: in the backward, the sequence's inputs were written
 * long before and have left the cache, and waiting for each line in turn took half the time */
static void prefetch(const void *p, long bytes, int write)
{
    const char *c = (const char *)p;
    for (long i = 0; i < bytes; i += 64) {
        if (write)
            __builtin_prefetch(c + i, 1, 3);
        else
            __builtin_prefetch(c + i, 0, 3);
    }
}

/* rotated queries and keys of one (sequence, head) into q and k, [T, D] each */
static void load(const float *head, long step, const float *cos, const float *sin, int t_len,
                 int d, int rot, float *q, float *k)
{
    for (int t = 0; t < t_len; t++) {
        rotate(head + t * step, q + t * d, cos + t * rot, sin + t * rot, d, rot);
        rotate(head + t * step + d, k + t * d, cos + t * rot, sin + t * rot, d, rot);
    }
}

void short_attention_forward(const float *qkv, const float *cos, const float *sin, float *out,
                             float *probs, long n, int t_len, int heads, int d, int rot,
                             float scale)
{
    const long step = (long)heads * 3 * d; /* from one position to the next in qkv */
    float q[MAX_T * MAX_D], k[MAX_T * MAX_D];
    for (long b = 0; b < n; b++) {
        for (int h = 0; h < heads; h++) {
            const float *head = qkv + b * t_len * step + (long)h * 3 * d;
            float *p = probs + (b * heads + h) * t_len * t_len;
            load(head, step, cos, sin, t_len, d, rot, q, k);
            for (int i = 0; i < t_len; i++) {
                float *row = p + i * t_len, top = -INFINITY, total = 0.0f;
                for (int j = 0; j <= i; j++) {
                    row[j] = dot(q + i * d, k + j * d, d) * scale;
                    if (row[j] > top)
                        top = row[j];
                }
                for (int j = 0; j <= i; j++) {
                    row[j] = expf(row[j] - top);
                    total += row[j];
                }
                for (int j = 0; j <= i; j++)
                    row[j] /= total;
                for (int j = i + 1; j < t_len; j++)
                    row[j] = 0.0f;
                float *o = out + (b * t_len + i) * (long)heads * d + (long)h * d;
                memset(o, 0, sizeof(float) * d);
                for (int j = 0; j <= i; j++) {
                    const float *v = head + j * step + 2 * d, pj = row[j];
#pragma omp simd
                    for (int c = 0; c < d; c++)
                        o[c] += pj * v[c];
                }
            }
        }
    }
}

void short_attention_backward(const float *qkv, const float *cos, const float *sin,
                              const float *probs, const float *grad_out, float *grad_qkv, long n,
                              int t_len, int heads, int d, int rot, float scale)
{
    const long step = (long)heads * 3 * d;
    float q[MAX_T * MAX_D], k[MAX_T * MAX_D];
    float dq[MAX_T * MAX_D], dk[MAX_T * MAX_D], dv[MAX_T * MAX_D], dp[MAX_T];
    const long row = t_len * step, out_row = (long)t_len * heads * d;
    for (long b = 0; b < n; b++) {
        if (b + 1 < n) { /* the next sequence's inputs, and the gradient it will write */
            prefetch(qkv + (b + 1) * row, sizeof(float) * row, 0);
            prefetch(grad_out + (b + 1) * out_row, sizeof(float) * out_row, 0);
            prefetch(probs + (b + 1) * heads * t_len * t_len,
                     sizeof(float) * heads * t_len * t_len, 0);
            prefetch(grad_qkv + (b + 1) * row, sizeof(float) * row, 1);
        }
        for (int h = 0; h < heads; h++) {
            const float *head = qkv + b * t_len * step + (long)h * 3 * d;
            const float *p = probs + (b * heads + h) * t_len * t_len;
            load(head, step, cos, sin, t_len, d, rot, q, k);
            memset(dq, 0, sizeof(float) * t_len * d);
            memset(dk, 0, sizeof(float) * t_len * d);
            memset(dv, 0, sizeof(float) * t_len * d);
            for (int i = 0; i < t_len; i++) {
                const float *go = grad_out + (b * t_len + i) * (long)heads * d + (long)h * d;
                const float *row = p + i * t_len;
                float mean = 0.0f; /* sum_j p_ij dp_ij, the softmax's backward */
                for (int j = 0; j <= i; j++) {
                    dp[j] = dot(go, head + j * step + 2 * d, d);
                    mean += row[j] * dp[j];
                }
                for (int j = 0; j <= i; j++) {
                    const float pj = row[j], ds = pj * (dp[j] - mean) * scale;
                    float *dqi = dq + i * d, *dkj = dk + j * d, *dvj = dv + j * d;
                    const float *qi = q + i * d, *kj = k + j * d;
#pragma omp simd
                    for (int c = 0; c < d; c++) {
                        dqi[c] += ds * kj[c];
                        dkj[c] += ds * qi[c];
                        dvj[c] += pj * go[c];
                    }
                }
            }
            float *gh = grad_qkv + b * t_len * step + (long)h * 3 * d;
            for (int t = 0; t < t_len; t++) {
                unrotate(dq + t * d, gh + t * step, cos + t * rot, sin + t * rot, d, rot);
                unrotate(dk + t * d, gh + t * step + d, cos + t * rot, sin + t * rot, d, rot);
                memcpy(gh + t * step + 2 * d, dv + t * d, sizeof(float) * d);
            }
        }
    }
}
