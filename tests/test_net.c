/* rn_net_describe (runner/nn/net.h), the graph another backend builds its network from, held to
 * the model it describes: for the zoo's mnist_cnn, resnet8 and resnet18 and a model with every
 * layer type (leaky_relu, gelu, dilated and grouped convolutions, padded max and average pools,
 * identity, a residual without activation and one with a downsampling shortcut, dropout), the
 * graph run with the CPU layers (rn_net_forward/backward) must give the model's logits and every
 * parameter gradient bit for bit, in train mode (batch norm on batch statistics, dropout masks)
 * and eval mode. So the node list, its tensor wiring, the residual sums and the accumulation of a
 * tensor's gradient over the nodes that read it are what the CPU model computes. Also: tensor
 * shapes, the node kinds and hyperparameters of known layers, and that each parameter appears in
 * exactly one node. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <runner/plugin.h>

#include "model_from_lua.h"
#include "net.h"
#include "rn_test.h"

static char dir[] = "/tmp/rn-net-XXXXXX";

static int build(rn_model *m, const char *expr, rn_shape in, int64_t n)
{
    return rn_test_model_from_lua(m, dir, expr, in, n);
}

static void fill(float *p, int64_t n, uint64_t key)
{
    for (int64_t i = 0; i < n; i++) p[i] = (float)(2 * rn_uniform(key, (uint64_t)i) - 1);
}

/* Every parameter and buffer, and each layer's dropout counter: saved before the model runs so
 * the graph starts from the same state (batch norm's running stats move in train mode). */
typedef struct snapshot {
    float **values;
    uint64_t *calls;
} snapshot;

static snapshot save(const rn_model *m, const rn_net *net)
{
    snapshot s = {calloc((size_t)m->n_params, sizeof(float *)),
                  calloc((size_t)net->n_nodes, sizeof(uint64_t))};
    for (int i = 0; i < m->n_params; i++) {
        int64_t n = rn_tensor_numel(m->params[i].value);
        s.values[i] = malloc((size_t)n * sizeof(float));
        memcpy(s.values[i], m->params[i].value->data, (size_t)n * sizeof(float));
    }
    for (int k = 0; k < net->n_nodes; k++)
        s.calls[k] = net->nodes[k].layer ? net->nodes[k].layer->calls : 0;
    return s;
}

static void restore(const rn_model *m, const rn_net *net, const snapshot *s)
{
    for (int i = 0; i < m->n_params; i++)
        memcpy(m->params[i].value->data, s->values[i],
               (size_t)rn_tensor_numel(m->params[i].value) * sizeof(float));
    for (int k = 0; k < net->n_nodes; k++)
        if (net->nodes[k].layer) net->nodes[k].layer->calls = s->calls[k];
}

static void snapshot_free(const rn_model *m, snapshot *s)
{
    for (int i = 0; i < m->n_params; i++) free(s->values[i]);
    free(s->values);
    free(s->calls);
}

