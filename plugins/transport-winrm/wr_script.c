/* wr_script.c - PowerShell/sh command lines, file-copy scripts and the CLIXML decoder. */
#include "wr_script.h"

#include <stdlib.h>
#include <string.h>

#include "wr_xml.h"

#define PS_EXE      "powershell.exe"
#define PS_ARGS     "-NoProfile -NonInteractive -EncodedCommand "
#define PS_PREAMBLE "$ProgressPreference = 'SilentlyContinue'\n"

/* Reads the real script from the first stdin line (base64 of UTF-8 text), so
 * scripts of any length run without a command line over cmd.exe's limit, and
 * the rest of stdin stays the script's own. */
static const char ps_stdin_bootstrap[] =
    PS_PREAMBLE "$opscScript = [Console]::In.ReadLine()\n"
                "$opscScript = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String("
                "$opscScript))\n"
                "& ([ScriptBlock]::Create($opscScript))\n"
                "exit $LASTEXITCODE\n";

void wr_cmdline_free(wr_cmdline *c)
{
    wr_buf_free(&c->exe);
    wr_buf_free(&c->args);
    wr_buf_free(&c->stdin_prefix);
}

static void encoded_args(wr_buf *args, const char *script, size_t len)
{
    wr_buf utf16 = {0};
    wr_utf16le_from_utf8(&utf16, script, len);
    wr_buf_adds(args, PS_ARGS);
    wr_b64_encode(args, utf16.p ? utf16.p : "", utf16.len);
    args->oom |= utf16.oom;
    wr_buf_free(&utf16);
}

void wr_script_powershell(wr_cmdline *c, const char *script)
{
    wr_buf full = {0};
    wr_buf_adds(&full, PS_PREAMBLE);
    wr_buf_adds(&full, script);
    wr_buf_adds(&full, "\nexit $LASTEXITCODE\n");
    wr_buf_adds(&c->exe, PS_EXE);
    encoded_args(&c->args, full.p, full.len);
    wr_buf_free(&full);
    if (c->exe.len + 1 + c->args.len <= WR_CMD_LINE_LIMIT)
        return;
    wr_buf_reset(&c->args);
    encoded_args(&c->args, ps_stdin_bootstrap, sizeof ps_stdin_bootstrap - 1);
    wr_b64_encode(&c->stdin_prefix, script, strlen(script));
    wr_buf_adds(&c->stdin_prefix, "\r\n");
}

void wr_script_command(wr_cmdline *c, wr_dialect d, const char *script)
{
    if (d == WR_POWERSHELL) {
        wr_script_powershell(c, script);
        return;
    }
    wr_buf_adds(&c->exe, script);
}

void wr_quote(wr_buf *out, wr_dialect d, const char *s)
{
    wr_buf_adds(out, "'");
    for (const char *p = s; *p; p++) {
        if (*p != '\'') {
            wr_buf_add(out, p, 1);
            continue;
        }
        /* PowerShell also treats the typographic quotes U+2018..U+201B as quotes;
         * doubling an ASCII quote is enough because we never emit those unescaped
         * below (they pass through as literal text inside '...'). */
        wr_buf_adds(out, d == WR_POWERSHELL ? "''" : "'\\''");
    }
    wr_buf_adds(out, "'");
}

static void put_powershell(wr_buf *s, const char *path)
{
    wr_buf_adds(s, PS_PREAMBLE "$ErrorActionPreference = 'Stop'\n$path = ");
    wr_quote(s, WR_POWERSHELL, path);
    wr_buf_adds(
        s, "\n$tmp = $path + '.opsc-part'\n"
           "$sha = [Security.Cryptography.SHA256]::Create()\n"
           "$in = [Console]::In\n"
           "$expected = $null\n"
           "$total = 0\n"
           "$fs = [IO.File]::Open($tmp, 'Create', 'Write', 'None')\n"
           "try {\n"
           "    while ($null -ne ($line = $in.ReadLine())) {\n"
           "        if ($line.StartsWith('#sha256 ')) { $expected = $line.Substring(8).Trim(); "
           "break }\n"
           "        $bytes = [Convert]::FromBase64String($line)\n"
           "        $fs.Write($bytes, 0, $bytes.Length)\n"
           "        [void]$sha.TransformBlock($bytes, 0, $bytes.Length, $null, 0)\n"
           "        $total += $bytes.Length\n"
           "    }\n"
           "} finally { $fs.Close() }\n"
           "[void]$sha.TransformFinalBlock([byte[]]@(), 0, 0)\n"
           "$hex = -join ($sha.Hash | ForEach-Object { $_.ToString('x2') })\n"
           "if ($hex -ne $expected) { Remove-Item -LiteralPath $tmp -Force; "
           "[Console]::Error.WriteLine(\"sha256 mismatch: got $hex, expected $expected\"); "
           "exit 3 }\n"
           "Move-Item -LiteralPath $tmp -Destination $path -Force\n"
           "[Console]::Out.WriteLine(\"OK $hex $total\")\n"
           "exit 0\n");
}

