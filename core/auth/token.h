/* token.h - opaque bearer tokens (API tokens, refresh tokens): generation and hashing for storage.
 *
 * A token is a prefix naming its kind followed by 256 random bits in
 * base64url. Only its SHA-256 is stored: the token itself is shown once.
 * A fast hash is right here (unlike passwords): 256 random bits cannot be
 * guessed, so the hash only has to keep a copy of the store from being a
 * list of usable tokens.
 *
 * Thread: pure functions, any thread.
 */
#ifndef OPSC_TOKEN_H
#define OPSC_TOKEN_H

#include <stdbool.h>

#define TOKEN_PREFIX_API     "opsc_at_"
#define TOKEN_PREFIX_REFRESH "opsc_rt_"
#define TOKEN_TEXT_MAX       64 /* prefix + 43 characters + NUL */
#define TOKEN_HASH_HEX       65 /* SHA-256 as lowercase hex + NUL */

/* A fresh token with `prefix` (at most 16 characters). 0 or a negative code. */
int token_new(const char *prefix, char out[TOKEN_TEXT_MAX]);
/* SHA-256 of the token text as hex. */
void token_hash(const char *token, char out[TOKEN_HASH_HEX]);
/* True when `token` starts with `prefix` and has the length of a real one. */
bool token_is(const char *token, const char *prefix);

#endif
