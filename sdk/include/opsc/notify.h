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
 * block (libcurl's multi interface on the loop is the usual way); `done`
 * must be called on the loop thread, never from inside send().
 */
#ifndef OPSC_NOTIFY_H
#define OPSC_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One message. Borrowed until `done` has run. */
typedef struct opsc_notify_msg {
    size_t size;
    const char *id;       /* outbox id: stable across retries, usable for idempotency */
    const char *event;    /* "run.failed", "run.succeeded", "schedule.missed", "test"... */
    const char *severity; /* "info", "warning", "error" */
    const char *subject;  /* one line, plain text */
    const char *text;     /* body, plain text */
    const char *link;     /* URL of the object in the API, or NULL */
    const char *payload_json; /* the event as a JSON object, for webhooks */
} opsc_notify_msg;

/* `status` 0: delivered. < 0: failed; `retryable` says whether the host should
 * try again later (network error, 5xx, 429) or give up (4xx, bad address).
 * `error` is borrowed until return and must not contain secrets. */
typedef void (*opsc_notify_done_cb)(void *ud, int status, bool retryable, const char *error);

typedef struct opsc_notifier {
    size_t size;
    const char *name;            /* channel type: "email", "slack", "teams", "webhook" */
    const char *summary;
    const char *settings_schema; /* JSON Schema (text) of a channel's settings */
    /* Check a channel's settings (JSON text, borrowed) before they are stored. */
    int (*validate)(void *state, const char *settings_json, char *err, size_t errlen);
    /* Deliver `msg` with the channel's settings. `secret` is the decrypted
     * value of the channel's credential, or NULL; borrowed until `done` has run,
     * never to be kept or logged. */
    int (*send)(void *state, const opsc_notify_msg *msg, const char *settings_json,
                const char *secret, opsc_notify_done_cb done, void *ud);
} opsc_notifier;

#ifdef __cplusplus
}
#endif
#endif /* OPSC_NOTIFY_H */
