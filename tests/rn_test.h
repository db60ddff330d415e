/* A tiny test harness: CHECK and CHECK_NEAR count failures; main returns rn_test_report(). */
#ifndef RN_TEST_H
#define RN_TEST_H

#include <ftw.h>
#include <math.h>
#include <stdio.h>

static int rn_test_failures;
static int rn_test_checks;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        rn_test_checks++;                                                                 \
        if (!(cond)) {                                                                    \
            rn_test_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                                 \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_NEAR(a, b, atol, rtol)                                                      \
    do {                                                                                  \
        double a_ = (double)(a), b_ = (double)(b);                                        \
        rn_test_checks++;                                                                 \
        if (!(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_))) {                             \
            rn_test_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g\n", __FILE__, \
                    __LINE__, #a, a_, #b, b_);                                            \
        }                                                                                 \
    } while (0)

static inline int rn_test_remove_one(const char *path, const struct stat *st, int flag,
                                     struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes a directory a test made, with everything in it; says so on stderr if it cannot. */
static inline void rn_test_rmtree(const char *dir)
{
    if (nftw(dir, rn_test_remove_one, 8, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static inline int rn_test_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, rn_test_checks, rn_test_failures);
    return rn_test_failures ? 1 : 0;
}

#endif
