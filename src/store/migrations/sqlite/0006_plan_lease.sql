-- Who is applying a plan right now. One row per plan while an applier (`cadence plan apply`, or
-- a background worker of `cadence serve`) runs it; the holder renews expires_ms every few seconds
-- and deletes the row when it stops. A second applier may take the row only when it expired (the
-- holder crashed or hung) or its holder process is gone from this host, so two processes never
-- run one plan at once. holder is unique per apply call (host, pid and random bytes): two threads
-- of one process are two holders.
CREATE TABLE plan_leases (
    plan_id     TEXT PRIMARY KEY REFERENCES plans(id),
    holder      TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    acquired_ms BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
