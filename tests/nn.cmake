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

# Not a test: `bench_mnist_cnn [batch] [iters]` prints images/s of the MNIST CNN train step.
add_executable(bench_mnist_cnn bench_mnist_cnn.c)
target_link_libraries(bench_mnist_cnn PRIVATE rn_nn rn_options OpenMP::OpenMP_C)
