/* The recipe tree: typed getters (exact messages), --set, and write_lua round trips through the
 * sandbox. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_test.h"
#include "sandbox.h"

static char err[1024];

#define CHECK_STR(a, b)                                                                  \
    do {                                                                                 \
        const char *a_ = (a), *b_ = (b);                                                 \
        CHECK(a_ != NULL && strcmp(a_, b_) == 0);                                        \
        if (a_ == NULL || strcmp(a_, b_) != 0)                                           \
            fprintf(stderr, "  got  \"%s\"\n  want \"%s\"\n", a_ ? a_ : "(null)", b_);   \
    } while (0)

static rn_value *tree(const char *const *sets, size_t n)
{
    rn_value *root = rn_value_new(RN_V_TABLE, "");
    for (size_t i = 0; i < n; i++) {
        int rc = rn_value_set(root, sets[i], err, sizeof err);
        CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "  %s: %s\n", sets[i], err);
    }
    return root;
}

static void test_getters(void)
{
    static const char *const sets[] = {
        "optimizer.lr=\"fast\"", "optimizer.momentum=1.5", "optimizer.beta=0.9",
        "optimizer.steps=100", "data.batch_size=12.5", "data.workers=2", "data.pow=128.0",
        "data.big=2048", "data.shuffle=yes", "data.pin=true", "name=42", "title=hello",
        "seed=7"};
    rn_value *root = tree(sets, sizeof sets / sizeof *sets);
    const rn_value *opt = rn_value_field(root, "optimizer");
    const rn_value *data = rn_value_field(root, "data");
    double d;
    int64_t i;
    int b;
    const char *s;

    CHECK(rn_get_number(opt, "lr", 1, 0, 1, 0, &d, err, sizeof err) == -1);
    CHECK_STR(err, "optimizer.lr: expected a number, got string \"fast\"");
    CHECK(rn_get_number(opt, "momentum", 1, 0, 0, 1, &d, err, sizeof err) == -1);
    CHECK_STR(err, "optimizer.momentum: expected a number in [0, 1], got 1.5");
    CHECK(rn_get_number(opt, "beta", 1, 0, 0, 1, &d, err, sizeof err) == 0);
    CHECK_NEAR(d, 0.9, 0, 0);
    /* Integers are numbers too; min > max means no range. */
    CHECK(rn_get_number(opt, "steps", 0, 0, 1, 0, &d, err, sizeof err) == 0 && d == 100);
    CHECK(rn_get_number(opt, "steps", 0, 0, 0, 10, &d, err, sizeof err) == -1);
    CHECK_STR(err, "optimizer.steps: expected a number in [0, 10], got 100");
    CHECK(rn_get_number(opt, "wd", 1, 0, 1, 0, &d, err, sizeof err) == -1);
    CHECK_STR(err, "optimizer.wd: missing (expected a number)");
    CHECK(rn_get_number(opt, "wd", 0, 5e-4, 1, 0, &d, err, sizeof err) == 0 && d == 5e-4);
    CHECK(rn_get_number(NULL, "wd", 0, 3, 1, 0, &d, err, sizeof err) == 0 && d == 3);

    CHECK(rn_get_int(data, "batch_size", 1, 0, 1, 0, &i, err, sizeof err) == -1);
    CHECK_STR(err, "data.batch_size: expected an integer, got number 12.5");
    CHECK(rn_get_int(data, "workers", 1, 0, 1, 0, &i, err, sizeof err) == 0 && i == 2);
    CHECK(rn_get_int(data, "pow", 1, 0, 1, 0, &i, err, sizeof err) == 0 && i == 128);
    CHECK(rn_get_int(data, "big", 1, 0, 1, 1024, &i, err, sizeof err) == -1);
    CHECK_STR(err, "data.big: expected an integer in [1, 1024], got 2048");
    CHECK(rn_get_int(data, "shuffle", 1, 0, 1, 0, &i, err, sizeof err) == -1);
    CHECK_STR(err, "data.shuffle: expected an integer, got string \"yes\"");
    CHECK(rn_get_int(data, "epochs", 0, 3, 1, 0, &i, err, sizeof err) == 0 && i == 3);
    CHECK(rn_get_int(root, "epochs", 1, 3, 1, 0, &i, err, sizeof err) == -1);
    CHECK_STR(err, "epochs: missing (expected an integer)");
    CHECK(rn_get_int(root, "seed", 1, 0, 1, 0, &i, err, sizeof err) == 0 && i == 7);

    CHECK(rn_get_bool(data, "pin", 1, 0, &b, err, sizeof err) == 0 && b == 1);
    CHECK(rn_get_bool(data, "shuffle", 1, 0, &b, err, sizeof err) == -1);
    CHECK_STR(err, "data.shuffle: expected a boolean, got string \"yes\"");
    CHECK(rn_get_bool(data, "drop_last", 1, 0, &b, err, sizeof err) == -1);
    CHECK_STR(err, "data.drop_last: missing (expected a boolean)");
    CHECK(rn_get_bool(data, "drop_last", 0, 1, &b, err, sizeof err) == 0 && b == 1);

    CHECK(rn_get_string(root, "title", 1, NULL, &s, err, sizeof err) == 0);
    CHECK_STR(s, "hello");
    CHECK(rn_get_string(root, "name", 1, NULL, &s, err, sizeof err) == -1);
    CHECK_STR(err, "name: expected a string, got number 42");
    CHECK(rn_get_string(opt, "momentum", 1, NULL, &s, err, sizeof err) == -1);
    CHECK_STR(err, "optimizer.momentum: expected a string, got number 1.5");
    CHECK(rn_get_string(root, "device", 1, NULL, &s, err, sizeof err) == -1);
    CHECK_STR(err, "device: missing (expected a string)");
    CHECK(rn_get_string(root, "device", 0, "auto", &s, err, sizeof err) == 0);
    CHECK_STR(s, "auto");
    /* A getter on something that is not a table. */
    CHECK(rn_get_number(rn_value_field(opt, "beta"), "x", 0, 0, 1, 0, &d, err, sizeof err) == -1);
    CHECK_STR(err, "optimizer.beta: expected a table, got number 0.9");
    CHECK(rn_value_expected(opt, "a string", err, sizeof err) == -1);
    CHECK_STR(err, "optimizer: expected a string, got table");
    CHECK(rn_value_expected(root, "a list", err, sizeof err) == -1);
    CHECK_STR(err, "recipe: expected a list, got table");

    char buf[96];
    rn_value *f = rn_value_new(RN_V_NUMBER, "x");
    f->n = 3.0;
    CHECK_STR(rn_value_describe(f, buf, sizeof buf), "number 3.0");
    f->n = 1e-5;
    CHECK_STR(rn_value_describe(f, buf, sizeof buf), "number 1e-05");
    rn_value_free(f);
    CHECK_STR(rn_value_describe(rn_value_field(data, "pin"), buf, sizeof buf), "boolean true");
    CHECK_STR(rn_value_describe(NULL, buf, sizeof buf), "nil");
    rn_value_free(root);
}

