/* A function's text in its chunk: a Lua tokenizer (names, strings, long brackets, comments) and
 * `function ... end` matching by block keywords. Plain C; never touches a lua_State. */
#include "lua_source.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_NAME, T_STRING, T_NUMBER, T_OP } tok_type;

typedef struct tok {
    tok_type type;
    size_t start, end; /* text[start..end) */
    int line;          /* 1-based line of the first character */
} tok;

typedef struct lexer {
    const char *s;
    size_t len, pos;
    int line;
    tok *toks;
    size_t n, cap;
} lexer;

/* Consumes one line ending at pos: \n, \r, \r\n or \n\r, as Lua counts them. */
static void newline(lexer *lx)
{
    char c = lx->s[lx->pos++];
    if (lx->pos < lx->len && (lx->s[lx->pos] == '\n' || lx->s[lx->pos] == '\r') &&
        lx->s[lx->pos] != c)
        lx->pos++;
    lx->line++;
}

/* "[", "=" * level, "[" at `at`: the level, else -1. */
static int long_open(const lexer *lx, size_t at)
{
    if (at >= lx->len || lx->s[at] != '[')
        return -1;
    size_t p = at + 1;
    while (p < lx->len && lx->s[p] == '=')
        p++;
    return p < lx->len && lx->s[p] == '[' ? (int)(p - at - 1) : -1;
}

/* pos is just past the opening bracket; skips to just past the matching close (or the end). */
static void skip_long(lexer *lx, int level)
{
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (c == '\n' || c == '\r') {
            newline(lx);
            continue;
        }
        lx->pos++;
        if (c != ']')
            continue;
        size_t p = lx->pos;
        while (p < lx->len && lx->s[p] == '=')
            p++;
        if (p < lx->len && lx->s[p] == ']' && (int)(p - lx->pos) == level) {
            lx->pos = p + 1;
            return;
        }
    }
}

/* pos is just past the quote q. Escaped line breaks (and \z) continue the string. */
static void skip_short(lexer *lx, char q)
{
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (c == q) {
            lx->pos++;
            return;
        }
        if (c == '\n' || c == '\r') /* unfinished string: Lua refuses it, so never here */
            return;
        if (c == '\\' && lx->pos + 1 < lx->len) {
            lx->pos++;
            if (lx->s[lx->pos] == '\n' || lx->s[lx->pos] == '\r')
                newline(lx);
            else
                lx->pos++;
            continue;
        }
        lx->pos++;
    }
}

static int push(lexer *lx, tok_type type, size_t start, int line)
{
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? 2 * lx->cap : 256;
        tok *t = realloc(lx->toks, cap * sizeof *t);
        if (t == NULL)
            return -1;
        lx->toks = t;
        lx->cap = cap;
    }
    lx->toks[lx->n++] = (tok){type, start, lx->pos, line};
    return 0;
}

