/* sched_exec.c - exec.h's functions as the scheduler's table, when an executor is linked in. */
#include "scheduler.h"

/* Weak: a daemon built before the executor existed links without it, and
 * its scheduler then refuses fires with a clear error instead of failing to
 * link. When the executor is linked, these resolve to it. */
#pragma weak exec_run_start
#pragma weak exec_run_record_missed
#pragma weak exec_run_cancel
#pragma weak exec_active_for_schedule

const sched_exec_ops *sched_exec_linked(void)
{
    static const sched_exec_ops ops = {exec_run_start, exec_run_record_missed, exec_run_cancel,
                                       exec_active_for_schedule};
    if (!ops.run_start || !ops.run_record_missed || !ops.run_cancel || !ops.active_for_schedule)
        return NULL;
    return &ops;
}
