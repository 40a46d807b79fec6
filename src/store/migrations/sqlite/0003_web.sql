-- The web face: onboarding links (only the SHA-256 of each token is stored) and what the brand
-- entered while onboarding.

CREATE TABLE onboarding_links (
    token_sha256 TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    revoked_ms   BIGINT,
    created_by   TEXT NOT NULL
);
CREATE INDEX onboarding_links_tenant ON onboarding_links (tenant_id);

-- One row per tenant once the brand has submitted a step. The brand's own name and contact are
-- kept apart from the tenant record the agency created.
CREATE TABLE onboarding_progress (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants(id),
    brand_name    TEXT,
    contact_email TEXT,
    details_ms    BIGINT,
    extras_ms     BIGINT,
    updated_ms    BIGINT NOT NULL
);
