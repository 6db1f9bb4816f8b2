-- SCIM client bearer tokens. Only a SHA-256 hash of each token's secret part is kept: tokens are
-- 256-bit random values, so a fast hash is enough (no password-stretching needed) and a stolen
-- database does not reveal a usable token.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
