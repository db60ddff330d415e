/* GEMM plans on oneDNN's matmul primitive (see cpu_matmul.h). */
#include "cpu_matmul.h"
#include "cpu_internal.h"
#include "../../kernels/amp_elem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rn_cpu_matmul {
    bool bf16, ta, tb, bias;
    int64_t m, n, k;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t a_mem, b_mem, bias_mem, c_mem;
    dnnl_memory_t scratch_mem; /* over the arena's scratchpad slot (cpu_internal.h), per call */
};

#define TRY(what, call)                                                                    \
    do {                                                                                   \
        if (rn_cpu_check((call), "matmul", what, err, errlen)) goto fail;                  \
    } while (0)

void rn_bf16_convert(uint16_t *dst, const float *src, int64_t n)
{
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] = rn_bf16_from_f32(src[i]);
}

/* A (rows, cols) operand of the product stored dense row-major, or transposed: its (r, c)
 * element is at c * rows + r. */
static dnnl_status_t operand_md(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, bool trans,
                                dnnl_data_type_t dt)
{
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {trans ? 1 : cols, trans ? rows : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

int rn_cpu_matmul_create(rn_cpu_matmul **out, bool bf16, bool trans_a, bool trans_b, int64_t m,
                         int64_t n, int64_t k, bool bias, char *err, size_t errlen)
{
    *out = NULL;
    if (m < 1 || n < 1 || k < 1) {
        snprintf(err, errlen, "oneDNN matmul: bad shape %lldx%lldx%lld", (long long)m,
                 (long long)n, (long long)k);
        return -1;
    }
    rn_cpu_matmul *g = calloc(1, sizeof *g);
    dnnl_primitive_attr_t attr = NULL;
    if (!g) {
        snprintf(err, errlen, "oneDNN matmul: out of memory");
        return -1;
    }
    const dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    *g = (rn_cpu_matmul){.bf16 = bf16, .ta = trans_a, .tb = trans_b, .bias = bias, .m = m, .n = n, .k = k};
    if (rn_cpu_engine(&g->eng, &g->strm, err, errlen)) goto fail;
    dnnl_memory_desc_t a_md, b_md, bias_md, c_md;
    dnnl_dims_t bias_dims = {1, n}, c_dims = {m, n};
    TRY("memory_desc_init", operand_md(&a_md, m, k, trans_a, dt));
    TRY("memory_desc_init", operand_md(&b_md, k, n, trans_b, dt));
    TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(&bias_md, 2, bias_dims, dnnl_f32,
                                                         dnnl_ab));
    TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(&c_md, 2, c_dims, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    TRY("matmul_desc_init", dnnl_matmul_desc_init(&md, &a_md, &b_md, bias ? &bias_md : NULL,
                                                  &c_md));
    TRY("primitive_attr_create", dnnl_primitive_attr_create(&attr));
    TRY("set_scratchpad_mode",
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    TRY("primitive_desc_create", dnnl_primitive_desc_create(&g->pd, &md, attr, g->eng, NULL));
    TRY("primitive_create", dnnl_primitive_create(&g->prim, g->pd));
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(g->pd, dnnl_query_scratchpad_md,
                                                                 0);
    size_t need = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (need) { /* the process-wide scratchpad the convolution plans use too */
        rn_cpu_arena_reserve(RN_ARENA_SCRATCH, need);
        TRY("memory_create", dnnl_memory_create(&g->scratch_mem, smd, g->eng, DNNL_MEMORY_NONE));
    }
    TRY("memory_create", dnnl_memory_create(&g->a_mem, &a_md, g->eng, DNNL_MEMORY_NONE));
    TRY("memory_create", dnnl_memory_create(&g->b_mem, &b_md, g->eng, DNNL_MEMORY_NONE));
    TRY("memory_create", dnnl_memory_create(&g->c_mem, &c_md, g->eng, DNNL_MEMORY_NONE));
    if (bias)
        TRY("memory_create", dnnl_memory_create(&g->bias_mem, &bias_md, g->eng,
                                                DNNL_MEMORY_NONE));
    dnnl_primitive_attr_destroy(attr);
    *out = g;
    return 0;
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    rn_cpu_matmul_destroy(g);
    return -1;
}

void rn_cpu_matmul_destroy(rn_cpu_matmul *g)
{
    if (!g) return;
    dnnl_memory_t mems[] = {g->a_mem, g->b_mem, g->bias_mem, g->c_mem, g->scratch_mem};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    if (g->prim) dnnl_primitive_destroy(g->prim);
    if (g->pd) dnnl_primitive_desc_destroy(g->pd);
    free(g);
}

bool rn_cpu_matmul_matches(const rn_cpu_matmul *g, bool bf16, bool trans_a, bool trans_b,
                           int64_t m, int64_t n, int64_t k, bool bias)
{
    return g && g->bf16 == bf16 && g->ta == trans_a && g->tb == trans_b && g->m == m && g->n == n && g->k == k &&
           g->bias == bias;
}

int rn_cpu_matmul_run(rn_cpu_matmul *g, const void *a, const void *b, const float *bias,
                      float *c, char *err, size_t errlen)
{
    dnnl_memory_set_data_handle(g->a_mem, (void *)a);
    dnnl_memory_set_data_handle(g->b_mem, (void *)b);
    dnnl_memory_set_data_handle(g->c_mem, c);
    dnnl_exec_arg_t args[5];
    int na = 0;
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, g->a_mem};
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, g->b_mem};
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DST, g->c_mem};
    if (g->bias) {
        dnnl_memory_set_data_handle(g->bias_mem, (void *)bias);
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, g->bias_mem};
    }
    if (g->scratch_mem) {
        void *buf = rn_cpu_arena(RN_ARENA_SCRATCH);
        if (!buf) {
            snprintf(err, errlen, "oneDNN matmul: out of memory for its scratchpad");
            return -1;
        }
        dnnl_memory_set_data_handle(g->scratch_mem, buf);
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, g->scratch_mem};
    }
    TRY("execute", dnnl_primitive_execute(g->prim, g->strm, na, args));
    return 0;
fail:
    return -1;
}
