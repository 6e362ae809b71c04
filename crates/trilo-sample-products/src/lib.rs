//! Sample products for the demo, the tests and the benchmarks: `jira` and `confluence`,
//! with the scope catalogs of their real OpenAPI descriptions (copied from
//! `shared/specs/`, embedded so the `trilo` binary runs the demo on its own), and small
//! in-memory upstreams serving a few of their endpoints behind trilo's gateway ([`upstream`]).
//!
//! The paths clients send beyond those descriptions (issue 15) come from descriptions
//! assembled here with the scopes the products document: Jira's enhanced JQL search
//! (`specs/jira-platform-additions.openapi.json`), Jira REST v2 (the v3 descriptions with
//! `/rest/api/2/` paths: the two versions have the same operations and scopes), Jira
//! Service Management's requests (`specs/jira-service-management.openapi.json`, served under
//! `jira` as the reference's example URL has it) and Confluence REST v2 with the Smart Link
//! and database scopes (`specs/confluence-v2.openapi.json`); Confluence also answers
//! without `/wiki` (a path alias).

pub mod upstream;

pub use upstream::{EventSink, SeedContainer, UpstreamConfig, router, serve};

use serde_json::Value;
use trilo_protocol::alias::PathAlias;
use trilo_protocol::catalog::{CatalogError, scopes_from_openapi};
use trilo_protocol::model_catalog::CatalogScope;

/// A product the demo hosts on its sites.
#[derive(Clone, Copy, Debug)]
pub struct SampleProduct {
    pub key: &'static str,
    pub display_name: &'static str,
    /// The product's OpenAPI 3 descriptions (JSON), in import order.
    openapi: &'static [&'static str],
    /// `(from, to)`: each description with paths under `from` is imported once more with
    /// those paths under `to` (Jira's REST v2 beside v3).
    versions: Option<(&'static str, &'static str)>,
    /// Other spellings of the product's paths, `FROM=TO`.
    path_aliases: &'static [&'static str],
}

pub const JIRA: SampleProduct = SampleProduct {
    key: "jira",
    display_name: "Jira",
    openapi: &[
        include_str!("../specs/jira-platform.openapi.json"),
        include_str!("../specs/jira-platform-additions.openapi.json"),
        include_str!("../specs/jira-service-management.openapi.json"),
    ],
    versions: Some(("/rest/api/3/", "/rest/api/2/")),
    path_aliases: &[],
};

pub const CONFLUENCE: SampleProduct = SampleProduct {
    key: "confluence",
    display_name: "Confluence",
    openapi: &[
        include_str!("../specs/confluence.openapi.json"),
        include_str!("../specs/confluence-v2.openapi.json"),
    ],
    versions: None,
    path_aliases: &["/rest/=/wiki/rest/", "/api/v2/=/wiki/api/v2/"],
};

pub const ALL: [SampleProduct; 2] = [JIRA, CONFLUENCE];

impl SampleProduct {
    /// The descriptions to import, the derived versions included.
    pub fn descriptions(&self) -> Result<Vec<Value>, CatalogError> {
        let mut docs = Vec::new();
        for text in self.openapi {
            docs.push(serde_json::from_str::<Value>(text).map_err(|_| CatalogError::NotOpenApi)?);
        }
        if let Some((from, to)) = self.versions {
            let derived: Vec<Value> = docs
                .iter()
                .filter_map(|doc| with_paths_moved(doc, from, to))
                .collect();
            docs.extend(derived);
        }
        Ok(docs)
    }

    pub fn path_aliases(&self) -> Vec<PathAlias> {
        self.path_aliases
            .iter()
            .filter_map(|a| PathAlias::parse(a).ok())
            .collect()
    }

    /// The scopes of the product's catalogs, with descriptions (the first description of
    /// a scope wins).
    pub fn scopes(&self) -> Result<Vec<CatalogScope>, CatalogError> {
        let mut scopes: Vec<CatalogScope> = Vec::new();
        for doc in self.descriptions()? {
            for scope in scopes_from_openapi(&doc)? {
                if !scopes.iter().any(|known| known.scope == scope.scope) {
                    scopes.push(scope);
                }
            }
        }
        Ok(scopes)
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

/// `doc` with only its paths under `from`, moved under `to`; `None` when it has none.
fn with_paths_moved(doc: &Value, from: &str, to: &str) -> Option<Value> {
    let paths = doc.get("paths")?.as_object()?;
    let moved: serde_json::Map<String, Value> = paths
        .iter()
        .filter_map(|(path, item)| {
            let rest = path.strip_prefix(from)?;
            Some((format!("{to}{rest}"), item.clone()))
        })
        .collect();
    if moved.is_empty() {
        return None;
    }
    let mut derived = doc.clone();
    derived["paths"] = Value::Object(moved);
    Some(derived)
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
    fn the_catalogs_cover_the_paths_clients_send() {
        let jira = JIRA.descriptions().unwrap();
        let has = |docs: &[Value], path: &str| docs.iter().any(|d| d["paths"].get(path).is_some());
        for path in [
            "/rest/api/3/myself",
            "/rest/api/2/myself",
            "/rest/api/2/project/search",
            "/rest/api/3/search/jql",
            "/rest/api/2/search/jql",
            "/rest/servicedeskapi/request",
        ] {
            assert!(has(&jira, path), "{path}");
        }
        let confluence = CONFLUENCE.descriptions().unwrap();
        for path in [
            "/wiki/rest/api/space",
            "/wiki/api/v2/pages",
            "/wiki/api/v2/embeds",
        ] {
            assert!(has(&confluence, path), "{path}");
        }
        let scopes = CONFLUENCE.scopes().unwrap();
        for scope in [
            "read:embed:confluence",
            "write:embed:confluence",
            "delete:embed:confluence",
            "read:database:confluence",
            "write:database:confluence",
            "delete:database:confluence",
            "read:confluence-space.summary",
        ] {
            assert!(scopes.iter().any(|s| s.scope == scope), "{scope}");
        }
        assert!(
            JIRA.scopes()
                .unwrap()
                .iter()
                .any(|s| s.scope == "read:servicedesk-request")
        );
        assert_eq!(CONFLUENCE.path_aliases().len(), 2);
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
