-- API tokens (DESIGN §2): scripts call product APIs through the gateway with HTTP Basic
-- (email:token) and act with the user's own permissions. Kept by hash, like every token.

CREATE TABLE api_tokens (
    token_id      TEXT    NOT NULL,
    account_id    TEXT    NOT NULL,
    label         TEXT    NOT NULL,
    token_hash    BYTEA   NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (token_id),
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_hash_len CHECK (octet_length(token_hash) = 32),
    CONSTRAINT api_tokens_account_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (account_id) ON DELETE CASCADE
);
CREATE INDEX api_tokens_account_idx ON api_tokens (account_id, created_at);
