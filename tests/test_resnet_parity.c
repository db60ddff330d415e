/* Whole networks of the model zoo (recipes/lib/models.lua) against PyTorch 1.13 / torchvision
 * 0.14, from tests/fixtures/resnet (written by scripts/make_resnet_fixtures.py; PyTorch is not
 * needed here):
 *   resnet18{classes = 1000}: torchvision's state-dict names and shapes, 11,689,512 parameters,
 *     eval-mode logits of 2 images 3x64x64;
 *   resnet8{in_channels = 1, classes = 10}: train-mode logits, cross-entropy, every parameter
 *     gradient and the running stats after the forward, 4 images 1x28x28.
 * No weights are committed: both sides compute every parameter and buffer from the formula below
 * (the script's docstring has the same one). The weights reach the model only by name: they are
 * written with torchvision's names and shapes (the fixture's key list) to a safetensors file,
 * which rn_safetensors_load_params loads with strict = 1 over the model's own random init.
 * The references are float64 runs of the same float32 weights and images.
 * Tolerance, per tensor: |ours - ref| <= TOL (max|ref| + |ref|), TOL = 1e-4. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture_io.h"
#include "model_from_lua.h"
#include "safetensors.h"

#define TOL 1e-4

static char dir[] = "/tmp/rn-resnet-XXXXXX";

/* --- the formula --------------------------------------------------------------------------
 * key(name) = FNV-1a 64 of the name's bytes; for element i (row-major) of the tensor,
 * z = splitmix64's finaliser of key(name) + (i + 1) * 0x9e3779b97f4a7c15 and
 * s_i = (z >> 11) * 2^-52 - 1 (exact in double, in [-1, 1)). Then, rounded to float:
 * "*.weight" ndim >= 2: s_i / sqrt(numel / shape[0]); "*.weight" ndim 1 (batch norm):
 * 1 + 0.1 s_i; "*.bias", "*.running_mean": 0.1 s_i; "*.running_var": 1 + 0.5 |s_i|.
 * The images are s_i of the name "input" over the whole batch. */

static uint64_t name_key(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

static double uniform(uint64_t key, int64_t i)
{
    uint64_t z = key + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-52 - 1.0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Fills t (named `name`) from the formula; -1 for a name it has no rule for. */
static int fill(const char *name, rn_tensor *t)
{
    uint64_t key = name_key(name);
    int64_t n = rn_tensor_numel(t);
    int weight = ends_with(name, ".weight");
    double fan_in = t->shape.ndim >= 2 ? (double)(n / t->shape.d[0]) : 1.0;
    if (!weight && !ends_with(name, ".bias") && !ends_with(name, ".running_mean") &&
        !ends_with(name, ".running_var"))
        return -1;
    for (int64_t i = 0; i < n; i++) {
        double s = uniform(key, i), v;
        if (weight && t->shape.ndim >= 2) v = s / sqrt(fan_in);
        else if (weight) v = 1.0 + 0.1 * s;
        else if (ends_with(name, ".running_var")) v = 1.0 + 0.5 * fabs(s);
        else v = 0.1 * s; /* bias, running_mean */
        t->data[i] = (float)v;
    }
    return 0;
}

/* Compares the sum and sum of |v| of t with the fixture's (float32-rounded) values. */
static void check_sums(const char *what, const float *v, int64_t n, const float *ref)
{
    double sum = 0.0, abs_sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        sum += v[i];
        abs_sum += fabs(v[i]);
    }
    int ok = fabs(sum - ref[0]) <= 1e-6 * abs_sum + 1e-6 && fabs(abs_sum - ref[1]) <= 1e-6 * abs_sum;
    if (!ok)
        fprintf(stderr, "%s: the formula gives sums %.9g, %.9g; the script %.9g, %.9g (the "
                "formulas disagree)\n", what, sum, abs_sum, ref[0], ref[1]);
    CHECK(ok);
}

/* --- the fixture's key list ---------------------------------------------------------------- */

typedef struct key_entry {
    char name[96];
    rn_shape shape; /* ndim 0 for num_batches_tracked */
} key_entry;

/* Reads $RN_FIXTURES/resnet/<model>_keys.txt ("name dim dim ..." per line) into *out. */
static int read_keys(const char *model, key_entry **out)
{
    const char *root = getenv("RN_FIXTURES");
    char path[512], line[256];
    snprintf(path, sizeof path, "%s/resnet/%s_keys.txt", root ? root : "tests/fixtures", model);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open (is RN_FIXTURES set?)\n", path);
        return -1;
    }
    int n = 0, cap = 0;
    key_entry *k = NULL;
    while (fgets(line, sizeof line, f)) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            key_entry *grown = realloc(k, (size_t)cap * sizeof *k);
            if (!grown) break;
            k = grown;
        }
        key_entry *e = &k[n];
        memset(e, 0, sizeof *e);
        char *tok = strtok(line, " \n");
        if (!tok || strlen(tok) >= sizeof e->name) continue;
        strcpy(e->name, tok);
        while ((tok = strtok(NULL, " \n")) && e->shape.ndim < RN_MAX_DIMS)
            e->shape.d[e->shape.ndim++] = strtoll(tok, NULL, 10);
        n++;
    }
    fclose(f);
    *out = k;
    return n;
}

