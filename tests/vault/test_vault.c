/*
 * Vault and local KMS tests. Each test gets its own temporary data directory with a fresh store,
 * three tenants with data keys, and a vault opened with create=1; the directory is removed after.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/util.h"
#include "store/store.h"
#include "vault/kms.h"
#include "vault/vault.h"

struct fixture {
    char dir[64];
    char kms_dir[128];
    store *st;
    vault *v;
};

static const char *const tenants[] = {"acme", "globex", "initech"};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void key_path(const struct fixture *f, int version, char *buf, size_t size)
{
    snprintf(buf, size, "%s/master-%d.key", f->kms_dir, version);
}

static cad_secret *text_secret(const char *s)
{
    cad_secret *sec;
    assert_int_equal(secret_from(&sec, s, strlen(s)), CAD_OK);
    return sec;
}

static void add_tenant(store *st, const char *id)
{
    assert_int_equal(store_exec(st, "INSERT INTO tenants (id, name, created_ms) VALUES ($1, $1, 1)",
                                SV_ARGS(SV_TEXT(id))),
                     CAD_OK);
}

static int setup_bare(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    unsetenv("CADENCE_KMS");
    log_set_level(LOG_WARN);
    snprintf(f->dir, sizeof f->dir, "/tmp/cadence-vault-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->kms_dir, sizeof f->kms_dir, "%s/kms", f->dir);
    char db[128];
    snprintf(db, sizeof db, "%s/cadence.db", f->dir);
    assert_int_equal(store_open(&f->st, db), CAD_OK);
    for (size_t i = 0; i < CAD_ARRAY_LEN(tenants); i++)
        add_tenant(f->st, tenants[i]);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    setup_bare(state);
    struct fixture *f = *state;
    assert_int_equal(vault_open(&f->v, f->st, f->dir, 1), CAD_OK);
    for (size_t i = 0; i < CAD_ARRAY_LEN(tenants); i++)
        assert_int_equal(vault_tenant_init(f->v, tenants[i]), CAD_OK);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vault_close(f->v);
    store_close(f->st);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    unsetenv("CADENCE_KMS");
    return 0;
}

static char *seal_text(vault *v, const char *tenant, const char *kind, int version,
                       const char *plain)
{
    cad_secret *p = text_secret(plain);
    char *sealed = NULL;
    assert_int_equal(vault_seal(v, tenant, kind, version, p, &sealed), CAD_OK);
    assert_non_null(sealed);
    secret_free(p);
    return sealed;
}

static void assert_unseals_to(vault *v, const char *tenant, const char *kind, int version,
                              const char *sealed, const char *plain)
{
    cad_secret *out = NULL;
    int rc = vault_unseal(v, tenant, kind, version, sealed, &out);
    if (rc != CAD_OK)
        fail_msg("unseal failed: %s", cad_errmsg());
    assert_int_equal(secret_len(out), strlen(plain));
    assert_memory_equal(secret_data(out), plain, strlen(plain));
    secret_free(out);
}

static void assert_unseal_fails(vault *v, const char *tenant, const char *kind, int version,
                                const char *sealed, int expected)
{
    cad_secret *out = (cad_secret *)1;
    assert_int_equal(vault_unseal(v, tenant, kind, version, sealed, &out), expected);
    assert_null(out);
}

struct text_result {
    char *s;
    int64_t i;
    bool null;
    int rows;
};

static int text_row(void *ctx, const store_row *row)
{
    struct text_result *r = ctx;
    free(r->s);
    r->null = store_row_is_null(row, 0);
    r->s = strdup(store_row_text(row, 0));
    r->i = store_row_int(row, 0);
    r->rows++;
    return 0;
}

/* First column of the last row of a query with at most one text parameter. */
static struct text_result query1(store *st, const char *sql, const char *param)
{
    struct text_result r = {0};
    int rc = param ? store_query(st, sql, SV_ARGS(SV_TEXT(param)), text_row, &r)
                   : store_query(st, sql, SV_NONE, text_row, &r);
    assert_int_equal(rc, CAD_OK);
    return r;
}

