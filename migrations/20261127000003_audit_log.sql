-- The audit log: one entry per key, member, role and firm event (Used events excepted), folded
-- in the command's own transaction (so a response already reflects it) and rebuildable from the
-- log. Each firm's entries form a SHA-256 hash chain in feed order; see docs/audit-log.md for
-- the canonical form that `hash` covers.
--
-- No foreign keys into the read models: `projections rebuild read_models` empties and refills
-- them, and the audit log must survive that untouched.
CREATE TABLE audit_log (
    firm_id        uuid        NOT NULL,
    -- 1, 2, 3… per firm, in feed order (which, under the firm's command lock, is commit order).
    sequence       bigint      NOT NULL CHECK (sequence > 0),
    -- The id of the event the entry records (UUID v7).
    id             uuid        NOT NULL UNIQUE,
    occurred_at    timestamptz NOT NULL,
    action         text        NOT NULL,
    actor_type     text        NOT NULL,
    actor_id       uuid,
    actor_name     text,
    target_type    text        NOT NULL,
    -- A UUID, or a role's name for `role.permissions_changed`.
    target_id      text        NOT NULL,
    target_name    text,
    details        jsonb       NOT NULL,
    previous_hash  text        NOT NULL,
    hash           text        NOT NULL,
    PRIMARY KEY (firm_id, sequence)
);

-- The filters of GET /v1/audit-log, each walked in sequence order.
CREATE INDEX audit_log_action ON audit_log (firm_id, action, sequence);
CREATE INDEX audit_log_actor ON audit_log (firm_id, actor_id, sequence);
CREATE INDEX audit_log_target ON audit_log (firm_id, target_id, sequence);
CREATE INDEX audit_log_time ON audit_log (firm_id, occurred_at);