static const rn_param_ref *find_param(const rn_model *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

/* The model's names equal the key list's (num_batches_tracked aside, which must belong to a
 * batch norm of the model), shapes included. Returns the parameter count of the list (the
 * tensors with a grad in the model). */
static int64_t check_names(const rn_model *m, const key_entry *k, int nk, const char *model)
{
    int n_tensors = 0, n_counters = 0, n_bn = 0;
    int64_t params = 0;
    for (int i = 0; i < nk; i++) {
        if (ends_with(k[i].name, ".num_batches_tracked")) {
            char bn[128];
            snprintf(bn, sizeof bn, "%.*s.running_mean",
                     (int)(strlen(k[i].name) - strlen(".num_batches_tracked")), k[i].name);
            if (!find_param(m, bn)) fprintf(stderr, "%s: no batch norm for %s\n", model, k[i].name);
            CHECK(find_param(m, bn) != NULL);
            n_counters++;
            continue;
        }
        n_tensors++;
        const rn_param_ref *p = find_param(m, k[i].name);
        if (!p) {
            fprintf(stderr, "%s: torchvision's \"%s\" is not a parameter of ours\n", model,
                    k[i].name);
            CHECK(0);
            continue;
        }
        CHECK(rn_shape_equal(&p->value->shape, &k[i].shape));
        if (p->grad) params += rn_shape_numel(&k[i].shape);
    }
    for (int i = 0; i < m->n_params; i++) {
        int found = 0;
        for (int j = 0; j < nk && !found; j++) found = strcmp(m->params[i].name, k[j].name) == 0;
        if (!found) fprintf(stderr, "%s: our \"%s\" is not in the key list\n", model,
                            m->params[i].name);
        CHECK(found);
        n_bn += ends_with(m->params[i].name, ".running_mean");
    }
    CHECK(n_tensors == m->n_params);
    CHECK(n_counters == n_bn);
    return params;
}

/* Writes the key list's tensors (formula values, torchvision's names) to a safetensors file and
 * loads it into m with strict = 1. */
static void load_weights(rn_model *m, const key_entry *k, int nk, const fx_file *fx,
                         const char *model)
{
    rn_param_ref *refs = calloc((size_t)nk, sizeof *refs);
    rn_tensor *vals = calloc((size_t)nk, sizeof *vals);
    const fx_array *checks = fx_get(fx, "checks");
    char path[64], err[512] = "", what[160];
    int n = 0;
    CHECK(refs && vals && checks);
    if (!refs || !vals || !checks) goto done;
    for (int i = 0; i < nk; i++) {
        if (ends_with(k[i].name, ".num_batches_tracked")) continue;
        if (rn_tensor_alloc(&vals[n], k[i].shape) || fill(k[i].name, &vals[n])) {
            fprintf(stderr, "%s: cannot fill %s\n", model, k[i].name);
            CHECK(0);
            goto done;
        }
        refs[n].name = (char *)k[i].name;
        refs[n].value = &vals[n];
        snprintf(what, sizeof what, "%s %s", model, k[i].name);
        if (checks->ndim == 2 && n < checks->dims[0])
            check_sums(what, vals[n].data, rn_tensor_numel(&vals[n]), checks->data + 2 * n);
        n++;
    }
    CHECK(checks->ndim == 2 && checks->dims[0] == n);
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, model);
    CHECK(rn_safetensors_write(path, refs, n, NULL, 0, err, sizeof err) == 0);
    int rc = rn_safetensors_load_params(path, m->params, m->n_params, 1, NULL, 0, err, sizeof err);
    if (rc) fprintf(stderr, "%s: strict load: %s\n", model, err);
    CHECK(rc == 0);
    unlink(path);
done:
    for (int i = 0; i < nk && vals; i++) rn_tensor_free(&vals[i]);
    free(vals);
    free(refs);
}

