/* uuid.c - UUIDv7 ids: time-ordered, so LMDB keys sort by creation time. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms;
static uint16_t seq; /* 12-bit counter in rand_a, randomly seeded each millisecond */

/* RFC 9562 method 1: a counter in rand_a keeps ids of one millisecond ordered.
 * On overflow we borrow the next millisecond, so ordering never breaks. */
static int64_t next_stamp(int64_t ms, uint16_t *counter)
{
    pthread_mutex_lock(&seq_lock);
    if (ms > last_ms) {
        uint16_t r;
        rand_bytes(&r, sizeof(r));
        seq = r & 0x1ff; /* leave room to count up within the millisecond */
        last_ms = ms;
    } else if (++seq > 0xfff) {
        seq = 0;
        last_ms++;
    }
    ms = last_ms;
    *counter = seq;
    pthread_mutex_unlock(&seq_lock);
    return ms;
}

static void format_uuid(char out[UUID_STR_LEN], const unsigned char b[16])
{
    snprintf(out, UUID_STR_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

int uuid7_new_at(char out[UUID_STR_LEN], int64_t unix_ms)
{
    unsigned char b[16];
    uint16_t counter;
    int rc = rand_bytes(b + 8, 8);
    if (rc)
        return rc;
    int64_t ms = next_stamp(unix_ms, &counter);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    b[6] = (unsigned char)(0x70 | (counter >> 8));
    b[7] = (unsigned char)(counter & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    format_uuid(out, b);
    return 0;
}

int uuid7_new(char out[UUID_STR_LEN])
{
    return uuid7_new_at(out, clock_now_ms());
}

bool uuid_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

int64_t uuid7_time_ms(const char *s)
{
    if (!uuid_valid(s) || s[14] != '7')
        return -1;
    int64_t ms = 0;
    for (int i = 0; i < 13; i++) {
        if (s[i] == '-')
            continue;
        int c = tolower((unsigned char)s[i]);
        ms = (ms << 4) | (c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return ms;
}