static void put_posix(wr_buf *s, const char *path, int mode, const char *owner)
{
    wr_buf_adds(s, "p=");
    wr_quote(s, WR_POSIX_SH, path);
    wr_buf_adds(s, "; t=\"$p.opsc-part\"; umask 077; "
                   "awk -v h=\"$t.sha\" '/^#sha256 /{print substr($0,9) > h; exit} {print}' "
                   "| base64 -d > \"$t\" || exit 3; "
                   "got=$(sha256sum < \"$t\" | cut -d' ' -f1); exp=$(cat \"$t.sha\" 2>/dev/null); "
                   "rm -f \"$t.sha\"; "
                   "if [ \"$got\" != \"$exp\" ]; then rm -f \"$t\"; "
                   "echo \"sha256 mismatch: got $got, expected $exp\" >&2; exit 3; fi; ");
    if (mode >= 0)
        wr_buf_addf(s, "chmod %o \"$t\" || exit 4; ", (unsigned)mode & 07777);
    if (owner && owner[0]) {
        wr_buf_adds(s, "chown ");
        wr_quote(s, WR_POSIX_SH, owner);
        wr_buf_adds(s, " \"$t\" || exit 4; ");
    }
    wr_buf_adds(s, "mv -f \"$t\" \"$p\" || exit 4; "
                   "echo \"OK $got $(wc -c < \"$p\" | tr -d ' ')\"");
}

void wr_script_put(wr_buf *script, wr_dialect d, const char *path, int mode, const char *owner)
{
    if (d == WR_POWERSHELL)
        put_powershell(script, path); /* NTFS has no mode bits or chown: ACLs are left alone */
    else
        put_posix(script, path, mode, owner);
}

void wr_script_get(wr_buf *s, wr_dialect d, const char *path)
{
    if (d == WR_POSIX_SH) {
        wr_buf_adds(s, "p=");
        wr_quote(s, WR_POSIX_SH, path);
        wr_buf_adds(s, "; [ -e \"$p\" ] || { echo \"no such file: $p\" >&2; exit 2; }; "
                       "[ -r \"$p\" ] || { echo \"cannot read $p\" >&2; exit 3; }; "
                       "base64 -w 262144 < \"$p\" && "
                       "echo \"#sha256 $(sha256sum < \"$p\" | cut -d' ' -f1)\"");
        return;
    }
    wr_buf_adds(s, PS_PREAMBLE "$ErrorActionPreference = 'Stop'\n$path = ");
    wr_quote(s, WR_POWERSHELL, path);
    wr_buf_adds(s, "\nif (-not (Test-Path -LiteralPath $path -PathType Leaf)) { "
                   "[Console]::Error.WriteLine(\"no such file: $path\"); exit 2 }\n"
                   "$sha = [Security.Cryptography.SHA256]::Create()\n"
                   "$buf = New-Object byte[] 196608\n"
                   "$out = [Console]::Out\n"
                   "$fs = [IO.File]::OpenRead($path)\n"
                   "try {\n"
                   "    while (($n = $fs.Read($buf, 0, $buf.Length)) -gt 0) {\n"
                   "        [void]$sha.TransformBlock($buf, 0, $n, $null, 0)\n"
                   "        $out.WriteLine([Convert]::ToBase64String($buf, 0, $n))\n"
                   "    }\n"
                   "} finally { $fs.Close() }\n"
                   "[void]$sha.TransformFinalBlock($buf, 0, 0)\n"
                   "$out.WriteLine('#sha256 ' + (-join ($sha.Hash | ForEach-Object { "
                   "$_.ToString('x2') })))\n"
                   "exit 0\n");
}

/* ---- CLIXML ---------------------------------------------------------------- */

static const char clixml_marker[] = "#< CLIXML";

/* PowerShell escapes control characters (and '_' before 'x') as _xHHHH_. */
static void add_unescaped(wr_buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '_' && i + 6 < len && s[i + 1] == 'x' && s[i + 6] == '_') {
            char hex[5] = {s[i + 2], s[i + 3], s[i + 4], s[i + 5], 0};
            char *end;
            unsigned long v = strtoul(hex, &end, 16);
            if (end == hex + 4) {
                if (v < 0x80) {
                    char c = (char)v;
                    wr_buf_add(out, &c, 1);
                } else {
                    /* BMP code point to UTF-8 (surrogates are left as U+FFFD). */
                    unsigned cp = (v >= 0xD800 && v <= 0xDFFF) ? 0xFFFD : (unsigned)v;
                    char u[3];
                    if (cp < 0x800) {
                        u[0] = (char)(0xC0 | cp >> 6);
                        u[1] = (char)(0x80 | (cp & 0x3F));
                        wr_buf_add(out, u, 2);
                    } else {
                        u[0] = (char)(0xE0 | cp >> 12);
                        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                        u[2] = (char)(0x80 | (cp & 0x3F));
                        wr_buf_add(out, u, 3);
                    }
                }
                i += 6;
                continue;
            }
        }
        wr_buf_add(out, s + i, 1);
    }
}