static void test_paths(void)
{
    char *p;
    CHECK_STR(p = rn_path_join_key("", "optimizer"), "optimizer");
    free(p);
    CHECK_STR(p = rn_path_join_key("optimizer", "lr"), "optimizer.lr");
    free(p);
    CHECK_STR(p = rn_path_join_index("stages", 2), "stages[2]");
    free(p);
    CHECK_STR(p = rn_path_join_key("stages[2]", "lr"), "stages[2].lr");
    free(p);
    CHECK_STR(p = rn_path_join_key("data", "my key"), "data[\"my key\"]");
    free(p);
    CHECK_STR(p = rn_path_join_key("data", "end"), "data[\"end\"]");
    free(p);
}

static void test_set(void)
{
    rn_value *root = rn_value_new(RN_V_TABLE, "");
    CHECK(rn_value_set(root, "optimizer.lr=0.1", err, sizeof err) == 0);
    const rn_value *opt = rn_value_field(root, "optimizer");
    CHECK(opt && opt->type == RN_V_TABLE);
    CHECK_STR(opt->path, "optimizer");
    const rn_value *lr = rn_value_field(opt, "lr");
    CHECK(lr && lr->type == RN_V_NUMBER && lr->n == 0.1);
    CHECK_STR(lr->path, "optimizer.lr");
    /* Overwrite, with another type. */
    CHECK(rn_value_set(root, "optimizer.lr = 3", err, sizeof err) == 0);
    lr = rn_value_field(opt, "lr");
    CHECK(lr->type == RN_V_INT && lr->i == 3 && lr->n == 3.0);
    CHECK_STR(lr->path, "optimizer.lr");

    static const struct { const char *set, *key; rn_vtype type; double n; const char *s; } lits[] = {
        {"v=1e-3", "v", RN_V_NUMBER, 1e-3, NULL},
        {"v=-2", "v", RN_V_INT, -2, NULL},
        {"v=0x10", "v", RN_V_INT, 16, NULL},
        {"v=.5", "v", RN_V_NUMBER, 0.5, NULL},
        {"v=5.", "v", RN_V_NUMBER, 5, NULL},
        {"v=99999999999999999999", "v", RN_V_NUMBER, 1e20, NULL},
        {"v=true", "v", RN_V_BOOL, 1, NULL},
        {"v=false", "v", RN_V_BOOL, 0, NULL},
        {"v=cosine", "v", RN_V_STRING, 0, "cosine"},
        {"v=\"a b\"", "v", RN_V_STRING, 0, "a b"},
        {"v='it''s'", "v", RN_V_STRING, 0, NULL}, /* malformed: checked below */
        {"v='sgd'", "v", RN_V_STRING, 0, "sgd"},
        {"v=\"x=1\"", "v", RN_V_STRING, 0, "x=1"},
        {"v=\"tab\\there\"", "v", RN_V_STRING, 0, "tab\there"},
        {"v=\"10\"", "v", RN_V_STRING, 0, "10"},
        {"v=nan", "v", RN_V_STRING, 0, "nan"},
        {"v=inf", "v", RN_V_STRING, 0, "inf"},
        {"v=1e", "v", RN_V_STRING, 0, "1e"},
        {"v=", "v", RN_V_STRING, 0, ""},
    };
    for (size_t k = 0; k < sizeof lits / sizeof *lits; k++) {
        int rc = rn_value_set(root, lits[k].set, err, sizeof err);
        if (lits[k].type == RN_V_STRING && lits[k].s == NULL) {
            CHECK(rc == -1);
            CHECK_STR(err, "--set v='it''s': unterminated or malformed string literal");
            continue;
        }
        CHECK(rc == 0);
        const rn_value *v = rn_value_field(root, lits[k].key);
        CHECK(v && v->type == lits[k].type);
        if (v == NULL || v->type != lits[k].type) {
            fprintf(stderr, "  literal %s\n", lits[k].set);
            continue;
        }
        if (v->type == RN_V_INT)
            CHECK(v->i == (int64_t)lits[k].n);
        else if (v->type == RN_V_NUMBER)
            CHECK_NEAR(v->n, lits[k].n, 0, 1e-15);
        else if (v->type == RN_V_BOOL)
            CHECK(v->b == (int)lits[k].n);
        else
            CHECK_STR(v->s, lits[k].s);
    }

    /* Items: replace, append, create tables on the way. */
    CHECK(rn_value_set(root, "stages[1].epochs=3", err, sizeof err) == 0);
    CHECK(rn_value_set(root, "stages[2].lr=0.01", err, sizeof err) == 0);
    CHECK(rn_value_set(root, "stages[1].epochs=4", err, sizeof err) == 0);
    const rn_value *stages = rn_value_field(root, "stages");
    CHECK(stages && stages->n_items == 2);
    CHECK_STR(stages->items[0]->path, "stages[1]");
    CHECK(rn_value_field(stages->items[0], "epochs")->i == 4);
    CHECK_STR(rn_value_field(stages->items[1], "lr")->path, "stages[2].lr");
    CHECK(rn_value_set(root, "data[\"my key\"].x=1", err, sizeof err) == 0);
    const rn_value *x = rn_value_field(rn_value_field(rn_value_field(root, "data"), "my key"), "x");
    CHECK(x && x->i == 1);
    CHECK_STR(x->path, "data[\"my key\"].x");
    /* nil removes a field, or the last item. */
    CHECK(rn_value_set(root, "optimizer.lr=nil", err, sizeof err) == 0);
    CHECK(rn_value_field(opt, "lr") == NULL);
    CHECK(rn_value_set(root, "stages[2]=nil", err, sizeof err) == 0);
    CHECK(stages->n_items == 1);

    /* Errors name the override. */
    CHECK(rn_value_set(root, "optimizer.lr", err, sizeof err) == -1);
    CHECK_STR(err, "--set optimizer.lr: missing '=' (expected key.path=value)");
    CHECK(rn_value_set(root, " =3", err, sizeof err) == -1);
    CHECK_STR(err, "--set  =3: empty key path");
    CHECK(rn_value_set(root, "optimizer.beta=1", err, sizeof err) == 0);
    CHECK(rn_value_set(root, "optimizer.beta.x=1", err, sizeof err) == -1);
    CHECK_STR(err, "--set optimizer.beta.x=1: optimizer.beta is a number, not a table");
    CHECK(rn_value_set(root, "v.x=1", err, sizeof err) == -1);
    CHECK_STR(err, "--set v.x=1: v is a string, not a table");
    CHECK(rn_value_set(root, "a..b=1", err, sizeof err) == -1);
    CHECK(strncmp(err, "--set a..b=1: bad key path 'a..b'", 33) == 0);
    CHECK(rn_value_set(root, "stages[0]=1", err, sizeof err) == -1);
    CHECK(strncmp(err, "--set stages[0]=1: bad key path", 31) == 0);
    CHECK(rn_value_set(root, "1abc=1", err, sizeof err) == -1);
    CHECK(rn_value_set(root, "stages[5].lr=1", err, sizeof err) == -1);
    CHECK_STR(err, "--set stages[5].lr=1: stages has 1 items; setting stages[5] would leave a gap");
    CHECK(rn_value_set(root, "name=\"abc", err, sizeof err) == -1);
    CHECK_STR(err, "--set name=\"abc: unterminated or malformed string literal");
    rn_value_free(root);
}

