-- The web origins a browser app calls the token and revocation endpoints from (issue 15:
-- public clients and single-page apps). CORS is answered for these only; set in the
-- developer console, in order like the callback URLs.

CREATE TABLE app_web_origins (
    app_id   TEXT    NOT NULL,
    ordinal  BIGINT  NOT NULL,
    origin   TEXT    NOT NULL,
    CONSTRAINT app_web_origins_pkey PRIMARY KEY (app_id, ordinal),
    CONSTRAINT app_web_origins_origin_key UNIQUE (app_id, origin),
    CONSTRAINT app_web_origins_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE
);
CREATE INDEX app_web_origins_origin_idx ON app_web_origins (origin);
