-- The janitor (issue 16) finds what it removes through these, a bounded batch at a time.
-- The hot tables get BRIN indexes: rows go in in time order, so the expiry columns follow
-- the table's physical order, and a BRIN index costs an insert almost nothing (a B-tree
-- on them cost the refresh and code-exchange paths a measurable share of their rate).
CREATE INDEX codes_expires_idx ON codes USING brin (expires_at);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX refresh_tokens_inactivity_idx ON refresh_tokens USING brin (inactivity_expires_at);
CREATE INDEX token_families_revoked_idx ON token_families (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX token_families_absolute_idx ON token_families USING brin (absolute_expires_at);
