/*
 * Operators: agency staff who sign in to the console and are named as actors in the audit log.
 * Passwords are hashed with Argon2id (libargon2, the reference implementation; OpenSSL 3.0 in
 * Debian 12 has no Argon2) at 64 MiB, 3 passes, and stored in the PHC string format, which
 * carries its own salt and parameters so they can be raised later without a migration.
 */
#include <argon2.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "common/err.h"
#include "common/util.h"
#include "tenant/tenant.h"

#define ARGON2_T_COST   3
#define ARGON2_M_COST   (64 * 1024) /* KiB */
#define ARGON2_LANES    1
#define ARGON2_SALT_LEN 16
#define ARGON2_HASH_LEN 32
#define PASSWORD_MIN    12

/* A valid hash of a random password, checked against when the operator does not exist, so an
 * unknown email costs the same time as a wrong password. Computed on first use. */
static char dummy_hash[160];

const char *operator_role_name(enum operator_role r)
{
    return r == ROLE_ADMIN ? "admin" : "operator";
}

int operator_role_parse(const char *s, enum operator_role *out)
{
    if (s && strcmp(s, "admin") == 0)
        *out = ROLE_ADMIN;
    else if (s && strcmp(s, "operator") == 0)
        *out = ROLE_OPERATOR;
    else
        return cad_fail(CAD_EINVAL, "unknown role \"%s\"; use admin or operator", s ? s : "");
    return CAD_OK;
}

static int hash_password(const cad_secret *password, char *encoded, size_t cap)
{
    unsigned char salt[ARGON2_SALT_LEN];
    int rc = random_bytes(salt, sizeof salt);
    if (rc)
        return rc;
    int arc = argon2id_hash_encoded(ARGON2_T_COST, ARGON2_M_COST, ARGON2_LANES,
                                    secret_data(password), secret_len(password), salt, sizeof salt,
                                    ARGON2_HASH_LEN, encoded, cap);
    if (arc != ARGON2_OK)
        return cad_fail(CAD_ECRYPTO, "cannot hash the password: %s", argon2_error_message(arc));
    return CAD_OK;
}

int operator_add(store *st, const char *actor, const char *email, enum operator_role role,
                 const cad_secret *password)
{
    if (!email || !email_valid(email))
        return cad_fail(CAD_EINVAL, "\"%s\" is not an email address", email ? email : "");
    if (secret_len(password) < PASSWORD_MIN)
        return cad_fail(CAD_EINVAL, "the password is %zu characters long; use at least %d",
                        secret_len(password), PASSWORD_MIN);
    char encoded[160];
    int rc = hash_password(password, encoded, sizeof encoded);
    if (rc)
        return rc;
    if ((rc = store_begin(st)))
        return rc;
    rc = store_exec(
        st, "INSERT INTO operators(email, role, pw_hash, created_ms) VALUES ($1, $2, $3, $4)",
        SV_ARGS(SV_TEXT(email), SV_TEXT(operator_role_name(role)), SV_TEXT(encoded),
                SV_INT(time_now_ms())));
    if (rc == CAD_EEXIST)
        rc = cad_fail(CAD_EEXIST, "an operator with the email %s already exists", email);
    char detail[300];
    snprintf(detail, sizeof detail, "email=%s role=%s", email, operator_role_name(role));
    struct audit_entry e = {
        .actor = actor, .action = "operator.add", .duration_ms = -1, .detail = detail};
    if (rc == CAD_OK)
        rc = audit_append(st, &e, NULL);
    if (rc) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st);
}

static int operator_from_row(const store_row *row, struct operator_info *o)
{
    snprintf(o->email, sizeof o->email, "%s", store_row_text(row, 0));
    o->created_ms = store_row_int(row, 2);
    o->disabled = store_row_int(row, 3) != 0;
    return operator_role_parse(store_row_text(row, 1), &o->role);
}

struct one_ctx {
    struct operator_info *o;
    char *hash;
    size_t hash_cap;
    bool found;
};

static int one_row(void *ctx, const store_row *row)
{
    struct one_ctx *c = ctx;
    c->found = true;
    if (c->hash)
        snprintf(c->hash, c->hash_cap, "%s", store_row_text(row, 4));
    return operator_from_row(row, c->o);
}

static int operator_fetch(store *st, const char *email, struct operator_info *o, char *hash,
                          size_t cap)
{
    struct one_ctx c = {o, hash, cap, false};
    int rc = store_query(st,
                         "SELECT email, role, created_ms, disabled, pw_hash FROM operators "
                         "WHERE email = $1",
                         SV_ARGS(SV_TEXT(email)), one_row, &c);
    if (rc)
        return rc;
    return c.found ? CAD_OK : cad_fail(CAD_ENOTFOUND, "no operator with the email %s", email);
}

int operator_get(store *st, const char *email, struct operator_info *out)
{
    return operator_fetch(st, email, out, NULL, 0);
}

int operator_check_password(store *st, const char *email, const cad_secret *password)
{
    struct operator_info o;
    char hash[160];
    int rc = operator_fetch(st, email, &o, hash, sizeof hash);
    if (rc == CAD_ENOTFOUND || (rc == CAD_OK && o.disabled)) {
        if (!dummy_hash[0]) {
            cad_secret *junk;
            if (secret_new(&junk, 32) == CAD_OK) {
                random_bytes(secret_data_mut(junk), 32);
                hash_password(junk, dummy_hash, sizeof dummy_hash);
                secret_free(junk);
            }
        }
        (void)argon2id_verify(dummy_hash, secret_data(password), secret_len(password));
        return cad_fail(CAD_EAUTH, "wrong email or password");
    }
    if (rc)
        return rc;
    if (argon2id_verify(hash, secret_data(password), secret_len(password)) != ARGON2_OK)
        return cad_fail(CAD_EAUTH, "wrong email or password");
    return CAD_OK;
}

struct list_ctx {
    operator_fn fn;
    void *ctx;
};

static int list_row(void *ctx, const store_row *row)
{
    struct list_ctx *l = ctx;
    struct operator_info o;
    int rc = operator_from_row(row, &o);
    return rc ? rc : l->fn(l->ctx, &o);
}

int operator_list(store *st, operator_fn fn, void *ctx)
{
    struct list_ctx l = {fn, ctx};
    return store_query(st, "SELECT email, role, created_ms, disabled FROM operators ORDER BY email",
                       SV_NONE, list_row, &l);
}
