/* SPDX-License-Identifier: Apache-2.0 */
/* The policy parser on arbitrary text. Relative file names resolve into a
 * directory holding a real anchor, chain and CRL, so the loading paths after
 * the parser run too. */
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"
#include "pki.h"
#include "fuzz.h"

static char *policy_path, *fixture_dir;

static void remove_fixture(void)
{
    pki_rmtree(fixture_dir);
    free(fixture_dir);
    free(policy_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    pki_cert root, leaf;
    pki_san san[] = { { PKI_SAN_DNS, "a.example.com", 0 }, { PKI_SAN_END, NULL, 0 } };
    char *dir = pki_tmpdir();
    X509_CRL *crl = NULL;
    if (dir == NULL || !pki_root("fuzz root", &root) || !pki_leaf(&root, "a", san, &leaf)
        || (crl = pki_crl(&root, NULL, 0, 3600)) == NULL || !pki_write_cert(dir, "root.pem", root.cert)
        || !pki_write_certs(dir, "cert.pem", leaf.cert, root.cert, NULL) || !pki_write_key(dir, "key.pem", leaf.key)
        || !pki_write_crl(dir, "crl.pem", crl)) {
        fprintf(stderr, "fuzz_policy: cannot make the fixture\n");
        exit(1);
    }
    X509_CRL_free(crl);
    pki_cert_free(&root);
    pki_cert_free(&leaf);
    policy_path = pki_path(dir, "fuzz.policy"); /* never created: the text comes from the fuzzer */
    fixture_dir = dir;
    atexit(remove_fixture);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fmemopen((void *)data, size, "r");
    if (f == NULL)
        return 0;
    m2mtls_policy *p = m2_policy_new(policy_path);
    m2_errors errs = { 0 };
    if (p != NULL && !m2_parse_policy_stream(p, f, &errs))
        m2_errors_publish(&errs);
    free(errs.text);
    fclose(f);
    m2mtls_policy_free(p);
    return 0;
}
