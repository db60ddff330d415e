/* The safetensors writer: header length, JSON, padding and data, read back byte for byte. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rn_test.h"
#include "safetensors.h"

int main(void)
{
    char dir[] = "/tmp/rn-st-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    rn_tensor a = {0}, b = {0};
    int64_t da[2] = {2, 3}, db[1] = {1};
    CHECK(rn_tensor_alloc(&a, rn_shape_make(2, da)) == 0);
    CHECK(rn_tensor_alloc(&b, rn_shape_make(1, db)) == 0);
    for (int i = 0; i < 6; i++) a.data[i] = 0.5f * (float)i - 1.0f;
    b.data[0] = 3.25f;
    rn_param_ref refs[2] = {{.name = "fc.weight", .value = &a}, {.name = "fc.bias", .value = &b}};
    char path[64], err[256];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    const char *meta[] = {"format", "pt"};
    CHECK(rn_safetensors_write(path, refs, 2, meta, 1, err, sizeof err) == 0);

    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    unsigned char buf[1024];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)buf[i] << (8 * i);
    CHECK(hlen % 8 == 0);
    CHECK(n == 8 + hlen + 7 * sizeof(float));
    const char *want = "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                       "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[24,28]},"
                       "\"__metadata__\":{\"format\":\"pt\"}}";
    CHECK(hlen >= strlen(want) && memcmp(buf + 8, want, strlen(want)) == 0);
    for (size_t i = strlen(want); i < hlen; i++) CHECK(buf[8 + i] == ' ');
    float back[7];
    memcpy(back, buf + 8 + hlen, sizeof back);
    for (int i = 0; i < 6; i++) CHECK(back[i] == a.data[i]);
    CHECK(back[6] == 3.25f);

    /* A directory that does not exist: an error naming the path, no file left behind. */
    char bad[96];
    snprintf(bad, sizeof bad, "%s/nope/m.safetensors", dir);
    CHECK(rn_safetensors_write(bad, refs, 2, NULL, 0, err, sizeof err) != 0);
    CHECK(strstr(err, bad) != NULL);

    unlink(path);
    rmdir(dir);
    rn_tensor_free(&a);
    rn_tensor_free(&b);
    return rn_test_report("test_safetensors");
}
