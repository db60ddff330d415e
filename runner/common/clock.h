/* Wall-clock time for the run's timings. */
#ifndef RN_CLOCK_H
#define RN_CLOCK_H

/* Seconds on the monotonic clock (differences only). */
double rn_now_s(void);

#endif
