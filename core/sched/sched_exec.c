/* sched_exec.c - exec.h's functions as the scheduler's table. */
#include "scheduler.h"

const sched_exec_ops *sched_exec_linked(void)
{
    static const sched_exec_ops ops = {exec_run_start,       exec_run_record_missed,
                                       exec_run_cancel,      exec_active_for_schedule,
                                       exec_run_start_async, exec_flush};
    return &ops;
}
