/* Finding a Lua function's text in the chunk that defined it, so a resolved recipe.lua can carry
 * the callbacks a recipe wrote. Lua's debug info gives only the first and last line of a function,
 * so this tokenizes the chunk and matches `function ... end` blocks. Internal to runner/recipe. */
#ifndef RN_LUA_SOURCE_H
#define RN_LUA_SOURCE_H

#include <stddef.h>

/* What lua_getinfo reports of the function. */
typedef struct rn_lua_fn_info {
    int linedefined, lastlinedefined; /* 1-based lines of `function` and of its `end` */
    int nparams;                      /* fixed parameters (a method counts its self) */
    int isvararg;
    const char *name;                 /* the key it is stored under, to choose between functions
                                         that begin and end on the same lines; may be NULL */
} rn_lua_fn_info;

/* Cuts the function out of text[0..len) and returns it as a malloc'ed expression
 * "function(params) ... end" (a `function a.b:c(x)` statement becomes "function(self, x) ...").
 * Returns NULL with a reason in why (e.g. "2 functions begin on line 12") when it cannot tell
 * which text is the function's, or when out of memory. */
char *rn_lua_cut_function(const char *text, size_t len, const rn_lua_fn_info *fn, char *why,
                          size_t whylen);

#endif
