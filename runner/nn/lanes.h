/* Sums of floats in double over LANES interleaved partial sums (element j goes to sum
 * j mod LANES), added up in a fixed tree at the end: the order is in the source, so every build
 * and every vector width (vector_clones.h) gives the same bits, and the partial sums vectorize
 * where one running sum would wait on each add's latency. Batch norm's statistics and the
 * gradient norm (runner/core/grads.c) sum this way. */
#ifndef RN_LANES_H
#define RN_LANES_H

#include <stdint.h>

#define LANES 8

/* acc[j % LANES] += p[j], for a plane of hw values. */
static inline void lanes_add(double acc[LANES], const float *p, int64_t hw)
{
    int64_t j = 0;
    for (; j + LANES <= hw; j += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += p[j + k];
    for (int k = 0; j < hw; j++, k++) acc[k] += p[j];
}

/* acc[j % LANES] += (p[j] - mean)^2. */
static inline void lanes_add_sq(double acc[LANES], const float *p, int64_t hw, double mean)
{
    int64_t j = 0;
    for (; j + LANES <= hw; j += LANES)
        for (int k = 0; k < LANES; k++) {
            double d = (double)p[j + k] - mean;
            acc[k] += d * d;
        }
    for (int k = 0; j < hw; j++, k++) {
        double d = (double)p[j] - mean;
        acc[k] += d * d;
    }
}

/* g[j % LANES] += q[j]; gx[j % LANES] += q[j] (p[j] - mean). */
static inline void lanes_add_dot(double g[LANES], double gx[LANES], const float *q,
                                 const float *p, int64_t hw, double mean)
{
    int64_t j = 0;
    for (; j + LANES <= hw; j += LANES)
        for (int k = 0; k < LANES; k++) {
            g[k] += q[j + k];
            gx[k] += q[j + k] * ((double)p[j + k] - mean);
        }
    for (int k = 0; j < hw; j++, k++) {
        g[k] += q[j];
        gx[k] += q[j] * ((double)p[j] - mean);
    }
}

static inline double lanes_total(const double acc[LANES])
{
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

#endif
