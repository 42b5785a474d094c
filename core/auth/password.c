/* password.c - yescrypt hashing and verification through libxcrypt, and the bounded hashing queue.
 */
#include "password.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zxcvbn.h>

#include <opsc/errors.h>

#include "threadpool.h"
#include "util.h"

int password_hash(const char *password, unsigned cost, char out[PASSWORD_HASH_MAX])
{
    if (!password || cost < 1 || cost > 11)
        return OPSC_EINVAL;
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$y$", cost, NULL, 0, setting, sizeof(setting)))
        return OPSC_ECRYPTO;
    /* struct crypt_data is 32 KiB: keep it off worker stacks, and wipe it
     * since it holds derived material. */
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (!cd)
        return OPSC_ENOMEM;
    int rc = OPSC_ECRYPTO;
    const char *h = crypt_r(password, setting, cd);
    if (h && h[0] == '$' && strlen(h) < PASSWORD_HASH_MAX) {
        memcpy(out, h, strlen(h) + 1);
        rc = 0;
    }
    secure_zero(cd, sizeof(*cd));
    free(cd);
    return rc;
}

bool password_verify(const char *password, const char *hash)
{
    if (!password || !hash || hash[0] != '$')
        return false;
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (!cd)
        return false;
    bool ok = false;
    const char *h = crypt_r(password, hash, cd);
    /* Lengths are not secret (they depend on the scheme only). */
    size_t n = strlen(hash);
    if (h && h[0] == '$' && strlen(h) == n)
        ok = ct_equal(h, hash, n);
    secure_zero(cd, sizeof(*cd));
    free(cd);
    return ok;
}

int password_dummy_setting(unsigned cost, char out[PASSWORD_HASH_MAX])
{
    if (cost < 1 || cost > 11)
        return OPSC_EINVAL;
    if (!crypt_gensalt_rn("$y$", cost, NULL, 0, out, PASSWORD_HASH_MAX))
        return OPSC_ECRYPTO;
    return 0;
}

/* ---- strength ------------------------------------------------------------------- */

#define ESTIMATE_MAX 256 /* bytes looked at: the first 256 must be strong on their own */
#define WORDS_MAX    32

/* Each word, and each part of it between spaces, dots, dashes, @ and _
 * ("Olga Petrova", "olga.p@example.org"): all of them an attacker knows. */
static size_t split_words(const char *const *words, char *store, size_t storelen,
                          const char *dict[WORDS_MAX + 2])
{
    size_t n = 0, used = 0;
    dict[n++] = "opsconductor";
    for (size_t i = 0; words && words[i] && n < WORDS_MAX; i++) {
        const char *w = words[i];
        for (const char *p = w; *p && n < WORDS_MAX;) {
            size_t len = strcspn(p, " .-_@+");
            if (len >= 3 && used + len + 1 <= storelen) {
                memcpy(store + used, p, len);
                store[used + len] = '\0';
                dict[n++] = store + used;
                used += len + 1;
            }
            p += len;
            p += *p ? 1 : 0;
        }
        if (strlen(w) >= 3 && n < WORDS_MAX)
            dict[n++] = w;
    }
    dict[n] = NULL;
    return n;
}

/* zxcvbn's score from the bits of entropy it estimates (log2 of the guesses). */
static int score_of(double bits)
{
    double log10_guesses = bits * 0.30103;
    return log10_guesses < 3    ? 0
           : log10_guesses < 6  ? 1
           : log10_guesses < 8  ? 2
           : log10_guesses < 10 ? 3
                                : 4;
}

static int strength(const char *password, const char *const *words)
{
    char head[ESTIMATE_MAX + 1], store[1024];
    const char *dict[WORDS_MAX + 2];
    snprintf(head, sizeof(head), "%s", password);
    split_words(words, store, sizeof(store), dict);
    int score = score_of(ZxcvbnMatch(head, dict, NULL));
    secure_zero(head, sizeof(head));
    return score;
}

int password_policy_check(const char *password, int min_score, const char *const *words, char *err,
                          size_t errlen)
{
    size_t n = password ? strlen(password) : 0;
    if (n < PASSWORD_MIN_LEN) {
        snprintf(err, errlen, "password must have at least %d characters", PASSWORD_MIN_LEN);
        return OPSC_EINVAL;
    }
    if (n > PASSWORD_MAX_LEN) {
        snprintf(err, errlen, "password must have at most %d characters", PASSWORD_MAX_LEN);
        return OPSC_EINVAL;
    }
    int score = min_score > 0 ? strength(password, words) : 4;
    if (score < min_score) {
        snprintf(err, errlen,
                 "password is too weak: strength %d of 4, at least %d is required ([auth] "
                 "password_min_score); a longer one, not built from the username, the display "
                 "name, common words or 'opsconductor', passes",
                 score, min_score);
        return OPSC_EINVAL;
    }
    return 0;
}

/* ---- hashing queue ---------------------------------------------------------- */

typedef struct hq_job {
    hash_queue *q;
    void (*work)(void *ud);
    void (*after)(void *ud, int status);
    void *ud;
    struct hq_job *next;
} hq_job;

struct hash_queue {
    uv_loop_t *loop;
    unsigned max_running, max_waiting;
    unsigned running, waiting;
    hq_job *head, *tail;
    bool closing;
};

int hash_queue_new(hash_queue **out, uv_loop_t *loop, unsigned max_running, unsigned max_waiting)
{
    if (max_running == 0)
        return OPSC_EINVAL;
    hash_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return OPSC_ENOMEM;
    q->loop = loop;
    q->max_running = max_running;
    q->max_waiting = max_waiting;
    *out = q;
    return 0;
}

static void job_run(void *ud)
{
    hq_job *j = ud;
    j->work(j->ud);
}

static void job_done(void *ud, int status);

static int job_start(hash_queue *q, hq_job *j)
{
    int rc = threadpool_queue(q->loop, job_run, job_done, j);
    if (rc < 0)
        return rc;
    q->running++;
    return 0;
}

static void start_waiting(hash_queue *q)
{
    while (q->head && q->running < q->max_running) {
        hq_job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        q->waiting--;
        if (job_start(q, j) < 0) {
            j->after(j->ud, OPSC_EIO);
            free(j);
        }
    }
}

static void job_done(void *ud, int status)
{
    hq_job *j = ud;
    hash_queue *q = j->q;
    q->running--;
    j->after(j->ud, status);
    free(j);
    if (q->closing) {
        if (q->running == 0)
            free(q);
        return;
    }
    start_waiting(q);
}

int hash_queue_submit(hash_queue *q, void (*work)(void *ud), void (*after)(void *ud, int status),
                      void *ud)
{
    if (q->closing)
        return OPSC_ESTATE;
    if (q->running >= q->max_running && q->waiting >= q->max_waiting)
        return OPSC_EBUSY;
    hq_job *j = calloc(1, sizeof(*j));
    if (!j)
        return OPSC_ENOMEM;
    *j = (hq_job){.q = q, .work = work, .after = after, .ud = ud};
    if (q->running < q->max_running) {
        int rc = job_start(q, j);
        if (rc < 0)
            free(j);
        return rc;
    }
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->waiting++;
    return 0;
}

unsigned hash_queue_pending(const hash_queue *q)
{
    return q->running + q->waiting;
}

void hash_queue_close(hash_queue *q)
{
    if (!q)
        return;
    q->closing = true;
    while (q->head) {
        hq_job *j = q->head;
        q->head = j->next;
        q->waiting--;
        j->after(j->ud, OPSC_ECANCELED);
        free(j);
    }
    q->tail = NULL;
    if (q->running == 0)
        free(q);
}