static int64_t query_int(store *st, const char *sql, const char *param)
{
    struct text_result r = query1(st, sql, param);
    assert_int_equal(r.rows, 1);
    free(r.s);
    return r.i;
}

static char *query_text(store *st, const char *sql, const char *param)
{
    struct text_result r = query1(st, sql, param);
    assert_int_equal(r.rows, 1);
    return r.s;
}

static mode_t file_mode(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_mode & 07777;
}

static void reopen_vault(struct fixture *f, int create, int expected)
{
    vault_close(f->v);
    f->v = NULL;
    int rc = vault_open(&f->v, f->st, f->dir, create);
    if (rc != expected)
        fail_msg("vault_open returned %d (%s), expected %d", rc, cad_errmsg(), expected);
    if (expected != CAD_OK)
        assert_null(f->v);
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    static const char *const kinds[] = {"klaviyo", "shopify", "postscript", "attentive"};
    const char *key = "pk_0123456789abcdef0123456789abcdef01";
    for (size_t t = 0; t < CAD_ARRAY_LEN(tenants); t++)
        for (size_t k = 0; k < CAD_ARRAY_LEN(kinds); k++) {
            char *sealed = seal_text(f->v, tenants[t], kinds[k], (int)k + 1, key);
            assert_null(strstr(sealed, "pk_"));
            assert_unseals_to(f->v, tenants[t], kinds[k], (int)k + 1, sealed, key);
            free(sealed);
        }

    /* Empty and maximum-length secrets too. */
    char *sealed = seal_text(f->v, "acme", "klaviyo", 0, "");
    assert_unseals_to(f->v, "acme", "klaviyo", 0, sealed, "");
    free(sealed);
    cad_secret *big;
    assert_int_equal(secret_new(&big, SECRET_MAX), CAD_OK);
    memset(secret_data_mut(big), 'x', SECRET_MAX);
    assert_int_equal(vault_seal(f->v, "acme", "shopify", 7, big, &sealed), CAD_OK);
    cad_secret *back;
    assert_int_equal(vault_unseal(f->v, "acme", "shopify", 7, sealed, &back), CAD_OK);
    assert_true(secret_equal(big, back));
    secret_free(back);
    secret_free(big);
    free(sealed);
}

static void test_wrong_binding_fails(void **state)
{
    struct fixture *f = *state;
    char *sealed = seal_text(f->v, "acme", "klaviyo", 3, "pk_0123456789abcdef0123456789abcdef01");
    assert_unseal_fails(f->v, "globex", "klaviyo", 3, sealed, CAD_ECRYPTO);
    assert_unseal_fails(f->v, "acme", "shopify", 3, sealed, CAD_ECRYPTO);
    assert_unseal_fails(f->v, "acme", "klaviyo", 2, sealed, CAD_ECRYPTO);
    assert_unseal_fails(f->v, "acme", "klaviyo", 4, sealed, CAD_ECRYPTO);
    assert_non_null(strstr(cad_errmsg(), "acme"));
    assert_unseals_to(f->v, "acme", "klaviyo", 3, sealed, "pk_0123456789abcdef0123456789abcdef01");
    free(sealed);
}

static void test_tampered_ciphertext_fails(void **state)
{
    struct fixture *f = *state;
    const char *plain = "shpat_0123456789abcdef";
    char *sealed = seal_text(f->v, "acme", "shopify", 1, plain);
    unsigned char *raw;
    size_t n;
    assert_int_equal(base64_decode(sealed, &raw, &n), CAD_OK);
    assert_int_equal(n, 12 + strlen(plain) + 16);
    size_t spots[] = {0, 11, 12, 12 + strlen(plain) / 2, n - 16, n - 1};
    for (size_t i = 0; i < CAD_ARRAY_LEN(spots); i++) {
        raw[spots[i]] ^= 0x01;
        char *bad;
        assert_int_equal(base64_encode(raw, n, &bad), CAD_OK);
        assert_unseal_fails(f->v, "acme", "shopify", 1, bad, CAD_ECRYPTO);
        free(bad);
        raw[spots[i]] ^= 0x01;
    }
    /* Truncated, too short to hold a nonce and tag, and not base64 at all. */
    char *cut;
    assert_int_equal(base64_encode(raw, n - 1, &cut), CAD_OK);
    assert_unseal_fails(f->v, "acme", "shopify", 1, cut, CAD_ECRYPTO);
    free(cut);
    assert_int_equal(base64_encode(raw, 20, &cut), CAD_OK);
    assert_unseal_fails(f->v, "acme", "shopify", 1, cut, CAD_ECRYPTO);
    free(cut);
    assert_unseal_fails(f->v, "acme", "shopify", 1, "not base64!", CAD_ECRYPTO);
    assert_unseal_fails(f->v, "acme", "shopify", 1, "", CAD_ECRYPTO);
    free(raw);
    assert_unseals_to(f->v, "acme", "shopify", 1, sealed, plain);
    free(sealed);
}

