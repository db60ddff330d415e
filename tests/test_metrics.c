/* The metrics table and its per-epoch history (what plateau schedules read). */
#include <math.h>
#include "metrics.h"
#include "rn_test.h"

int main(void)
{
    rn_metrics m = {0};
    double v, h[8];
    CHECK(rn_metrics_set(&m, "train.loss", 2.0) == 0 && rn_metrics_get(&m, "train.loss", &v) &&
          v == 2.0);
    CHECK(!rn_metrics_get(&m, "test.acc", &v));
    CHECK(rn_metrics_history(&m, "train.loss", h, 8) == 0); /* no epoch ended yet */
    CHECK(rn_metrics_end_epoch(&m) == 0);
    rn_metrics_set(&m, "train.loss", 1.5);
    rn_metrics_set(&m, "test.acc", 0.7); /* a metric that appears in epoch 1 */
    CHECK(rn_metrics_end_epoch(&m) == 0);
    rn_metrics_set(&m, "train.loss", 1.25);
    rn_metrics_set(&m, "test.acc", 0.8);
    CHECK(rn_metrics_end_epoch(&m) == 0);
    CHECK(rn_metrics_history(&m, "train.loss", h, 8) == 3);
    CHECK(h[0] == 2.0 && h[1] == 1.5 && h[2] == 1.25);
    CHECK(rn_metrics_history(&m, "test.acc", h, 8) == 3);
    CHECK(isnan(h[0]) && h[1] == 0.7 && h[2] == 0.8);
    CHECK(rn_metrics_history(&m, "test.acc", h, 2) == 3 && h[1] == 0.7); /* cap respected */
    CHECK(rn_metrics_history(&m, "nope", h, 8) == 0);
    for (int e = 0; e < 40; e++) { /* growth past the first capacity */
        rn_metrics_set(&m, "train.loss", e);
        CHECK(rn_metrics_end_epoch(&m) == 0);
    }
    double big[64];
    CHECK(rn_metrics_history(&m, "train.loss", big, 64) == 43 && big[42] == 39 && big[3] == 0);
    rn_metrics_clear_history(&m);
    CHECK(rn_metrics_history(&m, "train.loss", h, 8) == 0);
    CHECK(rn_metrics_get(&m, "train.loss", &v) && v == 39); /* latest values stay */
    rn_metrics_free(&m);
    return rn_test_report("test_metrics");
}
