-- Drift reconciliation (issue 15): runs, their findings, and the delta watermark.
-- Times are Unix milliseconds (BIGINT), JSON as TEXT, like the other tables.

-- One reconciliation run (background job or `c4c-scim-bridge reconcile`).
CREATE TABLE reconcile_runs (
    id              BIGSERIAL PRIMARY KEY,
    -- full or delta.
    mode            TEXT NOT NULL,
    dry_run         BIGINT NOT NULL,
    -- job (background) or cli.
    trigger_source  TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    -- running, ok, failed.
    status          TEXT NOT NULL,
    -- Counts, the watermark range read and any error, as JSON.
    summary         TEXT NOT NULL,
    error           TEXT
);
CREATE INDEX reconcile_runs_started ON reconcile_runs (started_at);

-- One difference found by a run.
CREATE TABLE reconcile_findings (
    id              BIGSERIAL PRIMARY KEY,
    run_id          BIGINT NOT NULL,
    -- changed_in_c4c, missing_in_c4c, linked_twice, unlinked_match.
    kind            TEXT NOT NULL,
    resource_id     TEXT,
    object_id       TEXT,
    employee_id     TEXT,
    -- The C4C property (or business_role) that differs; NULL for the other kinds.
    field           TEXT,
    -- JSON values: what C4C holds and what the bridge last wrote.
    c4c_value       TEXT,
    expected_value  TEXT,
    -- reported, restored, would_restore, restore_failed.
    action          TEXT NOT NULL,
    detail          TEXT
);
CREATE INDEX reconcile_findings_run ON reconcile_findings (run_id, kind);

-- Small named values the reconciler keeps between runs (the delta watermark).
CREATE TABLE reconcile_state (
    name            TEXT PRIMARY KEY NOT NULL,
    value           BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
