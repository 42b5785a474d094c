/* wr_xml.h - a small namespace-aware XML reader for WS-Management responses (no DTDs, no
 * validation). */
#ifndef WR_XML_H
#define WR_XML_H

#include <stddef.h>

typedef struct wx_attr {
    char *name;  /* local name (prefix stripped) */
    char *value; /* entity-decoded */
} wx_attr;

typedef struct wx_node {
    const char *ns; /* namespace URI, "" when none */
    char *name;     /* local name */
    char *text;     /* the element's own character data, decoded; never NULL */
    size_t text_len;
    wx_attr *attrs;
    size_t nattrs;
    struct wx_node *parent, *child, *next;
} wx_node;

/* Parse a document; returns its root element or NULL with a message in err.
 * Free with wx_free(). Rejects DOCTYPE (no entity expansion at all). */
wx_node *wx_parse(const char *xml, size_t len, char *err, size_t errlen);
void wx_free(wx_node *root);

/* First child (or, for wx_next, following sibling) named {ns}name; ns NULL matches any. */
const wx_node *wx_child(const wx_node *n, const char *ns, const char *name);
const wx_node *wx_next(const wx_node *n, const char *ns, const char *name);
/* First descendant in document order named {ns}name. */
const wx_node *wx_find(const wx_node *n, const char *ns, const char *name);
/* Attribute value by local name, or NULL. */
const char *wx_attr_get(const wx_node *n, const char *name);
/* Text of child {ns}name, or NULL. */
const char *wx_child_text(const wx_node *n, const char *ns, const char *name);

#endif
