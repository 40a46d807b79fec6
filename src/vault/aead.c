/*
 * AES-256-GCM through OpenSSL's EVP interface; see aead.h. Decryption writes straight into a
 * cad_secret so plaintext never touches the general heap, and a failed tag check frees (wipes)
 * whatever was decrypted before anyone sees it.
 */
#include "vault/aead.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

int vault_aead_seal(const cad_secret *key, const char *aad, const unsigned char *plain, size_t n,
                    char **out)
{
    *out = NULL;
    if (secret_len(key) != VAULT_AEAD_KEY_LEN)
        return cad_fail(CAD_EINVAL, "an AES-256-GCM key is %d bytes, not %zu", VAULT_AEAD_KEY_LEN,
                        secret_len(key));
    if (n > SECRET_MAX)
        return cad_fail(CAD_EINVAL, "cannot seal %zu bytes; the limit is %d", n, SECRET_MAX);
    size_t total = VAULT_AEAD_NONCE_LEN + n + VAULT_AEAD_TAG_LEN;
    unsigned char *buf = malloc(total);
    if (!buf)
        return cad_fail(CAD_ENOMEM, "out of memory");
    int rc = random_bytes(buf, VAULT_AEAD_NONCE_LEN);
    if (rc) {
        free(buf);
        return rc;
    }
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    unsigned char *ct = buf + VAULT_AEAD_NONCE_LEN;
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, VAULT_AEAD_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, secret_data(key), buf) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(ctx, ct, &len, plain, (int)n) != 1 ||
        EVP_EncryptFinal_ex(ctx, ct + len, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, VAULT_AEAD_TAG_LEN, ct + n) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        free(buf);
        return cad_fail(CAD_ECRYPTO, "AES-256-GCM encryption failed inside OpenSSL");
    }
    EVP_CIPHER_CTX_free(ctx);
    rc = base64_encode(buf, total, out);
    free(buf);
    return rc;
}

int vault_aead_open(const cad_secret *key, const char *aad, const char *sealed, cad_secret **out)
{
    *out = NULL;
    if (secret_len(key) != VAULT_AEAD_KEY_LEN)
        return cad_fail(CAD_EINVAL, "an AES-256-GCM key is %d bytes, not %zu", VAULT_AEAD_KEY_LEN,
                        secret_len(key));
    unsigned char *buf = NULL;
    size_t total = 0;
    if (!sealed || base64_decode(sealed, &buf, &total) != CAD_OK)
        return cad_fail(CAD_ECRYPTO, "the sealed text is not valid base64");
    if (total < VAULT_AEAD_NONCE_LEN + VAULT_AEAD_TAG_LEN ||
        total - VAULT_AEAD_NONCE_LEN - VAULT_AEAD_TAG_LEN > SECRET_MAX) {
        free(buf);
        return cad_fail(CAD_ECRYPTO, "the sealed text has an impossible length (%zu bytes)", total);
    }
    size_t n = total - VAULT_AEAD_NONCE_LEN - VAULT_AEAD_TAG_LEN;
    const unsigned char *ct = buf + VAULT_AEAD_NONCE_LEN;
    cad_secret *plain;
    int rc = secret_new(&plain, n);
    if (rc) {
        free(buf);
        return rc;
    }
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    unsigned char *pt = secret_data_mut(plain);
    int ok =
        ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, VAULT_AEAD_NONCE_LEN, NULL) == 1 &&
        EVP_DecryptInit_ex(ctx, NULL, NULL, secret_data(key), buf) == 1 &&
        EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
        EVP_DecryptUpdate(ctx, pt, &len, ct, (int)n) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, VAULT_AEAD_TAG_LEN, (void *)(ct + n)) == 1 &&
        EVP_DecryptFinal_ex(ctx, pt + len, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    free(buf);
    if (!ok) {
        secret_free(plain);
        return cad_fail(CAD_ECRYPTO, "the sealed text did not authenticate");
    }
    *out = plain;
    return CAD_OK;
}