static int tokenize(lexer *lx)
{
    static const char *const ops3[] = {"...", NULL};
    static const char *const ops2[] = {"==", "~=", "<=", ">=", "//", "::", "<<", ">>", "..",
                                       NULL};
    while (lx->pos < lx->len) {
        const char *s = lx->s;
        char c = s[lx->pos];
        size_t start = lx->pos;
        int line = lx->line;
        if (c == '\n' || c == '\r') {
            newline(lx);
            continue;
        }
        if (isspace((unsigned char)c)) {
            lx->pos++;
            continue;
        }
        if (c == '-' && lx->pos + 1 < lx->len && s[lx->pos + 1] == '-') {
            lx->pos += 2;
            int level = long_open(lx, lx->pos);
            if (level >= 0) {
                lx->pos += (size_t)level + 2;
                skip_long(lx, level);
            } else {
                while (lx->pos < lx->len && s[lx->pos] != '\n' && s[lx->pos] != '\r')
                    lx->pos++;
            }
            continue;
        }
        int level = long_open(lx, lx->pos);
        tok_type type = T_OP;
        if (level >= 0) {
            lx->pos += (size_t)level + 2;
            skip_long(lx, level);
            type = T_STRING;
        } else if (c == '"' || c == '\'') {
            lx->pos++;
            skip_short(lx, c);
            type = T_STRING;
        } else if (isalpha((unsigned char)c) || c == '_') {
            while (lx->pos < lx->len && (isalnum((unsigned char)s[lx->pos]) || s[lx->pos] == '_'))
                lx->pos++;
            type = T_NAME;
        } else if (isdigit((unsigned char)c) ||
                   (c == '.' && lx->pos + 1 < lx->len && isdigit((unsigned char)s[lx->pos + 1]))) {
            lx->pos++;
            while (lx->pos < lx->len) {
                char d = s[lx->pos];
                char prev = s[lx->pos - 1];
                if (isalnum((unsigned char)d) || d == '.' ||
                    ((d == '+' || d == '-') && strchr("eEpP", prev) != NULL))
                    lx->pos++;
                else
                    break;
            }
            type = T_NUMBER;
        } else {
            size_t n = 1;
            for (int i = 0; ops3[i]; i++)
                if (lx->len - lx->pos >= 3 && strncmp(s + lx->pos, ops3[i], 3) == 0)
                    n = 3;
            for (int i = 0; n == 1 && ops2[i]; i++)
                if (lx->len - lx->pos >= 2 && strncmp(s + lx->pos, ops2[i], 2) == 0)
                    n = 2;
            lx->pos += n;
        }
        if (push(lx, type, start, line) != 0)
            return -1;
    }
    return 0;
}

static int is(const lexer *lx, size_t i, tok_type type, const char *text)
{
    if (i >= lx->n || lx->toks[i].type != type)
        return 0;
    size_t n = lx->toks[i].end - lx->toks[i].start;
    return strlen(text) == n && strncmp(lx->s + lx->toks[i].start, text, n) == 0;
}

static int tok_equals(const lexer *lx, size_t i, const char *text)
{
    size_t n = lx->toks[i].end - lx->toks[i].start;
    return text && strlen(text) == n && strncmp(lx->s + lx->toks[i].start, text, n) == 0;
}

typedef struct candidate {
    size_t open;    /* the '(' of the parameter list */
    size_t last;    /* the `end` */
    int method;     /* `function a:b(...)`: self is implicit */
    long name;      /* token naming the function (or the key it is assigned to), -1 if none */
    int quoted;     /* name is a string token ["key"] */
} candidate;

/* The `end` closing the block opened at token i, or -1. */
static long match_end(const lexer *lx, size_t i)
{
    int depth = 0;
    for (size_t j = i; j < lx->n; j++) {
        if (lx->toks[j].type != T_NAME)
            continue;
        if (is(lx, j, T_NAME, "function") || is(lx, j, T_NAME, "do") || is(lx, j, T_NAME, "if") ||
            is(lx, j, T_NAME, "repeat"))
            depth++;
        else if (is(lx, j, T_NAME, "end") || is(lx, j, T_NAME, "until"))
            if (--depth == 0)
                return is(lx, j, T_NAME, "end") ? (long)j : -1;
    }
    return -1;
}

/* Parses the header after `function` at i; 0 when it matches fn. */
static int header(const lexer *lx, size_t i, const rn_lua_fn_info *fn, candidate *c)
{
    size_t k = i + 1;
    c->method = 0;
    c->name = -1;
    c->quoted = 0;
    if (k < lx->n && lx->toks[k].type == T_NAME) {
        c->name = (long)k++;
        while ((is(lx, k, T_OP, ".") || is(lx, k, T_OP, ":")) && k + 1 < lx->n &&
               lx->toks[k + 1].type == T_NAME) {
            c->method = is(lx, k, T_OP, ":");
            c->name = (long)(k + 1);
            k += 2;
        }
    } else if (i >= 2 && is(lx, i - 1, T_OP, "=") && lx->toks[i - 2].type == T_NAME) {
        c->name = (long)(i - 2);
    } else if (i >= 4 && is(lx, i - 1, T_OP, "=") && is(lx, i - 2, T_OP, "]") &&
               lx->toks[i - 3].type == T_STRING) {
        c->name = (long)(i - 3);
        c->quoted = 1;
    }
    if (!is(lx, k, T_OP, "("))
        return -1;
    c->open = k;
    if (lx->toks[k].line != fn->linedefined && lx->toks[i].line != fn->linedefined)
        return -1;
    int nparams = c->method, vararg = 0;
    for (k++; k < lx->n && !is(lx, k, T_OP, ")"); k++) {
        if (lx->toks[k].type == T_NAME)
            nparams++;
        else if (is(lx, k, T_OP, "..."))
            vararg = 1;
    }
    return nparams == fn->nparams && vararg == !!fn->isvararg ? 0 : -1;
}

