/* fleet_fixture.h - a partial daemon for fleet tests: loop, store, vault, plugins (the real
 * transport-local), audit, events, pool and fleet service, in a temporary directory. */
#ifndef FLEET_FIXTURE_H
#define FLEET_FIXTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "core.h"
#include "fleet.h"
#include "pool.h"

typedef struct fleet_fx {
    uv_loop_t loop;
    char dir[64];
    struct opsc_core core;
    bool pool_closed;
} fleet_fx;

/* Set up with `plugin_config` (INI text for [plugin.transport-local], may be
 * NULL) and pool options. Returns NULL on failure (printed). */
fleet_fx *fleet_fx_new(const char *plugin_config, const pool_opts *opts);
/* Close the pool (if not done yet), everything else, run the loop to the
 * end and check it closes clean. */
void fleet_fx_free(fleet_fx *f);

/* Run the loop until *flag (or fail after `ms`). */
void fleet_fx_run_until(fleet_fx *f, const bool *flag, int ms);
/* Run the loop for about `ms`. */
void fleet_fx_run_for(fleet_fx *f, int ms);

/* Create a target from a JSON body (as POST /targets); its id is copied to `id`. */
void fleet_fx_target(fleet_fx *f, const char *body_json, char id[40]);
/* Store a record as is, skipping the checks (transports that are not loaded). */
void fleet_fx_raw_target(fleet_fx *f, const char *rec_json, char id[40]);
/* The stored record (new reference) or NULL. */
json_t *fleet_fx_get(fleet_fx *f, const char *db, const char *id);

#endif