static int build(rn_model *m, const char *expr, rn_shape in, int64_t n)
{
    return rn_test_model_from_lua(m, dir, expr, in, n);
}

/* The images: s_i of "input" over the first n samples of acts[0]. */
static void fill_input(rn_model *m, int64_t n, const fx_file *fx, const char *model)
{
    int64_t per = rn_tensor_numel(&m->acts[0]) / m->acts[0].shape.d[0];
    uint64_t key = name_key("input");
    for (int64_t i = 0; i < n * per; i++) m->acts[0].data[i] = (float)uniform(key, i);
    const fx_array *xs = fx_get(fx, "x_checks");
    char what[64];
    snprintf(what, sizeof what, "%s input", model);
    if (xs && xs->numel == 2) check_sums(what, m->acts[0].data, n * per, xs->data);
}

/* One tensor against the reference with the file's tolerance; tracks the worst error relative to
 * the tensor's max |ref| in *worst (and its name). */
static void compare(const char *model, const char *name, const float *got, int64_t n,
                    const fx_array *ref, double *worst, char *worst_name, size_t len)
{
    char what[160];
    snprintf(what, sizeof what, "%s %s", model, name);
    double scale = 0.0, err = 0.0;
    for (int64_t i = 0; ref && ref->numel == n && i < n; i++) {
        scale = fmax(scale, fabs(ref->data[i]));
        double d = fabs((double)got[i] - ref->data[i]);
        err = d > err || d != d ? d : err;
    }
    fx_compare(what, got, n, ref, TOL * scale, TOL);
    double rel = scale > 0 ? err / scale : err;
    if (!(rel <= *worst)) {
        *worst = rel;
        snprintf(worst_name, len, "%s", name);
    }
}

/* fx_load reads $RN_FIXTURES/layers/<name>.rnfx, hence the "../resnet/" names below. */
static void resnet18_case(void)
{
    fx_file *fx = fx_load("../resnet/resnet18");
    key_entry *keys = NULL;
    int nk = read_keys("resnet18", &keys);
    rn_model m = {0};
    int64_t in[3] = {3, 64, 64};
    CHECK(fx != NULL && nk > 0);
    int built = fx && nk > 0 && build(&m, "models.resnet18{ classes = 1000 }",
                                      rn_shape_make(3, in), 2) == 0;
    CHECK(built);
    if (!built) goto done;
    /* torchvision.models.resnet18(): 62 float tensors + 20 batch-norm counters. */
    CHECK(nk == 122);
    CHECK(rn_model_param_count(&m) == 11689512);
    CHECK(check_names(&m, keys, nk, "resnet18") == 11689512);
    load_weights(&m, keys, nk, fx, "resnet18");
    fill_input(&m, 2, fx, "resnet18");
    rn_tensor out;
    CHECK(rn_model_forward(&m, 2, false, &out) == 0);
    double worst = 0.0;
    char worst_name[96] = "";
    compare("resnet18", "logits", out.data, rn_tensor_numel(&out), fx_get(fx, "logits"), &worst,
            worst_name, sizeof worst_name);
    printf("resnet18 eval: max |ours - ref| / max |ref| = %.3g (logits)\n", worst);
done:
    rn_model_free(&m);
    free(keys);
    fx_free(fx);
}

