/* Ed25519 verification with a table per public key (_ed25519.c; used by _signatures.c). */
#ifndef P2PC_ED25519_H
#define P2PC_ED25519_H

#include <stddef.h>
#include <stdint.h>

/* libsodium's crypto_hash_sha512, reached through PyNaCl like crypto_sign_open. */
typedef int (*ed25519_sha512)(unsigned char *, const unsigned char *, unsigned long long);

/* A key's multiples: 64 positions of 8 points, each four field elements of five limbs. */
typedef struct {
    uint64_t rows[64 * 8 * 4 * 5];
} ed25519_table;

/* Makes the constants and B's table and checks them; 0 if they came out wrong (then every
 * other function here refuses). Not thread-safe: call it once, at import. */
int ed25519_init(void);

/* Fills table for key; 0 if the key is one libsodium would refuse or might (its y not below p,
 * no point, or a point of small order): then ask libsodium about its signatures. */
int ed25519_key_table(ed25519_table *table, const unsigned char key[32]);

/* A key's table as used by one caller: from the cache of recent keys, or its own. */
typedef struct {
    const ed25519_table *table;
    int slot;            /* its place in the cache, or -1 */
    ed25519_table *own;  /* a table not in the cache, freed by ed25519_done */
} ed25519_use;

/* The table of key from the cache, or (if make) made now and cached; 0 if neither (no table:
 * ask libsodium). Thread-safe, with or without the GIL. Every 1 needs an ed25519_done. */
int ed25519_use_key(ed25519_use *use, const unsigned char key[32], int make);
void ed25519_done(ed25519_use *use);

/* 1 if libsodium's crypto_sign_open accepts signature || message by key (whose table this is);
 * 0 if it may not (then ask it). scratch: 64 + size bytes. */
int ed25519_accepts(const ed25519_table *table, const unsigned char signature[64],
                    const unsigned char key[32], const unsigned char *message, size_t size,
                    ed25519_sha512 sha512, unsigned char *scratch);

#endif
