-- Failed logins counted across instances (issue 16): one fixed window per key. The key is
-- the SHA-256 of what is counted (an email with an address, or an address), never the
-- text itself. The janitor removes windows that have ended.
CREATE TABLE failure_counters (
    key_hash      BYTEA   NOT NULL,
    window_start  BIGINT  NOT NULL,
    failures      BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    CONSTRAINT failure_counters_pkey PRIMARY KEY (key_hash, window_start)
);
CREATE INDEX failure_counters_expires_idx ON failure_counters (expires_at);
