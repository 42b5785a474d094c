/* dx_xml.h - a small pull reader for the XML scanners get back (WS-Management Identify answers,
 * nmap's -oX output): elements, attributes and text, no DTDs, no entity definitions.
 *
 * Input is untrusted: the reader never reads past `end`, nests at most DX_XML_DEPTH deep, and
 * stops with DX_ERROR (and a reason) on anything it does not understand. Comments, processing
 * instructions and a DOCTYPE are skipped; CDATA is text. Text and attribute values come raw;
 * dx_decode() resolves the five predefined entities and character references.
 * Thread: a reader is a plain value; any thread.
 */
#ifndef DX_XML_H
#define DX_XML_H

#include <stdbool.h>
#include <stddef.h>

#define DX_XML_DEPTH 64

typedef enum dx_kind { DX_START, DX_END, DX_TEXT, DX_EOF, DX_ERROR } dx_kind;

typedef struct dx_tok {
    dx_kind kind;
    const char *name; /* qualified name of DX_START / DX_END ("wsmid:ProductVendor") */
    size_t name_len;
    const char *attrs; /* DX_START: the raw attribute text */
    size_t attrs_len;
    bool empty;       /* DX_START of <x/>: no DX_END follows */
    const char *text; /* DX_TEXT: raw (undecoded) */
    size_t text_len;
} dx_tok;

typedef struct dx_xml {
    const char *p, *end;
    int depth;
    char err[96];
} dx_xml;

void dx_xml_init(dx_xml *x, const char *data, size_t len);
/* The next token; after DX_EOF or DX_ERROR every call returns the same. */
dx_kind dx_next(dx_xml *x, dx_tok *t);
/* True when the element's local name (after any prefix) is `local`. */
bool dx_is(const dx_tok *t, const char *local);
/* The decoded value of attribute `name` of a DX_START into out (NUL-terminated,
 * truncated); false when absent. */
bool dx_attr(const dx_tok *t, const char *name, char *out, size_t n);
/* Decode entities of `s` into out (NUL-terminated, truncated); returns the length. */
size_t dx_decode(const char *s, size_t len, char *out, size_t n);
/* The decoded text inside the element just started (DX_START of `t`), up to its
 * end, nested markup skipped; whitespace trimmed. False on malformed input. */
bool dx_text(dx_xml *x, const dx_tok *t, char *out, size_t n);

#endif