static void resnet8_case(void)
{
    fx_file *fx = fx_load("../resnet/resnet8");
    key_entry *keys = NULL;
    int nk = read_keys("resnet8", &keys);
    rn_model m = {0};
    int64_t in[3] = {1, 28, 28};
    const int64_t n = 4;
    CHECK(fx != NULL && nk > 0);
    int built = fx && nk > 0 && build(&m, "models.resnet8{ in_channels = 1, classes = 10 }",
                                      rn_shape_make(3, in), n) == 0;
    CHECK(built);
    if (!built) goto done;
    CHECK(rn_model_param_count(&m) == 77754);
    CHECK(check_names(&m, keys, nk, "resnet8") == 77754);
    load_weights(&m, keys, nk, fx, "resnet8");
    fill_input(&m, n, fx, "resnet8");
    const fx_array *la = fx_get(fx, "labels");
    int32_t labels[4] = {0};
    for (int64_t k = 0; k < n; k++) {
        labels[k] = (int32_t)((7 * k + 3) % 10);
        CHECK(la && la->numel == n && labels[k] == (int32_t)la->data[k]);
    }

    rn_tensor out;
    CHECK(rn_model_forward(&m, n, true, &out) == 0);
    rn_tensor dlogits = m.grads[m.n_layers];
    dlogits.shape.d[0] = n;
    dlogits.borrowed = 1;
    float loss = (float)rn_cross_entropy(&out, labels, &dlogits, NULL);
    CHECK(rn_model_backward(&m, n) == 0);
    if (m.err[0]) fprintf(stderr, "resnet8: %s\n", m.err);

    double worst = 0.0;
    char worst_name[96] = "", key[96];
    compare("resnet8", "logits", out.data, rn_tensor_numel(&out), fx_get(fx, "logits"), &worst,
            worst_name, sizeof worst_name);
    compare("resnet8", "loss", &loss, 1, fx_get(fx, "loss"), &worst, worst_name,
            sizeof worst_name);
    printf("resnet8 train: logits and loss: max |ours - ref| / max |ref| = %.3g (%s)\n", worst,
           worst_name);
    worst = 0.0;
    int n_grads = 0, n_after = 0;
    for (int i = 0; i < m.n_params; i++) {
        const rn_param_ref *p = &m.params[i];
        const rn_tensor *t = p->grad ? p->grad : p->value;
        snprintf(key, sizeof key, "%s.%s", p->grad ? "grad" : "after", p->name);
        compare("resnet8", key, t->data, rn_tensor_numel(t), fx_get(fx, key), &worst, worst_name,
                sizeof worst_name);
        n_grads += p->grad != NULL;
        n_after += p->grad == NULL;
    }
    printf("resnet8 train: %d gradients, %d running stats: max |ours - ref| / max |ref| = %.3g "
           "(%s)\n", n_grads, n_after, worst, worst_name);
    /* every array of the fixture was compared: logits, loss, labels, checks, x_checks + ours */
    CHECK(fx->n == 5 + n_grads + n_after);
done:
    rn_model_free(&m);
    free(keys);
    fx_free(fx);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    resnet18_case();
    resnet8_case();
    rmdir(dir);
    return rn_test_report("test_resnet_parity");
}
