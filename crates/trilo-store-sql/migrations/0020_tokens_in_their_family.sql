-- Refresh tokens kept in their family's row (issue 19): a token issued from now on is
-- `rt2_{family}_{generation}_{mac}`, its secret derived from the server's key, so no row
-- of `refresh_tokens` is written for it. Its family says what a row said: when the head
-- was issued (the rotation time of the generation before it), when it ends for
-- inactivity, and when the generation before it was issued (the rotation time of the one
-- before that). `head_expires_at` is set exactly for such families; a family of tokens
-- stored before keeps it NULL and its tokens keep their rows (trilo_core::refresh_token).
-- A head must outlive its issue, as a token row must (migration 0018).
ALTER TABLE token_families ADD COLUMN head_issued_at BIGINT;
ALTER TABLE token_families ADD COLUMN head_expires_at BIGINT CHECK (head_expires_at > head_issued_at);
ALTER TABLE token_families ADD COLUMN previous_issued_at BIGINT;
