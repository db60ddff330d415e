/* A model as a flat graph of primitive operations on numbered tensors: what a backend that
 * does not run the CPU layers (the CUDA backend) builds its own network from.
 *
 * rn_net_describe walks the model (nested sequential and residual blocks included) into nodes in
 * execution order. Tensor 0 is the model's input; every node writes one new tensor; a residual
 * block becomes its body's nodes, its shortcut's nodes (none for an identity shortcut: the sum
 * reads the block's input), an ADD of the two and, with the block's activation, a RELU. Backward
 * runs the nodes in reverse; a tensor read by several nodes (a block's input) receives the sum of
 * their input gradients. rn_net_forward/backward run that graph with the CPU layers (the same
 * objects the model owns), which is how the tests hold a description to the model it came from:
 * the graph's outputs and gradients must equal rn_model_forward/backward's. */
#ifndef RN_NET_H
#define RN_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

typedef enum rn_node_kind {
    RN_NODE_CONV2D = 1,      /* nn.Conv2d: in_ch, out_ch, kernel, stride, padding, dilation,
                                groups, bias; params weight [, bias] */
    RN_NODE_LINEAR,          /* nn.Linear: in_f, out_f, bias; params weight [, bias] */
    RN_NODE_BATCHNORM2D,     /* nn.BatchNorm2d: eps, momentum; params weight, bias,
                                running_mean, running_var */
    RN_NODE_RELU,
    RN_NODE_LEAKY_RELU,      /* slope */
    RN_NODE_GELU,            /* the erf form */
    RN_NODE_MAXPOOL2D,       /* kernel, stride, padding (-inf padding) */
    RN_NODE_AVGPOOL2D,       /* kernel, stride, padding, count_include_pad */
    RN_NODE_GLOBAL_AVGPOOL2D,/* (N, C, H, W) -> (N, C, 1, 1) */
    RN_NODE_DROPOUT,         /* p: train call c keeps element i when rn_uniform(rn_key3(
                                layer->seed, c = layer->calls, "drop"), i) >= p (nn_elem.h) */
    RN_NODE_FLATTEN,         /* (N, ...) -> (N, F): the same floats */
    RN_NODE_IDENTITY,        /* the same floats */
    RN_NODE_ADD,             /* out = in + in2 (a residual sum) */
} rn_node_kind;

#define RN_NODE_MAX_PARAMS 4

typedef struct rn_node {
    rn_node_kind kind;
    int in, in2;             /* input tensor ids; in2 is ADD's second operand, -1 otherwise */
    int out;                 /* the tensor it writes */
    rn_layer *layer;         /* the CPU layer it stands for (NULL for ADD); its name names it */
    const char *name;        /* "layer1.0.conv1", or the container's name for ADD; never NULL */
    /* conv2d / pooling */
    int64_t in_ch, out_ch, kernel, stride, padding, dilation, groups;
    bool bias;               /* conv2d, linear */
    bool count_include_pad;  /* avgpool2d */
    int64_t in_f, out_f;     /* linear */
    double eps, momentum;    /* batchnorm2d */
    double slope;            /* leaky_relu */
    double p;                /* dropout */
    /* indices into rn_model.params, in the layer's order (weight, bias, running_mean,
     * running_var), -1 past n_params */
    int param[RN_NODE_MAX_PARAMS];
    int n_params;
} rn_node;

typedef struct rn_net {
    rn_shape *shapes;        /* n_tensors shapes, d[0] the model's max batch */
    int n_tensors;
    rn_node *nodes;          /* n_nodes, in execution order */
    int n_nodes;
    int input, output;       /* tensor ids: 0 and the logits */
} rn_net;

/* Describes m (initialised). The graph's tensors are plain NCHW float, so m's activations are
 * made plain first (rn_model_set_layouts(m, false)) and its gradients float between every two
 * layers (rn_chain_pair_bf16_grads(.., false); m->described keeps rn_model_set_bf16 from pairing
 * them again, and rn_model_set_layouts from blocking them):
 * the layers the nodes point to then take plain float tensors, and m itself keeps working,
 * unchanged in its results. 0, or -1 with err (a layer type the description does not know names
 * it). */
int rn_net_describe(rn_model *m, rn_net *net, char *err, size_t errlen);
void rn_net_free(rn_net *net);
/* "conv2d", "batch_norm2d", ... (inline: the CUDA backend names nodes too, without runner/nn). */
static inline const char *rn_node_kind_name(rn_node_kind k)
{
    switch (k) {
    case RN_NODE_CONV2D: return "conv2d";
    case RN_NODE_LINEAR: return "linear";
    case RN_NODE_BATCHNORM2D: return "batch_norm2d";
    case RN_NODE_RELU: return "relu";
    case RN_NODE_LEAKY_RELU: return "leaky_relu";
    case RN_NODE_GELU: return "gelu";
    case RN_NODE_MAXPOOL2D: return "max_pool2d";
    case RN_NODE_AVGPOOL2D: return "avg_pool2d";
    case RN_NODE_GLOBAL_AVGPOOL2D: return "global_avg_pool2d";
    case RN_NODE_DROPOUT: return "dropout";
    case RN_NODE_FLATTEN: return "flatten";
    case RN_NODE_IDENTITY: return "identity";
    case RN_NODE_ADD: return "add";
    }
    return "?";
}

/* The graph run on the CPU with the nodes' layers, for tests: acts[t] (n_tensors, allocated by
 * rn_net_buffers for the max batch) hold the tensors, acts[0] the input. Forward writes every
 * tensor; backward takes the logits' gradient in grads[output] and writes the parameters'
 * gradients (as rn_model_backward does, frozen ones left alone) and grads[t] of every tensor but
 * the input. n: the batch (<= the max batch). */
int rn_net_buffers(const rn_net *net, rn_tensor **acts, rn_tensor **grads);
void rn_net_buffers_free(const rn_net *net, rn_tensor *acts, rn_tensor *grads);
int rn_net_forward(const rn_net *net, rn_tensor *acts, int64_t n, bool train, char *err,
                   size_t errlen);
int rn_net_backward(const rn_net *net, rn_tensor *acts, rn_tensor *grads, int64_t n, char *err,
                    size_t errlen);

#endif
