# tests for runner/nn (and the runner/cpu wrappers they go through)
rn_add_test(test_tensor SOURCES test_tensor.c LIBS rn_nn)
rn_add_test(test_conv2d SOURCES test_conv2d.c LIBS rn_nn)
rn_add_test(test_linear SOURCES test_linear.c LIBS rn_nn)
rn_add_test(test_relu SOURCES test_relu.c LIBS rn_nn)
rn_add_test(test_maxpool2d SOURCES test_maxpool2d.c LIBS rn_nn)
rn_add_test(test_dropout SOURCES test_dropout.c LIBS rn_nn)
rn_add_test(test_flatten SOURCES test_flatten.c LIBS rn_nn)
rn_add_test(test_cross_entropy SOURCES test_cross_entropy.c LIBS rn_nn)
rn_add_test(test_model SOURCES test_model.c LIBS rn_nn)
rn_add_test(test_conv2d_groups SOURCES test_conv2d_groups.c LIBS rn_nn)
rn_add_test(test_batchnorm2d SOURCES test_batchnorm2d.c LIBS rn_nn)
rn_add_test(test_leaky_relu SOURCES test_leaky_relu.c LIBS rn_nn)
rn_add_test(test_gelu SOURCES test_gelu.c LIBS rn_nn)
rn_add_test(test_avgpool2d SOURCES test_avgpool2d.c LIBS rn_nn)
rn_add_test(test_global_avgpool2d SOURCES test_global_avgpool2d.c LIBS rn_nn)
rn_add_test(test_identity SOURCES test_identity.c LIBS rn_nn)
rn_add_test(test_cross_entropy2 SOURCES test_cross_entropy2.c LIBS rn_nn)
# PyTorch parity of every layer, from the committed fixtures (scripts/make_fixtures.py)
rn_add_test(test_layer_parity SOURCES test_layer_parity.c LIBS rn_nn)


# rn_model_set_trainable (freezing): gradients, frozen batch norms, head-only backward
rn_add_test(test_freeze SOURCES test_freeze.c LIBS rn_nn)
# Not a test: `bench_freeze [batch] [iters]` prints resnet8 ms/step, all trainable vs head only.
add_executable(bench_freeze test_freeze_bench.c)
target_link_libraries(bench_freeze PRIVATE rn_nn rn_options OpenMP::OpenMP_C)
rn_add_test(test_multi_margin SOURCES test_multi_margin.c LIBS rn_nn)
# precision = "bf16": bf16 rounding, bf16 convolution and GEMM plans, rn_model_set_bf16
rn_add_test(test_bf16 SOURCES test_bf16.c LIBS rn_nn rn_cpu)
rn_add_test(test_conv_winograd SOURCES test_conv_winograd.c LIBS rn_cpu)
# kernels/amp_elem.h's float <-> bfloat16 / IEEE half conversions (the device network's bf16 and
# fp16 operands) against _Float16 casts and runner/cpu's rn_bf16_convert, bit for bit.
rn_add_test(test_half_convert SOURCES test_half_convert.c LIBS rn_cpu rn_dnnl)
