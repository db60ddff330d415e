# The CUDA kernels (kernels/*.cu) run on the CPU: each test is host C++ that includes a kernel
# file after tests/cuda_emu/cuda_emu.h with RN_CUDA_EMU defined, so RN_LAUNCH runs the kernel
# under the emulator (one std::thread per thread of a block, real __syncthreads barriers, blocks
# in order) and the test compares the result with the CPU code. No GPU or CUDA toolkit needed.
get_property(RN_ENABLED_LANGUAGES GLOBAL PROPERTY ENABLED_LANGUAGES)
if(NOT "CXX" IN_LIST RN_ENABLED_LANGUAGES)
  enable_language(CXX)
endif()
find_package(Threads REQUIRED)

# rn_add_emu_test(<name> SOURCES <files...> LIBS <targets...>): rn_add_test in C++17 with the
# emulator. -ffp-contract=off: like nvcc's --fmad=false in the backend, no a*b + c is fused
# that the C build rounds twice (GCC's C++ default would allow it where the target has FMA).
function(rn_add_emu_test name)
  cmake_parse_arguments(E "" "" "SOURCES;LIBS" ${ARGN})
  rn_add_test(${name} SOURCES ${E_SOURCES} LIBS ${E_LIBS} Threads::Threads)
  set_target_properties(${name} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
                        CXX_EXTENSIONS OFF)
  target_compile_definitions(${name} PRIVATE RN_CUDA_EMU)
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off>)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/cuda_emu
                             ${PROJECT_SOURCE_DIR}/kernels ${PROJECT_SOURCE_DIR}/include)
  set_property(TEST ${name} APPEND PROPERTY LABELS emu)
endfunction()

# kernels/optim_kernels.cu: every optimizer's multi-tensor launch against flat loops.
rn_add_emu_test(test_kernels_emu_optim SOURCES test_kernels_emu_optim.cc)
# kernels/nn_kernels.cu: cross-entropy (with fp16's loss scale), multi-margin and dropout against
# runner/nn, the norm's chunk sums; and
# the emulator's own checks (barrier divergence, bad launch configurations).
rn_add_emu_test(test_kernels_emu_nn SOURCES test_kernels_emu_nn.cc LIBS rn_nn)
# kernels/augment_kernels.cu against the augmentation plugins, loaded from RN_PLUGIN_DIR.
rn_add_emu_test(test_kernels_emu_augment
                SOURCES test_kernels_emu_augment.cc cuda_emu/emu_plugins.c
                LIBS rn_plugin_host rn_recipe)
add_dependencies(test_kernels_emu_augment hflip vflip random_crop random_erasing cutmix mixup
                 cutmix_or_mixup random_resized_crop)
set_property(TEST test_kernels_emu_augment APPEND PROPERTY ENVIRONMENT
             "RN_PLUGIN_DIR=${RN_PLUGIN_OUTPUT_DIR}")
set_property(TEST test_kernels_emu_augment APPEND PROPERTY LABELS plugins)
# kernels/net_kernels.cu (the device network's own kernels) against runner/nn's layers, bit for
# bit: element-wise layers, a residual block's sum, activation and gradient accumulation, batch
# norm in eval mode, global average pooling, linear's bias, the accuracy's hits, gradient scaling;
# and mixed precision's kernels: fp16's unscale against runner/core's GradScaler (its one source
# file, so the test does not need the whole core) and the bf16 / fp16 conversions.
rn_add_emu_test(test_kernels_emu_net
                SOURCES test_kernels_emu_net.cc ${PROJECT_SOURCE_DIR}/runner/core/grad_scaler.c
                LIBS rn_nn)
