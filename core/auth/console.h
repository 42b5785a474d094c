/* console.h - console commands of opsconductord for an admin at the machine (daemon stopped):
 *   user add NAME --role R     create a local user (password from stdin)
 *   user passwd NAME           set a local user's password (from stdin); ends its sessions
 *   user disable NAME          disable a user; ends its sessions
 *   user enable NAME           enable a user again
 *   rotate-key                 re-wrap every credential's data key under a new master key
 * They open the store directly, so they fail (naming the daemon's pid) while
 * a daemon holds it: use the REST API then. Output goes to stdout/stderr;
 * the exit code is 0, 1 (failed) or 2 (usage). */
#ifndef OPSC_CONSOLE_H
#define OPSC_CONSOLE_H

struct config;

int console_user(struct config *cfg, int argc, char **argv);
int console_rotate_key(struct config *cfg, int argc, char **argv);

#endif
