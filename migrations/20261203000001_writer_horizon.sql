-- The feed's horizon from this database's own event-log writers, not the cluster's.
--
-- `pg_snapshot_xmin` is the oldest transaction open anywhere in the Postgres cluster: a
-- migration or a forgotten psql session in another database held every node's feed back for
-- as long as it stayed open. Every transaction that appends events takes the shared writer lock
-- (advisory, two-key form 1702064481/2003986804, "esqa"/"writ") as its first statement, before it
-- has a transaction id; the feed is read below the oldest id among the holders of that lock.

-- The writer lock's keys, named once.
CREATE FUNCTION esqase_writer_lock_keys(OUT class_id int, OUT object_id int)
LANGUAGE sql IMMUTABLE AS $$ SELECT 1702064481, 2003986804 $$;

-- The first transaction id whose events a feed reader may not see yet: the oldest id held by an
-- open event-log writer of this database, or the first id not yet started when none is open.
--
-- Why it is safe, for a writer W: (1) `head` is the snapshot's xmax; an id below it was
-- assigned before the snapshot (a later id has completed, and ids are handed out in order).
-- (2) W takes the lock before it has an id, so if W holds an id below `head`, it held the lock
-- before the snapshot and, if still open, appears below. (3) Its id is read from the process
-- array (pg_stat_activity.backend_xid), where it is set the moment it is assigned; pg_locks'
-- own row for the id is inserted a moment later and would leave a gap. (4) A process that
-- moved on to a new transaction since has an id at or above `head`: min() ignores it.
CREATE FUNCTION esqase_feed_horizon() RETURNS xid8
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head bigint := pg_snapshot_xmax(pg_current_snapshot())::text::bigint;
    oldest bigint;
BEGIN
    -- pg_stat_activity is otherwise read once per transaction.
    PERFORM pg_stat_clear_snapshot();
    -- The process array shows 32-bit ids: widen each by its signed 32-bit distance from `head`
    -- (an open transaction's id is within 2^31 of it); one at or above `head` changes nothing.
    SELECT min(head + ((w.xid - (head & x'FFFFFFFF'::bigint) + x'180000000'::bigint) % x'100000000'::bigint)
                    - x'80000000'::bigint)
      INTO oldest
      FROM (SELECT a.backend_xid::text::bigint AS xid
              FROM (SELECT l.pid
                      FROM pg_locks l, esqase_writer_lock_keys() k
                     WHERE l.granted AND l.locktype = 'advisory'
                       AND l.classid = k.class_id::oid AND l.objid = k.object_id::oid AND l.objsubid = 2
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    OFFSET 0) writers
              JOIN pg_stat_activity a ON a.pid = writers.pid
             WHERE a.backend_xid IS NOT NULL) w;
    RETURN least(head, coalesce(oldest, head))::text::xid8;
END $$;

-- Up to `max_events` events after (after_tx, after_position), in feed order, below the horizon.
-- The events are read by a statement of their own, begun after the horizon was computed, so a
-- writer that committed meanwhile is seen.
CREATE FUNCTION esqase_read_feed(after_tx xid8, after_position bigint, max_events int) RETURNS SETOF events
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    horizon xid8 := esqase_feed_horizon();
BEGIN
    RETURN QUERY
        SELECT * FROM events e
         WHERE (e.tx_id, e.position) > (after_tx, after_position) AND e.tx_id < horizon
         ORDER BY e.tx_id, e.position
         LIMIT max_events;
END $$;

-- The last event below the horizon, if any.
CREATE FUNCTION esqase_feed_head() RETURNS SETOF events
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    horizon xid8 := esqase_feed_horizon();
BEGIN
    RETURN QUERY SELECT * FROM events e WHERE e.tx_id < horizon ORDER BY e.tx_id DESC, e.position DESC LIMIT 1;
END $$;

-- The horizon is only right if every appender holds the writer lock: refuse any that does not,
-- rather than let a reader pass its events before they commit.
CREATE FUNCTION esqase_events_require_writer_lock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_locks l, esqase_writer_lock_keys() k
         WHERE l.pid = pg_backend_pid() AND l.granted AND l.locktype = 'advisory'
           AND l.classid = k.class_id::oid AND l.objid = k.object_id::oid AND l.objsubid = 2
    ) THEN
        RAISE EXCEPTION 'events are appended only by a transaction holding the event-log writer lock'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER events_require_writer_lock BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION esqase_events_require_writer_lock();