static void test_dek_copied_to_other_tenant_fails(void **state)
{
    struct fixture *f = *state;
    char *sealed = seal_text(f->v, "acme", "klaviyo", 1, "pk_0123456789abcdef0123456789abcdef01");
    char *wrapped =
        query_text(f->st, "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1", "acme");

    /* The wrapped DEK only unwraps for the tenant it was made for. */
    cad_secret *dek = NULL;
    assert_int_equal(kms_unwrap(vault_kms(f->v), 1, "acme", wrapped, &dek), CAD_OK);
    assert_int_equal(secret_len(dek), 32);
    secret_free(dek);
    dek = (cad_secret *)1;
    assert_int_equal(kms_unwrap(vault_kms(f->v), 1, "globex", wrapped, &dek), CAD_ECRYPTO);
    assert_null(dek);

    /* Copy acme's row over globex's: globex can neither use it nor open acme's credential. */
    assert_int_equal(store_exec(f->st, "UPDATE tenant_keys SET wrapped = $1 WHERE tenant_id = $2",
                                SV_ARGS(SV_TEXT(wrapped), SV_TEXT(tenants[1]))),
                     CAD_OK);
    assert_unseal_fails(f->v, "globex", "klaviyo", 1, sealed, CAD_ECRYPTO);
    cad_secret *p = text_secret("anything");
    char *out = (char *)1;
    assert_int_equal(vault_seal(f->v, "globex", "klaviyo", 1, p, &out), CAD_ECRYPTO);
    assert_null(out);
    char fp[17];
    assert_int_equal(vault_fingerprint(f->v, "globex", p, fp), CAD_ECRYPTO);
    secret_free(p);
    assert_unseals_to(f->v, "acme", "klaviyo", 1, sealed, "pk_0123456789abcdef0123456789abcdef01");
    free(wrapped);
    free(sealed);
}

static void test_first_open_creates_private_key(void **state)
{
    struct fixture *f = *state;
    char path[256];
    key_path(f, 1, path, sizeof path);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(file_mode(f->kms_dir), 0700);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 32);
    char *prov = query_text(f->st, "SELECT provider FROM kms_state WHERE id = 1", NULL);
    assert_string_equal(prov, "local");
    free(prov);
    assert_int_equal(query_int(f->st, "SELECT current_version FROM kms_state", NULL), 1);
    struct text_result r = query1(f->st, "SELECT rotating_from FROM kms_state", NULL);
    assert_true(r.null);
    free(r.s);
    /* Idempotent: a second init keeps the same wrapped key. */
    char *before =
        query_text(f->st, "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1", "acme");
    assert_int_equal(vault_tenant_init(f->v, "acme"), CAD_OK);
    char *after = query_text(f->st, "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1", "acme");
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(query_int(f->st, "SELECT COUNT(*) FROM tenant_keys", NULL), 3);
}

static void test_open_without_create_needs_a_key(void **state)
{
    struct fixture *f = *state;
    vault *v = (vault *)1;
    assert_int_equal(vault_open(&v, f->st, f->dir, 0), CAD_ENOTFOUND);
    assert_null(v);
    assert_non_null(strstr(cad_errmsg(), "cadence init"));
    assert_false(fs_exists(f->kms_dir));
    assert_int_equal(query_int(f->st, "SELECT COUNT(*) FROM kms_state", NULL), 0);
    assert_int_equal(vault_open(&f->v, f->st, f->dir, 1), CAD_OK);
    assert_int_equal(query_int(f->st, "SELECT COUNT(*) FROM kms_state", NULL), 1);
}

