//! Catalog value types shared by the parser and its users.

/// One scope of a product with the description shown on the consent page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogScope {
    pub scope: String,
    pub description: String,
}
