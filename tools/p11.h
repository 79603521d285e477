/* A small PKCS#11 client for the m2mtls command (keyref, demo): list tokens
 * and objects with their pkcs11: URIs, initialise a token, generate a key
 * pair inside a token. Signing is the provider's job, not this one's. */
#ifndef M2MTLS_TOOL_P11_H
#define M2MTLS_TOOL_P11_H
#include <stdio.h>
#include "pkcs11.h" /* provider/pkcs11.h: the PKCS#11 types */

typedef struct p11 {
    void *dl;
    CK_FUNCTION_LIST *f;
    char error[512];      /* "C_Login: CKR_PIN_INCORRECT", ... */
} p11;

/* The module: --module, else $M2MTLS_PKCS11_MODULE, else SoftHSM's. */
const char *p11_default_module(const char *given);
int  p11_open(p11 *m, const char *module);
void p11_close(p11 *m);
/* Lists tokens and objects (private ones too when PIN is given). */
int  p11_list(p11 *m, const char *pin, int json, FILE *out);
/* Initialises the first free slot's token; *slot receives it. */
int  p11_init_token(p11 *m, const char *label, const char *so_pin, const char *user_pin, CK_SLOT_ID *slot);
/* The slot of the token labelled LABEL. */
int  p11_find_token(p11 *m, const char *label, CK_SLOT_ID *slot);
/* An EC P-256 key pair generated inside the token (private: sensitive,
 * never extractable). */
int  p11_generate_p256(p11 *m, CK_SLOT_ID slot, const char *pin, const char *label,
                       const unsigned char *id, size_t id_len);
/* pkcs11:token=...;object=...;type=... with RFC 7512 percent-encoding. */
char *p11_key_uri(const char *token, const char *object, const unsigned char *id, size_t id_len,
                  const char *type);
#endif