static void check_model(const char *what, const char *expr, rn_shape in, int64_t max_batch,
                        int64_t n)
{
    rn_model m;
    if (build(&m, expr, in, max_batch)) {
        CHECK(!"model builds");
        return;
    }
    rn_net net;
    char err[512];
    int rc = rn_net_describe(&m, &net, err, sizeof err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "%s: %s\n", what, err);
        rn_model_free(&m);
        return;
    }
    /* shapes: the input's and the logits' are the model's */
    CHECK(rn_shape_equal(&net.shapes[net.input], &m.acts[0].shape));
    CHECK(rn_shape_equal(&net.shapes[net.output], &m.acts[m.n_layers].shape));
    /* every parameter in exactly one node, every node reading tensors written before it */
    int *uses = calloc((size_t)m.n_params, sizeof *uses);
    int order_ok = 1, kinds[RN_NODE_ADD + 1] = {0};
    for (int k = 0; k < net.n_nodes; k++) {
        const rn_node *node = &net.nodes[k];
        kinds[node->kind]++;
        order_ok &= node->in < node->out && node->in2 < node->out && node->out == k + 1;
        for (int j = 0; j < node->n_params; j++)
            if (node->param[j] >= 0) uses[node->param[j]]++;
    }
    int params_ok = 1;
    for (int i = 0; i < m.n_params; i++) params_ok &= uses[i] == 1;
    free(uses);
    CHECK(order_ok);
    CHECK(params_ok);

    rn_tensor *acts, *grads;
    CHECK(rn_net_buffers(&net, &acts, &grads) == 0);
    int64_t per = rn_tensor_numel(&m.acts[0]) / max_batch;
    int64_t nl = rn_tensor_numel(&m.acts[m.n_layers]) / max_batch;
    fill(m.acts[0].data, n * per, 11);
    memcpy(acts[net.input].data, m.acts[0].data, (size_t)(n * per) * sizeof(float));
    float *dlogits = malloc((size_t)(n * nl) * sizeof *dlogits);
    fill(dlogits, n * nl, 12);
    for (int train = 1; train >= 0; train--) {
        snapshot s = save(&m, &net);
        rn_tensor out;
        CHECK(rn_model_forward(&m, n, train, &out) == 0);
        float *logits = malloc((size_t)(n * nl) * sizeof *logits);
        memcpy(logits, out.data, (size_t)(n * nl) * sizeof *logits);
        float **g = calloc((size_t)m.n_params, sizeof *g);
        if (train) {
            memcpy(m.grads[m.n_layers].data, dlogits, (size_t)(n * nl) * sizeof *dlogits);
            CHECK(rn_model_backward(&m, n) == 0);
            for (int i = 0; i < m.n_params; i++)
                if (m.params[i].grad) {
                    int64_t c = rn_tensor_numel(m.params[i].grad);
                    g[i] = malloc((size_t)c * sizeof(float));
                    memcpy(g[i], m.params[i].grad->data, (size_t)c * sizeof(float));
                    memset(m.params[i].grad->data, 0xff, (size_t)c * sizeof(float)); /* NaN */
                }
        }
        restore(&m, &net, &s);
        CHECK(rn_net_forward(&net, acts, n, train, err, sizeof err) == 0);
        int same_logits = memcmp(acts[net.output].data, logits,
                                 (size_t)(n * nl) * sizeof *logits) == 0;
        CHECK(same_logits);
        int same_grads = 1;
        if (train) {
            memcpy(grads[net.output].data, dlogits, (size_t)(n * nl) * sizeof *dlogits);
            CHECK(rn_net_backward(&net, acts, grads, n, err, sizeof err) == 0);
            for (int i = 0; i < m.n_params; i++)
                if (g[i])
                    same_grads &= memcmp(g[i], m.params[i].grad->data,
                                         (size_t)rn_tensor_numel(m.params[i].grad) *
                                             sizeof(float)) == 0;
            CHECK(same_grads);
        }
        printf("%-10s %s: %d tensors, %d nodes (%d conv, %d bn, %d add, %d linear): logits %s%s\n",
               what, train ? "train" : "eval ", net.n_tensors, net.n_nodes, kinds[RN_NODE_CONV2D],
               kinds[RN_NODE_BATCHNORM2D], kinds[RN_NODE_ADD], kinds[RN_NODE_LINEAR],
               same_logits ? "equal" : "DIFFER",
               train ? (same_grads ? ", every gradient equal" : ", gradients DIFFER") : "");
        for (int i = 0; i < m.n_params; i++) free(g[i]);
        free(g);
        free(logits);
        snapshot_free(&m, &s);
    }
    free(dlogits);
    rn_net_buffers_free(&net, acts, grads);
    rn_net_free(&net);
    rn_model_free(&m);
}

