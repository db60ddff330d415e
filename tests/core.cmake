# Core: plan, run files, and end-to-end runs of the runner binary.
rn_add_test(test_sha256 SOURCES test_sha256.c LIBS rn_core)
rn_add_test(test_safetensors SOURCES test_safetensors.c LIBS rn_core)
rn_add_test(test_safetensors_read SOURCES test_safetensors_read.c LIBS rn_core)
rn_add_test(test_plan SOURCES test_plan.c LIBS rn_core)
target_compile_definitions(test_plan PRIVATE RN_RECIPES_DIR="${PROJECT_SOURCE_DIR}/recipes")

# Libraries the loader must refuse, each alone in its own directory.
foreach(bad abi2 no_entry cuda_no_update cuda_no_plan)
  add_library(bad_${bad} MODULE bad_plugins/${bad}.c)
  target_include_directories(bad_${bad} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  set_target_properties(bad_${bad} PROPERTIES PREFIX "" OUTPUT_NAME ${bad}
                        LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/bad_plugins/${bad})
endforeach()

find_program(PYTHON3 python3 REQUIRED)
set(RN_E2E_ENV "RUNNER=$<TARGET_FILE:runner>" "RN_SOURCE=${PROJECT_SOURCE_DIR}"
    "RN_BAD_PLUGINS=${CMAKE_CURRENT_BINARY_DIR}/bad_plugins")
add_test(NAME e2e_train_small COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/train_small.py)
add_test(NAME e2e_bad_input COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/bad_input.py)
add_test(NAME e2e_custom_plugin
         COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/custom_plugin.py)
add_test(NAME e2e_cli COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/cli.py)
add_test(NAME e2e_interrupt COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/interrupt.py)
add_test(NAME e2e_cifar_resnet COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/cifar_resnet.py)
add_test(NAME e2e_weights COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/weights.py)
add_test(NAME e2e_groups COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/groups.py)
add_test(NAME e2e_grads COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/grads.py)
add_test(NAME e2e_optimizers COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/optimizers.py)
add_test(NAME e2e_plateau COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/plateau.py)
add_test(NAME e2e_lr_find COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/lr_find.py)
add_test(NAME e2e_stages COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/stages.py)
add_test(NAME e2e_resume COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/resume.py)
add_test(NAME e2e_callbacks COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/callbacks.py)
set_tests_properties(e2e_train_small e2e_bad_input e2e_custom_plugin e2e_cli e2e_interrupt
                     e2e_cifar_resnet e2e_weights e2e_groups e2e_grads e2e_optimizers e2e_plateau
                     e2e_lr_find e2e_stages e2e_resume e2e_callbacks
                     PROPERTIES
                     LABELS e2e ENVIRONMENT "${RN_E2E_ENV}" RUN_SERIAL TRUE)
rn_add_test(test_container SOURCES test_container.c LIBS rn_nn)
rn_add_test(test_model_print SOURCES test_model_print.c LIBS rn_core)
rn_add_test(test_lr_suggest SOURCES test_lr_suggest.c LIBS rn_core)
# Whole ResNets against PyTorch (tests/fixtures/resnet, scripts/make_resnet_fixtures.py)
rn_add_test(test_resnet_parity SOURCES test_resnet_parity.c LIBS rn_core)
target_compile_definitions(test_resnet_parity PRIVATE RN_RECIPES_DIR="${PROJECT_SOURCE_DIR}/recipes")
# Not a test: `bench_optim` prints ms per optimizer step over ResNet-18's parameters for each
# optimizer plugin (scripts/bench --optim runs it next to torch.optim).
add_executable(bench_optim bench_optim.c)
target_include_directories(bench_optim PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(bench_optim PRIVATE rn_plugin_host rn_recipe rn_options m)
target_compile_definitions(bench_optim PRIVATE RN_BENCH_PLUGIN_DIR="${RN_PLUGIN_OUTPUT_DIR}"
                           RN_BENCH_SHAPES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures/resnet/resnet18_keys.txt")
add_dependencies(bench_optim sgd adam adamw rmsprop lion lamb)
rn_add_test(test_metrics SOURCES test_metrics.c LIBS rn_plugin_host)
rn_add_test(test_checkpoint SOURCES test_checkpoint.c LIBS rn_core)
target_compile_definitions(test_checkpoint PRIVATE RN_RECIPES_DIR="${PROJECT_SOURCE_DIR}/recipes")
add_dependencies(test_checkpoint adam constant reduce_on_plateau)
set_property(TEST test_checkpoint APPEND PROPERTY ENVIRONMENT "RN_PLUGIN_DIR=${RN_PLUGIN_OUTPUT_DIR}")
add_test(NAME e2e_classes COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/classes.py)
set_tests_properties(e2e_classes PROPERTIES
                     LABELS e2e ENVIRONMENT "${RN_E2E_ENV}" RUN_SERIAL TRUE)
add_test(NAME e2e_augment COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/augment.py)
set_tests_properties(e2e_augment PROPERTIES
                     LABELS e2e ENVIRONMENT "${RN_E2E_ENV}" RUN_SERIAL TRUE)
# The CUDA backend against the CPU layers (built only with the backend).
if(RN_HAVE_CUDA)
  rn_add_test(test_cuda_shapes SOURCES test_cuda_shapes.c LIBS rn_core ${CMAKE_DL_LIBS})
  target_compile_definitions(test_cuda_shapes PRIVATE RN_BACKEND_DIR="${RN_BACKEND_OUTPUT_DIR}"
                             RN_RECIPES_DIR="${PROJECT_SOURCE_DIR}/recipes")
  add_dependencies(test_cuda_shapes rn_cuda)
endif()
add_test(NAME e2e_device COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/device.py)
set_tests_properties(e2e_device PROPERTIES
                     LABELS e2e ENVIRONMENT "${RN_E2E_ENV}" RUN_SERIAL TRUE)
add_test(NAME e2e_gpu_check COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/gpu_check.py)
set_tests_properties(e2e_gpu_check PROPERTIES
                     LABELS e2e ENVIRONMENT "${RN_E2E_ENV}" RUN_SERIAL TRUE)
add_test(NAME e2e_precision COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/precision.py)
set_tests_properties(e2e_precision PROPERTIES
                     LABELS e2e ENVIRONMENT "${RN_E2E_ENV}" RUN_SERIAL TRUE)
add_test(NAME e2e_conv_workspace
         COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/conv_workspace.py)
set_tests_properties(e2e_conv_workspace PROPERTIES
                     LABELS e2e ENVIRONMENT "${RN_E2E_ENV}" RUN_SERIAL TRUE)
rn_add_test(test_multi_tensor SOURCES test_multi_tensor.c)
rn_add_test(test_grad_scaler SOURCES test_grad_scaler.c LIBS rn_core)
# Not a test: `bench_gemm` measures the machine's sgemm peak for scripts/bench.
add_executable(bench_gemm bench_gemm.c)
target_link_libraries(bench_gemm PRIVATE rn_cpu rn_options)
# Not a test: `bench_loader` runs the loader and the augmentation alone (scripts/bench --loader).
add_executable(bench_loader bench_loader.c)
target_include_directories(bench_loader PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(bench_loader PRIVATE rn_data rn_plugin_host rn_recipe rn_options m)
target_compile_definitions(bench_loader PRIVATE RN_BENCH_PLUGIN_DIR="${RN_PLUGIN_OUTPUT_DIR}")
add_dependencies(bench_loader random_crop hflip random_erasing cutmix_or_mixup)
# rn_net_describe: the graph other backends build from, run on the CPU against the model
rn_add_test(test_net SOURCES test_net.c LIBS rn_core)
target_compile_definitions(test_net PRIVATE RN_RECIPES_DIR="${PROJECT_SOURCE_DIR}/recipes")
# blocked activation layouts (runner/nn/layer.h): where the zoo's models block, and that a
# blocked model trains bit for bit like its plain copy
rn_add_test(test_layout SOURCES test_layout.c LIBS rn_core)
target_compile_definitions(test_layout PRIVATE RN_RECIPES_DIR="${PROJECT_SOURCE_DIR}/recipes")

# eval mode with each batch norm folded into the convolution before it (rn_chain_fold_bn)
rn_add_test(test_fold_bn SOURCES test_fold_bn.c LIBS rn_core rn_cpu)
target_compile_definitions(test_fold_bn PRIVATE RN_RECIPES_DIR="${PROJECT_SOURCE_DIR}/recipes")

# Not a test: `bench_layers [MODEL C H W batch iters bf16]`: a zoo model's train step, layer by
# layer (tests/bench_layers.c).
add_executable(bench_layers bench_layers.c)
target_link_libraries(bench_layers PRIVATE rn_core rn_options OpenMP::OpenMP_C)
target_compile_definitions(bench_layers PRIVATE RN_RECIPES_DIR="${PROJECT_SOURCE_DIR}/recipes")
