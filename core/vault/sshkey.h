/* sshkey.h - validating SSH private keys on upload: format, passphrase, type, public fingerprint.
 *
 * Parsing is Debian's libssh (ssh_pki_import_privkey_base64): it reads the
 * OpenSSH format (openssh-key-v1, bcrypt_pbkdf-encrypted or not) and the PEM
 * and PKCS#8 formats (through OpenSSL), so we do not carry our own parser
 * of attacker-supplied key files and KDF. It is given a passphrase callback
 * that never prompts (OpenSSL's default one reads /dev/tty).
 *
 * Thread: any thread; blocking (an encrypted OpenSSH key costs a bcrypt_pbkdf
 * run): call it from a worker thread. The key text and passphrase are
 * borrowed until return and never copied into messages.
 */
#ifndef OPSC_SSHKEY_H
#define OPSC_SSHKEY_H

#include <stdbool.h>
#include <stddef.h>

#define SSHKEY_TEXT_MAX (64 * 1024)

typedef struct sshkey_info {
    char type[48];          /* "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa" */
    char fingerprint[80];   /* "SHA256:<base64>" of the public key, as ssh-keygen -l shows */
    int bits;               /* key size */
    bool encrypted;         /* the key needs its passphrase */
    bool passphrase_unused; /* a passphrase was given for a key that has none */
    char warning[256];      /* advice to show to the user ("" when none) */
    char pub_b64[2100];     /* the public key blob, base64 (as in a .pub file) */
} sshkey_info;

/* Check `text` (OpenSSH or PEM private key) with optional `passphrase`
 * (NULL or "" for none). 0 and *info, or OPSC_EINVAL with a message in err:
 * malformed key, encrypted without passphrase, wrong passphrase, or an
 * unsupported key type (DSA, security-key "sk" types, RSA under 2048 bits). */
int sshkey_validate(const char *text, const char *passphrase, sshkey_info *info, char *err,
                    size_t errlen);

/* Check that `line` ("<type>-cert-v01@openssh.com <base64> [comment]") is an
 * OpenSSH certificate of the key `info` describes (filled by
 * sshkey_validate()). 0, or OPSC_EINVAL with a message in err. */
int sshkey_cert_check(const char *line, const sshkey_info *info, char *err, size_t errlen);

#endif
