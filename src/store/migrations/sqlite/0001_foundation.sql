-- Foundation schema: tenants, their wrapped data keys and sealed credentials, operators, the
-- append-only audit log, and the key-management state.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT,
    created_ms  BIGINT NOT NULL,
    payment     TEXT NOT NULL DEFAULT 'awaiting' CHECK (payment IN ('awaiting', 'confirmed')),
    payment_ms  BIGINT
);

-- One data key (DEK) per tenant, stored only wrapped by the KMS key-encryption key.
CREATE TABLE tenant_keys (
    tenant_id    TEXT PRIMARY KEY REFERENCES tenants(id),
    kms_provider TEXT NOT NULL,
    kek_version  INTEGER NOT NULL,
    wrapped      TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    rewrapped_ms BIGINT
);

-- One row per tenant and credential kind. `sealed` is base64(nonce | ciphertext | tag) under the
-- tenant's DEK with associated data binding it to tenant, kind and version.
CREATE TABLE credentials (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    kind         TEXT NOT NULL CHECK (kind IN ('klaviyo', 'shopify', 'postscript', 'attentive')),
    state        TEXT NOT NULL DEFAULT 'none'
                 CHECK (state IN ('none', 'deferred', 'unverified', 'verified', 'invalid', 'revoked')),
    version      INTEGER NOT NULL DEFAULT 0,
    sealed       TEXT,
    last4        TEXT,
    fingerprint  TEXT,
    set_ms       BIGINT,
    verified_ms  BIGINT,
    account_id   TEXT,
    account_name TEXT,
    scopes       TEXT,
    detail       TEXT,
    extra        TEXT,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE operators (
    email      TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
    pw_hash    TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0
);

-- Append-only, hash-chained. A call to an outside service is two records: the intent, written
-- before the request leaves, and its outcome (ref_seq = the intent's seq) written after.
CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,
    ts_ms          BIGINT NOT NULL,
    tenant_id      TEXT,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    method         TEXT,
    endpoint       TEXT,
    payload_sha256 TEXT,
    status         INTEGER,
    duration_ms    BIGINT,
    request_id     TEXT,
    ref_seq        BIGINT,
    detail         TEXT,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);
CREATE INDEX audit_log_ref ON audit_log (ref_seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- The chain's head: the last record's seq and hash, updated in the same transaction as each
-- append, so truncating the tail of the log is detected too.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);

-- Key-management state: which KEK version new wraps use, and a rotation in progress.
CREATE TABLE kms_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    provider        TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    rotating_from   INTEGER
);
