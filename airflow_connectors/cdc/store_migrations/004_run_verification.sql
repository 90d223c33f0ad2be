-- Verification of runs (POST /connectors/{id}/verify, or "verify": true on a run) and where each table was written.
ALTER TABLE runs ADD COLUMN verify boolean NOT NULL DEFAULT false;
ALTER TABLE runs ADD COLUMN verification jsonb;                     -- the report, also when it failed the run
ALTER TABLE runs ADD COLUMN sink_tables jsonb NOT NULL DEFAULT '{}'; -- "schema.table" -> {target_schema, table}
