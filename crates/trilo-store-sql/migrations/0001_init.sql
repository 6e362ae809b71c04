-- trilo schema, PostgreSQL dialect (the SQLite migration holds the same logical schema).
-- Times are unix milliseconds UTC (BIGINT); token, code, secret and session hashes are
-- 32-byte SHA-256 digests; scope lists on grants, codes and families are space-separated.

CREATE TABLE accounts (
    account_id            TEXT    NOT NULL,
    email                 TEXT    NOT NULL,
    email_lower           TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    nickname              TEXT    NOT NULL,
    picture               TEXT,
    zoneinfo              TEXT    NOT NULL,
    locale                TEXT    NOT NULL,
    job_title             TEXT,
    organization          TEXT,
    department            TEXT,
    location              TEXT,
    status                TEXT    NOT NULL,
    password_hash         TEXT    NOT NULL,
    credential_generation BIGINT  NOT NULL,
    created_at            BIGINT  NOT NULL,
    CONSTRAINT accounts_pkey PRIMARY KEY (account_id),
    CONSTRAINT accounts_email_lower_key UNIQUE (email_lower)
);

CREATE TABLE sessions (
    id_hash     BYTEA   NOT NULL,
    account_id  TEXT    NOT NULL,
    csrf_token  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id_hash),
    CONSTRAINT sessions_id_hash_len CHECK (octet_length(id_hash) = 32),
    CONSTRAINT sessions_account_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (account_id) ON DELETE CASCADE
);
CREATE INDEX sessions_account_idx ON sessions (account_id);

CREATE TABLE sites (
    cloud_id       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    avatar_url     TEXT,
    user_installs  TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    CONSTRAINT sites_pkey PRIMARY KEY (cloud_id)
);

CREATE TABLE products (
    product_key   TEXT  NOT NULL,
    display_name  TEXT  NOT NULL,
    CONSTRAINT products_pkey PRIMARY KEY (product_key)
);

CREATE TABLE product_scopes (
    product_key  TEXT    NOT NULL,
    ordinal      BIGINT  NOT NULL,
    scope        TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    CONSTRAINT product_scopes_pkey PRIMARY KEY (product_key, ordinal),
    CONSTRAINT product_scopes_product_fkey FOREIGN KEY (product_key)
        REFERENCES products (product_key) ON DELETE CASCADE
);

CREATE TABLE site_products (
    cloud_id      TEXT  NOT NULL,
    product_key   TEXT  NOT NULL,
    upstream_url  TEXT  NOT NULL,
    CONSTRAINT site_products_pkey PRIMARY KEY (cloud_id, product_key),
    CONSTRAINT site_products_site_fkey FOREIGN KEY (cloud_id)
        REFERENCES sites (cloud_id) ON DELETE CASCADE,
    CONSTRAINT site_products_product_fkey FOREIGN KEY (product_key)
        REFERENCES products (product_key) ON DELETE CASCADE
);
CREATE INDEX site_products_product_idx ON site_products (product_key);

CREATE TABLE memberships (
    account_id   TEXT    NOT NULL,
    cloud_id     TEXT    NOT NULL,
    product_key  TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (account_id, cloud_id, product_key),
    CONSTRAINT memberships_account_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (account_id) ON DELETE CASCADE,
    CONSTRAINT memberships_site_product_fkey FOREIGN KEY (cloud_id, product_key)
        REFERENCES site_products (cloud_id, product_key) ON DELETE CASCADE
);
CREATE INDEX memberships_site_idx ON memberships (cloud_id, product_key);

CREATE TABLE apps (
    app_id            TEXT    NOT NULL,
    client_id         TEXT    NOT NULL,
    owner_account_id  TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    avatar_url        TEXT,
    distribution      TEXT    NOT NULL,
    review_state      TEXT    NOT NULL,
    client_type       TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    CONSTRAINT apps_pkey PRIMARY KEY (app_id),
    CONSTRAINT apps_client_id_key UNIQUE (client_id),
    CONSTRAINT apps_owner_fkey FOREIGN KEY (owner_account_id)
        REFERENCES accounts (account_id)
);
CREATE INDEX apps_owner_idx ON apps (owner_account_id);

CREATE TABLE app_callback_urls (
    app_id    TEXT    NOT NULL,
    ordinal   BIGINT  NOT NULL,
    url       TEXT    NOT NULL,
    CONSTRAINT app_callback_urls_pkey PRIMARY KEY (app_id, ordinal),
    CONSTRAINT app_callback_urls_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE
);

CREATE TABLE app_scopes (
    app_id    TEXT    NOT NULL,
    ordinal   BIGINT  NOT NULL,
    scope     TEXT    NOT NULL,
    CONSTRAINT app_scopes_pkey PRIMARY KEY (app_id, ordinal),
    CONSTRAINT app_scopes_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE
);

CREATE TABLE app_secrets (
    secret_id    TEXT    NOT NULL,
    app_id       TEXT    NOT NULL,
    secret_hash  BYTEA   NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT,
    CONSTRAINT app_secrets_pkey PRIMARY KEY (secret_id),
    CONSTRAINT app_secrets_hash_len CHECK (octet_length(secret_hash) = 32),
    CONSTRAINT app_secrets_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE
);
CREATE INDEX app_secrets_app_idx ON app_secrets (app_id);

