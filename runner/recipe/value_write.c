/* The tree as Lua source: the resolved recipe.lua of a run, loadable by the sandbox again. */
#include "value.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* Escapes like string.format("%q") does, except that newlines are written as \n. */
static void write_string(const char *s, FILE *f)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\%03d", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void write_number(double x, FILE *f)
{
    char buf[64];
    if (isnan(x)) {
        fputs("(0/0)", f);
        return;
    }
    if (isinf(x)) {
        fputs(x > 0 ? "(1/0)" : "(-1/0)", f);
        return;
    }
    snprintf(buf, sizeof buf, "%.17g", x);
    /* Keep it a float when read back: 3 would load as an integer. */
    if (strspn(buf, "-0123456789") == strlen(buf))
        strcat(buf, ".0");
    fputs(buf, f);
}

static void indent(int depth, FILE *f)
{
    for (int i = 0; i < depth; i++)
        fputs("  ", f);
}

/* Its source, or a stub that loads and says what is missing when it is called. */
static void write_function(const rn_value *v, FILE *f)
{
    if (v->s) {
        fputs(v->s, f);
        return;
    }
    char msg[600];
    snprintf(msg, sizeof msg, "%s: the source of this Lua function could not be written to "
             "recipe.lua (%s)", rn_value_display_path(v->path),
             v->fn_why ? v->fn_why : "unknown origin");
    /* The comment is inside, so that writing the stub read back gives the same text. */
    fputs("function() --[[ runner: a stub for a function without source ]] error(", f);
    write_string(msg, f);
    fputs(", 0) end", f);
}

static void write_value(const rn_value *v, int depth, FILE *f)
{
    if (v == NULL) {
        fputs("nil", f);
        return;
    }
    switch (v->type) {
    case RN_V_NIL: fputs("nil", f); break;
    case RN_V_BOOL: fputs(v->b ? "true" : "false", f); break;
    case RN_V_INT:
        if (v->i == INT64_MIN)
            fputs("(-9223372036854775807 - 1)", f);
        else
            fprintf(f, "%" PRId64, v->i);
        break;
    case RN_V_NUMBER: write_number(v->n, f); break;
    case RN_V_STRING: write_string(v->s, f); break;
    case RN_V_FUNCTION: write_function(v, f); break;
    case RN_V_TABLE:
        if (v->n_items == 0 && v->n_fields == 0) {
            fputs("{}", f);
            break;
        }
        fputs("{\n", f);
        for (size_t i = 0; i < v->n_items; i++) {
            indent(depth + 1, f);
            write_value(v->items[i], depth + 1, f);
            fputs(",\n", f);
        }
        for (size_t i = 0; i < v->n_fields; i++) {
            indent(depth + 1, f);
            if (rn_value_is_identifier(v->keys[i])) {
                fputs(v->keys[i], f);
            } else {
                fputc('[', f);
                write_string(v->keys[i], f);
                fputc(']', f);
            }
            fputs(" = ", f);
            write_value(v->fields[i], depth + 1, f);
            fputs(",\n", f);
        }
        indent(depth, f);
        fputc('}', f);
        break;
    }
}

int rn_value_write_lua(const rn_value *v, FILE *f)
{
    fputs("return ", f);
    write_value(v, 0, f);
    fputc('\n', f);
    return ferror(f) ? -1 : 0;
}

int rn_value_write_expr(const rn_value *v, int depth, FILE *f)
{
    write_value(v, depth, f);
    return ferror(f) ? -1 : 0;
}
