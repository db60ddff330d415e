/* Blocked activation layouts (runner/nn/layer.h, chain.h): where a chain picks nChw16c, and that
 * picking it changes no number. Two copies of each model (same seed, same weights) train side by
 * side, one as rn_model_init leaves it (blocked where it can be) and one made plain
 * (rn_model_set_layouts(m, false)); the logits, every parameter gradient, the updated weights
 * and the running statistics must agree bit for bit over several SGD steps, in train and eval
 * mode, at the full batch and a partial one, and with the batch norms frozen (eval-mode forward,
 * its own backward). Batch norm and global average pooling sum each channel in the same order in
 * both layouts, and oneDNN computes a convolution in its blocked layout either way, so equality
 * is exact, not a tolerance. Models: the zoo's mnist_cnn, resnet8 and resnet18 (3x32x32), and
 * one with every layer type. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <runner/plugin.h>

#include "model_from_lua.h"
#include "net.h"
#include "rn_test.h"

static char dir[] = "/tmp/rn-layout-XXXXXX";

static void fill(float *p, int64_t n, uint64_t key)
{
    for (int64_t i = 0; i < n; i++) p[i] = (float)(2 * rn_uniform(key, (uint64_t)i) - 1);
}

/* Activations in a blocked layout, over the chain and the chains inside its containers. */
static int count_blocked(const rn_chain *c)
{
    int k = 0;
    for (int i = 0; i <= c->n; i++) k += c->blocked[i];
    for (int i = 0; i < c->n; i++) {
        const rn_chain *inner;
        for (int j = 0; (inner = rn_container_chain(c->layers[i], j)); j++)
            k += count_blocked(inner);
    }
    return k;
}

/* ReLUs folded into the layer before them (chain.h), likewise (how 1: all of them; 2: those
 * whose backward the layer after does; 3: those whose backward the layer before does). */
static int count_folded(const rn_chain *c, int how)
{
    int k = 0;
    for (int i = 0; i < c->n; i++) {
        k += how == 1 ? c->folded[i] >= 1 : c->folded[i] == how;
        const rn_chain *inner;
        for (int j = 0; (inner = rn_container_chain(c->layers[i], j)); j++)
            k += count_folded(inner, how);
    }
    return k;
}

/* Activations recomputed in backward rather than kept (chain.h's in_grad), likewise. */
static int count_recomputed(const rn_chain *c)
{
    int k = c->n_recomputed;
    for (int i = 0; i < c->n; i++) {
        const rn_chain *inner;
        for (int j = 0; (inner = rn_container_chain(c->layers[i], j)); j++)
            k += count_recomputed(inner);
    }
    return k;
}

/* Layers reading their output gradient in bf16 (rn_chain_pair_bf16_grads), likewise. */
static int count_dy_bf16(const rn_chain *c)
{
    int k = 0;
    for (int i = 0; i < c->n; i++) {
        k += c->layers[i]->dy_bf16;
        const rn_chain *inner;
        for (int j = 0; (inner = rn_container_chain(c->layers[i], j)); j++)
            k += count_dy_bf16(inner);
    }
    return k;
}

/* "conv2d 1 relu 1 residual 0 ..." per chain, for a failing count. */
static void print_layouts(const rn_chain *c, int depth)
{
    printf("%*s%s: %d", depth * 2, "", c->where, c->blocked[0]);
    for (int i = 0; i < c->n; i++) printf(" %s %d", c->layers[i]->ops->type, c->blocked[i + 1]);
    printf("\n");
    for (int i = 0; i < c->n; i++) {
        const rn_chain *inner;
        for (int j = 0; (inner = rn_container_chain(c->layers[i], j)); j++)
            print_layouts(inner, depth + 1);
    }
}

