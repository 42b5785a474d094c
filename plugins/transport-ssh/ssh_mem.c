/* ssh_mem.c - a connection owns the memory of its libssh2 session.
 *
 * libssh2 1.10 (Debian 12) leaks the curve25519 key pair of a key exchange
 * that libssh2_session_free() interrupts, which is what a connect that times
 * out mid-handshake does (a loaded server, 200 connections at once). Every
 * block the session allocates is kept in a list on its connection, so that
 * whatever libssh2 leaves behind is freed with the connection. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ssh_internal.h"

typedef union ssh_block {
    struct {
        union ssh_block *prev, *next;
        size_t size;
    } link;
    max_align_t align; /* what follows the header is aligned as malloc's */
} ssh_block;

static void block_link(opsc_conn *c, ssh_block *b)
{
    b->link.prev = NULL;
    b->link.next = c->mem;
    if (c->mem)
        ((ssh_block *)c->mem)->link.prev = b;
    c->mem = b;
}

static void block_unlink(opsc_conn *c, ssh_block *b)
{
    if (b->link.prev)
        b->link.prev->link.next = b->link.next;
    else
        c->mem = b->link.next;
    if (b->link.next)
        b->link.next->link.prev = b->link.prev;
}

void *ssh_mem_alloc(size_t n, void **abstract)
{
    ssh_block *b = malloc(sizeof(*b) + n);
    if (!b)
        return NULL;
    b->link.size = n;
    block_link(*abstract, b);
    return b + 1;
}

void ssh_mem_free(void *p, void **abstract)
{
    if (!p)
        return;
    ssh_block *b = (ssh_block *)p - 1;
    block_unlink(*abstract, b);
    free(b);
}

void *ssh_mem_realloc(void *p, size_t n, void **abstract)
{
    if (!p)
        return ssh_mem_alloc(n, abstract);
    ssh_block *b = (ssh_block *)p - 1;
    block_unlink(*abstract, b);
    ssh_block *nb = realloc(b, sizeof(*nb) + n);
    if (!nb) {
        block_link(*abstract, b); /* realloc failed: the old block is still ours */
        return NULL;
    }
    nb->link.size = n;
    block_link(*abstract, nb);
    return nb + 1;
}

/* What is left once libssh2_session_free() returned: wiped, since what libssh2
 * forgets is key-exchange material. */
size_t ssh_mem_release(opsc_conn *c)
{
    size_t n = 0;
    while (c->mem) {
        ssh_block *b = c->mem;
        c->mem = b->link.next;
        explicit_bzero(b + 1, b->link.size);
        free(b);
        n++;
    }
    return n;
}
