/* Files that appear whole or not at all: written to a temporary name in the same directory,
 * fsynced, then renamed over the final name. */
#ifndef RN_ATOMIC_FILE_H
#define RN_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

typedef struct rn_atomic_file {
    FILE *f;          /* write here */
    char *tmp_path;
    char *final_path;
} rn_atomic_file;

int rn_atomic_open(rn_atomic_file *a, const char *path, char *err, size_t errlen);
/* Flushes, fsyncs and renames; on any failure removes the temporary file. */
int rn_atomic_commit(rn_atomic_file *a, char *err, size_t errlen);
/* Drops the temporary file (after an error). */
void rn_atomic_abort(rn_atomic_file *a);
/* Whole buffer in one go. */
int rn_atomic_write(const char *path, const void *data, size_t len, char *err, size_t errlen);

#endif
