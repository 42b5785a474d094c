/* vault_internal.h - the vault's state, shared by vault.c and credential.c. */
#ifndef OPSC_VAULT_INTERNAL_H
#define OPSC_VAULT_INTERNAL_H

#include "vault.h"

struct vault {
    store *store;
    vault_key key;
    bool from_env;
    char key_file[4096];
};

int vault_write_meta(store_txn *txn, const vault_key *k);
int vault_write_key_file(const char *path, const vault_key *k);

#endif
