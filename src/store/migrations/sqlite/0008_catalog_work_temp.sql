-- A catalog sync's work tables (what differs, staged; what the shop still has, noted) are now the
-- sync connection's own TEMP tables (src/plan/catalog_sync.c): a half-read shop is worth nothing
-- after a crash, so they need neither the disk's sync nor the WAL, and writing them takes no lock
-- on the database. The shared ones from 0007 held nothing between syncs.
DROP INDEX IF EXISTS catalog_stage_order;
DROP TABLE IF EXISTS catalog_stage;
DROP TABLE IF EXISTS catalog_seen;
