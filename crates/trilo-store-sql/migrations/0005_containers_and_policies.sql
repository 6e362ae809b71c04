-- Containers (spaces, projects) of a product on a site, the containers a guest may reach,
-- and data security policies (DESIGN §2): a policy covers containers; its app access rule
-- keeps apps away from them while the policy is active.

CREATE TABLE containers (
    cloud_id       TEXT    NOT NULL,
    product_key    TEXT    NOT NULL,
    container_key  TEXT    NOT NULL,
    container_id   TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    CONSTRAINT containers_pkey PRIMARY KEY (cloud_id, product_key, container_key),
    CONSTRAINT containers_id_key UNIQUE (cloud_id, product_key, container_id),
    CONSTRAINT containers_site_product_fkey FOREIGN KEY (cloud_id, product_key)
        REFERENCES site_products (cloud_id, product_key) ON DELETE CASCADE
);

CREATE TABLE guest_containers (
    account_id     TEXT    NOT NULL,
    cloud_id       TEXT    NOT NULL,
    product_key    TEXT    NOT NULL,
    container_key  TEXT    NOT NULL,
    CONSTRAINT guest_containers_pkey PRIMARY KEY (account_id, cloud_id, product_key, container_key),
    CONSTRAINT guest_containers_membership_fkey FOREIGN KEY (account_id, cloud_id, product_key)
        REFERENCES memberships (account_id, cloud_id, product_key) ON DELETE CASCADE,
    CONSTRAINT guest_containers_container_fkey FOREIGN KEY (cloud_id, product_key, container_key)
        REFERENCES containers (cloud_id, product_key, container_key) ON DELETE CASCADE
);

CREATE TABLE policies (
    policy_id      TEXT    NOT NULL,
    cloud_id       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    blocks_apps    BIGINT  NOT NULL,
    active         BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    CONSTRAINT policies_pkey PRIMARY KEY (policy_id),
    CONSTRAINT policies_site_fkey FOREIGN KEY (cloud_id)
        REFERENCES sites (cloud_id) ON DELETE CASCADE
);
CREATE INDEX policies_site_idx ON policies (cloud_id);

CREATE TABLE policy_containers (
    policy_id      TEXT    NOT NULL,
    cloud_id       TEXT    NOT NULL,
    product_key    TEXT    NOT NULL,
    container_key  TEXT    NOT NULL,
    CONSTRAINT policy_containers_pkey PRIMARY KEY (policy_id, product_key, container_key),
    CONSTRAINT policy_containers_policy_fkey FOREIGN KEY (policy_id)
        REFERENCES policies (policy_id) ON DELETE CASCADE,
    CONSTRAINT policy_containers_container_fkey FOREIGN KEY (cloud_id, product_key, container_key)
        REFERENCES containers (cloud_id, product_key, container_key) ON DELETE CASCADE
);
