-- What 0016 did on PostgreSQL, and more (issue 19): a family belongs to its grant (whose key
-- ends it with the grant, and the grant ends with its app and its account), so its own keys
-- to apps and accounts, and their indexes, only cost each code exchange two more key checks
-- and two more index inserts. SQLite drops a key by rebuilding the table. The rebuilt table
-- is also keyed by `family_id` without a rowid: a refresh reads and moves its family's head
-- by that key, and finds the row in one B-tree instead of an index and then the table.
--
-- sqlx runs this inside a transaction, where `PRAGMA foreign_keys` cannot be turned off,
-- and dropping a table deletes its rows first, cascading along every key that refers to
-- it. So `refresh_tokens`, which refers to the families, is rebuilt too (the same columns
-- and constraints): both new tables are filled, the old tokens are dropped before the old
-- families (nothing refers to them any more), and renaming the new families' table
-- carries the new tokens' key along with it.

CREATE TABLE token_families_rebuilt (
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
    head_generation        BIGINT  NOT NULL DEFAULT 0,
    audience               TEXT,
    CONSTRAINT token_families_pkey PRIMARY KEY (family_id),
    CONSTRAINT token_families_grant_fkey FOREIGN KEY (grant_id)
        REFERENCES grants (grant_id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO token_families_rebuilt (family_id, grant_id, app_id, account_id, scopes,
    credential_generation, created_at, absolute_expires_at, revoked_at, revoke_reason,
    head_generation, audience)
SELECT family_id, grant_id, app_id, account_id, scopes, credential_generation, created_at,
    absolute_expires_at, revoked_at, revoke_reason, head_generation, audience
FROM token_families;

CREATE TABLE refresh_tokens_rebuilt (
    token_hash             BLOB    NOT NULL,
    family_id              TEXT    NOT NULL,
    generation             BIGINT  NOT NULL,
    issued_at              BIGINT  NOT NULL,
    inactivity_expires_at  BIGINT  NOT NULL,
    -- When its child was issued; NULL while it is the family's head.
    rotated_at             BIGINT,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT refresh_tokens_hash_len CHECK (length(token_hash) = 32),
    CONSTRAINT refresh_tokens_generation_key UNIQUE (family_id, generation),
    CONSTRAINT refresh_tokens_family_fkey FOREIGN KEY (family_id)
        REFERENCES token_families_rebuilt (family_id) ON DELETE CASCADE
);
INSERT INTO refresh_tokens_rebuilt (token_hash, family_id, generation, issued_at,
    inactivity_expires_at, rotated_at)
SELECT token_hash, family_id, generation, issued_at, inactivity_expires_at, rotated_at
FROM refresh_tokens;

DROP TABLE refresh_tokens;
DROP TABLE token_families;
ALTER TABLE token_families_rebuilt RENAME TO token_families;
ALTER TABLE refresh_tokens_rebuilt RENAME TO refresh_tokens;

CREATE INDEX token_families_grant_idx ON token_families (grant_id);
CREATE INDEX token_families_revoked_idx ON token_families (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX token_families_absolute_idx ON token_families (absolute_expires_at);
CREATE INDEX refresh_tokens_inactivity_idx ON refresh_tokens (inactivity_expires_at);
