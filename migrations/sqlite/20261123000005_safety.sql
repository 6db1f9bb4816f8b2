-- Safe deprovisioning (issue 15): deactivations held by the circuit breaker, and a journal of
-- every lock / validity change the bridge applied, with the previous values, for undo.
-- Times are Unix milliseconds (BIGINT), JSON as TEXT, like the other tables.

-- A deprovisioning the breaker did not apply. One held row per resource at a time: a retry of
-- the same request (503 policy) or a newer one replaces the payload.
CREATE TABLE held_operations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    client          TEXT,
    request_id      TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    object_id       TEXT,
    -- deactivate (PUT/PATCH active=false), delete (DELETE), role_removal (groups, later).
    kind            TEXT NOT NULL,
    -- What to apply on release: C4C fields and the SCIM representation to store.
    payload         TEXT NOT NULL,
    -- The resource version the payload was computed from; a newer version supersedes it.
    base_version    BIGINT NOT NULL,
    -- held, released, discarded, superseded, failed.
    status          TEXT NOT NULL,
    requested_at    BIGINT NOT NULL,
    decided_at      BIGINT,
    decided_by      TEXT,
    error           TEXT
);
CREATE UNIQUE INDEX held_operations_one_per_resource ON held_operations (resource_type, resource_id) WHERE status = 'held';
CREATE INDEX held_operations_client ON held_operations (client, status, requested_at);

-- Lock and validity changes the bridge applied to C4C, with the values before.
CREATE TABLE applied_changes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              BIGINT NOT NULL,
    client          TEXT,
    -- Who: the identity-provider client (scim:<client>) or an operator (operator:<name>).
    actor           TEXT NOT NULL,
    request_id      TEXT,
    resource_id     TEXT,
    object_id       TEXT NOT NULL,
    -- deactivate, reactivate, undo.
    kind            TEXT NOT NULL,
    previous        TEXT NOT NULL,
    applied         TEXT NOT NULL,
    -- Set when an operator released a held change: it does not count towards the breaker.
    approved_by     TEXT,
    undone_at       BIGINT,
    undone_by       TEXT
);
CREATE INDEX applied_changes_at ON applied_changes (at);
CREATE INDEX applied_changes_client ON applied_changes (client, kind, at);
