/* fuzz_cron.c - libFuzzer target: cron parsing and next/prev in zones, POSIX TZ strings.
 *
 * Input: byte 0 picks the zone, bytes 1-8 the start instant, the rest is
 * "expression\0seed". When byte 0 picks the POSIX slot the seed is parsed as
 * a POSIX TZ string and used as the zone. Checked: nothing hangs or crashes,
 * next() is strictly later than its input (or CRON_NONE), prev() strictly
 * earlier, and the two agree on the set of fire instants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"

static const char *const zone_names[] = {
    "UTC",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "America/Santiago",
    "Europe/Dublin",
    "Asia/Kathmandu",
    "+05:45",
    "Antarctica/Troll",
    "America/Nuuk",
    "Africa/Cairo",
    "America/Havana",
};
#define NZONES (sizeof(zone_names) / sizeof(zone_names[0]))

static const tz_t *zones[NZONES];

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < NZONES; i++) {
        if (tz_get(zone_names[i], &zones[i], NULL, 0))
            abort(); /* tzdata missing: the run would test nothing */
    }
    return 0;
}

static int64_t load_time(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

static void check_instant(const cron_t *c, const tz_t *tz, int64_t t)
{
    int64_t n = cron_next(c, tz, t);
    CHECK(n == CRON_NONE || (n > t && n >= CRON_TIME_MIN && n <= CRON_TIME_MAX));
    int64_t p = cron_prev(c, tz, t);
    CHECK(p == CRON_NONE || (p < t && p >= CRON_TIME_MIN && p <= CRON_TIME_MAX));
    if (n != CRON_NONE) {
        CHECK(cron_prev(c, tz, n + 1) == n); /* n is a fire instant for prev() too */
        int64_t before = cron_prev(c, tz, n);
        CHECK(before == CRON_NONE || before <= t); /* nothing in (t, n) */
    }
    if (p != CRON_NONE) {
        int64_t after = cron_next(c, tz, p);
        /* nothing in (p, t); none at all after p only if none after t */
        CHECK(after == CRON_NONE ? n == CRON_NONE : after >= t && after > p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9 || size > CRON_EXPR_MAX + 200)
        return 0;
    char text[CRON_EXPR_MAX + 200];
    memcpy(text, data + 9, size - 9);
    text[size - 9] = '\0';
    const char *seed = text + strlen(text) + 1;
    if (seed > text + (size - 9))
        seed = "";
    char err[256];
    cron_t c;
    if (cron_parse(text, seed, &c, err, sizeof(err))) {
        CHECK(strstr(err, "at column") != NULL);
        return 0;
    }
    tz_t *own = NULL;
    const tz_t *tz = zones[data[0] % (NZONES + 1) % NZONES];
    if (data[0] % (NZONES + 1) == NZONES) {
        if (tz_posix_new(seed, &own, err, sizeof(err)))
            return 0;
        tz = own;
    }
    int64_t raw = load_time(data + 1);
    /* A raw 64-bit start is almost always out of range: also fold it into
     * 1960..10010 so the interesting years get most of the runs. */
    int64_t span = CRON_TIME_MAX + 20 * 365 * 86400LL;
    int64_t folded = (int64_t)((uint64_t)raw % (uint64_t)span) - 10 * 365 * 86400LL;
    CHECK(cron_next(&c, tz, raw) == CRON_NONE || cron_next(&c, tz, raw) > raw);
    CHECK(cron_prev(&c, tz, raw) == CRON_NONE || cron_prev(&c, tz, raw) < raw);
    check_instant(&c, tz, folded);
    tz_free(own);
    return 0;
}