CREATE TABLE installations (
    app_id                   TEXT    NOT NULL,
    cloud_id                 TEXT    NOT NULL,
    installed_by_account_id  TEXT    NOT NULL,
    installed_by             TEXT    NOT NULL,
    created_at               BIGINT  NOT NULL,
    CONSTRAINT installations_pkey PRIMARY KEY (app_id, cloud_id),
    CONSTRAINT installations_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE,
    CONSTRAINT installations_site_fkey FOREIGN KEY (cloud_id)
        REFERENCES sites (cloud_id) ON DELETE CASCADE
);
CREATE INDEX installations_site_idx ON installations (cloud_id);

CREATE TABLE grants (
    grant_id    TEXT    NOT NULL,
    app_id      TEXT    NOT NULL,
    account_id  TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    revoked_at  BIGINT,
    CONSTRAINT grants_pkey PRIMARY KEY (grant_id),
    CONSTRAINT grants_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE,
    CONSTRAINT grants_account_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (account_id) ON DELETE CASCADE
);
-- At most one live grant per (app, account); revoked grants stay as history.
CREATE UNIQUE INDEX grants_live_key ON grants (app_id, account_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_account_idx ON grants (account_id, created_at);

CREATE TABLE grant_sites (
    grant_id  TEXT    NOT NULL,
    ordinal   BIGINT  NOT NULL,
    cloud_id  TEXT    NOT NULL,
    CONSTRAINT grant_sites_pkey PRIMARY KEY (grant_id, ordinal),
    CONSTRAINT grant_sites_site_key UNIQUE (grant_id, cloud_id),
    CONSTRAINT grant_sites_grant_fkey FOREIGN KEY (grant_id)
        REFERENCES grants (grant_id) ON DELETE CASCADE,
    CONSTRAINT grant_sites_site_fkey FOREIGN KEY (cloud_id)
        REFERENCES sites (cloud_id) ON DELETE CASCADE
);

CREATE TABLE codes (
    code_hash       BYTEA   NOT NULL,
    app_id          TEXT    NOT NULL,
    account_id      TEXT    NOT NULL,
    grant_id        TEXT    NOT NULL,
    cloud_id        TEXT    NOT NULL,
    scopes          TEXT    NOT NULL,
    redirect_uri    TEXT,
    code_challenge  TEXT,
    nonce           TEXT,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    used_at         BIGINT,
    -- The family the first redemption produced (no reference: it is written in the same
    -- transaction as the family and both go when the grant goes).
    family_id       TEXT,
    CONSTRAINT codes_pkey PRIMARY KEY (code_hash),
    CONSTRAINT codes_hash_len CHECK (octet_length(code_hash) = 32),
    CONSTRAINT codes_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE,
    CONSTRAINT codes_account_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (account_id) ON DELETE CASCADE,
    CONSTRAINT codes_grant_fkey FOREIGN KEY (grant_id)
        REFERENCES grants (grant_id) ON DELETE CASCADE
);
CREATE INDEX codes_grant_idx ON codes (grant_id);
CREATE INDEX codes_app_idx ON codes (app_id);

CREATE TABLE token_families (
    family_id              TEXT    NOT NULL,
    grant_id               TEXT    NOT NULL,
    app_id                 TEXT    NOT NULL,
    account_id             TEXT    NOT NULL,
    scopes                 TEXT    NOT NULL,
    credential_generation  BIGINT  NOT NULL,
    created_at             BIGINT  NOT NULL,
    absolute_expires_at    BIGINT  NOT NULL,
    revoked_at             BIGINT,
    revoke_reason          TEXT,
    CONSTRAINT token_families_pkey PRIMARY KEY (family_id),
    CONSTRAINT token_families_grant_fkey FOREIGN KEY (grant_id)
        REFERENCES grants (grant_id) ON DELETE CASCADE,
    CONSTRAINT token_families_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE,
    CONSTRAINT token_families_account_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (account_id) ON DELETE CASCADE
);
CREATE INDEX token_families_grant_idx ON token_families (grant_id);
CREATE INDEX token_families_app_idx ON token_families (app_id);
CREATE INDEX token_families_account_idx ON token_families (account_id);

CREATE TABLE signing_keys (
    kid                    TEXT    NOT NULL,
    alg                    TEXT    NOT NULL,
    state                  TEXT    NOT NULL,
    private_key_encrypted  BYTEA   NOT NULL,
    public_jwk             TEXT    NOT NULL,
    created_at             BIGINT  NOT NULL,
    CONSTRAINT signing_keys_pkey PRIMARY KEY (kid)
);
-- At most one current key (two instances starting at once: the loser reloads).
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';

-- Audit events keep plain ids (no references) so they outlive what they describe.
CREATE TABLE audit_events (
    event_id          TEXT    NOT NULL,
    at                BIGINT  NOT NULL,
    actor_account_id  TEXT,
    action            TEXT    NOT NULL,
    target            TEXT    NOT NULL,
    cloud_id          TEXT,
    details           TEXT    NOT NULL,
    CONSTRAINT audit_events_pkey PRIMARY KEY (event_id)
);
CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_site_idx ON audit_events (cloud_id, at);