/* Writes v, loads the file back through the sandbox and compares. */
static rn_value *reload(const rn_value *v, const char *path)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL && rn_value_write_lua(v, f) == 0);
    fclose(f);
    const char *lib = getenv("RN_RECIPE_LIB");
    rn_sandbox *sb = rn_sandbox_new(lib ? lib : ".", NULL, err, sizeof err);
    rn_value *back = rn_sandbox_run_file(sb, path, err, sizeof err);
    if (back == NULL)
        fprintf(stderr, "  reload: %s\n", err);
    rn_sandbox_free(sb);
    return back;
}

static void test_write_lua(void)
{
    static const char *const sets[] = {
        "seed=1", "lr=0.1", "tiny=1e-300", "three=3.0", "neg=-2.5", "big=9007199254740993",
        "min=-9223372036854775808", "max=9223372036854775807", "on=true", "off=false",
        "s=\"quote \\\" backslash \\\\ newline \\n tab \\t bell \\7 del \\127 end\"",
        "utf=\"grüße\"", "d[\"my key\"]=1", "d[\"end\"]=2", "d.ok=3", "d[\"1x\"]=4",
        "list[1]=1", "list[2]=\"two\"", "list[3].x=3.5", "empty.x=nil", "stages[1][1]=lr_find",
        "stages[1].end_lr=10"};
    rn_value *v = tree(sets, sizeof sets / sizeof *sets);
    char path[] = "/tmp/rn_value_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    rn_value *back = reload(v, path);
    CHECK(back != NULL && rn_value_equal(v, back));
    if (back) {
        const rn_value *three = rn_value_field(back, "three");
        CHECK(three->type == RN_V_NUMBER && three->n == 3.0);
        CHECK(rn_value_field(back, "min")->i == INT64_MIN);
        CHECK(rn_value_field(back, "big")->i == 9007199254740993LL);
        CHECK_STR(rn_value_field(back, "s")->s, rn_value_field(v, "s")->s);
        CHECK_STR(rn_value_field(back, "list")->items[2]->path, "list[3]");
        /* Writing the reloaded tree gives the same text (deterministic). */
        char *t1 = NULL, *t2 = NULL;
        size_t n1, n2;
        FILE *f1 = open_memstream(&t1, &n1), *f2 = open_memstream(&t2, &n2);
        rn_value_write_lua(v, f1);
        rn_value_write_lua(back, f2);
        fclose(f1);
        fclose(f2);
        CHECK_STR(t1, t2);
        free(t1);
        free(t2);
    }
    rn_value_free(back);

    /* The exact text for a small tree. */
    static const char *const small_sets[] = {"b[1]=\"x\"", "b[2]=2.5", "a=1", "c.end=true",
                                             "e.f=nil"};
    rn_value *small = tree(small_sets, sizeof small_sets / sizeof *small_sets);
    char *text = NULL;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    CHECK(rn_value_write_lua(small, f) == 0);
    fclose(f);
    CHECK_STR(text, "return {\n"
                    "  a = 1,\n"
                    "  b = {\n"
                    "    \"x\",\n"
                    "    2.5,\n"
                    "  },\n"
                    "  c = {\n"
                    "    [\"end\"] = true,\n"
                    "  },\n"
                    "  e = {},\n"
                    "}\n");
    free(text);
    back = reload(small, path);
    CHECK(back != NULL && rn_value_equal(small, back));
    rn_value_free(back);
    rn_value_free(small);

    /* Clone is deep and equal. */
    rn_value *c = rn_value_clone(v);
    CHECK(rn_value_equal(c, v) && c != v && c->fields[0] != v->fields[0]);
    CHECK_STR(rn_value_field(c, "list")->items[1]->s, "two");
    rn_value_free(c);
    rn_value_free(v);
    unlink(path);
}

int main(void)
{
    test_getters();
    test_paths();
    test_set();
    test_write_lua();
    return rn_test_report("test_value");
}
