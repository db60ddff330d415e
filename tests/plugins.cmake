# tests for plugins/ (and examples/plugins/): every test goes through the real loader, scanning the
# built plugin dir (RN_PLUGIN_DIR) and making instances from recipe nodes.
set(RN_BUILTIN_PLUGINS sgd constant cosine random_crop hflip progress csv_logger)

# The example third-party plugin, built out of tree-style with the one line its comment shows
# (plus -Wl,--no-undefined), into its own dir so it is not mistaken for a built-in plugin.
set(RN_EXAMPLE_PLUGIN_DIR ${CMAKE_CURRENT_BINARY_DIR}/example_plugins)
add_custom_command(
  OUTPUT ${RN_EXAMPLE_PLUGIN_DIR}/step_decay.so
  COMMAND ${CMAKE_COMMAND} -E make_directory ${RN_EXAMPLE_PLUGIN_DIR}
  COMMAND ${CMAKE_C_COMPILER} -shared -fPIC -O2 -I${PROJECT_SOURCE_DIR}/include
          -o ${RN_EXAMPLE_PLUGIN_DIR}/step_decay.so ${PROJECT_SOURCE_DIR}/examples/plugins/step_decay.c
          -lm -Wl,--no-undefined
  DEPENDS ${PROJECT_SOURCE_DIR}/examples/plugins/step_decay.c
          ${PROJECT_SOURCE_DIR}/include/runner/plugin.h
  COMMENT "Building the example plugin step_decay.so with one cc line")
add_custom_target(example_step_decay DEPENDS ${RN_EXAMPLE_PLUGIN_DIR}/step_decay.so)

function(rn_add_plugin_test name)
  rn_add_test(${name} SOURCES ${name}.c LIBS rn_plugin_host rn_recipe)
  add_dependencies(${name} ${RN_BUILTIN_PLUGINS} ${ARGN})
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT
               "RN_PLUGIN_DIR=${RN_PLUGIN_OUTPUT_DIR}" "RN_EXAMPLE_PLUGIN_DIR=${RN_EXAMPLE_PLUGIN_DIR}")
  set_property(TEST ${name} APPEND PROPERTY LABELS plugins)
endfunction()

rn_add_plugin_test(test_sgd)
rn_add_plugin_test(test_cosine)
rn_add_plugin_test(test_constant)
rn_add_plugin_test(test_random_crop)
rn_add_plugin_test(test_flip hflip vflip)
rn_add_plugin_test(test_csv_logger)
rn_add_plugin_test(test_progress)
rn_add_plugin_test(test_plugin_settings)
rn_add_plugin_test(test_plugin_recipe)
rn_add_plugin_test(test_step_decay example_step_decay)
rn_add_plugin_test(test_adamw adamw)
rn_add_plugin_test(test_adam adam)
rn_add_plugin_test(test_rmsprop rmsprop)
rn_add_plugin_test(test_lion lion)
rn_add_plugin_test(test_lamb lamb)
rn_add_plugin_test(test_schedulers step multistep exponential linear polynomial one_cycle lr_range)
rn_add_plugin_test(test_reduce_on_plateau reduce_on_plateau)
rn_add_plugin_test(test_schedule linear cosine exponential constant)
# ABI 1.1 host actions over a fake run; the ABI libraries it loads, each alone in its own dir: an
# ABI 1.0 callback library (must load, its 1.1 hooks read as absent) and one with only some of
# the state hooks (must be refused).
foreach(abi abi10_callback partial_state)
  add_library(test_${abi} MODULE abi_plugins/${abi}.c)
  target_include_directories(test_${abi} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(test_${abi} PRIVATE rn_options)
  set_target_properties(test_${abi} PROPERTIES PREFIX "" OUTPUT_NAME ${abi}
                        LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/abi_plugins/${abi})
endforeach()
rn_add_plugin_test(test_host_actions test_abi10_callback test_partial_state)
set_property(TEST test_host_actions APPEND PROPERTY ENVIRONMENT
             "RN_ABI_PLUGIN_DIR=${CMAKE_CURRENT_BINARY_DIR}/abi_plugins")
rn_add_plugin_test(test_early_stopping early_stopping)
rn_add_plugin_test(test_checkpoint_callback checkpoint)
rn_add_plugin_test(test_nan_guard nan_guard)
rn_add_plugin_test(test_lr_monitor lr_monitor)
rn_add_plugin_test(test_grad_norm grad_norm)
rn_add_plugin_test(test_random_resized_crop random_resized_crop)
rn_add_plugin_test(test_random_erasing random_erasing)
rn_add_plugin_test(test_mix cutmix mixup cutmix_or_mixup)
# ABI 1.1 RN_SETTING_NUMBERS validation (test_plugin_settings): a test-only plugin declaring
# NUMBERS settings, alone in its own dir, plus the normalize plugin.
add_library(test_numbers_settings MODULE abi_plugins/numbers_settings.c)
target_include_directories(test_numbers_settings PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(test_numbers_settings PRIVATE rn_options m)
set_target_properties(test_numbers_settings PROPERTIES PREFIX "" OUTPUT_NAME numbers_settings
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/abi_plugins/numbers_settings)
add_dependencies(test_plugin_settings test_numbers_settings normalize)
set_property(TEST test_plugin_settings APPEND PROPERTY ENVIRONMENT
             "RN_ABI_PLUGIN_DIR=${CMAKE_CURRENT_BINARY_DIR}/abi_plugins")
rn_add_plugin_test(test_normalize normalize)
# device_update (plugin ABI 1.2) of every optimizer against its step(), through the chunk plan
rn_add_plugin_test(test_device_update sgd adam adamw rmsprop lion lamb bad_cuda_no_update
                   bad_cuda_no_plan)
set_property(TEST test_device_update APPEND PROPERTY ENVIRONMENT
             "RN_BAD_PLUGINS=${CMAKE_CURRENT_BINARY_DIR}/bad_plugins")
