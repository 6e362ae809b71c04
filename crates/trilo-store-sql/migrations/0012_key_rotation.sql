-- Signing-key rotation (issue 16): when a key became current and when it was retired, and
-- at most one `next` key (the one published ahead of its use).
ALTER TABLE signing_keys ADD COLUMN activated_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN retired_at BIGINT;
UPDATE signing_keys SET activated_at = created_at WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