/* Hyperparameters reach the nodes. */
static void check_fields(void)
{
    rn_model m;
    const char *expr =
        "nn.sequential{ nn.conv2d{ name = 'c', in_channels = 4, out_channels = 8, "
        "kernel_size = 3, stride = 2, padding = 2, dilation = 2, groups = 2, bias = false }, "
        "nn.batch_norm2d{ name = 'bn', num_features = 8, eps = 1e-3, momentum = 0.2 }, "
        "nn.leaky_relu{ negative_slope = 0.25 }, nn.avg_pool2d{ kernel_size = 3, stride = 1, "
        "padding = 1 }, nn.max_pool2d{ kernel_size = 2 }, nn.flatten(), "
        "nn.dropout{ p = 0.3 }, nn.linear{ name = 'fc', in_features = 32, out_features = 5 } }";
    if (build(&m, expr, rn_shape_make(3, (int64_t[]){4, 9, 9}), 2)) {
        CHECK(!"model builds");
        return;
    }
    rn_net net;
    char err[256];
    CHECK(rn_net_describe(&m, &net, err, sizeof err) == 0);
    CHECK(net.n_nodes == 8);
    const rn_node *c = &net.nodes[0], *bn = &net.nodes[1], *lr = &net.nodes[2];
    const rn_node *ap = &net.nodes[3], *mp = &net.nodes[4], *dr = &net.nodes[6];
    const rn_node *fc = &net.nodes[7];
    CHECK(c->kind == RN_NODE_CONV2D && c->in_ch == 4 && c->out_ch == 8 && c->kernel == 3 &&
          c->stride == 2 && c->padding == 2 && c->dilation == 2 && c->groups == 2 && !c->bias &&
          c->n_params == 1 && strcmp(c->name, "c") == 0);
    CHECK(bn->kind == RN_NODE_BATCHNORM2D && bn->eps == 1e-3 && bn->momentum == 0.2 &&
          bn->n_params == 4 && bn->out_ch == 8);
    CHECK(lr->kind == RN_NODE_LEAKY_RELU && lr->slope == 0.25);
    CHECK(ap->kind == RN_NODE_AVGPOOL2D && ap->kernel == 3 && ap->stride == 1 &&
          ap->padding == 1 && ap->count_include_pad);
    CHECK(mp->kind == RN_NODE_MAXPOOL2D && mp->kernel == 2 && mp->stride == 2);
    CHECK(net.nodes[5].kind == RN_NODE_FLATTEN);
    CHECK(dr->kind == RN_NODE_DROPOUT && dr->p == 0.3 && dr->layer->seed != 0);
    CHECK(fc->kind == RN_NODE_LINEAR && fc->in_f == 32 && fc->out_f == 5 && fc->bias &&
          strcmp(m.params[fc->param[0]].name, "fc.weight") == 0 &&
          strcmp(m.params[fc->param[1]].name, "fc.bias") == 0);
    /* (N, 8, 5, 5) after the conv: (9 + 4 - 2*2 - 1) / 2 + 1 = 5 */
    CHECK(net.shapes[c->out].ndim == 4 && net.shapes[c->out].d[1] == 8 &&
          net.shapes[c->out].d[2] == 5 && net.shapes[c->out].d[3] == 5);
    rn_net_free(&net);
    rn_model_free(&m);
}

int main(void)
{
    if (!mkdtemp(dir)) return 2;
    check_fields();
    check_model("mnist_cnn", "models.mnist_cnn{ classes = 10 }",
                rn_shape_make(3, (int64_t[]){1, 28, 28}), 8, 5);
    check_model("resnet8", "models.resnet8{ in_channels = 1, classes = 10 }",
                rn_shape_make(3, (int64_t[]){1, 28, 28}), 6, 6);
    check_model("resnet18", "models.resnet18{ classes = 10 }",
                rn_shape_make(3, (int64_t[]){3, 32, 32}), 2, 2);
    check_model("every", RN_TEST_EVERY_LAYER, rn_shape_make(3, (int64_t[]){3, 17, 15}), 4, 3);
    check_model("unusual", RN_TEST_UNUSUAL(""), rn_shape_make(3, (int64_t[]){16, 9, 7}), 4, 3);
    rmdir(dir);
    return rn_test_report("test_net");
}
