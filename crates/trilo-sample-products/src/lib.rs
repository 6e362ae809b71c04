//! Sample products for the demo, the tests and the benchmarks: `jira` and `confluence`,
//! with the scope catalogs of their real OpenAPI descriptions (copied from
//! `shared/specs/`, embedded so the `trilo` binary runs the demo on its own), and small
//! in-memory upstreams serving a few of their endpoints behind trilo's gateway ([`upstream`]).

pub mod upstream;

pub use upstream::{EventSink, SeedContainer, UpstreamConfig, router, serve};

use trilo_protocol::catalog::{CatalogError, scopes_from_openapi};
use trilo_protocol::model_catalog::CatalogScope;

/// A product the demo hosts on its sites.
#[derive(Clone, Copy, Debug)]
pub struct SampleProduct {
    pub key: &'static str,
    pub display_name: &'static str,
    /// The product's OpenAPI 3 description (JSON).
    pub openapi: &'static str,
}

pub const JIRA: SampleProduct = SampleProduct {
    key: "jira",
    display_name: "Jira",
    openapi: include_str!("../specs/jira-platform.openapi.json"),
};

pub const CONFLUENCE: SampleProduct = SampleProduct {
    key: "confluence",
    display_name: "Confluence",
    openapi: include_str!("../specs/confluence.openapi.json"),
};

pub const ALL: [SampleProduct; 2] = [JIRA, CONFLUENCE];

impl SampleProduct {
    /// The scopes of the product's catalog, with descriptions.
    pub fn scopes(&self) -> Result<Vec<CatalogScope>, CatalogError> {
        let doc: serde_json::Value =
            serde_json::from_str(self.openapi).map_err(|_| CatalogError::NotOpenApi)?;
        scopes_from_openapi(&doc)
    }

    /// The containers (Jira projects, Confluence spaces) every site of the sample
    /// upstream starts with, so the demo can register them for data security policies.
    pub fn seeded_containers(&self) -> &'static [SeedContainer] {
        match self.key {
            "jira" => &upstream::JIRA_SEED_PROJECTS,
            "confluence" => &upstream::CONFLUENCE_SEED_SPACES,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn jira_catalog_has_classic_and_granular_scopes() {
        let scopes = JIRA.scopes().unwrap();
        let find = |name: &str| scopes.iter().find(|s| s.scope == name);
        assert!(
            find("read:jira-work")
                .is_some_and(|s| s.description.starts_with("Read project and issue data"))
        );
        assert!(find("manage:jira-configuration").is_some());
        assert!(find("read:application-role:jira").is_some());
        assert!(scopes.len() > 50, "{}", scopes.len());
    }

    #[test]
    fn confluence_catalog_reads_security_requirements() {
        let scopes = CONFLUENCE.scopes().unwrap();
        let names: Vec<_> = scopes.iter().map(|s| s.scope.as_str()).collect();
        assert!(names.contains(&"read:confluence-content.all"));
        assert!(names.contains(&"write:confluence-content"));
        assert!(names.contains(&"search:confluence"));
    }
}
