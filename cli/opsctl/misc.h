/* misc.h - the commands that are not one of the generic verbs (misc.c, jobs.c, steplibs.c, runs.c,
 * notifications.c, discovery.c).
 */
#ifndef OPSCTL_MISC_H
#define OPSCTL_MISC_H

#include "resources.h"

int cmd_status(opsctl *c, const command *cmd, args *a);
int cmd_whoami(opsctl *c, const command *cmd, args *a);
int cmd_cron_preview(opsctl *c, const command *cmd, args *a);
/* schedules pause|resume|next: the action is the command's name. */
int cmd_schedule_action(opsctl *c, const command *cmd, args *a);
/* targets test, groups test: cmd->data is the resource. */
int cmd_test(opsctl *c, const command *cmd, args *a);
int cmd_group_targets(opsctl *c, const command *cmd, args *a);

int cmd_jobs_apply(opsctl *c, const command *cmd, args *a);
int cmd_jobs_export(opsctl *c, const command *cmd, args *a);
int cmd_jobs_versions(opsctl *c, const command *cmd, args *a);

int cmd_steplibs_upload(opsctl *c, const command *cmd, args *a);
int cmd_steplibs_show(opsctl *c, const command *cmd, args *a);
int cmd_steplibs_delete(opsctl *c, const command *cmd, args *a);
int cmd_steplibs_isolation(opsctl *c, const command *cmd, args *a);

int cmd_run(opsctl *c, const command *cmd, args *a);
int cmd_runs_show(opsctl *c, const command *cmd, args *a);
int cmd_runs_log(opsctl *c, const command *cmd, args *a);
int cmd_runs_cancel(opsctl *c, const command *cmd, args *a);
int cmd_runs_retry(opsctl *c, const command *cmd, args *a);

/* files.c */
int cmd_files_list(opsctl *c, const command *cmd, args *a);
int cmd_files_upload(opsctl *c, const command *cmd, args *a);
int cmd_files_download(opsctl *c, const command *cmd, args *a);
int cmd_files_delete(opsctl *c, const command *cmd, args *a);
int cmd_runs_files(opsctl *c, const command *cmd, args *a);

int cmd_channels_test(opsctl *c, const command *cmd, args *a);

int cmd_discovery_scan(opsctl *c, const command *cmd, args *a);
int cmd_discovery_onboard(opsctl *c, const command *cmd, args *a);
/* discovery scans watch|cancel, discovery profiles run: the action is the command's name. */
int cmd_scan_action(opsctl *c, const command *cmd, args *a);
int cmd_hosts_accept(opsctl *c, const command *cmd, args *a);
int cmd_profiles_next(opsctl *c, const command *cmd, args *a);

#endif