static void test_lost_master_key_is_not_recreated(void **state)
{
    struct fixture *f = *state;
    char path[256];
    key_path(f, 1, path, sizeof path);
    assert_int_equal(unlink(path), 0);
    reopen_vault(f, 1, CAD_ENOTFOUND);
    assert_false(fs_exists(path));
}

static void test_unsafe_key_file_mode_refused(void **state)
{
    struct fixture *f = *state;
    char path[256], fix[300];
    key_path(f, 1, path, sizeof path);
    snprintf(fix, sizeof fix, "chmod 600 %s", path);
    static const mode_t bad[] = {0644, 0640, 0604, 0660};
    for (size_t i = 0; i < CAD_ARRAY_LEN(bad); i++) {
        assert_int_equal(chmod(path, bad[i]), 0);
        reopen_vault(f, 0, CAD_EPERM);
        assert_non_null(strstr(cad_errmsg(), fix));
        reopen_vault(f, 1, CAD_EPERM);
    }
    assert_int_equal(chmod(path, 0600), 0);
    reopen_vault(f, 0, CAD_OK);

    /* Loosened while open: the next use of the key refuses too. */
    assert_int_equal(chmod(path, 0644), 0);
    cad_secret *p = text_secret("x");
    char *sealed = (char *)1;
    assert_int_equal(vault_seal(f->v, "acme", "klaviyo", 1, p, &sealed), CAD_EPERM);
    assert_null(sealed);
    secret_free(p);
    assert_int_equal(chmod(path, 0600), 0);
}

static void test_unsafe_dir_mode_refused(void **state)
{
    struct fixture *f = *state;
    char fix[200];
    snprintf(fix, sizeof fix, "chmod 700 %s", f->kms_dir);
    static const mode_t bad[] = {0755, 0750, 0701};
    for (size_t i = 0; i < CAD_ARRAY_LEN(bad); i++) {
        assert_int_equal(chmod(f->kms_dir, bad[i]), 0);
        reopen_vault(f, 0, CAD_EPERM);
        assert_non_null(strstr(cad_errmsg(), fix));
    }
    assert_int_equal(chmod(f->kms_dir, 0700), 0);
    reopen_vault(f, 0, CAD_OK);
}

static void test_unsafe_dir_refused_on_first_run(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(mkdir(f->kms_dir, 0700), 0);
    assert_int_equal(chmod(f->kms_dir, 0755), 0);
    assert_int_equal(vault_open(&f->v, f->st, f->dir, 1), CAD_EPERM);
    assert_null(f->v);
    char path[256];
    key_path(f, 1, path, sizeof path);
    assert_false(fs_exists(path));
}

static void test_symlinked_or_short_key_refused(void **state)
{
    struct fixture *f = *state;
    char path[256], moved[256];
    key_path(f, 1, path, sizeof path);
    snprintf(moved, sizeof moved, "%s/elsewhere.key", f->dir);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(symlink(moved, path), 0);
    reopen_vault(f, 0, CAD_EPERM);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rename(moved, path), 0);
    reopen_vault(f, 0, CAD_OK);
    assert_int_equal(truncate(path, 16), 0);
    reopen_vault(f, 0, CAD_ECORRUPT);
}

static void test_unknown_provider(void **state)
{
    struct fixture *f = *state;
    setenv("CADENCE_KMS", "hsm-of-dreams", 1);
    reopen_vault(f, 0, CAD_EINVAL);
    assert_non_null(strstr(cad_errmsg(), "hsm-of-dreams"));
    assert_non_null(strstr(cad_errmsg(), "local"));
    kms *k = (kms *)1;
    assert_int_equal(kms_open(&k, "aws", f->dir, 0), CAD_EINVAL);
    assert_null(k);
    setenv("CADENCE_KMS", "local", 1);
    reopen_vault(f, 0, CAD_OK);
    assert_string_equal(kms_name(vault_kms(f->v)), "local");
}

