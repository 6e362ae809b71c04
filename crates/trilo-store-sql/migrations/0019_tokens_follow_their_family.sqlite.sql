-- SQLite keeps refresh_tokens' key to its family: its check is a lookup on the page the
-- statement has just written. The PostgreSQL text says why that key goes there.
SELECT 1;
