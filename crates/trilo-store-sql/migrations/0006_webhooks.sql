-- Webhooks (DESIGN §2, §3 "Webhooks"): apps' subscriptions, the durable outbox of events
-- and their deliveries, and the objects products report inside containers (what a data
-- security policy event lists).

CREATE TABLE webhook_subscriptions (
    subscription_id  TEXT    NOT NULL,
    app_id           TEXT    NOT NULL,
    url              TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    CONSTRAINT webhook_subscriptions_pkey PRIMARY KEY (subscription_id),
    CONSTRAINT webhook_subscriptions_app_fkey FOREIGN KEY (app_id)
        REFERENCES apps (app_id) ON DELETE CASCADE
);
CREATE INDEX webhook_subscriptions_app_idx ON webhook_subscriptions (app_id);

CREATE TABLE webhook_subscription_events (
    subscription_id  TEXT    NOT NULL,
    event_name       TEXT    NOT NULL,
    ordinal          BIGINT  NOT NULL,
    CONSTRAINT webhook_subscription_events_pkey PRIMARY KEY (subscription_id, event_name),
    CONSTRAINT webhook_subscription_events_subscription_fkey FOREIGN KEY (subscription_id)
        REFERENCES webhook_subscriptions (subscription_id) ON DELETE CASCADE
);
CREATE INDEX webhook_subscription_events_name_idx ON webhook_subscription_events (event_name);

CREATE TABLE events (
    event_id       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    cloud_id       TEXT,
    product_key    TEXT,
    container_key  TEXT,
    account_id     TEXT,
    body           TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (event_id)
);

-- A pending delivery is due at next_attempt_at; claiming it moves next_attempt_at to the
-- end of the sender's lease, so one that a dead sender held becomes due again by itself.
CREATE TABLE deliveries (
    delivery_id       TEXT    NOT NULL,
    event_id          TEXT    NOT NULL,
    subscription_id   TEXT    NOT NULL,
    app_id            TEXT    NOT NULL,
    url               TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    attempts          BIGINT  NOT NULL,
    next_attempt_at   BIGINT  NOT NULL,
    claim_id          TEXT,
    last_status_code  BIGINT,
    last_error        TEXT,
    created_at        BIGINT  NOT NULL,
    finished_at       BIGINT,
    CONSTRAINT deliveries_pkey PRIMARY KEY (delivery_id),
    CONSTRAINT deliveries_event_fkey FOREIGN KEY (event_id)
        REFERENCES events (event_id) ON DELETE CASCADE,
    CONSTRAINT deliveries_subscription_fkey FOREIGN KEY (subscription_id)
        REFERENCES webhook_subscriptions (subscription_id) ON DELETE CASCADE
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_claim_idx ON deliveries (claim_id);
CREATE INDEX deliveries_app_idx ON deliveries (app_id, created_at);
CREATE INDEX deliveries_event_idx ON deliveries (event_id);
CREATE INDEX deliveries_subscription_idx ON deliveries (subscription_id);

CREATE TABLE container_objects (
    cloud_id       TEXT    NOT NULL,
    product_key    TEXT    NOT NULL,
    container_key  TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    object_id      TEXT    NOT NULL,
    CONSTRAINT container_objects_pkey PRIMARY KEY (cloud_id, product_key, container_key, kind, object_id)
);
