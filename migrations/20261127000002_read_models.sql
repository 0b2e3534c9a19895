-- Read models: folds of the event log, applied in the same transaction as the events they
-- fold (so a command's response already reflects them), rebuildable from the log.

CREATE TABLE firms (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    time_zone   text        NOT NULL,
    created_at  timestamptz NOT NULL,
    version     integer     NOT NULL
);

-- Each role's permissions per firm (the owner's row is implicit: everything, always).
CREATE TABLE role_permissions (
    firm_id     uuid        NOT NULL REFERENCES firms (id),
    role        text        NOT NULL,
    permissions text[]      NOT NULL,
    PRIMARY KEY (firm_id, role)
);

CREATE TABLE members (
    id          uuid        PRIMARY KEY,
    firm_id     uuid        NOT NULL REFERENCES firms (id),
    name        text        NOT NULL,
    email       text        NOT NULL,
    role        text        NOT NULL,
    status      text        NOT NULL,
    joined      boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    version     integer     NOT NULL
);
-- Emails are unique across the service, removed members included (their history keeps the address).
CREATE UNIQUE INDEX members_email ON members (email);
CREATE INDEX members_firm_page ON members (firm_id, id DESC);

CREATE TABLE api_keys (
    id              uuid        PRIMARY KEY,
    firm_id         uuid        NOT NULL REFERENCES firms (id),
    name            text        NOT NULL,
    key_hash        bytea       NOT NULL UNIQUE,
    preview         text        NOT NULL,
    scopes          text[]      NOT NULL,
    allowed_domains text[]      NOT NULL,
    lifecycle       text        NOT NULL,
    expires_at      timestamptz,
    last_used_at    timestamptz,
    created_at      timestamptz NOT NULL,
    created_by      uuid        NOT NULL REFERENCES members (id),
    revoked_at      timestamptz,
    revoked_by      uuid        REFERENCES members (id),
    revoke_reason   text,
    version         integer     NOT NULL
);
CREATE INDEX api_keys_firm_page ON api_keys (firm_id, id DESC);
CREATE INDEX api_keys_creator ON api_keys (created_by) WHERE lifecycle = 'active';
CREATE INDEX api_keys_expiring ON api_keys (expires_at) WHERE lifecycle = 'active' AND expires_at IS NOT NULL;

-- Credentials are not events: a password hash or a token hash never enters the log. They are
-- not read models either, so they keep no foreign key into the read models (which a rebuild
-- empties and refills).
CREATE TABLE member_passwords (
    member_id     uuid PRIMARY KEY,
    password_hash text NOT NULL
);

CREATE TABLE sessions (
    token_hash  bytea       PRIMARY KEY,
    member_id   uuid        NOT NULL,
    firm_id     uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_member ON sessions (member_id);

CREATE TABLE invitations (
    token_hash  bytea       PRIMARY KEY,
    member_id   uuid        NOT NULL,
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz
);
CREATE INDEX invitations_member ON invitations (member_id);
