-- The email outbox: every message Cadence sends to a brand, queued first and delivered by the
-- mail sender (src/mail). dedupe_key names the logical message ("key_request:acme:<payment time>")
-- so a caller that runs twice queues it once. message_id is generated once, when the first attempt
-- is claimed, and reused by every later attempt, so a resend after a crash carries the same
-- Message-ID. sending_ms is when the current attempt was claimed: a row left in 'sending' longer
-- than the sender's lease was interrupted by a crash. The body may hold an onboarding link (a
-- credential-like token URL): it is stored as given and never logged or listed.
CREATE TABLE outbox (
    id              BIGINT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    kind            TEXT NOT NULL
                    CHECK (kind IN ('key_request', 'key_revoked', 'onboarding_link')),
    to_addr         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT,
    created_ms      BIGINT NOT NULL,
    sending_ms      BIGINT,
    sent_ms         BIGINT,
    message_id      TEXT UNIQUE
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_ms);
CREATE INDEX outbox_tenant ON outbox (tenant_id, id);
