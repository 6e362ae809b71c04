-- A "log in with" authorization (identity scopes only) picks no site: its code has none
-- (issue 14). Other codes keep the site the user picked. SQLite cannot drop a NOT NULL
-- constraint, so the table is rebuilt with the same columns, constraints and indexes;
-- nothing refers to codes.

CREATE TABLE codes_without_site (
    code_hash       BLOB    NOT NULL,
    app_id          TEXT    NOT NULL,
    account_id      TEXT    NOT NULL,
    grant_id        TEXT    NOT NULL,
    cloud_id        TEXT,
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
    auth_time       BIGINT,
    audience        TEXT,
    CONSTRAINT codes_pkey PRIMARY KEY (code_hash),
    CONSTRAINT codes_hash_len CHECK (length(code_hash) = 32),
    CONSTRAINT codes_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE,
    CONSTRAINT codes_account_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (account_id) ON DELETE CASCADE,
    CONSTRAINT codes_grant_fkey FOREIGN KEY (grant_id)
        REFERENCES grants (grant_id) ON DELETE CASCADE
);
INSERT INTO codes_without_site (code_hash, app_id, account_id, grant_id, cloud_id, scopes,
    redirect_uri, code_challenge, nonce, created_at, expires_at, used_at, family_id,
    auth_time, audience)
SELECT code_hash, app_id, account_id, grant_id, cloud_id, scopes, redirect_uri,
    code_challenge, nonce, created_at, expires_at, used_at, family_id, auth_time, audience
FROM codes;
DROP TABLE codes;
ALTER TABLE codes_without_site RENAME TO codes;
CREATE INDEX codes_grant_idx ON codes (grant_id);
CREATE INDEX codes_app_idx ON codes (app_id);