static void test_provider_mismatch_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_exec(f->st, "UPDATE kms_state SET provider = 'aws'", SV_NONE), CAD_OK);
    reopen_vault(f, 0, CAD_ESTATE);
    assert_non_null(strstr(cad_errmsg(), "CADENCE_KMS=aws"));
}

static void test_missing_newer_master_key_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_exec(f->st, "UPDATE kms_state SET current_version = 2", SV_NONE),
                     CAD_OK);
    reopen_vault(f, 0, CAD_ECORRUPT);
    assert_non_null(strstr(cad_errmsg(), "version 2"));
}

static void test_unknown_tenant_and_bad_names(void **state)
{
    struct fixture *f = *state;
    cad_secret *p = text_secret("value");
    char *sealed = (char *)1;
    assert_int_equal(vault_seal(f->v, "nobody", "klaviyo", 1, p, &sealed), CAD_ENOTFOUND);
    assert_null(sealed);
    assert_int_equal(vault_tenant_init(f->v, "nobody"), CAD_ENOTFOUND);
    assert_int_equal(vault_tenant_init(f->v, "a|b"), CAD_EINVAL);
    assert_int_equal(vault_tenant_init(f->v, ""), CAD_EINVAL);
    assert_int_equal(vault_seal(f->v, "acme", "klaviyo|1", 1, p, &sealed), CAD_EINVAL);
    assert_int_equal(vault_seal(f->v, "acme", "klaviyo", -1, p, &sealed), CAD_EINVAL);
    assert_int_equal(vault_seal(f->v, "acme", NULL, 1, p, &sealed), CAD_EINVAL);
    secret_free(p);
}

static void seal_all(struct fixture *f, char *sealed[3])
{
    for (size_t i = 0; i < CAD_ARRAY_LEN(tenants); i++) {
        char plain[64];
        snprintf(plain, sizeof plain, "secret-of-%s", tenants[i]);
        sealed[i] = seal_text(f->v, tenants[i], "klaviyo", 1, plain);
    }
}

static void check_all(struct fixture *f, char *sealed[3])
{
    for (size_t i = 0; i < CAD_ARRAY_LEN(tenants); i++) {
        char plain[64];
        snprintf(plain, sizeof plain, "secret-of-%s", tenants[i]);
        assert_unseals_to(f->v, tenants[i], "klaviyo", 1, sealed[i], plain);
    }
}

static void free_all(char *sealed[3])
{
    for (size_t i = 0; i < 3; i++)
        free(sealed[i]);
}

static void assert_state(struct fixture *f, int current, bool rotating)
{
    assert_int_equal(query_int(f->st, "SELECT current_version FROM kms_state", NULL), current);
    struct text_result r = query1(f->st, "SELECT rotating_from FROM kms_state", NULL);
    assert_int_equal(r.null, !rotating);
    free(r.s);
}

static void assert_key_files(struct fixture *f, int lowest, int highest)
{
    for (int ver = 1; ver <= highest + 1; ver++) {
        char path[256];
        key_path(f, ver, path, sizeof path);
        if (fs_exists(path) != (ver >= lowest && ver <= highest))
            fail_msg("master-%d.key %s", ver, fs_exists(path) ? "exists" : "is missing");
    }
}

