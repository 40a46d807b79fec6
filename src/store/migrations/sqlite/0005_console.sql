-- The operators' console: sign-in sessions and the sign-in throttle.
--
-- A session is known only by the SHA-256 of its cookie value, so a copy of the database does not
-- let anyone sign in. It ends at the first of: logout (ended_ms), idle expiry (last_seen_ms + the
-- idle limit, checked by the server) and its absolute expiry (expires_ms).
CREATE TABLE console_sessions (
    id_sha256    TEXT PRIMARY KEY,
    operator     TEXT NOT NULL REFERENCES operators(email),
    created_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    client       TEXT NOT NULL,
    ended_ms     BIGINT
);
CREATE INDEX console_sessions_operator ON console_sessions (operator);

-- Failed sign-ins, per subject: "account:<email as typed, lower-case>" or "address:<client IP>".
-- Accounts are counted whether or not they exist, so a lockout says nothing about existence.
-- failures counts within the window that started at window_ms; locked_until_ms is set when the
-- limit is reached. Kept in the store so that a restart or a second instance does not reset it.
CREATE TABLE console_login_failures (
    subject         TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    window_ms       BIGINT NOT NULL,
    locked_until_ms BIGINT
);
