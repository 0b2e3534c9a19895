-- A key's optional rate limit: at most `rate_limit` requests in each fixed window of
-- `rate_limit_window_seconds` (both set, or neither for a key without a limit).
ALTER TABLE api_keys
    ADD COLUMN rate_limit                integer,
    ADD COLUMN rate_limit_window_seconds integer,
    ADD CONSTRAINT api_keys_rate_limit_whole
        CHECK ((rate_limit IS NULL) = (rate_limit_window_seconds IS NULL)),
    ADD CONSTRAINT api_keys_rate_limit_in_range
        CHECK (rate_limit BETWEEN 1 AND 1000000 AND rate_limit_window_seconds BETWEEN 1 AND 3600);
