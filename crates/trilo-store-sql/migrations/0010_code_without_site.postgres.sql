-- A "log in with" authorization (identity scopes only) picks no site: its code has none
-- (issue 14). Other codes keep the site the user picked.

ALTER TABLE codes ALTER COLUMN cloud_id DROP NOT NULL;
