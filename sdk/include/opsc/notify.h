/* opsc/notify.h - notification channels: email, Slack, Teams, webhooks.
 *
 * A notifier plugin registers an opsc_notifier with
 * opsc_host_api.register_notifier(). Users create channels (an instance of a
 * notifier with its settings, e.g. an SMTP relay and recipients, or a webhook
 * URL held as a vault secret) and rules that route events to channels. The
 * host renders the message, keeps it in a durable outbox, calls send(), and
 * retries with back-off when send reports a retryable failure; so send()
 * makes one attempt and never retries by itself.
 *
 * Threads: validate() and send() are called on the loop thread and must not
 * block; `done` must be called on the loop thread, never from inside send().
 * HTTP and SMTP go through opsc_host_api.curl_start() (ABI 1.1): the plugin
 * builds a libcurl easy handle and the host runs it on its multi handle on
 * the loop. Blocking work goes to opsc_host_api.queue_work().
 *
 * Delivery policy (the host's, so every channel type behaves alike): each
 * delivery has a stable id (msg->id; the same on every attempt and after a
 * restart) for idempotency keys and Message-IDs. A failed attempt is retried
 * after 5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h until the delivery is
 * older than [notifications] max_age. A notifier that spoke HTTP reports the
 * answer with opsc_host_api.notify_http_status() before calling `done`; the
 * host then decides by status (2xx delivered; 408, 429, 5xx retried, not
 * before Retry-After; 410 gives up and disables the channel; other 4xx give
 * up). Otherwise `retryable` decides.
 *
 * Secrets: the channel's secret (a vault credential: a Slack or Teams URL,
 * an SMTP password, a signing key) is handed to send() only. The host also
 * removes it from every error text a plugin reports, but never put it there.
 */
#ifndef OPSC_NOTIFY_H
#define OPSC_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One message. Borrowed until `done` has run: copy what must live longer.
 * Members after `payload_json` came with ABI 1.1: read them only when
 * `size` covers them (OPSC_NOTIFY_MSG_HAS). */
typedef struct opsc_notify_msg {
    size_t size;
    const char *id;           /* outbox id: stable across retries, usable for idempotency */
    const char *event;        /* "run.failed", "run.succeeded", "schedule.missed", "test"... */
    const char *severity;     /* "info", "warning", "error" */
    const char *subject;      /* one line, plain text */
    const char *text;         /* body, rendered from the channel type's template (plain text,
                                 Slack mrkdwn or Teams markdown) */
    const char *link;         /* URL of the object in the API, or NULL */
    const char *payload_json; /* the event as a JSON object, for webhooks */
    /* ABI 1.1 */
    const char *body;            /* the rule's body template rendered (a webhook's body), or NULL */
    const char *recipients_json; /* JSON array of extra addresses (users who subscribed their
                                    notify_email), or NULL; email channels add them */
} opsc_notify_msg;

/* True when `msg` has member `m` (use for members newer than 1.0). */
#define OPSC_NOTIFY_MSG_HAS(msg, m)                                                                \
    ((msg)->size >= offsetof(opsc_notify_msg, m) + sizeof(((opsc_notify_msg *)0)->m))

/* `status` 0: delivered. < 0: failed; `retryable` says whether the host should
 * try again later (network error, 5xx, 429) or give up (4xx, bad address).
 * `error` is borrowed until return and must not contain secrets. */
typedef void (*opsc_notify_done_cb)(void *ud, int status, bool retryable, const char *error);

typedef struct opsc_notifier {
    size_t size;
    const char *name;            /* channel type: "email", "slack", "teams", "webhook" */
    const char *summary;
    /* JSON Schema (text) of a channel's settings, or NULL. The host checks
     * settings against it (with its defaults added) before validate(). */
    const char *settings_schema;
    /* Check a channel's settings (JSON text, borrowed until return) before
     * they are stored; may be NULL. 0, or OPSC_ESCHEMA with a message naming
     * the setting in `err` (NUL-terminated, truncated to errlen; no secrets). */
    int (*validate)(void *state, const char *settings_json, char *err, size_t errlen);
    /* Deliver `msg` with the channel's settings (JSON text). `secret` is the
     * decrypted value of the channel's credential, or NULL; `msg`,
     * `settings_json` and `secret` are borrowed until `done` has run; never
     * keep or log the secret. Make one attempt: the host retries. Returns 0
     * and calls `done` exactly once later, or returns a negative OPSC_E*
     * code (`done` never runs; the host gives the delivery up). */
    int (*send)(void *state, const opsc_notify_msg *msg, const char *settings_json,
                const char *secret, opsc_notify_done_cb done, void *ud);
} opsc_notifier;

#ifdef __cplusplus
}
#endif
#endif /* OPSC_NOTIFY_H */
