-- A token family belongs to its grant: the grant's key already ends the family with the
-- grant (ON DELETE CASCADE), and the grant ends with its app and its account. The family's
-- own keys to apps and accounts checked the same rows again on every code exchange (two
-- trigger queries per new family) and kept an index no query reads (issue 19). The columns
-- stay: they are the grant's app and account, copied when the family is made.
ALTER TABLE token_families DROP CONSTRAINT token_families_app_fkey,
    DROP CONSTRAINT token_families_account_fkey;
DROP INDEX token_families_app_idx;
