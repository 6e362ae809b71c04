-- When the user logged in, for the ID Token of an OpenID code exchange (OIDC Core §2
-- `auth_time`); NULL for other codes.

ALTER TABLE codes ADD COLUMN auth_time BIGINT;
