/* cron_next.c - command-line driver of the cron engine, for the oracle test and for humans.
 *
 * usage: cron_next [-p] [-s SEED] EXPR TZ FROM COUNT
 *        cron_next -b [-p] [-s SEED]
 *   ("--" before EXPR when TZ is a negative offset like -09:30.)
 *   FROM is Unix seconds or an RFC 3339 time. Prints COUNT fire instants
 *   after FROM (before it with -p), one a line:
 *     UNIX  UTC-RFC3339  LOCAL-ISO8601  ABBR
 *   then "none" if the schedule ran out. Exit 0, or 2 with a message.
 *   -b reads requests "EXPR<tab>TZ<tab>FROM<tab>COUNT" from stdin, one a line, and answers
 *   each with its instants (or "error: MESSAGE") and a line "end": the oracle test asks
 *   thousands of questions, and a process per question under AddressSanitizer costs more
 *   than the answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "cron.h"
#include "util.h"

static int usage(void)
{
    fprintf(stderr, "usage: cron_next [-p] [-s SEED] EXPR TZ FROM COUNT\n"
                    "       cron_next -b [-p] [-s SEED] < requests\n");
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

/* Answers one request; the message of a bad one goes to `err`. */
static int answer(const char *expr, const char *zone, const char *from, const char *count_text,
                  bool prev, const char *seed, char *err, size_t errlen)
{
    cron_t c;
    const tz_t *tz;
    int64_t t;
    long count = strtol(count_text, NULL, 10);
    if (cron_parse(expr, seed, &c, err, errlen) || tz_get(zone, &tz, err, errlen))
        return -1;
    if (parse_time(from, &t) || count < 0) {
        snprintf(err, errlen, "bad FROM or COUNT");
        return -1;
    }
    for (long i = 0; i < count; i++) {
        t = prev ? cron_prev(&c, tz, t) : cron_next(&c, tz, t);
        if (t == CRON_NONE) {
            printf("none\n");
            break;
        }
        print_instant(tz, t);
    }
    return 0;
}

static int serve_batch(bool prev, const char *seed)
{
    char *line = NULL, err[256];
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *field[4], *rest = line;
        int n = 0;
        while (n < 4 && (field[n] = strsep(&rest, "\t")))
            n++;
        if (n < 4 || rest)
            printf("error: want EXPR<tab>TZ<tab>FROM<tab>COUNT\n");
        else if (answer(field[0], field[1], field[2], field[3], prev, seed, err, sizeof(err)))
            printf("error: %s\n", err);
        printf("end\n");
        fflush(stdout);
    }
    free(line);
    tz_cache_clear();
    return 0;
}

int main(int argc, char **argv)
{
    int opt;
    bool prev = false, batch = false;
    const char *seed = "";
    while ((opt = getopt(argc, argv, "bps:")) != -1) {
        if (opt == 'b')
            batch = true;
        else if (opt == 'p')
            prev = true;
        else if (opt == 's')
            seed = optarg;
        else
            return usage();
    }
    if (batch)
        return argc == optind ? serve_batch(prev, seed) : usage();
    if (argc - optind != 4)
        return usage();
    char err[256];
    int rc = answer(argv[optind], argv[optind + 1], argv[optind + 2], argv[optind + 3], prev,
                    seed, err, sizeof(err));
    if (rc)
        fprintf(stderr, "cron_next: %s\n", err);
    tz_cache_clear();
    return rc ? 2 : 0;
}
