-- Rolling a key: the old key names its successor and the instant its grace period ends (it is
-- Revoked from then, recorded or not); the successor names the key it replaces.
ALTER TABLE api_keys
    ADD COLUMN replaced_by   uuid,
    ADD COLUMN grace_ends_at timestamptz,
    ADD COLUMN replaces      uuid;

-- The sweeper's question: keys recorded Active whose grace period has ended.
CREATE INDEX api_keys_grace_ending ON api_keys (grace_ends_at)
    WHERE lifecycle = 'active' AND grace_ends_at IS NOT NULL;
