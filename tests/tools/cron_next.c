/* cron_next.c - command-line driver of the cron engine, for the oracle test and for humans.
 *
 * usage: cron_next [-p] [-s SEED] EXPR TZ FROM COUNT
 *   ("--" before EXPR when TZ is a negative offset like -09:30.)
 *   FROM is Unix seconds or an RFC 3339 time. Prints COUNT fire instants
 *   after FROM (before it with -p), one a line:
 *     UNIX  UTC-RFC3339  LOCAL-ISO8601  ABBR
 *   then "none" if the schedule ran out. Exit 0, or 2 with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "cron.h"
#include "util.h"

static int usage(void)
{
    fprintf(stderr, "usage: cron_next [-p] [-s SEED] EXPR TZ FROM COUNT\n");
    return 2;
}

static int parse_time(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end) {
        *out = v;
        return 0;
    }
    int64_t ms;
    if (rfc3339_parse(s, &ms))
        return -1;
    *out = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    return 0;
}

static void print_instant(const tz_t *tz, int64_t t)
{
    char utc[RFC3339_LEN], local[RFC3339_LEN];
    tz_info_t info;
    tz_utc_to_local(tz, t, &info);
    rfc3339_format(t * 1000, utc);
    rfc3339_format((t + info.utoff) * 1000, local);
    local[19] = '\0'; /* drop ".000Z": the offset follows */
    int off = info.utoff < 0 ? -info.utoff : info.utoff;
    printf("%lld %.19sZ %s%c%02d:%02d %s\n", (long long)t, utc, local, info.utoff < 0 ? '-' : '+',
           off / 3600, off / 60 % 60, info.abbr);
}

int main(int argc, char **argv)
{
    int opt;
    bool prev = false;
    const char *seed = "";
    while ((opt = getopt(argc, argv, "ps:")) != -1) {
        if (opt == 'p')
            prev = true;
        else if (opt == 's')
            seed = optarg;
        else
            return usage();
    }
    if (argc - optind != 4)
        return usage();
    char err[256];
    cron_t c;
    const tz_t *tz;
    int64_t t;
    long count = strtol(argv[optind + 3], NULL, 10);
    if (cron_parse(argv[optind], seed, &c, err, sizeof(err)) ||
        tz_get(argv[optind + 1], &tz, err, sizeof(err))) {
        fprintf(stderr, "cron_next: %s\n", err);
        return 2;
    }
    if (parse_time(argv[optind + 2], &t) || count < 0) {
        fprintf(stderr, "cron_next: bad FROM or COUNT\n");
        return 2;
    }
    for (long i = 0; i < count; i++) {
        t = prev ? cron_prev(&c, tz, t) : cron_next(&c, tz, t);
        if (t == CRON_NONE) {
            printf("none\n");
            break;
        }
        print_instant(tz, t);
    }
    tz_cache_clear();
    return 0;
}
