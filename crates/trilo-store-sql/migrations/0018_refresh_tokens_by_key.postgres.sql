-- Refresh tokens keyed by their family and generation (issue 19). A token now names both
-- (`rt1_{family_id}_{generation}_{secret}`, see trilo-core's `refresh_token`), so a refresh
-- finds it by this key and the store checks the hash of the whole token on that row. The
-- primary key on the random hash cost every new token an insert at a random place of its
-- index; the key index now takes a family's tokens in order, next to each other.
--
-- Tokens issued before are bare secrets: they keep their hash in `legacy_hash` too, and a
-- partial index over those rows alone still finds them; a token issued from now on leaves
-- `legacy_hash` empty and stays out of that index. A new token must outlive its issue
-- (`refresh_tokens_lifetime`); the rows from before are kept as they were. The SQLite text
-- rebuilds the table instead, in key order.
ALTER TABLE refresh_tokens ADD COLUMN legacy_hash BYTEA;
UPDATE refresh_tokens SET legacy_hash = token_hash;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_pkey,
    DROP CONSTRAINT refresh_tokens_generation_key,
    ADD CONSTRAINT refresh_tokens_pkey PRIMARY KEY (family_id, generation),
    ADD CONSTRAINT refresh_tokens_lifetime
        CHECK (inactivity_expires_at > issued_at OR legacy_hash IS NOT NULL);
CREATE UNIQUE INDEX refresh_tokens_legacy_idx ON refresh_tokens (legacy_hash)
    WHERE legacy_hash IS NOT NULL;
