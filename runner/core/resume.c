/* Continuing a run directory (see resume.h). */
#include "resume.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

static json_t *load(const char *dir, char *path, size_t len, char *err, size_t errlen)
{
    snprintf(path, len, "%s/provenance.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) snprintf(err, errlen, "%s: %s (is %s a run directory?)", path, je.text, dir);
    return j;
}

int rn_resume_read(const char *dir, rn_resume_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    char path[4096];
    json_t *j = load(dir, path, sizeof path, err, errlen);
    if (!j) return -1;
    const char *recipe = json_string_value(json_object_get(j, "recipe_abs"));
    if (!recipe) recipe = json_string_value(json_object_get(j, "recipe"));
    const json_t *ov = json_object_get(j, "overrides");
    int rc = -1;
    if (!recipe) {
        snprintf(err, errlen, "%s: no \"recipe\" (not written by runner?)", path);
    } else if (ov && !json_is_array(ov)) {
        snprintf(err, errlen, "%s: \"overrides\" is not a list", path);
    } else {
        info->recipe = strdup(recipe);
        info->overrides = calloc(json_array_size(ov) + 1, sizeof *info->overrides);
        for (size_t i = 0; info->overrides && i < json_array_size(ov); i++) {
            const char *s = json_string_value(json_array_get(ov, i));
            info->overrides[info->n_overrides++] = strdup(s ? s : "");
        }
        rc = info->recipe && info->overrides ? 0 : -1;
        if (rc) snprintf(err, errlen, "%s: out of memory", path);
    }
    json_decref(j);
    if (rc) rn_resume_info_free(info);
    return rc;
}

void rn_resume_info_free(rn_resume_info *info)
{
    for (int i = 0; info->overrides && i < info->n_overrides; i++) free(info->overrides[i]);
    free(info->overrides);
    free(info->recipe);
    memset(info, 0, sizeof *info);
}

int rn_resume_record(const char *dir, const char *command, int64_t from_step, const char *changed,
                     char *err, size_t errlen)
{
    char path[4096];
    json_t *j = load(dir, path, sizeof path, err, errlen);
    if (!j) return -1;
    json_t *list = json_object_get(j, "resumes");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(j, "resumes", list);
    }
    json_array_append_new(list, json_pack("{s:s, s:I, s:o}", "command", command, "from_step",
                                          (json_int_t)from_step, "recipe_changes",
                                          changed ? json_string(changed) : json_null()));
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int rc = rn_atomic_write(path, text, strlen(text), err, errlen);
    free(text);
    return rc;
}