static int same_floats(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* Forward (train or eval) on the same input; the logits must be equal. */
static int same_forward(rn_model *a, rn_model *b, int64_t n, bool train, uint64_t key)
{
    int64_t per = rn_tensor_numel(&a->acts[0]) / a->max_batch;
    fill(a->acts[0].data, n * per, key);
    memcpy(b->acts[0].data, a->acts[0].data, (size_t)(n * per) * sizeof(float));
    rn_tensor ya, yb;
    if (rn_model_forward(a, n, train, &ya) || rn_model_forward(b, n, train, &yb)) {
        fprintf(stderr, "forward: %s%s\n", a->err, b->err);
        return 0;
    }
    return same_floats(ya.data, yb.data, rn_tensor_numel(&ya));
}

/* Every parameter and buffer of a and b equal. */
static int same_params(const rn_model *a, const rn_model *b)
{
    for (int i = 0; i < a->n_params; i++)
        if (!same_floats(a->params[i].value->data, b->params[i].value->data,
                         rn_tensor_numel(a->params[i].value)))
            return 0;
    return 1;
}

/* Backward from the same logit gradient, then every gradient equal and an SGD step on both. */
static int same_backward_and_step(rn_model *a, rn_model *b, int64_t n, uint64_t key)
{
    int64_t nl = rn_tensor_numel(&a->acts[a->n_layers]) / a->max_batch;
    fill(a->grads[a->n_layers].data, n * nl, key);
    memcpy(b->grads[b->n_layers].data, a->grads[a->n_layers].data,
           (size_t)(n * nl) * sizeof(float));
    if (rn_model_backward(a, n) || rn_model_backward(b, n)) {
        fprintf(stderr, "backward: %s%s\n", a->err, b->err);
        return 0;
    }
    int same = 1;
    for (int i = 0; i < a->n_params; i++) {
        if (!a->params[i].grad || a->params[i].frozen) continue;
        int64_t k = rn_tensor_numel(a->params[i].grad);
        same &= same_floats(a->params[i].grad->data, b->params[i].grad->data, k);
        for (int64_t j = 0; j < k; j++) {
            a->params[i].value->data[j] -= 0.05f * a->params[i].grad->data[j];
            b->params[i].value->data[j] -= 0.05f * b->params[i].grad->data[j];
        }
    }
    return same;
}

/* a as rn_model_init leaves it (blocked where it can be, ReLUs folded where they can be) against
 * b, built from expr_b (expr_a, or the same network with a ReLU kept apart from the layer before
 * it by an identity, which stops the fold) and made plain; b starts from a's weights. */
typedef struct expect {
    int blocked;    /* blocked activations */
    int folded;     /* ReLUs folded into the layer before */
    int into_next;  /* of them, with their backward in the layer after (max pooling) */
    int into_prev;  /* of them, with their backward in the layer before (batch norm) */
    int recomputed; /* activations recomputed in backward (batch norm before a convolution) */
    /* in bf16: convolutions reading a bf16 output gradient from the batch norm after them, in
     * a and in b */
    int dy16_a, dy16_b;
} expect;

static void check_pair(const char *what, const char *expr_a, const char *expr_b, rn_shape in,
                       int64_t max_batch, expect e, bool bf16)
{
    rn_model a, b;
    if (rn_test_model_from_lua(&a, dir, expr_a, in, max_batch)) {
        CHECK(!"model builds");
        return;
    }
    if (rn_test_model_from_lua(&b, dir, expr_b, in, max_batch)) {
        CHECK(!"model builds");
        rn_model_free(&a);
        return;
    }
    const bool twins = strcmp(expr_a, expr_b) == 0;
    CHECK(a.n_params == b.n_params);
    for (int i = 0; i < a.n_params && i < b.n_params; i++)
        memcpy(b.params[i].value->data, a.params[i].value->data,
               (size_t)rn_tensor_numel(a.params[i].value) * sizeof(float));
    int folded = count_folded(&a.chain, 1), into_next = count_folded(&a.chain, 2);
    int into_prev = count_folded(&a.chain, 3), recomputed = count_recomputed(&a.chain);
    printf("%s: %d ReLUs folded, their backward %d into the next layer's and %d into the one "
           "before's; %d activations recomputed\n",
           what, folded, into_next, into_prev, recomputed);
    CHECK(folded == e.folded);
    CHECK(into_next == e.into_next);
    CHECK(into_prev == e.into_prev);
    CHECK(recomputed == e.recomputed);
    CHECK(count_folded(&b.chain, 1) == (twins ? e.folded : 0));
    CHECK(count_recomputed(&b.chain) == (twins ? e.recomputed : 0));
    if (!twins) { /* b's identities keep its batch norms apart from their convolutions, whose
                   * eval forward would fold them in a (rounding apart: tests/test_fold_bn.c) */
        rn_model_fold_bn(&a, false);
        rn_model_fold_bn(&b, false);
    }
    char err[512] = "";
    if (bf16) { /* the convolutions and linear layers compute in bf16 (precision = "bf16") */
        rn_model_set_bf16(&a, true);
        rn_model_set_bf16(&b, true);
    }
    printf("%s: %d and %d layers read a bf16 output gradient\n", what, count_dy_bf16(&a.chain),
           count_dy_bf16(&b.chain));
    CHECK(count_dy_bf16(&a.chain) == e.dy16_a);
    CHECK(count_dy_bf16(&b.chain) == e.dy16_b);
    CHECK(rn_model_set_layouts(&b, false, err, sizeof err) == 0);
    int blocked = count_blocked(&a.chain);
    printf("%s: %d blocked activations\n", what, blocked);
    CHECK(blocked == e.blocked);
    if (blocked != e.blocked) print_layouts(&a.chain, 1);
    CHECK(count_blocked(&b.chain) == 0);
    /* the model's own ends are plain whatever its inside does */
    CHECK(!a.chain.blocked[0] && !a.chain.blocked[a.n_layers]);

    int ok_f = 1, ok_b = 1, ok_p = 1;
    for (int step = 0; step < 3; step++) {
        int64_t n = step == 2 ? max_batch - 1 : max_batch; /* a partial last batch */
        ok_f &= same_forward(&a, &b, n, true, 100 + step);
        ok_b &= same_backward_and_step(&a, &b, n, 200 + step);
        ok_p &= same_params(&a, &b);
    }
    ok_f &= same_forward(&a, &b, max_batch, false, 300);
    CHECK(ok_f);
    CHECK(ok_b);
    CHECK(ok_p);

    /* Batch norms frozen, fastai's freeze without train_bn: their forward runs on the running
     * stats and their backward passes the eval-mode dx. */
    bool *trainable = calloc((size_t)a.n_params, sizeof *trainable);
    for (int i = 0; i < a.n_params; i++) trainable[i] = !strstr(a.params[i].name, "bn");
    CHECK(rn_model_set_trainable(&a, trainable, false, err, sizeof err) == 0);
    CHECK(rn_model_set_trainable(&b, trainable, false, err, sizeof err) == 0);
    free(trainable);
    int ok_frozen = same_forward(&a, &b, max_batch, true, 400) &&
                    same_backward_and_step(&a, &b, max_batch, 500) && same_params(&a, &b);
    CHECK(ok_frozen);

    /* And back to blocked: the layers rebuild for it, and the two still agree. */
    CHECK(rn_model_set_layouts(&b, true, err, sizeof err) == 0);
    if (twins) CHECK(count_blocked(&b.chain) == e.blocked);
    CHECK(same_forward(&a, &b, max_batch, true, 600));
    printf("%s: forward %d, backward %d, params %d, frozen batch norms %d\n", what, ok_f, ok_b,
           ok_p, ok_frozen);
    rn_model_free(&a);
    rn_model_free(&b);
}

static void check_model(const char *what, const char *expr, rn_shape in, int64_t max_batch,
                        expect e, bool bf16)
{
    check_pair(what, expr, expr, in, max_batch, e, bf16);
}

/* The layout rules at a chain's ends: what a container reports it can take (rn_chain_layouts)
 * and the one-line refusal when asked for a blocked end it cannot give. */
static void check_ends(void)
{
    rn_model m;
    rn_shape in = rn_shape_make(3, (int64_t[]){16, 8, 8});
    /* a block ending in max pooling then dropout: blocked in, never blocked out */
    if (rn_test_model_from_lua(&m, dir,
                               "nn.sequential{ nn.sequential{ nn.conv2d{ name = 'a', "
                               "in_channels = 16, out_channels = 16, kernel_size = 3, "
                               "padding = 1 }, nn.max_pool2d{ kernel_size = 2 }, "
                               "nn.dropout{ p = 0.5 } }, nn.flatten(), nn.linear{ name = 'fc', "
                               "in_features = 256, out_features = 3 } }",
                               in, 2)) {
        CHECK(!"model builds");
        return;
    }
    const rn_chain *inner = rn_container_chain(m.layers[0], 0);
    CHECK(inner && rn_chain_layouts(inner) == RN_LAYOUT_IN);
    char err[256] = "";
    CHECK(inner && rn_chain_set_layouts((rn_chain *)inner, false, true, true, err, sizeof err));
    printf("a blocked end it cannot give: %s\n", err);
    CHECK(strstr(err, "model.layers[1].layers: cannot run with a blocked output") != NULL);
    /* what it can: a blocked input (the model around it is left inconsistent: freed next) */
    CHECK(inner &&
          rn_chain_set_layouts((rn_chain *)inner, true, false, true, err, sizeof err) == 0);
    CHECK(inner && inner->blocked[0] && inner->blocked[1] && !inner->blocked[2]);
    rn_model_free(&m);
}

/* Counts the recomputes of the layer whose ops are counting_ops, then runs its own. */
static rn_layer_ops counting_ops;
static int (*counted_recompute)(rn_layer *, const rn_tensor *, rn_tensor *);
static int n_recomputes;
static int counting_recompute(rn_layer *l, const rn_tensor *x, rn_tensor *y)
{
    n_recomputes++;
    return counted_recompute(l, x, y);
}

/* The recompute before r1's c3 (in_grad) is skipped in bf16, where c3's backward reads the bf16
 * copy of its input its forward made, and not in float32: conv2d's backward_reads_x after a
 * forward, and the batch norm before c3 (and its folded ReLU) recomputing in a backward step
 * (once, or not at all). */
static void check_bf16_skips_recompute(const char *expr, rn_shape in)
{
    for (int bf16 = 0; bf16 < 2; bf16++) {
        rn_model m;
        if (rn_test_model_from_lua(&m, dir, expr, in, 4)) {
            CHECK(!"model builds");
            return;
        }
        rn_model_set_bf16(&m, bf16);
        rn_tensor out;
        fill(m.acts[0].data, rn_tensor_numel(&m.acts[0]), 700);
        CHECK(rn_model_forward(&m, 4, true, &out) == 0);
        const rn_chain *body = rn_container_chain(m.layers[3], 0);
        rn_layer *c3 = body ? body->layers[3] : NULL;
        CHECK(c3 && strstr(c3->name, "c3") && body->in_grad[3] == 3);
        if (c3) printf("r1 body layer 3: %s, in_grad %d\n", c3->name, body->in_grad[3]);
        bool reads = c3 && c3->ops->backward_reads_x(c3, 4);
        printf("%s: c3's backward reads its recomputed input: %d\n", bf16 ? "bf16" : "fp32", reads);
        CHECK(reads == !bf16);
        if (c3) {
            /* the batch norm whose output (through the folded ReLU after it) c3 reads */
            rn_layer *b2 = body->layers[1];
            CHECK(strcmp(b2->ops->type, "batch_norm2d") == 0 && body->folded[2]);
            const rn_layer_ops *own = b2->ops;
            counting_ops = *own;
            counted_recompute = own->recompute;
            counting_ops.recompute = counting_recompute;
            b2->ops = &counting_ops;
            n_recomputes = 0;
            fill(m.grads[m.n_layers].data, rn_tensor_numel(&m.grads[m.n_layers]), 701);
            CHECK(rn_model_backward(&m, 4) == 0);
            printf("%s: %s recomputed %d time(s) in backward\n", bf16 ? "bf16" : "fp32",
                   b2->name, n_recomputes);
            CHECK(n_recomputes == (bf16 ? 0 : 1));
            b2->ops = own;
        }
        rn_model_free(&m);
    }
}

/* A described model's graph runs its layers unfolded on plain float tensors (net_exec.c), so
 * describing unpairs the bf16 gradients and makes the activations plain, and a later
 * rn_model_set_bf16 or rn_model_set_layouts(.., true) leaves them so. */
static void check_described_unpairs(void)
{
    rn_model m;
    if (rn_test_model_from_lua(&m, dir, "models.mnist_cnn{ in_channels = 1, classes = 10 }",
                               rn_shape_make(3, (int64_t[]){1, 28, 28}), 4)) {
        CHECK(!"model builds");
        return;
    }
    rn_model_set_bf16(&m, true);
    int before = count_dy_bf16(&m.chain);
    rn_net net;
    char err[256];
    CHECK(rn_net_describe(&m, &net, err, sizeof err) == 0);
    int after = count_dy_bf16(&m.chain);
    rn_model_set_bf16(&m, true);
    int again = count_dy_bf16(&m.chain);
    printf("bf16 pairs: %d, described %d, bf16 set again %d\n", before, after, again);
    CHECK(before == 1 && after == 0 && again == 0);
    /* and its activations stay plain when the layouts are allowed again (4 before describe) */
    CHECK(count_blocked(&m.chain) == 0);
    CHECK(rn_model_set_layouts(&m, true, err, sizeof err) == 0);
    printf("blocked activations after describe, layouts allowed again: %d\n",
           count_blocked(&m.chain));
    CHECK(count_blocked(&m.chain) == 0);
    rn_net_free(&net);
    rn_model_free(&m);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    check_ends();
    rn_shape mnist = rn_shape_make(3, (int64_t[]){1, 28, 28});
    rn_shape cifar = rn_shape_make(3, (int64_t[]){3, 32, 32});
    /* conv1 -> relu -> conv2 -> relu -> max_pool2d: the 4 activations up to the pool, which
     * gives dropout a plain tensor */
    check_model("mnist_cnn", "models.mnist_cnn{ in_channels = 1, classes = 10 }", mnist, 5,
                (expect){4, 2, 1, 0, 0, 0, 0}, false);
    /* and in bf16, conv2's output gradient from max pooling in bf16 (blocked and plain) */
    check_model("mnist_cnn bf16", "models.mnist_cnn{ in_channels = 1, classes = 10 }", mnist, 5,
                (expect){4, 2, 1, 0, 0, 1, 1}, true);
    /* everything from the stem convolution's output to global pooling's input, inside the
     * stages' sequentials, the blocks' bodies and their downsampling shortcuts too; every ReLU
     * after a batch norm, its backward too; each block's first batch norm + ReLU output is
     * recomputed (the stem's feeds a block, not a convolution) */
    check_model("resnet8", "models.resnet8{ in_channels = 1, classes = 10 }", mnist, 6,
                (expect){40, 4, 0, 4, 3, 0, 0}, false);
    check_model("resnet8 bf16", "models.resnet8{ in_channels = 1, classes = 10 }", mnist, 6,
                (expect){40, 4, 0, 4, 3, 9, 9}, true); /* every conv: a batch norm after it */
    check_model("resnet18", "models.resnet18{ in_channels = 3, classes = 10, cifar_stem = true }",
                cifar, 3, (expect){82, 9, 0, 9, 8, 0, 0}, false);
    /* torchvision's stem: its 3x3/2 max pool takes and gives blocked tensors (one activation
     * more than the CIFAR stem's); the batch norm before it does its ReLU's backward */
    check_model("resnet18 stem", "models.resnet18{ in_channels = 3, classes = 10 }", cifar, 3,
                (expect){83, 9, 0, 9, 8, 0, 0}, false);
    /* grouped 8-channel convolutions and pools: little can be blocked, and what can't stays
     * plain */
    check_model("every layer", RN_TEST_EVERY_LAYER, rn_shape_make(3, (int64_t[]){3, 17, 15}), 4,
                (expect){0}, false);
    /* a blocked run through leaky_relu, gelu, identity and a sequential, ending at a pool: 5 in
     * the model's chain, the sequential's 4 */
    check_model("element-wise run",
                "nn.sequential{ nn.conv2d{ name = 'a', in_channels = 3, out_channels = 16, "
                "kernel_size = 3, padding = 1 }, nn.leaky_relu{ negative_slope = 0.1 }, "
                "nn.sequential{ nn.gelu(), nn.identity(), nn.conv2d{ name = 'b', in_channels = 16, "
                "out_channels = 32, kernel_size = 3, stride = 2, padding = 1 } }, "
                "nn.batch_norm2d{ name = 'bn', num_features = 32 }, nn.relu(), "
                "nn.global_avg_pool2d(), nn.flatten(), "
                "nn.linear{ name = 'fc', in_features = 32, out_features = 5 } }",
                rn_shape_make(3, (int64_t[]){3, 9, 7}), 4, (expect){9, 1, 0, 1, 0, 0, 0}, false);
    /* max pools from a plain input to a blocked output (the padded 3x3 one: its general loop)
     * and from a blocked input to a plain output (the 2x2 one's fast path) */
    check_model("pools",
                "nn.sequential{ nn.max_pool2d{ kernel_size = 3, stride = 2, padding = 1 }, "
                "nn.conv2d{ name = 'a', in_channels = 16, out_channels = 16, kernel_size = 3, "
                "padding = 1 }, nn.batch_norm2d{ name = 'bn', num_features = 16 }, nn.relu(), "
                "nn.max_pool2d{ kernel_size = 2 }, nn.flatten(), "
                "nn.linear{ name = 'fc', in_features = 64, out_features = 5 } }",
                rn_shape_make(3, (int64_t[]){16, 9, 9}), 3, (expect){4, 1, 0, 1, 0, 0, 0}, false);
    /* Folded against kept apart (and blocked against plain): a CNN whose ReLUs follow
     * convolutions, and a ResNet whose follow batch norms, in and out of residual blocks. */
#define CNN(sep)                                                                                \
    "nn.sequential{ nn.conv2d{ name = 'c1', in_channels = 1, out_channels = 32, "             \
    "kernel_size = 3 }, " sep "nn.relu(), nn.conv2d{ name = 'c2', in_channels = 32, "         \
    "out_channels = 64, kernel_size = 3 }, " sep "nn.relu(), nn.max_pool2d{ kernel_size = 2 }, " \
    "nn.flatten(), nn.linear{ name = 'fc1', in_features = 2304, out_features = 32 }, nn.relu(), " \
    "nn.linear{ name = 'fc2', in_features = 32, out_features = 10 } }"
    rn_shape small = rn_shape_make(3, (int64_t[]){1, 16, 16});
    check_pair("cnn folded", CNN(""), CNN("nn.identity(), "), small, 4,
               (expect){4, 2, 1, 0, 0, 0, 0}, false);
    /* in bf16 max pooling writes conv2's output gradient in bf16, where b's ReLU, kept apart,
     * passes it on in float for the convolution to convert */
    check_pair("cnn folded bf16", CNN(""), CNN("nn.identity(), "), small, 4,
               (expect){4, 2, 1, 0, 0, 1, 0}, true);
/* cb goes between each convolution and its batch norm, br between each batch norm and its ReLU
 * (c3 has a bias: its gradient sums a bf16 dy in bf16) */
#define RES2(cb, br)                                                                            \
    "nn.sequential{ nn.conv2d{ name = 'c1', in_channels = 1, out_channels = 16, "             \
    "kernel_size = 3, padding = 1, bias = false }, " cb "nn.batch_norm2d{ name = 'bn1', "      \
    "num_features = 16 }, " br "nn.relu(), nn.residual{ name = 'r1', body = { "                \
    "nn.conv2d{ name = 'c2', in_channels = 16, out_channels = 16, kernel_size = 3, "          \
    "padding = 1, bias = false }, " cb "nn.batch_norm2d{ name = 'bn2', num_features = 16 }, "  \
    br "nn.relu(), nn.conv2d{ name = 'c3', in_channels = 16, out_channels = 32, "             \
    "kernel_size = 3, stride = 2, padding = 1 }, " cb "nn.batch_norm2d{ name = 'bn3', "        \
    "num_features = 32 } }, shortcut = { nn.conv2d{ name = 'd', in_channels = 16, "           \
    "out_channels = 32, kernel_size = 1, stride = 2, bias = false }, " cb                     \
    "nn.batch_norm2d{ name = 'bnd', num_features = 32 } } }, nn.global_avg_pool2d(), "        \
    "nn.flatten(), nn.linear{ name = 'fc', in_features = 32, out_features = 10 } }"
#define RES(sep) RES2("", sep)
    /* and recomputed against kept: bn2's output in r1's body */
    check_pair("resnet folded", RES(""), RES("nn.identity(), "), small, 4,
               (expect){13, 2, 0, 2, 1, 0, 0}, false);
    /* in bf16 the convolution's backward reads its forward's bf16 copy of its input, so the
     * chain skips the recompute (conv2d's backward_reads_x) */
    check_pair("resnet folded bf16", RES(""), RES("nn.identity(), "), small, 4,
               (expect){13, 2, 0, 2, 1, 4, 4}, true);
    /* bf16 output gradients written by batch norm against converted by the convolution: the
     * same ResNet with an identity after each convolution and each batch norm in b */
#define RES_CB(sep) RES2(sep, sep)
    check_pair("bf16 output gradients", RES_CB(""), RES_CB("nn.identity(), "), small, 4,
               (expect){13, 2, 0, 2, 1, 4, 0}, true);
    /* Where the chains recompute and mask in unusual places (model_from_lua.h), against the
     * same network kept apart by identities (no fold, nothing recomputed). Blocked: the
     * model's 3 activations from c0's output to c7's input, and every one inside r1 (2 in its
     * body, 4 in the sequential there, 4 in its shortcut) and r2 (6, 2, and r3's 3 and 2);
     * the 12-channel end is plain, on 9x7 planes (the masked sums' tails). Folded, their
     * backward in the batch norm: b1, b2, b3, b7; recomputed: after b0, b1, b2, b3, b7. */
    check_pair("unusual places", RN_TEST_UNUSUAL(""), RN_TEST_UNUSUAL("nn.identity(), "),
               rn_shape_make(3, (int64_t[]){16, 9, 7}), 4, (expect){26, 4, 0, 4, 5, 0, 0}, false);
    check_described_unpairs();
    check_bf16_skips_recompute(RES(""), small);
    rmdir(dir);
    return rn_test_report("test_layout");
}
