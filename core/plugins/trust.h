/* trust.h - trusted publisher keys: the Ed25519 public keys whose signatures admit a step library.
 *
 * Keys come from files named in [steplibs] trusted_keys: PEM public keys
 * ("-----BEGIN PUBLIC KEY-----", as `openssl pkey -pubout` writes them; a
 * file may hold several) or OpenSSH public key lines ("ssh-ed25519 AAAA...
 * comment", one or more, as in authorized_keys). Only Ed25519 keys are
 * accepted. A signature is plain Ed25519 (RFC 8032) over the whole file,
 * as `openssl pkeyutl -sign -rawin` makes it; it is checked with OpenSSL's
 * EVP_DigestVerify.
 *
 * Each key is known by its fingerprint, "SHA256:<base64>" of its OpenSSH
 * wire form (what `ssh-keygen -l` prints, for either file format), and a
 * name: the OpenSSH comment, else the file's base name.
 *
 * Thread: trust_load/trust_free on the loop; trust_verify on any thread
 * (keys are never modified after loading).
 */
#ifndef OPSC_TRUST_H
#define OPSC_TRUST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct trust trust;
typedef struct trust_key trust_key;

#define TRUST_SIG_LEN 64 /* an Ed25519 signature */

/* Load the keys of the ':'-separated files in `paths` ("" or NULL: none).
 * A missing or unreadable file, a file without a key, or a key of another
 * type fails with OPSC_EINVAL (or -errno) and the file (and line) in err. */
int trust_load(trust **out, const char *paths, char *err, size_t errlen);
void trust_free(trust *t);
size_t trust_count(const trust *t);

/* 0 and *signer when one of the keys verifies `sig` over `data`;
 * OPSC_EAUTH when none does; OPSC_EINVAL when sig is not 64 bytes. */
int trust_verify(const trust *t, const void *data, size_t len, const uint8_t *sig, size_t siglen,
                 const trust_key **signer);

const char *trust_key_fingerprint(const trust_key *k);
const char *trust_key_name(const trust_key *k);
/* {"fingerprint": ..., "name": ...}; new reference. */
json_t *trust_key_json(const trust_key *k);

#endif
