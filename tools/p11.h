/* SPDX-License-Identifier: Apache-2.0 */
/* A small PKCS#11 client for the m2mtls command (keyref, demo, bench): list
 * tokens and objects with their pkcs11: URIs, initialise a token, generate a
 * key pair inside a token. Signing is the provider's job; p11_sign is only
 * the raw ceiling `m2mtls bench sign` compares the provider with. */
#ifndef M2MTLS_TOOL_P11_H
#define M2MTLS_TOOL_P11_H
#include <stdio.h>
#include "pkcs11.h" /* common/pkcs11.h: the PKCS#11 types */

typedef struct p11 {
    void *dl;
    CK_FUNCTION_LIST *f;
    char error[512];      /* "C_Login: CKR_PIN_INCORRECT", ... */
    int owner;            /* C_Initialize succeeded here: p11_close finalises */
} p11;

/* The module: --module, else $M2MTLS_PKCS11_MODULE, else SoftHSM's. */
const char *p11_default_module(const char *given);
int  p11_open(p11 *m, const char *module);
/* C_Finalize only when p11_open initialised the module (not when another
 * user in the process, e.g. the provider, had already), then dlclose. */
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
/* An RSA-2048 key pair (public exponent 65537) generated inside the token,
 * private key sensitive and never extractable. */
int  p11_generate_rsa2048(p11 *m, CK_SLOT_ID slot, const char *pin, const char *label,
                          const unsigned char *id, size_t id_len);
/* "SoftHSM 2.6 (Implementation of PKCS11)": the module's C_GetInfo. */
int  p11_module_info(p11 *m, char *buf, size_t len);
/* A logged-in session of its own and the private key labelled LABEL in it. */
int  p11_sign_session(p11 *m, CK_SLOT_ID slot, const char *pin, const char *label,
                      CK_SESSION_HANDLE *s, CK_OBJECT_HANDLE *key);
/* A session-object copy of KEY (C_CopyObject, CKA_TOKEN false; sensitivity
 * unchanged), living as long as session S. */
int  p11_session_copy(p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_OBJECT_HANDLE *copy);
/* C_SignInit + C_Sign with MECH over IN (a digest for CKM_ECDSA and
 * CKM_RSA_PKCS_PSS). *SIG_LEN: room in, length out. No m->error: the
 * CK_RV is returned (CKR_OK on success), so threads can share M. */
CK_RV p11_sign(const p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM *mech,
               const unsigned char *in, size_t in_len, unsigned char *sig, size_t *sig_len);
/* pkcs11:token=...;object=...;type=... with RFC 7512 percent-encoding. */
char *p11_key_uri(const char *token, const char *object, const unsigned char *id, size_t id_len,
                  const char *type);
#endif
