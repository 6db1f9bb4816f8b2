-- Security (issue 11): OAuth 2.0 clients, the bridge's JWT signing keys, admin accounts and
-- admin sessions. Client secrets and session ids are random 256-bit values, stored only as
-- SHA-256 hashes; admin passwords are Argon2id hashes.
CREATE TABLE oauth_clients (
    client_id    TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE UNIQUE INDEX oauth_clients_live_name ON oauth_clients (name) WHERE revoked_at IS NULL;

-- ES256 keys the token endpoint signs with. The newest key with no verify_until signs; every
-- key whose verify_until is NULL or in the future verifies and is published in the JWKS, so a
-- rotation leaves tokens already issued valid until they expire.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY NOT NULL,
    private_pkcs8 TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    verify_until  BIGINT
);

CREATE TABLE admin_users (
    username      TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- source 'local': the role is read from admin_users on every request (a removed account or a
-- changed role applies at once); source 'oidc': the role the identity provider's claim gave at
-- login, kept for the session's life.
CREATE TABLE admin_sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    username     TEXT NOT NULL,
    source       TEXT NOT NULL,
    role         TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX admin_sessions_user ON admin_sessions (username);
