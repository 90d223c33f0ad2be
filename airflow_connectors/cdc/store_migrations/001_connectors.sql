-- Connectors. ``document`` is the full connector resource as validated by cdc/models.py, secrets encrypted
-- (see cdc/secrets.py); ``version`` is bumped by every write and is the ETag clients send back in If-Match.
CREATE TABLE connectors (
    seq         bigserial   NOT NULL UNIQUE,        -- creation order: list paging
    id          text        PRIMARY KEY,
    name        text,
    document    jsonb       NOT NULL,
    version     integer     NOT NULL DEFAULT 1,
    paused      boolean     NOT NULL DEFAULT false,  -- the ``pause`` command; ``disabled`` lives in the document
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX connectors_by_name ON connectors (name, seq);
