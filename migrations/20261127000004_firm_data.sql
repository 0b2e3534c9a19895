-- The firm's data: contacts, leads, practice areas, matter types and matters. Plain tables, not
-- event-sourced and not read models: a projection rebuild never touches them.
--
-- Deliberately no foreign key to `firms`, `members` or `api_keys`: those are read models, which
-- `esqase projections rebuild` truncates and refills (a reference would make the TRUNCATE fail),
-- and a record outlives the key or member that made it. `created_by_type`/`created_by_id` say
-- who made a record ("member" or "api_key", and that one's id).
--
-- References between data tables are composite (firm_id, id) foreign keys onto each table's
-- UNIQUE (firm_id, id DESC) index, so the database itself refuses a reference to another firm's
-- record (MATCH SIMPLE: a NULL reference is not checked). The default NO ACTION refuses to
-- delete a record that is still referenced (the API's 409 record_in_use). That unique index is
-- also the one each list page is read from (newest first). The API checks references itself,
-- inside the writing transaction with FOR KEY SHARE, to report every bad one as a 422.

CREATE TABLE contacts (
    id              uuid        PRIMARY KEY,
    firm_id         uuid        NOT NULL,
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email           text        CHECK (char_length(email) BETWEEN 1 AND 254),
    phone           text        CHECK (char_length(phone) BETWEEN 1 AND 40),
    created_by_type text        NOT NULL CHECK (created_by_type IN ('member', 'api_key')),
    created_by_id   uuid        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX contacts_firm_page ON contacts (firm_id, id DESC);

CREATE TABLE leads (
    id              uuid        PRIMARY KEY,
    firm_id         uuid        NOT NULL,
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email           text        CHECK (char_length(email) BETWEEN 1 AND 254),
    source          text        CHECK (char_length(source) BETWEEN 1 AND 200),
    created_by_type text        NOT NULL CHECK (created_by_type IN ('member', 'api_key')),
    created_by_id   uuid        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX leads_firm_page ON leads (firm_id, id DESC);

CREATE TABLE practice_areas (
    id              uuid        PRIMARY KEY,
    firm_id         uuid        NOT NULL,
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_by_type text        NOT NULL CHECK (created_by_type IN ('member', 'api_key')),
    created_by_id   uuid        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX practice_areas_firm_page ON practice_areas (firm_id, id DESC);

CREATE TABLE matter_types (
    id               uuid        PRIMARY KEY,
    firm_id          uuid        NOT NULL,
    name             text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    practice_area_id uuid,
    created_by_type  text        NOT NULL CHECK (created_by_type IN ('member', 'api_key')),
    created_by_id    uuid        NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT matter_types_practice_area FOREIGN KEY (firm_id, practice_area_id)
        REFERENCES practice_areas (firm_id, id)
);
CREATE UNIQUE INDEX matter_types_firm_page ON matter_types (firm_id, id DESC);
CREATE INDEX matter_types_practice_area ON matter_types (firm_id, practice_area_id)
    WHERE practice_area_id IS NOT NULL;

CREATE TABLE matters (
    id               uuid        PRIMARY KEY,
    firm_id          uuid        NOT NULL,
    title            text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    contact_id       uuid,
    practice_area_id uuid,
    matter_type_id   uuid,
    status           text        NOT NULL CHECK (status IN ('open', 'closed')),
    created_by_type  text        NOT NULL CHECK (created_by_type IN ('member', 'api_key')),
    created_by_id    uuid        NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT matters_contact FOREIGN KEY (firm_id, contact_id) REFERENCES contacts (firm_id, id),
    CONSTRAINT matters_practice_area FOREIGN KEY (firm_id, practice_area_id)
        REFERENCES practice_areas (firm_id, id),
    CONSTRAINT matters_matter_type FOREIGN KEY (firm_id, matter_type_id) REFERENCES matter_types (firm_id, id)
);
CREATE UNIQUE INDEX matters_firm_page ON matters (firm_id, id DESC);
CREATE INDEX matters_contact ON matters (firm_id, contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX matters_practice_area ON matters (firm_id, practice_area_id) WHERE practice_area_id IS NOT NULL;
CREATE INDEX matters_matter_type ON matters (firm_id, matter_type_id) WHERE matter_type_id IS NOT NULL;
