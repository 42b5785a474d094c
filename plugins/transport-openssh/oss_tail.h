/* oss_tail.h - the markers a command's shell leaves at the end of stderr: how it ended.
 *
 * OpenSSH's client drops the exit-signal request, so the remote wrapper (oss_exec.c) reports
 * itself: "\036OPSC-RC n" from an EXIT trap when the command's shell exits normally and
 * "\036OPSC-END n" with the status the outer shell saw. This filter takes them out of the
 * stream and passes everything else through, in order. Pure code: the bytes come from the
 * target and are fuzzed.
 */
#ifndef OSS_TAIL_H
#define OSS_TAIL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct oss_tail {
    char held[48];
    size_t n;
    bool holding;
    bool have_rc, have_end;
    int rc, end;
} oss_tail;

typedef void (*oss_emit_fn)(void *ud, const char *data, size_t len);
void oss_tail_feed(oss_tail *t, const char *data, size_t len, oss_emit_fn emit, void *ud);
/* End of stream: release what is held. */
void oss_tail_flush(oss_tail *t, oss_emit_fn emit, void *ud);

#endif
