-- The event log: every change to a firm, a member or a key, in one append-only table.
CREATE TABLE events (
    -- The global sequence; the feed is read in (tx_id, position) order, never by position alone.
    position     bigserial   PRIMARY KEY,
    id           uuid        NOT NULL UNIQUE,
    stream_id    uuid        NOT NULL,
    stream_kind  text        NOT NULL,
    version      integer     NOT NULL CHECK (version > 0),
    event_type   text        NOT NULL,
    payload      jsonb       NOT NULL,
    firm_id      uuid        NOT NULL,
    actor        jsonb       NOT NULL,
    request_id   text,
    occurred_at  timestamptz NOT NULL,
    -- The writing transaction: readers stay below the oldest open one, so none skips a late commit.
    tx_id        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- A second writer of the same version conflicts here: optimistic concurrency.
    UNIQUE (stream_id, version)
);

CREATE INDEX events_feed ON events (tx_id, position);

-- Where each feed follower (the relay, a projection rebuild) has got to.
CREATE TABLE checkpoints (
    name       text        PRIMARY KEY,
    tx_id      xid8        NOT NULL,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
