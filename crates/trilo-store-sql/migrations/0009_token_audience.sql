-- The audience an authorization asked for (trilo's own or an accepted alias such as the
-- reference's `api.atlassian.com`, issue 15): kept with the code and copied to its family,
-- whose access tokens carry it as `aud`. NULL in rows from before: trilo's own.

ALTER TABLE codes ADD COLUMN audience TEXT;
ALTER TABLE token_families ADD COLUMN audience TEXT;
