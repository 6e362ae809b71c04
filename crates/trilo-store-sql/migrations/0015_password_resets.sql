-- "Forgot password" (issue 17): a reset link's token, kept as a hash, used at most once
-- and for an hour. The janitor removes expired ones.
CREATE TABLE password_resets (
    token_hash  BYTEA  NOT NULL,
    account_id  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    CONSTRAINT password_resets_pkey PRIMARY KEY (token_hash),
    CONSTRAINT password_resets_account_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (account_id) ON DELETE CASCADE
);
CREATE INDEX password_resets_expires_idx ON password_resets (expires_at);
