/* A recipe as a plain C tree, converted once from the sandboxed Lua table. Everything after loading
 * (validation, the run plan, the resolved recipe.lua) works on this tree, never on a lua_State.
 * Every node remembers its key path ("optimizer.lr", "stages[2].train") for error messages. */
#ifndef RN_VALUE_H
#define RN_VALUE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum rn_vtype {
    RN_V_NIL = 0,
    RN_V_BOOL,
    RN_V_INT,     /* Lua integer */
    RN_V_NUMBER,  /* Lua float */
    RN_V_STRING,
    RN_V_TABLE,
    RN_V_FUNCTION /* a Lua function kept in the recipe's state (registry ref): callback hooks */
} rn_vtype;

typedef struct rn_value rn_value;

struct rn_value {
    rn_vtype type;
    char *path;            /* key path from the recipe root, "" for the root */
    int b;                 /* BOOL */
    int64_t i;             /* INT */
    double n;              /* NUMBER (also set for INT) */
    char *s;               /* STRING; FUNCTION: its source as a Lua expression, or NULL */
    /* TABLE: the array part items[0..n_items) (Lua indices 1..n) and the named fields, sorted by
     * key so iteration and serialization are deterministic. */
    rn_value **items;
    size_t n_items;
    char **keys;
    rn_value **fields;
    size_t n_fields;
    /* FUNCTION: a LUA_REGISTRYINDEX reference into the state that loaded the recipe (the
     * sandbox's; it stays valid while that state lives; LUA_NOREF (-2) in a function written as
     * part of another's source). `s` holds the function's source as a Lua expression that
     * evaluates to an equivalent function (lua_value.h says how it is recovered), or NULL; then
     * fn_why says why it could not be recovered. Both owned by the node. */
    int fn_ref;
    char *fn_why;
};

/* "number", "string", ... as Lua names them. */
const char *rn_vtype_name(rn_vtype t);
/* A short description for errors: `string "fast"`, `number 0.5`, `table`. */
const char *rn_value_describe(const rn_value *v, char *buf, size_t len);

void rn_value_free(rn_value *v);
rn_value *rn_value_clone(const rn_value *v);

/* Field lookup (NULL when absent or when t is not a table); items by 0-based index. */
const rn_value *rn_value_field(const rn_value *t, const char *key);
const rn_value *rn_value_item(const rn_value *t, size_t i);

/* Typed getters for a field of table t. When the field is absent, `*out` gets the default and 0 is
 * returned, unless `required` is set: then it is an error. A present field of the wrong type or
 * out of [min,max] (ignored when min > max) is an error:
 *   "optimizer.lr: expected a number, got string \"fast\""
 *   "optimizer.momentum: expected a number in [0, 1], got 1.5"
 * Return 0 on success, -1 on error (message in err). */
int rn_get_number(const rn_value *t, const char *key, int required, double def, double min,
                  double max, double *out, char *err, size_t errlen);
int rn_get_int(const rn_value *t, const char *key, int required, int64_t def, int64_t min,
               int64_t max, int64_t *out, char *err, size_t errlen);
int rn_get_bool(const rn_value *t, const char *key, int required, int def, int *out,
                char *err, size_t errlen);
/* *out points into the tree (or is def). */
int rn_get_string(const rn_value *t, const char *key, int required, const char *def,
                  const char **out, char *err, size_t errlen);
/* Error for an unexpected node: "<path>: expected <what>, got <describe(v)>". Returns -1. */
int rn_value_expected(const rn_value *v, const char *what, char *err, size_t errlen);
/* Path for a child: "parent.key" or "parent[3]" (1-based like Lua); caller frees. */
char *rn_path_join_key(const char *parent, const char *key);
char *rn_path_join_index(const char *parent, size_t lua_index);

/* Apply "key.path=value" (from --set). The path uses dots and [n] (1-based); missing tables are
 * created. The value is parsed as a Lua literal: true/false, integer, float, a quoted string, or
 * otherwise taken as a bare string. Functions cannot be given this way (a value that starts with
 * the keyword `function` is refused); a function node can be replaced or removed (`=nil`) like
 * any value, but not indexed into. Error names the override. */
int rn_value_set(rn_value *root, const char *assignment, char *err, size_t errlen);

/* Write the tree as a Lua chunk "return { ... }" that loads back to an equal tree. Deterministic
 * (fields sorted). A function is written as its source (`s`), which evaluates to a function with
 * the same text and the same captured values; one without source is written as a stub that
 * loads and raises when called:
 *   function() --[[ runner: a stub for a function without source ]] error("callbacks[2].
 *   on_epoch_end: the source of this Lua function could not be written to recipe.lua (<why>)", 0)
 *   end
 * (all on one line; read back, the stub is a function whose source is that same text). */
int rn_value_write_lua(const rn_value *v, FILE *f);

/* --- additions beyond the first contract ------------------------------------------------------ */

/* A new node of the given type with a copy of path (NULL means ""); NULL when out of memory. */
rn_value *rn_value_new(rn_vtype type, const char *path);
/* Put child under key in table t (kept sorted), replacing and freeing an existing field. Takes
 * ownership of child (freed on failure). Does not touch child->path. Returns 0, or -1 when out of
 * memory or t is not a table. */
int rn_value_put_field(rn_value *t, const char *key, rn_value *child);
/* Append child to the array part of t; takes ownership as above. */
int rn_value_push_item(rn_value *t, rn_value *child);
/* Structural equality: same types (INT and NUMBER differ), values, items and fields; functions
 * are equal when their sources are (two without source are equal). Paths and function refs are
 * not compared. */
int rn_value_equal(const rn_value *a, const rn_value *b);
/* How many leaves differ between a and b (a key present in one only counts once; 1 and 1.0 are
 * equal; functions compare by the text the resolved recipe writes), with the first `max` of them
 * in buf as "optimizer.lr: number 0.05 -> number 0.1; epochs: ...". */
int rn_value_diff(const rn_value *a, const rn_value *b, char *buf, size_t len, int max);
/* A Lua name that is not a reserved word (written as a bare key, joined with a dot). */
int rn_value_is_identifier(const char *s);
/* The path as errors show it: the path itself, or "recipe" for the root. */
const char *rn_value_display_path(const char *path);
/* Write one value as a Lua expression (no "return"), nested tables indented from depth. */
int rn_value_write_expr(const rn_value *v, int depth, FILE *f);

#endif
