-- depfw's shared state on PostgreSQL, version 1. Records are kept as the JSON depfw writes
-- (the same documents as the sled store), with the columns queries filter on beside them.

-- Counters bumped by every change a replica must pick up (see store::pg::Revisions).
CREATE TABLE depfw_revisions (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO depfw_revisions (name, value) VALUES ('overrides', 0), ('agents', 0);

-- The decision log: one hash chain for every replica. Appends lock the head row.
CREATE TABLE depfw_decisions (
    seq bigint PRIMARY KEY,
    time timestamptz NOT NULL,
    agent text,
    package text NOT NULL,
    verdict text NOT NULL,
    record text NOT NULL
);
CREATE TABLE depfw_decision_head (
    id integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO depfw_decision_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE depfw_agents (
    name text PRIMARY KEY,
    token_lookup text NOT NULL UNIQUE,
    record text NOT NULL
);

CREATE TABLE depfw_overrides (
    id bigint PRIMARY KEY,
    active_key text NOT NULL,
    removed boolean NOT NULL DEFAULT false,
    record text NOT NULL
);
CREATE INDEX depfw_overrides_active ON depfw_overrides (active_key) WHERE NOT removed;

CREATE TABLE depfw_quarantine (
    id bigint PRIMARY KEY,
    pending_key text UNIQUE,
    record text NOT NULL
);

-- Circuit-breaker events of the last hour, per agent, counted across replicas.
CREATE TABLE depfw_breaker_events (
    agent text NOT NULL,
    kind text NOT NULL,
    package text,
    at timestamptz NOT NULL
);
CREATE INDEX depfw_breaker_events_agent ON depfw_breaker_events (agent, at);

CREATE TABLE depfw_admin_sessions (
    id text PRIMARY KEY,
    record text NOT NULL,
    last_used timestamptz NOT NULL
);

CREATE TABLE depfw_admin_throttle (
    client text PRIMARY KEY,
    count integer NOT NULL,
    last timestamptz NOT NULL,
    blocked_until timestamptz
);

CREATE SEQUENCE depfw_override_ids;
CREATE SEQUENCE depfw_quarantine_ids;
