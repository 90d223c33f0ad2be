-- Replication runs. One row per run; the worker that executes a run holds a lease on it (worker_id +
-- lease_expires_at) and renews it while alive, so a run whose process died is found and recovered.
CREATE TABLE runs (
    seq               bigserial   NOT NULL UNIQUE,       -- creation order: history paging and claim order
    run_id            text        PRIMARY KEY,
    connector_id      text        NOT NULL,
    state             text        NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'snapshotting', 'streaming', 'succeeded', 'failed', 'cancelled')),
    mode              text        NOT NULL CHECK (mode IN ('catch_up', 'continuous')),
    resync            jsonb       NOT NULL DEFAULT 'false',
    trigger           text        NOT NULL CHECK (trigger IN ('api', 'schedule')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    start_lsn         text,
    fence_lsn         text,
    applied_lsn       text,
    tables            jsonb       NOT NULL DEFAULT '{}',
    rows_total        bigint      NOT NULL DEFAULT 0,
    lag_bytes         bigint,
    wal_status        text,
    error             text,
    cancel_requested  boolean     NOT NULL DEFAULT false,
    recoveries        integer     NOT NULL DEFAULT 0,     -- how many times its worker died mid-run
    worker_id         text,
    lease_expires_at  timestamptz
);

-- One active run per connector, enforced here so it holds across service processes.
CREATE UNIQUE INDEX runs_one_active_per_connector ON runs (connector_id)
    WHERE state IN ('queued', 'snapshotting', 'streaming');

CREATE INDEX runs_history ON runs (connector_id, seq DESC);

CREATE INDEX runs_claimable ON runs (seq) WHERE state = 'queued' AND worker_id IS NULL;

CREATE INDEX runs_leased ON runs (lease_expires_at) WHERE worker_id IS NOT NULL;
