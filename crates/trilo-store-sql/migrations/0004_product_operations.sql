-- Each product's operation catalog for the gateway (DESIGN §2 "Product"): method, path
-- template and the scope alternatives (a JSON array of arrays: any one alternative
-- suffices, all scopes of it are needed; empty: closed to apps).

CREATE TABLE product_operations (
    product_key   TEXT    NOT NULL,
    ordinal       BIGINT  NOT NULL,
    method        TEXT    NOT NULL,
    template      TEXT    NOT NULL,
    alternatives  TEXT    NOT NULL,
    CONSTRAINT product_operations_pkey PRIMARY KEY (product_key, ordinal),
    CONSTRAINT product_operations_product_fkey FOREIGN KEY (product_key)
        REFERENCES products (product_key) ON DELETE CASCADE
);
