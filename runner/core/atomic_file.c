#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rn_atomic_open(rn_atomic_file *a, const char *path, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    size_t n = strlen(path) + 16;
    a->tmp_path = malloc(n);
    a->final_path = strdup(path);
    if (!a->tmp_path || !a->final_path) {
        snprintf(err, errlen, "%s: out of memory", path);
        rn_atomic_abort(a);
        return -1;
    }
    snprintf(a->tmp_path, n, "%s.tmp%ld", path, (long)getpid());
    a->f = fopen(a->tmp_path, "wb");
    if (!a->f) {
        snprintf(err, errlen, "%s: cannot write: %s", a->tmp_path, strerror(errno));
        rn_atomic_abort(a);
        return -1;
    }
    return 0;
}

static void release(rn_atomic_file *a)
{
    free(a->tmp_path);
    free(a->final_path);
    memset(a, 0, sizeof *a);
}

int rn_atomic_commit(rn_atomic_file *a, char *err, size_t errlen)
{
    int bad = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    int saved = errno;
    if (fclose(a->f) != 0) bad = 1;
    a->f = NULL;
    if (bad || rename(a->tmp_path, a->final_path) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", a->final_path,
                 strerror(bad ? saved : errno));
        unlink(a->tmp_path);
        release(a);
        return -1;
    }
    /* Make the rename itself durable. */
    char *dir = strdup(a->final_path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) {
        *slash = 0;
        int fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    free(dir);
    release(a);
    return 0;
}

void rn_atomic_abort(rn_atomic_file *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp_path) unlink(a->tmp_path);
    release(a);
}

int rn_atomic_write(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    rn_atomic_file a;
    if (rn_atomic_open(&a, path, err, errlen)) return -1;
    if (fwrite(data, 1, len, a.f) != len) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        rn_atomic_abort(&a);
        return -1;
    }
    return rn_atomic_commit(&a, err, errlen);
}
