/* fastai's LR-finder suggestions on curves whose answers are worked out by hand (fastai's code is
 * transcribed in tests/e2e/fastai_lr_find.py, which the e2e test compares whole runs against). */
#include <math.h>
#include "lr_find.h"
#include "rn_test.h"

#define N 30

int main(void)
{
    double lr[N], loss[N], at_lr, at_loss;
    for (int i = 0; i < N; i++) {
        lr[i] = pow(10, i / 10.0); /* evenly spaced in log lr */
        loss[i] = (i - 15.0) * (i - 15.0);
    }
    /* fastai trims to [steps / 10, n - 5) = [3, 25). The longest strictly falling run ends at
     * i = 15 (13 points from i = 3), so max_end = 12, max_start = 12 - 13 = -1 and the valley is
     * at -1 + int(13/3) + int(13/6) = 5, i.e. i = 8. */
    CHECK_NEAR(rn_lr_suggest(RN_SUGGEST_VALLEY, lr, loss, N, N, &at_lr, &at_loss), lr[8], 0, 1e-12);
    CHECK(at_loss == loss[8]);
    /* d loss / d log lr is 2i - 29 per step: steepest at the first point, i = 3. */
    CHECK_NEAR(rn_lr_suggest(RN_SUGGEST_STEEP, lr, loss, N, N, &at_lr, &at_loss), lr[3], 0, 1e-12);
    /* The lowest loss at i = 15: a tenth of its lr, the point marked at i = 15. */
    CHECK_NEAR(rn_lr_suggest(RN_SUGGEST_MINIMUM, lr, loss, N, N, &at_lr, &at_loss), lr[15] / 10,
               0, 1e-12);
    CHECK(at_lr == lr[15] && at_loss == 0);

    /* A NaN at i = 10 cuts the curve to [3, 10): all falling, 7 points, max_end 6, max_start -1,
     * valley at -1 + 2 + 1 = 2 (i = 5); the minimum is the last point, i = 9. */
    loss[10] = NAN;
    CHECK_NEAR(rn_lr_suggest(RN_SUGGEST_VALLEY, lr, loss, N, N, &at_lr, &at_loss), lr[5], 0, 1e-12);
    CHECK_NEAR(rn_lr_suggest(RN_SUGGEST_MINIMUM, lr, loss, N, N, &at_lr, &at_loss), lr[9] / 10,
               0, 1e-12);
    /* A rising curve: no falling run, fastai's (0, 0) start, valley at the first point kept. */
    for (int i = 0; i < N; i++) loss[i] = i;
    CHECK_NEAR(rn_lr_suggest(RN_SUGGEST_VALLEY, lr, loss, N, N, &at_lr, &at_loss), lr[3], 0, 1e-12);
    /* Too short after the trim: no suggestion. */
    CHECK(isnan(rn_lr_suggest(RN_SUGGEST_STEEP, lr, loss, 7, N, &at_lr, &at_loss)));
    CHECK(isnan(at_lr));
    return rn_test_report("test_lr_suggest");
}
