/* behaviour.h - what every POSIX transport must do, checked the same way for each (SSH, local). */
#ifndef TH_BEHAVIOUR_H
#define TH_BEHAVIOUR_H

#include "harness.h"

/* One behaviour test on a fresh connection from the suite's connect_ok(). */
#define BH_TEST(name)                                                                              \
    static void name(void **state)                                                                 \
    {                                                                                              \
        (void)state;                                                                               \
        opsc_conn *conn = connect_ok();                                                            \
        bh_##name(&plug, conn);                                                                    \
        th_close(&plug, conn);                                                                     \
    }

/* nm -D --defined-only `so` lists opsc_plugin_entry and nothing else. */
void bh_exports_only_the_entry_symbol(const char *so);

/* Processes whose whole command line is `cmdline` (pgrep -f '^cmdline$'). */
int bh_count_processes(const char *cmdline);
/* Poll (running the loop) until `want` processes match, at most `ms`; returns the last count. */
int bh_await_processes(const char *cmdline, int want, uint32_t ms);

void bh_exit_codes_and_signals(th_plugin *p, opsc_conn *conn);
void bh_env_and_cwd(th_plugin *p, opsc_conn *conn);
void bh_stdin_fed_command(th_plugin *p, opsc_conn *conn);
void bh_timeout_stops_the_remote_command(th_plugin *p, opsc_conn *conn);
void bh_cancel_leaves_no_remote_process(th_plugin *p, opsc_conn *conn);
void bh_cancel_at_any_moment_of_the_start_leaves_nothing(th_plugin *p, opsc_conn *conn);
void bh_output_100mb_streams_with_flat_memory(th_plugin *p, opsc_conn *conn);
void bh_put_and_get_with_mode_and_checksum(th_plugin *p, opsc_conn *conn);
/* Closes `conn` itself: the running command ends OPSC_ECANCELED and its process goes. */
void bh_close_cancels_running_commands(th_plugin *p, opsc_conn *conn);
void bh_sudo_without_a_password_prompt_keeps_stdin_clean(th_plugin *p, opsc_conn *conn);

/* `size` random bytes (generated, not sparse) put and got back, streamed both ways with
 * SHA-256 on both ends and flat memory (RSS checked without ASan, whose quarantine keeps
 * freed blocks resident); the rates are printed. */
void bh_big_put_and_get(th_plugin *p, opsc_conn *conn, unsigned long long size);

#endif
