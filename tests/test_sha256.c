/* SHA-256 against the FIPS 180-4 example vectors. */
#include <string.h>
#include "rn_test.h"
#include "sha256.h"

static void check_hash(const char *msg, size_t repeat, const char *want)
{
    rn_sha256 s;
    rn_sha256_init(&s);
    for (size_t i = 0; i < repeat; i++) rn_sha256_update(&s, msg, strlen(msg));
    char hex[65];
    rn_sha256_hex(&s, hex);
    CHECK(strcmp(hex, want) == 0);
}

int main(void)
{
    check_hash("", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_hash("abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
               "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a', fed in uneven pieces through the 64-byte block buffer */
    check_hash("aaaaaaaaaaaaaaaaaaaaaaaaa", 40000,
               "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    return rn_test_report("test_sha256");
}
