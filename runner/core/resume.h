/* Continuing a run directory (runner --resume DIR): what provenance.json says the run was started
 * from, and the record of each resume. */
#ifndef RN_RESUME_H
#define RN_RESUME_H

#include <stddef.h>
#include <stdint.h>

typedef struct rn_resume_info {
    char *recipe;      /* the recipe file the run was started from (absolute when known) */
    char **overrides;  /* the --set, --seed and --device assignments, in the order applied */
    int n_overrides;
} rn_resume_info;

/* Reads DIR/provenance.json. Errors name the file and what is missing. */
int rn_resume_read(const char *dir, rn_resume_info *info, char *err, size_t errlen);
void rn_resume_info_free(rn_resume_info *info);

/* Appends {command, from_step, changed} to provenance.json's "resumes" list (atomically).
 * changed: the recipe differences accepted with --force, or NULL. */
int rn_resume_record(const char *dir, const char *command, int64_t from_step, const char *changed,
                     char *err, size_t errlen);

#endif
