/* tensors: numel, shape strings and equality, 64-byte aligned zeroed storage. */
#include <string.h>

#include "rn_test.h"
#include "tensor.h"

int main(void)
{
    rn_shape s = rn_shape_make(4, (int64_t[]){2, 3, 4, 5});
    CHECK(rn_shape_numel(&s) == 120);
    char buf[64];
    CHECK(strcmp(rn_shape_str(&s, buf, sizeof buf), "2x3x4x5") == 0);
    char tiny[4];
    rn_shape_str(&s, tiny, sizeof tiny);
    CHECK(strlen(tiny) == 3);
    rn_shape t = rn_shape_make(3, (int64_t[]){2, 3, 4});
    CHECK(!rn_shape_equal(&s, &t));
    t = rn_shape_make(4, (int64_t[]){2, 3, 4, 5});
    CHECK(rn_shape_equal(&s, &t));
    rn_tensor x;
    CHECK(rn_tensor_alloc(&x, s) == 0);
    CHECK(((uintptr_t)x.data & 63) == 0);
    CHECK(!x.borrowed);
    int zero = 1;
    for (int i = 0; i < 120; i++) zero &= x.data[i] == 0.0f;
    CHECK(zero);
    CHECK(rn_tensor_numel(&x) == 120);
    rn_tensor_free(&x);
    CHECK(x.data == NULL);
    CHECK(rn_falloc(-1) == NULL);
    float *p = rn_falloc(0);
    CHECK(p != NULL);
    rn_ffree(p);
    return rn_test_report("test_tensor");
}