static int name_matches(const lexer *lx, const candidate *c, const char *name)
{
    if (c->name < 0 || name == NULL)
        return 0;
    const tok *t = &lx->toks[c->name];
    if (!c->quoted)
        return tok_equals(lx, (size_t)c->name, name);
    size_t n = t->end - t->start;
    return n >= 2 && strlen(name) == n - 2 && strncmp(lx->s + t->start + 1, name, n - 2) == 0;
}

static char *expression(const lexer *lx, const candidate *c)
{
    size_t from = lx->toks[c->open].start + 1, to = lx->toks[c->last].end;
    int empty = is(lx, c->open + 1, T_OP, ")");
    const char *self = c->method ? (empty ? "self" : "self, ") : "";
    size_t n = strlen("function(") + strlen(self) + (to - from) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "function(%s%.*s", self, (int)(to - from), lx->s + from);
    return out;
}

char *rn_lua_cut_function(const char *text, size_t len, const rn_lua_fn_info *fn, char *why,
                          size_t whylen)
{
    lexer lx = {text, len, 0, 1, NULL, 0, 0};
    candidate *cands = NULL;
    size_t n_cands = 0;
    char *out = NULL;
    if (tokenize(&lx) != 0)
        goto oom;
    /* A `function` on the first line, or just before a '(' on it (Lua counts from the '('). */
    for (size_t i = 0; i < lx.n; i++) {
        if (!is(&lx, i, T_NAME, "function") || lx.toks[i].line > fn->linedefined)
            continue;
        candidate c;
        long last = match_end(&lx, i);
        if (last < 0 || lx.toks[last].line != fn->lastlinedefined || header(&lx, i, fn, &c) != 0)
            continue;
        c.last = (size_t)last;
        candidate *grown = realloc(cands, (n_cands + 1) * sizeof *cands);
        if (grown == NULL)
            goto oom;
        cands = grown;
        cands[n_cands++] = c;
    }
    if (n_cands == 0) {
        snprintf(why, whylen, "no function spans lines %d-%d of its chunk", fn->linedefined,
                 fn->lastlinedefined);
        goto done;
    }
    size_t pick = 0, named = 0;
    for (size_t i = 0; i < n_cands; i++)
        if (name_matches(&lx, &cands[i], fn->name)) {
            if (named++ == 0)
                pick = i;
        }
    if (named != 1) {
        /* Still ambiguous: fine when every candidate reads the same. */
        pick = 0;
        char *first = expression(&lx, &cands[0]);
        if (first == NULL)
            goto oom;
        for (size_t i = 1; i < n_cands; i++) {
            char *other = expression(&lx, &cands[i]);
            if (other == NULL) {
                free(first);
                goto oom;
            }
            int same = strcmp(first, other) == 0;
            free(other);
            if (!same) {
                free(first);
                snprintf(why, whylen, "%zu different functions span lines %d-%d of its chunk",
                         n_cands, fn->linedefined, fn->lastlinedefined);
                goto done;
            }
        }
        out = first;
        goto done;
    }
    out = expression(&lx, &cands[pick]);
    if (out == NULL)
        goto oom;
    goto done;
oom:
    snprintf(why, whylen, "out of memory");
done:
    free(cands);
    free(lx.toks);
    return out;
}
