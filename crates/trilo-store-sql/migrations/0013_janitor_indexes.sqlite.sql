-- The janitor (issue 16) finds what it removes through these, a bounded batch at a time.
-- Each is on a column written once when its row is inserted, so the hot paths' updates
-- (a rotation sets `rotated_at`, a revocation `revoked_at` on few rows) stay cheap.
CREATE INDEX codes_expires_idx ON codes (expires_at);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX refresh_tokens_inactivity_idx ON refresh_tokens (inactivity_expires_at);
CREATE INDEX token_families_revoked_idx ON token_families (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX token_families_absolute_idx ON token_families (absolute_expires_at);
