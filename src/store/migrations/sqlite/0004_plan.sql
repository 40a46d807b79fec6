-- Plans: what a bundle would change in a tenant's Klaviyo account, confirmed by an operator before
-- anything is written, then applied exactly once.
--
-- A plan and its steps are immutable once stored (triggers below refuse any UPDATE): what was
-- confirmed is exactly what runs. Everything that changes while a plan lives (its status, each
-- step's progress and results) is kept in plan_state and plan_step_runs.

CREATE TABLE plans (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    bundle_dir  TEXT NOT NULL,
    bundle_hash TEXT NOT NULL,
    hash        TEXT NOT NULL,
    prune       INTEGER NOT NULL,
    created_ms  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    estimate_ms BIGINT NOT NULL,
    estimate    TEXT NOT NULL,
    n_steps     INTEGER NOT NULL
);
CREATE INDEX plans_tenant ON plans (tenant_id, created_ms);

CREATE TABLE plan_steps (
    plan_id        TEXT NOT NULL REFERENCES plans(id),
    seq            INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    action         TEXT NOT NULL CHECK (action IN ('create', 'update', 'replace', 'delete', 'unchanged')),
    content_hash   TEXT NOT NULL,
    remote_id      TEXT,
    remote_updated TEXT,
    deps           TEXT NOT NULL,
    calls          TEXT NOT NULL,
    diff           TEXT NOT NULL,
    note           TEXT NOT NULL,
    token          TEXT NOT NULL,
    PRIMARY KEY (plan_id, seq)
);

CREATE TRIGGER plans_immutable BEFORE UPDATE ON plans
BEGIN
    SELECT RAISE(ABORT, 'a stored plan never changes');
END;
CREATE TRIGGER plan_steps_immutable BEFORE UPDATE ON plan_steps
BEGIN
    SELECT RAISE(ABORT, 'a stored plan step never changes');
END;

CREATE TABLE plan_state (
    plan_id      TEXT PRIMARY KEY REFERENCES plans(id),
    status       TEXT NOT NULL CHECK (status IN ('planned', 'confirmed', 'applying', 'done',
                                                 'partial', 'paused', 'cancelled')),
    confirmed_by TEXT,
    confirmed_ms BIGINT,
    started_ms   BIGINT,
    finished_ms  BIGINT,
    detail       TEXT,
    updated_ms   BIGINT NOT NULL
);

-- One row per step once apply starts. state: pending (nothing sent), intent (a write may have
-- left: look the object up before writing again), done, failed, conflict, skipped (a dependency
-- failed). phase: how far a multi-call step got (e.g. 1 = a replaced object's old copy deleted).
CREATE TABLE plan_step_runs (
    plan_id        TEXT NOT NULL REFERENCES plans(id),
    seq            INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'intent', 'done', 'failed',
                                                  'conflict', 'skipped')),
    phase          INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    remote_id      TEXT,
    remote_updated TEXT,
    result_hash    TEXT,
    job_id         TEXT,
    error          TEXT,
    updated_ms     BIGINT NOT NULL,
    PRIMARY KEY (plan_id, seq)
);

-- What Cadence knows it put into each tenant's account: the remote id, the content hash it wrote
-- and Klaviyo's `updated` time after the write. Checked against live reads when planning.
CREATE TABLE remote_objects (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    remote_id      TEXT NOT NULL,
    content_hash   TEXT NOT NULL,
    remote_updated TEXT,
    plan_id        TEXT,
    updated_ms     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, name)
);

-- Each confirmed revocation of a tenant's Klaviyo key (one per key version): when it was seen,
-- which plan saw it, the email queued to the brand, and when a new key resumed the work.
CREATE TABLE key_revocations (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    key_version INTEGER NOT NULL,
    detected_ms BIGINT NOT NULL,
    plan_id     TEXT,
    mail_id     BIGINT,
    detail      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key_version)
);

-- Sending a draft campaign is its own confirmation: a code tied to the campaign, its audience
-- and send time, valid for a short while, used once.
CREATE TABLE campaign_sends (
    code       TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    campaign   TEXT NOT NULL,
    remote_id  TEXT NOT NULL,
    audience   TEXT NOT NULL,
    send_at    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    sent_ms    BIGINT
);
