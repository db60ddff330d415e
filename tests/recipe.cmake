# tests for runner/recipe: the tree and --set (test_value), the sandbox (test_sandbox), and the
# LuaUnit suite over recipes/lib run through the sandbox (lua_recipes).
rn_add_test(test_value SOURCES test_value.c LIBS rn_recipe)
rn_add_test(test_sandbox SOURCES test_sandbox.c LIBS rn_recipe)
set_property(TEST test_value test_sandbox APPEND PROPERTY ENVIRONMENT
             "RN_RECIPE_LIB=${PROJECT_SOURCE_DIR}/recipes")

add_executable(lua_harness lua/lua_harness.c)
target_link_libraries(lua_harness PRIVATE rn_options rn_recipe)
add_test(NAME lua_recipes
         COMMAND lua_harness ${PROJECT_SOURCE_DIR}/recipes ${CMAKE_CURRENT_SOURCE_DIR}/lua/test_recipes.lua)
set_tests_properties(lua_recipes PROPERTIES LABELS lua)
# Lua callbacks in recipes: the "lua" callback adapter and function nodes in the tree.
rn_add_test(test_lua_callback SOURCES test_lua_callback.c LIBS rn_recipe)
set_property(TEST test_lua_callback APPEND PROPERTY ENVIRONMENT
             "RN_RECIPE_LIB=${PROJECT_SOURCE_DIR}/recipes")
