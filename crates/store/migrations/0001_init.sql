-- Tephra's system of record in PostgreSQL, shared by every API node.
--
-- Every row belongs to a tenant. Ids are compared and sorted byte by byte
-- (COLLATE "C"), like the embedded store's keys, so that pages of items and
-- users come in the same order whatever the database's locale. Times are
-- integer milliseconds since the Unix epoch.

-- The registry: tenants and their API keys.
CREATE TABLE tenants (
    name       text COLLATE "C" PRIMARY KEY,
    created_at bigint NOT NULL,
    settings   jsonb NOT NULL
);

CREATE TABLE api_keys (
    id              text COLLATE "C" PRIMARY KEY,
    tenant          text COLLATE "C" NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    label           text NOT NULL,
    scopes          text[] NOT NULL,
    -- Hex SHA-256 of the whole key string: the secret itself is never stored.
    secret_hash     text NOT NULL,
    created_at      bigint NOT NULL,
    rotated_at      bigint,
    revoked_at      bigint,
    rate_per_second double precision,
    rate_burst      bigint,
    CHECK ((rate_per_second IS NULL) = (rate_burst IS NULL))
);

CREATE INDEX api_keys_by_tenant ON api_keys (tenant);

-- One row per tenant with data. Every write transaction of a tenant locks its
-- row first (SELECT ... FOR UPDATE), which serializes the tenant's writes, so
-- that indices and sequence numbers are handed out in order and without gaps.
CREATE TABLE tenant_counters (
    tenant     text COLLATE "C" PRIMARY KEY,
    -- The index the next new item gets.
    next_item  bigint NOT NULL DEFAULT 0,
    -- The index the next new user gets.
    next_user  bigint NOT NULL DEFAULT 0,
    -- The seq of the next event: the length of the log.
    next_seq   bigint NOT NULL DEFAULT 0,
    -- Items and users with a record (deleted ones excluded), so that counting
    -- them needs no scan.
    live_items bigint NOT NULL DEFAULT 0,
    live_users bigint NOT NULL DEFAULT 0
);

-- Catalogue items. A deleted item keeps its row with a NULL record, so that its
-- index is never reused and events naming it do not re-create it. Records are
-- the embedded store's JSON encoding, as bytes, so that every value (NUL
-- characters in text included) round-trips exactly.
CREATE TABLE items (
    tenant text COLLATE "C" NOT NULL,
    id     text COLLATE "C" NOT NULL,
    idx    bigint NOT NULL,
    record bytea,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, idx)
);

-- Users, kept like items.
CREATE TABLE users (
    tenant text COLLATE "C" NOT NULL,
    id     text COLLATE "C" NOT NULL,
    idx    bigint NOT NULL,
    record bytea,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, idx)
);

-- The append-only event log, ordered by seq (0, 1, 2, ... per tenant).
CREATE TABLE events (
    tenant     text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    user_idx   bigint NOT NULL,
    item_idx   bigint NOT NULL,
    event_type text NOT NULL,
    value      double precision NOT NULL,
    ts         bigint NOT NULL,
    request_id text,
    scene      text,
    position   integer,
    source     text,
    experiment text,
    variant    text,
    PRIMARY KEY (tenant, seq)
);

-- Experiment definitions, documents the server owns.
CREATE TABLE experiments (
    tenant text COLLATE "C" NOT NULL,
    name   text COLLATE "C" NOT NULL,
    doc    jsonb NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- The promoted model of each tenant, written by the node that trains and read
-- by every node that serves.
CREATE TABLE model_snapshots (
    tenant   text COLLATE "C" PRIMARY KEY,
    version  text NOT NULL,
    data     bytea NOT NULL,
    saved_at bigint NOT NULL
);

-- Snapshots are large and already dense: keep them out of line, uncompressed.
ALTER TABLE model_snapshots ALTER COLUMN data SET STORAGE EXTERNAL;