static void test_rotation(void **state)
{
    struct fixture *f = *state;
    char *sealed[3];
    seal_all(f, sealed);
    char *before =
        query_text(f->st, "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1", "acme");
    struct vault_rotation r;
    int rc = vault_rotate(f->v, &r);
    if (rc)
        fail_msg("rotate: %s", cad_errmsg());
    assert_int_equal(r.from_version, 1);
    assert_int_equal(r.to_version, 2);
    assert_int_equal(r.rewrapped, 3);
    assert_int_equal(r.resumed, 0);
    assert_key_files(f, 2, 2);
    assert_state(f, 2, false);
    assert_int_equal(query_int(f->st,
                               "SELECT COUNT(*) FROM tenant_keys WHERE kek_version = 2 "
                               "AND rewrapped_ms IS NOT NULL",
                               NULL),
                     3);
    char *after = query_text(f->st, "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1", "acme");
    assert_string_not_equal(before, after);
    free(before);
    free(after);
    check_all(f, sealed);

    /* The old wrap no longer unwraps: its key is gone. */
    cad_secret *dek = NULL;
    char *w = query_text(f->st, "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1", "acme");
    assert_int_equal(kms_unwrap(vault_kms(f->v), 1, "acme", w, &dek), CAD_ENOTFOUND);
    free(w);

    /* Survives a reopen, and a second rotation moves on to version 3. */
    reopen_vault(f, 0, CAD_OK);
    check_all(f, sealed);
    assert_int_equal(vault_rotate(f->v, &r), CAD_OK);
    assert_int_equal(r.from_version, 2);
    assert_int_equal(r.to_version, 3);
    assert_int_equal(r.rewrapped, 3);
    assert_key_files(f, 3, 3);
    check_all(f, sealed);

    /* New tenants get a DEK under the current version. */
    add_tenant(f->st, "umbrella");
    assert_int_equal(vault_tenant_init(f->v, "umbrella"), CAD_OK);
    assert_int_equal(
        query_int(f->st, "SELECT kek_version FROM tenant_keys WHERE tenant_id = $1", "umbrella"),
        3);
    free_all(sealed);
}

/* What a rotation does to one DEK, done by hand to simulate a run that stopped part way. */
static void rewrap_by_hand(struct fixture *f, const char *tenant, int from, int to)
{
    char *w = query_text(f->st, "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1", tenant);
    cad_secret *dek;
    assert_int_equal(kms_unwrap(vault_kms(f->v), from, tenant, w, &dek), CAD_OK);
    free(w);
    assert_int_equal(kms_wrap(vault_kms(f->v), to, tenant, dek, &w), CAD_OK);
    secret_free(dek);
    assert_int_equal(store_exec(f->st,
                                "UPDATE tenant_keys SET kek_version = $1, wrapped = $2 "
                                "WHERE tenant_id = $3",
                                SV_ARGS(SV_INT(to), SV_TEXT(w), SV_TEXT(tenant))),
                     CAD_OK);
    free(w);
}

static void test_interrupted_rotation_before_recorded(void **state)
{
    struct fixture *f = *state;
    char *sealed[3];
    seal_all(f, sealed);
    int ver;
    assert_int_equal(kms_add_version(vault_kms(f->v), &ver), CAD_OK);
    assert_int_equal(ver, 2);
    rewrap_by_hand(f, "acme", 1, 2);
    check_all(f, sealed);

    struct vault_rotation r;
    assert_int_equal(vault_rotate(f->v, &r), CAD_OK);
    assert_int_equal(r.from_version, 1);
    assert_int_equal(r.to_version, 2);
    assert_int_equal(r.rewrapped, 2);
    assert_int_equal(r.resumed, 1);
    assert_key_files(f, 2, 2);
    assert_state(f, 2, false);
    check_all(f, sealed);
    free_all(sealed);
}

static void test_interrupted_rotation_recorded(void **state)
{
    struct fixture *f = *state;
    char *sealed[3];
    seal_all(f, sealed);
    int ver;
    assert_int_equal(kms_add_version(vault_kms(f->v), &ver), CAD_OK);
    assert_int_equal(
        store_exec(f->st, "UPDATE kms_state SET current_version = 2, rotating_from = 1", SV_NONE),
        CAD_OK);
    rewrap_by_hand(f, "globex", 1, 2);
    /* A tenant added mid-rotation is wrapped under the new version. */
    add_tenant(f->st, "umbrella");
    assert_int_equal(vault_tenant_init(f->v, "umbrella"), CAD_OK);
    char *late = seal_text(f->v, "umbrella", "klaviyo", 1, "late");
    assert_int_equal(
        query_int(f->st, "SELECT kek_version FROM tenant_keys WHERE tenant_id = $1", "umbrella"),
        2);

    struct vault_rotation r;
    assert_int_equal(vault_rotate(f->v, &r), CAD_OK);
    assert_int_equal(r.from_version, 1);
    assert_int_equal(r.to_version, 2);
    assert_int_equal(r.rewrapped, 2);
    assert_int_equal(r.resumed, 1);
    assert_key_files(f, 2, 2);
    assert_state(f, 2, false);
    check_all(f, sealed);
    assert_unseals_to(f->v, "umbrella", "klaviyo", 1, late, "late");
    free(late);

    /* A finished rotation is not resumed: the next run starts a new one. */
    assert_int_equal(vault_rotate(f->v, &r), CAD_OK);
    assert_int_equal(r.resumed, 0);
    assert_int_equal(r.to_version, 3);
    assert_int_equal(r.rewrapped, 4);
    free_all(sealed);
}

