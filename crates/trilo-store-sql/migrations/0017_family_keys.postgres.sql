-- No query reads a family by its account: an account's tokens end through its grants
-- (`token_families_grant_idx`), and migration 0016 dropped the key this index served. It
-- cost every code exchange one more index insert (issue 19).
DROP INDEX token_families_account_idx;
