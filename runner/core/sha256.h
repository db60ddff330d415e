/* SHA-256 (FIPS 180-4), for provenance hashes of recipes and plugin files. */
#ifndef RN_SHA256_H
#define RN_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct rn_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t used;
} rn_sha256;

void rn_sha256_init(rn_sha256 *s);
void rn_sha256_update(rn_sha256 *s, const void *data, size_t len);
/* Writes 64 lowercase hex digits and a NUL into hex[65]. */
void rn_sha256_hex(rn_sha256 *s, char hex[65]);
/* Hash of a whole file; returns 0, or -1 when it cannot be read. */
int rn_sha256_file(const char *path, char hex[65]);

#endif