static void test_interrupted_rotation_before_retire(void **state)
{
    struct fixture *f = *state;
    char *sealed[3];
    seal_all(f, sealed);
    int ver;
    assert_int_equal(kms_add_version(vault_kms(f->v), &ver), CAD_OK);
    assert_int_equal(
        store_exec(f->st, "UPDATE kms_state SET current_version = 2, rotating_from = 1", SV_NONE),
        CAD_OK);
    for (size_t i = 0; i < CAD_ARRAY_LEN(tenants); i++)
        rewrap_by_hand(f, tenants[i], 1, 2);
    assert_key_files(f, 1, 2);

    struct vault_rotation r;
    assert_int_equal(vault_rotate(f->v, &r), CAD_OK);
    assert_int_equal(r.rewrapped, 0);
    assert_int_equal(r.resumed, 1);
    assert_key_files(f, 2, 2);
    assert_state(f, 2, false);
    check_all(f, sealed);
    free_all(sealed);
}

static void test_rotation_failure_keeps_old_key(void **state)
{
    struct fixture *f = *state;
    char *sealed[3];
    seal_all(f, sealed);
    /* Corrupt one tenant's wrapped DEK: the rotation stops and retires nothing. */
    char *w = query_text(f->st, "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1", "initech");
    w[5] = w[5] == 'A' ? 'B' : 'A';
    assert_int_equal(store_exec(f->st, "UPDATE tenant_keys SET wrapped = $1 WHERE tenant_id = $2",
                                SV_ARGS(SV_TEXT(w), SV_TEXT(tenants[2]))),
                     CAD_OK);
    struct vault_rotation r;
    assert_int_equal(vault_rotate(f->v, &r), CAD_ECRYPTO);
    assert_non_null(strstr(cad_errmsg(), "initech"));
    assert_key_files(f, 1, 2);
    assert_state(f, 2, true);
    assert_unseals_to(f->v, "acme", "klaviyo", 1, sealed[0], "secret-of-acme");
    assert_unseals_to(f->v, "globex", "klaviyo", 1, sealed[1], "secret-of-globex");
    free(w);
    free_all(sealed);
}

static void test_fingerprint(void **state)
{
    struct fixture *f = *state;
    cad_secret *a = text_secret("pk_0123456789abcdef0123456789abcdef01");
    cad_secret *b = text_secret("pk_0123456789abcdef0123456789abcdef02");
    char fa1[17], fa2[17], fg[17], fb[17];
    assert_int_equal(vault_fingerprint(f->v, "acme", a, fa1), CAD_OK);
    assert_int_equal(vault_fingerprint(f->v, "acme", a, fa2), CAD_OK);
    assert_int_equal(vault_fingerprint(f->v, "globex", a, fg), CAD_OK);
    assert_int_equal(vault_fingerprint(f->v, "acme", b, fb), CAD_OK);
    assert_int_equal(strlen(fa1), 16);
    assert_int_equal(strspn(fa1, "0123456789abcdef"), 16);
    assert_string_equal(fa1, fa2);
    assert_string_not_equal(fa1, fg);
    assert_string_not_equal(fa1, fb);
    /* Not a plain hash of the key. */
    char plain_hash[65];
    sha256_hex(secret_data(a), secret_len(a), plain_hash);
    assert_int_not_equal(strncmp(plain_hash, fa1, 16), 0);
    /* Stable across a rotation: the DEK is the same, only its wrapping changes. */
    struct vault_rotation r;
    assert_int_equal(vault_rotate(f->v, &r), CAD_OK);
    assert_int_equal(vault_fingerprint(f->v, "acme", a, fa2), CAD_OK);
    assert_string_equal(fa1, fa2);
    secret_free(a);
    secret_free(b);
}