static const char *stream_prefix(const char *kind)
{
    if (!strcasecmp(kind, "warning"))
        return "WARNING: ";
    if (!strcasecmp(kind, "verbose"))
        return "VERBOSE: ";
    if (!strcasecmp(kind, "debug"))
        return "DEBUG: ";
    return "";
}

bool wr_clixml_decode(const char *xml, size_t len, wr_buf *out)
{
    wx_node *doc = wx_parse(xml, len, NULL, 0);
    if (!doc || strcmp(doc->name, "Objs")) {
        wx_free(doc);
        return false;
    }
    for (const wx_node *n = doc->child; n; n = n->next) {
        const char *kind = wx_attr_get(n, "S");
        /* Progress records (<Obj S="progress">) are not text a user asked for. */
        if (strcmp(n->name, "S") || !kind)
            continue;
        wr_buf line = {0};
        add_unescaped(&line, n->text, n->text_len);
        wr_buf_adds(out, stream_prefix(kind));
        wr_buf_add(out, line.p ? line.p : "", line.len);
        if (line.len && line.p[line.len - 1] != '\n' && strcasecmp(kind, "error"))
            wr_buf_adds(out, "\r\n");
        wr_buf_free(&line);
    }
    wx_free(doc);
    return true;
}

#define CLIXML_MAX_PENDING (8u << 20)

static bool is_prefix_of(const char *s, size_t n, const char *full)
{
    size_t fl = strlen(full);
    return n < fl && !memcmp(s, full, n);
}

/* Inside CLIXML: decode complete <Objs> documents. Returns false to wait for more. */
static bool clixml_step(wr_clixml *x, bool final, wr_buf *out)
{
    size_t skip = 0;
    while (skip < x->pending.len && strchr("\r\n \t", x->pending.p[skip]))
        skip++;
    wr_buf_consume(&x->pending, skip);
    const char *p = x->pending.p;
    size_t n = x->pending.len;
    size_t ml = sizeof clixml_marker - 1;
    if (!n)
        return false;
    if (n >= ml && !memcmp(p, clixml_marker, ml)) {
        wr_buf_consume(&x->pending, ml);
        return true;
    }
    if (n >= 5 && !memcmp(p, "<Objs", 5)) {
        const char *end = strstr(p, "</Objs>");
        if (!end) {
            if (!final && n <= CLIXML_MAX_PENDING)
                return false;
            x->mode = 2; /* never completed: show it as it came */
            return true;
        }
        end += strlen("</Objs>");
        if (!wr_clixml_decode(p, (size_t)(end - p), out))
            wr_buf_add(out, p, (size_t)(end - p));
        wr_buf_consume(&x->pending, (size_t)(end - p));
        return true;
    }
    if (!final && (is_prefix_of(p, n, "<Objs") || is_prefix_of(p, n, clixml_marker)))
        return false;
    x->mode = 2;
    return true;
}

/* Plain text: pass it on up to a "#< CLIXML" line; keep a tail that may start one. */
static bool text_step(wr_clixml *x, bool final, wr_buf *out)
{
    const char *p = x->pending.p;
    size_t n = x->pending.len;
    for (size_t i = 0; i < n; i++) {
        if ((i == 0 || p[i - 1] == '\n') && p[i] == '#') {
            size_t left = n - i;
            size_t ml = sizeof clixml_marker - 1;
            if (left >= ml && !memcmp(p + i, clixml_marker, ml)) {
                wr_buf_add(out, p, i);
                wr_buf_consume(&x->pending, i + ml);
                x->mode = 1;
                return true;
            }
            if (!final && is_prefix_of(p + i, left, clixml_marker)) {
                wr_buf_add(out, p, i);
                wr_buf_consume(&x->pending, i);
                return false;
            }
        }
    }
    wr_buf_add(out, p, n);
    wr_buf_reset(&x->pending);
    return false;
}

void wr_clixml_feed(wr_clixml *x, const char *data, size_t len, bool final, wr_buf *out)
{
    wr_buf_add(&x->pending, data, len);
    for (;;) {
        if (!x->pending.len)
            break;
        bool more = x->mode == 1 ? clixml_step(x, final, out) : text_step(x, final, out);
        if (x->mode == 2)
            x->mode = 0;
        if (!more)
            break;
    }
    if (final) {
        wr_buf_add(out, x->pending.p, x->pending.len);
        wr_buf_reset(&x->pending);
    }
}

void wr_clixml_free(wr_clixml *x)
{
    wr_buf_free(&x->pending);
}
