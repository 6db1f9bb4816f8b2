-- Resource mapping: our SCIM id <-> C4C ObjectID <-> EmployeeID.
-- Times are Unix milliseconds and booleans 0/1, both BIGINT, so that both backends (through
-- sqlx's Any driver) store and compare them alike.
CREATE TABLE resources (
    -- Creation order, for stable list paging.
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    resource_type   TEXT NOT NULL,
    object_id       TEXT,
    employee_id     TEXT,
    external_id     TEXT,
    user_name       TEXT NOT NULL,
    -- Lower-cased in Rust (full Unicode), since SQLite's lower() only folds ASCII.
    user_name_lower TEXT NOT NULL,
    version         BIGINT NOT NULL,
    scim_json       TEXT NOT NULL,
    active          BIGINT NOT NULL,
    tombstone       BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- userName is unique case-insensitively per type among live resources; a tombstone keeps its
-- row so that a returning user is reactivated, not duplicated.
CREATE UNIQUE INDEX resources_live_name ON resources (resource_type, user_name_lower) WHERE tombstone = 0;
CREATE UNIQUE INDEX resources_object_id ON resources (resource_type, object_id) WHERE object_id IS NOT NULL;
CREATE INDEX resources_employee_id ON resources (employee_id);
CREATE INDEX resources_external_id ON resources (resource_type, external_id);

CREATE TABLE mapping_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id    TEXT NOT NULL,
    at            BIGINT NOT NULL,
    client        TEXT,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    employee_id   TEXT,
    object_id     TEXT,
    status        BIGINT NOT NULL,
    outcome       TEXT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    detail        TEXT NOT NULL
);
CREATE INDEX mapping_log_at ON mapping_log (at);
CREATE INDEX mapping_log_resource ON mapping_log (resource_id, at);
CREATE INDEX mapping_log_employee ON mapping_log (employee_id, at);
CREATE INDEX mapping_log_outcome ON mapping_log (outcome, at);

-- Retry outbox: writes to C4C that must be applied (again) by a worker.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    resource_id     TEXT,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_by       TEXT,
    locked_until    BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