static void test_seals_differ(void **state)
{
    struct fixture *f = *state;
    char *s1 = seal_text(f->v, "acme", "klaviyo", 1, "same plaintext");
    char *s2 = seal_text(f->v, "acme", "klaviyo", 1, "same plaintext");
    assert_string_not_equal(s1, s2);
    unsigned char *r1, *r2;
    size_t n1, n2;
    assert_int_equal(base64_decode(s1, &r1, &n1), CAD_OK);
    assert_int_equal(base64_decode(s2, &r2, &n2), CAD_OK);
    assert_int_equal(n1, n2);
    assert_memory_not_equal(r1, r2, 12); /* fresh nonces */
    free(r1);
    free(r2);
    assert_unseals_to(f->v, "acme", "klaviyo", 1, s1, "same plaintext");
    assert_unseals_to(f->v, "acme", "klaviyo", 1, s2, "same plaintext");
    free(s1);
    free(s2);
}

static void assert_absent(const char *haystack, const unsigned char *bytes, size_t n)
{
    char hex[2 * 64 + 1];
    char *b64;
    hex_encode(bytes, n, hex);
    assert_null(strstr(haystack, hex));
    assert_int_equal(base64_encode(bytes, n, &b64), CAD_OK);
    b64[16] = '\0';
    assert_null(strstr(haystack, b64));
    free(b64);
}

static void test_no_secret_in_messages(void **state)
{
    struct fixture *f = *state;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *logs = open_memstream(&logbuf, &loglen);
    assert_non_null(logs);
    log_set_stream(logs);
    log_set_level(LOG_DEBUG);

    const char *plain = "hunter2-but-much-longer-than-that";
    char *sealed = seal_text(f->v, "acme", "shopify", 1, plain);
    char msgs[4096];
    size_t used = 0;
    assert_unseal_fails(f->v, "acme", "klaviyo", 1, sealed, CAD_ECRYPTO);
    used += (size_t)snprintf(msgs + used, sizeof msgs - used, "%s\n", cad_errmsg());
    assert_unseal_fails(f->v, "globex", "shopify", 1, sealed, CAD_ECRYPTO);
    used += (size_t)snprintf(msgs + used, sizeof msgs - used, "%s\n", cad_errmsg());
    struct vault_rotation r;
    assert_int_equal(vault_rotate(f->v, &r), CAD_OK);
    char *w = query_text(f->st, "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1", "acme");
    cad_secret *dek = (cad_secret *)1;
    assert_int_equal(kms_unwrap(vault_kms(f->v), 2, "globex", w, &dek), CAD_ECRYPTO);
    used += (size_t)snprintf(msgs + used, sizeof msgs - used, "%s\n", cad_errmsg());
    assert_true(used < sizeof msgs);
    assert_int_equal(kms_unwrap(vault_kms(f->v), 2, "acme", w, &dek), CAD_OK);
    free(w);

    char path[256], *key;
    size_t keylen;
    key_path(f, 2, path, sizeof path);
    assert_int_equal(fs_read_all(path, 64, &key, &keylen), CAD_OK);
    assert_int_equal(keylen, 32);

    log_set_stream(NULL);
    log_set_level(LOG_WARN);
    fclose(logs);
    assert_non_null(strstr(logbuf, "kms.rotate.done"));
    const char *texts[] = {msgs, logbuf};
    for (size_t i = 0; i < 2; i++) {
        assert_null(strstr(texts[i], plain));
        assert_absent(texts[i], secret_data(dek), secret_len(dek));
        assert_absent(texts[i], (unsigned char *)key, keylen);
    }
    secret_free(dek);
    free(key);
    free(logbuf);
    free(sealed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_binding_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_ciphertext_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dek_copied_to_other_tenant_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_open_creates_private_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_without_create_needs_a_key, setup_bare, teardown),
        cmocka_unit_test_setup_teardown(test_lost_master_key_is_not_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_key_file_mode_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_dir_mode_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_dir_refused_on_first_run, setup_bare, teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_or_short_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_mismatch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_newer_master_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_tenant_and_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_rotation_before_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_rotation_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_rotation_before_retire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_failure_keeps_old_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seals_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_secret_in_messages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
