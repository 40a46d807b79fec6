-- Shopify catalog syncs. A sync is a plan like any other (plans, plan_steps, plan_state,
-- plan_step_runs), but its content comes from the shop, not from a bundle directory: plans.bundle_dir
-- is "shopify:<shop domain>" and each step's Klaviyo object is stored with the plan, as immutable
-- as the step itself.

-- The catalog object (a catalog-item, catalog-variant or catalog-category create object) a step
-- writes; deletes have none.
CREATE TABLE plan_step_bodies (
    plan_id TEXT NOT NULL REFERENCES plans(id),
    seq     INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (plan_id, seq)
);
CREATE TRIGGER plan_step_bodies_immutable BEFORE UPDATE ON plan_step_bodies
BEGIN
    SELECT RAISE(ABORT, 'a stored plan step never changes');
END;

-- What Cadence last wrote to each tenant's Klaviyo catalog: the content hash (what makes a sync
-- incremental) and the object itself (what makes an update's diff readable).
CREATE TABLE catalog_objects (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    kind         TEXT NOT NULL CHECK (kind IN ('catalog-item', 'catalog-variant', 'catalog-category')),
    external_id  TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    body         TEXT NOT NULL,
    plan_id      TEXT,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, external_id)
);

-- Working rows of a sync while the shop is read (deleted once the plan is stored or the read
-- failed): every object the shop has (seen) and the ones that differ from catalog_objects
-- (staged, with their phase: the order Klaviyo needs — categories, items, variants, then the
-- deletes in reverse).
CREATE TABLE catalog_seen (
    sync_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    external_id TEXT NOT NULL,
    PRIMARY KEY (sync_id, kind, external_id)
);
CREATE TABLE catalog_stage (
    sync_id      TEXT NOT NULL,
    phase        INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    content_hash TEXT NOT NULL,
    body         TEXT NOT NULL,
    diff         TEXT NOT NULL,
    PRIMARY KEY (sync_id, kind, external_id)
);
CREATE INDEX catalog_stage_order ON catalog_stage (sync_id, phase, external_id);

-- Per tenant: a standing approval for catalog-only syncs (given by an admin, recorded in the audit
-- log; such syncs are confirmed without a click), the last sync, and whether the account already
-- receives a catalog from Klaviyo's own Shopify integration.
CREATE TABLE catalog_settings (
    tenant_id            TEXT PRIMARY KEY REFERENCES tenants(id),
    approved_by          TEXT,
    approved_ms          BIGINT,
    last_sync_ms         BIGINT,
    last_plan_id         TEXT,
    integration_warning  TEXT,
    updated_ms           BIGINT NOT NULL
);
