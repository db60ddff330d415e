# A CPU stand-in for the CUDA backend (tests/fake_cuda/fake_backend.c): rn_cuda.so in its own
# directory, which the device-loop tests point RUNNER_BACKEND_DIR at, so the training loop's GPU
# side runs on machines without a GPU. It carries its own copy of the graph executor and the
# losses (compiled in, hidden), and calls the layers through the model's own function pointers.
add_library(fake_rn_cuda MODULE fake_cuda/fake_backend.c
            ${PROJECT_SOURCE_DIR}/runner/nn/net_exec.c ${PROJECT_SOURCE_DIR}/runner/nn/layer.c
            ${PROJECT_SOURCE_DIR}/runner/nn/tensor.c ${PROJECT_SOURCE_DIR}/runner/nn/cross_entropy.c
            ${PROJECT_SOURCE_DIR}/runner/nn/multi_margin.c)
set_target_properties(fake_rn_cuda PROPERTIES PREFIX "" OUTPUT_NAME rn_cuda
                      C_VISIBILITY_PRESET hidden
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fake_cuda)
target_include_directories(fake_rn_cuda PRIVATE ${PROJECT_SOURCE_DIR}/runner/nn
                           ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/kernels)
target_link_libraries(fake_rn_cuda PRIVATE rn_options m OpenMP::OpenMP_C)
target_link_options(fake_rn_cuda PRIVATE -Wl,--no-undefined)
set(RN_FAKE_CUDA_DIR ${CMAKE_CURRENT_BINARY_DIR}/fake_cuda)

# The training loop on the stand-in GPU against the CPU, bit for bit (tests/e2e/device_loop.py).
add_test(NAME e2e_device_loop COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/device_loop.py)
set_tests_properties(e2e_device_loop PROPERTIES LABELS e2e RUN_SERIAL TRUE
                     ENVIRONMENT "${RN_E2E_ENV};RN_FAKE_CUDA_DIR=${RN_FAKE_CUDA_DIR}")

# runner --evaluate against the run's own final metrics, on the CPU and the stand-in GPU.
add_test(NAME e2e_evaluate COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/evaluate.py)
set_tests_properties(e2e_evaluate PROPERTIES LABELS e2e RUN_SERIAL TRUE
                     ENVIRONMENT "${RN_E2E_ENV};RN_FAKE_CUDA_DIR=${RN_FAKE_CUDA_DIR}")
