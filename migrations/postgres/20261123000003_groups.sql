-- Group membership: one row per (group, user). The group itself is a `resources` row of type
-- Group. `target` is what the membership was written to in C4C ("role:SALES_REP",
-- "org:S1000"), NULL for a group that maps to nothing; `assignment_object_id` is the C4C
-- assignment's ObjectID, so that removing a member costs one call; `managed` is 0 when the
-- assignment existed before the bridge (made by hand in C4C): such an assignment is left alone.
CREATE TABLE group_members (
    group_id             TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    target               TEXT,
    assignment_object_id TEXT,
    managed              BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);
