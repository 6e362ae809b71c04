-- Rotating refresh tokens (DESIGN §3): each family keeps the generation of its newest
-- token (the compare-and-set target of a rotation); each token is one row, keyed by hash.

ALTER TABLE token_families ADD COLUMN head_generation BIGINT NOT NULL DEFAULT 0;

CREATE TABLE refresh_tokens (
    token_hash             BYTEA   NOT NULL,
    family_id              TEXT    NOT NULL,
    generation             BIGINT  NOT NULL,
    issued_at              BIGINT  NOT NULL,
    inactivity_expires_at  BIGINT  NOT NULL,
    -- When its child was issued; NULL while it is the family's head.
    rotated_at             BIGINT,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT refresh_tokens_hash_len CHECK (octet_length(token_hash) = 32),
    CONSTRAINT refresh_tokens_generation_key UNIQUE (family_id, generation),
    CONSTRAINT refresh_tokens_family_fkey FOREIGN KEY (family_id)
        REFERENCES token_families (family_id) ON DELETE CASCADE
);
