-- Refresh tokens keyed by their family and generation (issue 19). A token now names both
-- (`rt1_{family_id}_{generation}_{secret}`, see trilo-core's `refresh_token`), so a refresh
-- finds it by this key and the store checks the hash of the whole token on that row. The
-- table is kept in key order without a rowid: a family's tokens share pages, so a rotation
-- reads its parent and writes its child on one page, where the primary key on the random
-- hash put every new token on a page of its own, and the table and the (family_id,
-- generation) index each took one more.
--
-- Tokens issued before are bare secrets: they keep their hash in `legacy_hash` too, and a
-- partial index over those rows alone still finds them; a token issued from now on leaves
-- `legacy_hash` empty and stays out of that index. A new token must outlive its issue
-- (`refresh_tokens_lifetime`); the rows copied here are kept as they were.
--
-- Nothing refers to `refresh_tokens`, so the old table is dropped after the copy and the
-- new one takes its name.

CREATE TABLE refresh_tokens_keyed (
    family_id              TEXT    NOT NULL,
    generation             BIGINT  NOT NULL,
    token_hash             BLOB    NOT NULL,
    issued_at              BIGINT  NOT NULL,
    inactivity_expires_at  BIGINT  NOT NULL,
    -- When its child was issued; NULL while it is the family's head.
    rotated_at             BIGINT,
    -- The hash again, for a token issued before tokens carried their key; else NULL.
    legacy_hash            BLOB,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (family_id, generation),
    CONSTRAINT refresh_tokens_hash_len CHECK (length(token_hash) = 32),
    CONSTRAINT refresh_tokens_lifetime
        CHECK (inactivity_expires_at > issued_at OR legacy_hash IS NOT NULL),
    CONSTRAINT refresh_tokens_family_fkey FOREIGN KEY (family_id)
        REFERENCES token_families (family_id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO refresh_tokens_keyed (family_id, generation, token_hash, issued_at,
    inactivity_expires_at, rotated_at, legacy_hash)
SELECT family_id, generation, token_hash, issued_at, inactivity_expires_at, rotated_at,
    token_hash
FROM refresh_tokens;

DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_keyed RENAME TO refresh_tokens;

CREATE INDEX refresh_tokens_inactivity_idx ON refresh_tokens (inactivity_expires_at);
CREATE UNIQUE INDEX refresh_tokens_legacy_idx ON refresh_tokens (legacy_hash)
    WHERE legacy_hash IS NOT NULL;
