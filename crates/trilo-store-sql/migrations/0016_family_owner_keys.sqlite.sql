-- SQLite keeps the family's keys to apps and accounts: dropping a key means rebuilding
-- token_families, and dropping a table that refresh_tokens references would cascade to
-- every refresh token. The PostgreSQL text says why the keys are redundant there.
SELECT 1;
