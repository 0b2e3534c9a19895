-- Failed sign-ins, counted per account (the email as typed, known or not) and per client
-- address, so that guessing a password waits longer after each failure (`commands::throttle`).
-- Shared by every node and kept across restarts. `subject` is the SHA-256 of `account:<email>`
-- or `address:<ip>`: the table holds no email address and no IP address.
CREATE TABLE sign_in_failures (
    subject bytea PRIMARY KEY,
    failures integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    -- Attempts are answered 429 until then; NULL while under the limit.
    blocked_until timestamptz
);

-- The sweep of counters nobody has failed for a whole window.
CREATE INDEX sign_in_failures_last_failure ON sign_in_failures (last_failure_at);
