// Output shapes from cuDNN's own descriptors. Descriptor calls need no device and no handle,
// so a machine without a GPU checks that the GPU path sees every layer as the CPU path does.
#include "backend.h"

#include <cudnn.h>

#include <cstdio>

static int fail(cudnnStatus_t st, const char *what, char *err, size_t len)
{
    std::snprintf(err, len, "%s: %s", what, cudnnGetErrorString(st));
    return -1;
}

extern "C" int rn_cuda_conv2d_output(const rn_cuda_conv_shape *s, int out[4], char *err,
                                     size_t len)
{
    cudnnTensorDescriptor_t x = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    int rc = -1;
    cudnnStatus_t st;
    if ((st = cudnnCreateTensorDescriptor(&x)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnCreateFilterDescriptor(&w)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnCreateConvolutionDescriptor(&conv)) != CUDNN_STATUS_SUCCESS) {
        fail(st, "cuDNN descriptors", err, len);
        goto done;
    }
    if ((st = cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->c, s->h,
                                         s->w)) != CUDNN_STATUS_SUCCESS) {
        fail(st, "cudnnSetTensor4dDescriptor", err, len);
        goto done;
    }
    if ((st = cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->out_ch,
                                         s->c / (s->groups ? s->groups : 1), s->kh, s->kw)) !=
        CUDNN_STATUS_SUCCESS) {
        fail(st, "cudnnSetFilter4dDescriptor", err, len);
        goto done;
    }
    if ((st = cudnnSetConvolution2dDescriptor(conv, s->pad_h, s->pad_w, s->stride_h, s->stride_w,
                                              s->dil_h, s->dil_w, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetConvolutionGroupCount(conv, s->groups ? s->groups : 1)) !=
            CUDNN_STATUS_SUCCESS) {
        fail(st, "cudnnSetConvolution2dDescriptor", err, len);
        goto done;
    }
    if ((st = cudnnGetConvolution2dForwardOutputDim(conv, x, w, &out[0], &out[1], &out[2],
                                                    &out[3])) != CUDNN_STATUS_SUCCESS) {
        fail(st, "cudnnGetConvolution2dForwardOutputDim", err, len);
        goto done;
    }
    rc = 0;
done:
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (x) cudnnDestroyTensorDescriptor(x);
    return rc;
}

extern "C" int rn_cuda_maxpool2d_output(const rn_cuda_conv_shape *s, int out[4], char *err,
                                        size_t len)
{
    cudnnTensorDescriptor_t x = nullptr;
    cudnnPoolingDescriptor_t pool = nullptr;
    int rc = -1;
    cudnnStatus_t st;
    if ((st = cudnnCreateTensorDescriptor(&x)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnCreatePoolingDescriptor(&pool)) != CUDNN_STATUS_SUCCESS) {
        fail(st, "cuDNN descriptors", err, len);
        goto done;
    }
    if ((st = cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->c, s->h,
                                         s->w)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetPooling2dDescriptor(pool, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN, s->kh,
                                          s->kw, s->pad_h, s->pad_w, s->stride_h, s->stride_w)) !=
            CUDNN_STATUS_SUCCESS) {
        fail(st, "cudnnSetPooling2dDescriptor", err, len);
        goto done;
    }
    if ((st = cudnnGetPooling2dForwardOutputDim(pool, x, &out[0], &out[1], &out[2], &out[3])) !=
        CUDNN_STATUS_SUCCESS) {
        fail(st, "cudnnGetPooling2dForwardOutputDim", err, len);
        goto done;
    }
    rc = 0;
done:
    if (pool) cudnnDestroyPoolingDescriptor(pool);
    if (x) cudnnDestroyTensorDescriptor(x);
    return rc;
}
