/* The run directory: created only after the recipe validated; every file in it written whole. */
#ifndef RN_RUN_FILES_H
#define RN_RUN_FILES_H

#include "plugin_host.h"
#include "train.h"

/* Makes dir (and parents). Refuses a directory that already holds a run (summary.json,
 * metrics.csv or recipe.lua), so nothing written before is lost. */
int rn_run_dir_create(const char *dir, char *err, size_t errlen);
/* recipe.lua: the recipe after --set overrides, as a Lua table. */
int rn_write_resolved_recipe(const char *dir, const rn_value *root, char *err, size_t errlen);
/* provenance.json: recipe path (as given and absolute) and hash, resolved-recipe hash, the
 * command line and the overrides applied (--set, --seed, --device, as assignments), seed,
 * device, runner version, git revision of the runner source (when known), every plugin used with
 * id, version, file, sha256. */
int rn_write_provenance(const char *dir, const rn_run *r, const char *recipe_path,
                        const char *argv_line, const char *const *overrides, int n_overrides,
                        char *err, size_t errlen);
/* summary.json: status, final and best metrics, images/s, wall time, parameter count. */
int rn_write_summary(const char *dir, const rn_run *r, const char *status, const char *error,
                     char *err, size_t errlen);

#endif
