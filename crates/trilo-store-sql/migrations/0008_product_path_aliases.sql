-- Other spellings of a product's API paths that the gateway rewrites to the product's own
-- (issue 15), one `FROM=TO` prefix pair per line (`trilo_protocol::alias`): Confluence
-- without `/wiki`, for example. Empty for products without aliases.

ALTER TABLE products ADD COLUMN path_aliases TEXT NOT NULL DEFAULT '';
