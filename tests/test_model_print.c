/* Name patterns for parameter groups, the groups check, and the printed model table. */
#include <stdlib.h>
#include <string.h>
#include "model_print.h"
#include "param_groups.h"
#include "rn_test.h"

static rn_value *str(const char *path, const char *s)
{
    rn_value *v = rn_value_new(RN_V_STRING, path);
    v->s = strdup(s);
    return v;
}

int main(void)
{
    /* glob: '*' crosses dots, '?' is one character, everything else is literal */
    CHECK(rn_pattern_match("layer4.*", "layer4.0.conv1.weight"));
    CHECK(!rn_pattern_match("layer4.*", "layer40.weight")); /* the dot is literal */
    CHECK(!rn_pattern_match("layer4.*", "layer3.0.conv1.weight"));
    CHECK(rn_pattern_match("*.bias", "layer1.0.downsample.1.bias"));
    CHECK(!rn_pattern_match("*.bias", "bias"));
    CHECK(rn_pattern_match("*bn*", "layer2.1.bn2.weight"));
    CHECK(rn_pattern_match("fc.*", "fc.weight") && !rn_pattern_match("fc.*", "xfc.weight"));
    CHECK(rn_pattern_match("conv?.weight", "conv1.weight") &&
          !rn_pattern_match("conv?.weight", "conv12.weight"));
    CHECK(rn_pattern_match("*", "") && rn_pattern_match("**a**", "xay"));
    CHECK(!rn_pattern_match("a*b*c", "aXbXd"));

    /* A small model: conv1 -> flatten -> fc */
    char err[256];
    rn_layer **ls = malloc(3 * sizeof *ls);
    ls[0] = rn_conv2d_create("conv1", 1, 2, 3, 1, 1, true, 1, err, sizeof err);
    ls[1] = rn_flatten_create();
    ls[2] = rn_linear_create("fc", 2 * 4 * 4, 3, true, 2, err, sizeof err);
    rn_model m;
    CHECK(rn_model_init(&m, ls, 3, rn_shape_make(3, (int64_t[]){1, 4, 4}), 2, err,
                        sizeof err) == 0);

    rn_value *groups = rn_value_new(RN_V_TABLE, "groups");
    rn_value_put_field(groups, "head", str("groups.head", "fc.*"));
    rn_value *list = rn_value_new(RN_V_TABLE, "groups.no_decay");
    rn_value_push_item(list, str("groups.no_decay[1]", "conv1.bias"));
    rn_value_put_field(groups, "no_decay", list);
    CHECK(rn_groups_check(groups, &m, err, sizeof err) == 0);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    rn_model_print(f, &m, "tiny", groups, true);
    fclose(f);
    /* conv 18 + 2, fc 96 + 3: 119 parameters; FLOPs conv 2 * 18 * 16 = 576, fc 2 * 96 = 192 */
    CHECK(strstr(text, "model tiny: input 1x4x4, 119 parameters, 768 FLOPs") != NULL);
    CHECK(strstr(text, "2x4x4") && strstr(text, "32 "));
    CHECK(strstr(text, "default                        18 parameters in 1 tensors") != NULL);
    CHECK(strstr(text, "head                           99 parameters in 2 tensors") != NULL);
    CHECK(strstr(text, "no_decay                        2 parameters in 1 tensors") != NULL);
    if (!strstr(text, "119 parameters, 768 FLOPs")) fputs(text, stderr);
    free(text);

    /* Each parameter in at most one group: fc.bias in head and in no_decay is refused. */
    int group_of[4];
    CHECK(rn_groups_assign(groups, &m, group_of, err, sizeof err) == 0);
    CHECK(group_of[0] == -1 && group_of[1] == 1 && group_of[2] == 0 && group_of[3] == 0);
    rn_value_push_item(list, str("groups.no_decay[2]", "*.bias"));
    CHECK(rn_groups_check(groups, &m, err, sizeof err) != 0);
    CHECK(strcmp(err, "groups.no_decay[2]: parameter \"fc.bias\" is in groups \"head\" and "
                      "\"no_decay\"; groups must not overlap") == 0);

    /* A pattern that matches nothing names itself and lists the modules. */
    free(list->items[1]->s);
    list->items[1]->s = strdup("conv1.bias"); /* back to disjoint groups */
    rn_value_put_field(groups, "body", str("groups.body", "layer4.*"));
    CHECK(rn_groups_check(groups, &m, err, sizeof err) != 0);
    CHECK(strcmp(err, "groups.body: pattern \"layer4.*\" matches no parameter (the model's "
                      "modules: conv1, fc)") == 0);
    rn_value *bad = rn_value_new(RN_V_TABLE, "groups");
    rn_value_push_item(bad, str("groups[1]", "fc.*"));
    CHECK(rn_groups_check(bad, &m, err, sizeof err) != 0 && strstr(err, "named groups"));
    rn_value_free(bad);
    rn_value_free(groups);
    rn_model_free(&m);

    /* A convolution wide enough for Winograd says so when the run is on the CPU (which
     * convolutions take it: test_conv_winograd), and not otherwise; the narrow one never. */
    ls = malloc(2 * sizeof *ls);
    ls[0] = rn_conv2d_create("narrow", 1, 32, 3, 1, 1, true, 1, err, sizeof err);
    ls[1] = rn_conv2d_create("wide", 32, 64, 3, 1, 1, true, 2, err, sizeof err);
    CHECK(rn_model_init(&m, ls, 2, rn_shape_make(3, (int64_t[]){1, 6, 6}), 2, err,
                        sizeof err) == 0);
    for (int cpu = 0; cpu < 2; cpu++) {
        f = open_memstream(&text, &len);
        rn_model_print(f, &m, "wide", NULL, cpu);
        fclose(f);
        const char *wide = strstr(text, "\n  wide "), *narrow = strstr(text, "\n  narrow ");
        CHECK(wide && narrow);
        if (wide && narrow) {
            const char *want = cpu ? "conv2d (winograd) " : "conv2d  ";
            CHECK(strncmp(strstr(wide, "conv2d"), want, strlen(want)) == 0);
            CHECK(strncmp(strstr(narrow, "conv2d"), "conv2d  ", 8) == 0);
        }
        free(text);
    }
    rn_model_free(&m);
    return rn_test_report("test_model_print");
}
