-- A refresh token's key to its family checked, on every insert, a family row that the same
-- statement had just inserted (a code exchange) or advanced and locked (a rotation): no
-- token is ever written otherwise, so the check could not fail, and it was a trigger query
-- for every token written, about half of what a token row costs PostgreSQL (issue 19;
-- README, "Where the rest of the time goes"). What the key did that matters is the
-- cascade: a family's tokens end with it, however the family ends (the janitor, or its
-- grant's, app's or account's deletion through their own keys). This trigger keeps that,
-- once per deleting statement. SQLite keeps the key, whose check costs it little.
CREATE FUNCTION refresh_tokens_follow_their_family() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM refresh_tokens t USING ended_families e WHERE t.family_id = e.family_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER token_families_end_their_tokens
    AFTER DELETE ON token_families
    REFERENCING OLD TABLE AS ended_families
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_tokens_follow_their_family();

ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_family_fkey;
