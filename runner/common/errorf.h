/* The one way an error line is written: into the caller's buffer, truncated to fit. */
#ifndef RN_ERRORF_H
#define RN_ERRORF_H

#include <stddef.h>

/* snprintf into err (nothing when err is NULL or errlen is 0); returns -1, so a failing function
 * can `return rn_errorf(err, errlen, "...", ...)`. */
int rn_errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
