//! The products' data, in memory, one site per cloud id. A site is seeded the same way on
//! first use, so tests, the demo and benchmarks can name its projects, issues and spaces.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

/// A project or space every site starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedContainer {
    pub key: &'static str,
    pub id: u64,
    pub name: &'static str,
}

pub(crate) const JIRA_SEED_PROJECTS: [SeedContainer; 2] = [
    SeedContainer {
        key: "DEMO",
        id: 10000,
        name: "Demo Project",
    },
    SeedContainer {
        key: "OPS",
        id: 10001,
        name: "Operations",
    },
];

pub(crate) const CONFLUENCE_SEED_SPACES: [SeedContainer; 2] = [
    SeedContainer {
        key: "DEMO",
        id: 65537,
        name: "Demo Space",
    },
    SeedContainer {
        key: "TEAM",
        id: 65538,
        name: "Team Handbook",
    },
];

/// The seeded issues: project key, summary, issue type id.
const SEED_ISSUES: [(&str, &str, &str); 3] = [
    ("DEMO", "Connect the demo app to trilo", "10001"),
    ("DEMO", "Consent screen shows the wrong site", "10002"),
    ("OPS", "Rotate the signing key", "10001"),
];

/// The account the seeded issues are reported by: the example user of Jira's OpenAPI
/// document.
pub(crate) const SEED_REPORTER: &str = "5b10a2844c20165700ede21g";
const SEED_TIME: OffsetDateTime = datetime!(2024-01-15 09:00:00 UTC);
const FIRST_ISSUE_ID: u64 = 10000;
/// Created issues a site keeps; beyond it the oldest created one goes, so a benchmark that
/// creates issues for hours does not exhaust memory.
const MAX_CREATED_ISSUES: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IssueType {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

pub(crate) const ISSUE_TYPES: [IssueType; 3] = [
    IssueType {
        id: "10001",
        name: "Task",
        description: "A small, distinct piece of work.",
    },
    IssueType {
        id: "10002",
        name: "Bug",
        description: "A problem or error.",
    },
    IssueType {
        id: "10003",
        name: "Story",
        description: "A user story.",
    },
];

impl IssueType {
    /// By id, or by name as Jira also accepts.
    pub fn find(id: Option<&str>, name: Option<&str>) -> Option<&'static IssueType> {
        ISSUE_TYPES.iter().find(|t| {
            id.is_some_and(|id| id == t.id) || name.is_some_and(|n| n.eq_ignore_ascii_case(t.name))
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Project {
    pub id: u64,
    pub key: String,
    pub name: String,
    next_issue_number: u64,
}

/// An issue: what the sample gave it (id, key, creation time) and the fields it was
/// created with, grouped as Jira's own JSON groups them.
#[derive(Clone, Debug)]
pub(crate) struct Issue {
    pub id: u64,
    pub key: String,
    pub fields: IssueFields,
    pub created: OffsetDateTime,
}

#[derive(Clone, Debug)]
pub(crate) struct Space {
    pub id: u64,
    pub key: String,
    pub name: String,
}

/// An issue's fields: what a new issue needs, already validated.
#[derive(Clone, Debug)]
pub(crate) struct IssueFields {
    pub project_key: String,
    pub summary: String,
    /// An Atlassian Document Format value, or none.
    pub description: Option<Value>,
    pub issue_type: &'static IssueType,
    pub labels: Vec<String>,
    pub reporter: String,
}

#[derive(Debug)]
pub(crate) struct Site {
    pub projects: Vec<Project>,
    /// By id, so iteration is in creation order.
    pub issues: BTreeMap<u64, Issue>,
    issue_ids_by_key: HashMap<String, u64>,
    next_issue_id: u64,
    pub spaces: Vec<Space>,
}

impl Site {
    fn seeded() -> Self {
        let mut site = Site {
            projects: JIRA_SEED_PROJECTS
                .iter()
                .map(|p| Project {
                    id: p.id,
                    key: p.key.into(),
                    name: p.name.into(),
                    next_issue_number: 1,
                })
                .collect(),
            issues: BTreeMap::new(),
            issue_ids_by_key: HashMap::new(),
            next_issue_id: FIRST_ISSUE_ID,
            spaces: CONFLUENCE_SEED_SPACES
                .iter()
                .map(|s| Space {
                    id: s.id,
                    key: s.key.into(),
                    name: s.name.into(),
                })
                .collect(),
        };
        for (project_key, summary, type_id) in SEED_ISSUES {
            let issue_type = IssueType::find(Some(type_id), None).unwrap_or(&ISSUE_TYPES[0]);
            site.create_issue(
                IssueFields {
                    project_key: project_key.into(),
                    summary: summary.into(),
                    description: None,
                    issue_type,
                    labels: vec!["demo".into()],
                    reporter: SEED_REPORTER.into(),
                },
                SEED_TIME,
            );
        }
        site
    }

    /// By numeric id or key; keys match case-insensitively, as in Jira.
    pub fn project(&self, id_or_key: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|p| p.id.to_string() == id_or_key || p.key.eq_ignore_ascii_case(id_or_key))
    }

    pub fn issue(&self, id_or_key: &str) -> Option<&Issue> {
        let id = match id_or_key.parse::<u64>() {
            Ok(id) => id,
            Err(_) => *self.issue_ids_by_key.get(&id_or_key.to_ascii_uppercase())?,
        };
        self.issues.get(&id)
    }

    pub fn space(&self, key: &str) -> Option<&Space> {
        // Space keys are case-sensitive in Confluence (personal spaces start with `~`).
        self.spaces.iter().find(|s| s.key == key)
    }

    /// `None` when the project does not exist.
    pub fn create_issue(&mut self, new: IssueFields, now: OffsetDateTime) -> Option<&Issue> {
        let project = self
            .projects
            .iter_mut()
            .find(|p| p.key == new.project_key)?;
        let key = format!("{}-{}", project.key, project.next_issue_number);
        project.next_issue_number += 1;
        let id = self.next_issue_id;
        self.next_issue_id += 1;
        self.evict_oldest_created();
        self.issue_ids_by_key.insert(key.clone(), id);
        let issue = Issue {
            id,
            key,
            fields: new,
            created: now,
        };
        Some(self.issues.entry(id).or_insert(issue))
    }

    fn evict_oldest_created(&mut self) {
        let seeded = FIRST_ISSUE_ID + SEED_ISSUES.len() as u64;
        if self.issues.len() < SEED_ISSUES.len() + MAX_CREATED_ISSUES {
            return;
        }
        let oldest = self.issues.range(seeded..).next().map(|(id, _)| *id);
        if let Some(issue) = oldest.and_then(|id| self.issues.remove(&id)) {
            self.issue_ids_by_key.remove(&issue.key);
        }
    }
}

/// Every site seen so far. One lock: the work under it is a lookup or an insert.
#[derive(Debug, Default)]
pub(crate) struct Sites {
    sites: Mutex<HashMap<String, Site>>,
}

impl Sites {
    /// Runs `f` on the site, seeding it on first use.
    pub fn with_site<R>(&self, cloud_id: &str, f: impl FnOnce(&mut Site) -> R) -> R {
        let mut sites = self.sites.lock().unwrap_or_else(PoisonError::into_inner);
        let site = sites
            .entry(cloud_id.to_owned())
            .or_insert_with(Site::seeded);
        f(site)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn new_issue(summary: &str) -> IssueFields {
        IssueFields {
            project_key: "DEMO".into(),
            summary: summary.into(),
            description: None,
            issue_type: &ISSUE_TYPES[0],
            labels: vec![],
            reporter: "acc-1".into(),
        }
    }

    #[test]
    fn seeded_site_names_issues_when_first_used() {
        let sites = Sites::default();
        sites.with_site("cloud-a", |site| {
            assert_eq!(site.issue("DEMO-1").unwrap().id, 10000);
            assert_eq!(site.issue("demo-2").unwrap().id, 10001);
            assert_eq!(site.issue("10002").unwrap().key, "OPS-1");
            assert_eq!(site.project("10001").unwrap().key, "OPS");
            assert!(site.space("TEAM").is_some() && site.space("team").is_none());
        });
    }

    #[test]
    fn create_issue_numbers_per_project_when_created() {
        let mut site = Site::seeded();
        let issue = site.create_issue(new_issue("x"), SEED_TIME).unwrap();
        assert_eq!((issue.id, issue.key.as_str()), (10003, "DEMO-3"));
        let mut other = new_issue("y");
        other.project_key = "NOPE".into();
        assert!(site.create_issue(other, SEED_TIME).is_none());
    }

    #[test]
    fn create_issue_evicts_oldest_created_when_site_full() {
        let mut site = Site::seeded();
        for i in 0..=MAX_CREATED_ISSUES {
            site.create_issue(new_issue(&i.to_string()), SEED_TIME);
        }
        assert_eq!(site.issues.len(), SEED_ISSUES.len() + MAX_CREATED_ISSUES);
        assert!(site.issue("DEMO-1").is_some(), "seeded issues stay");
        assert!(site.issue("DEMO-3").is_none(), "oldest created went");
        assert!(site.issue("DEMO-4").is_some());
    }
}
