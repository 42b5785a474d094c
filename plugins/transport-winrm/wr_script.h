/* wr_script.h - what runs on the target: PowerShell (or POSIX sh) command lines, file-copy scripts,
 * CLIXML. */
#ifndef WR_SCRIPT_H
#define WR_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr_buf.h"

/* cmd.exe refuses longer command lines ("The command line is too long."). */
#define WR_CMD_LINE_LIMIT 8191

typedef enum wr_dialect {
    WR_POWERSHELL, /* Windows: commands are PowerShell text */
    WR_POSIX_SH,   /* a WS-Management shell that runs /bin/sh (OMI on Linux, the test server) */
} wr_dialect;

/* A command line for the Command request: `exe` and `args` go to rsp:Command and
 * rsp:Arguments. When the script does not fit in one command line, `stdin_prefix`
 * holds a line that must be written to the command's stdin before anything else. */
typedef struct wr_cmdline {
    wr_buf exe;
    wr_buf args;
    wr_buf stdin_prefix;
} wr_cmdline;

void wr_cmdline_free(wr_cmdline *c);

/* The command line that runs `script` (UTF-8 PowerShell text) through
 * powershell.exe -EncodedCommand, with progress output off and the script's
 * exit code as the process's; long scripts travel on stdin. */
void wr_script_powershell(wr_cmdline *c, const char *script);
/* The same for any dialect (POSIX: the script is the command line). */
void wr_script_command(wr_cmdline *c, wr_dialect d, const char *script);

/* File copy scripts. put: reads base64 lines on stdin until a line "#sha256 <hex>",
 * writes `path` (via a temporary file), checks the digest and prints
 * "OK <hex> <bytes>" (exit 0) or fails with exit 3. get: prints the file as base64
 * lines then "#sha256 <hex>"; exit 2 when there is no such file. `mode` < 0: remote
 * default. */
void wr_script_put(wr_buf *script, wr_dialect d, const char *path, int mode, const char *owner);
void wr_script_get(wr_buf *script, wr_dialect d, const char *path);

/* Quote `s` as one literal argument: PowerShell '...' or POSIX '...'. */
void wr_quote(wr_buf *out, wr_dialect d, const char *s);

/* CLIXML (PowerShell's serialised error stream: a "#< CLIXML" line, then <Objs>
 * documents) decoded into the text a console would show. Feed stderr bytes: plain
 * text (a native program's stderr) passes through, complete <Objs> documents are
 * decoded into `out` as they arrive. */
typedef struct wr_clixml {
    wr_buf pending;
    int mode; /* 0: plain text, 1: inside CLIXML (after the marker) */
} wr_clixml;

/* Appends displayable text to `out`; at `final` flushes whatever is left. */
void wr_clixml_feed(wr_clixml *x, const char *data, size_t len, bool final, wr_buf *out);
void wr_clixml_free(wr_clixml *x);
/* Decodes one <Objs> document into out; false when it is not CLIXML. */
bool wr_clixml_decode(const char *xml, size_t len, wr_buf *out);

#endif
