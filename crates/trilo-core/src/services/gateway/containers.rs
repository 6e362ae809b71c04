//! Which space or project a call addresses, and what the site's rules say about it
//! (DESIGN §3 "Gateway", last two checks): a guest reaches only its containers; an active
//! data security policy with the app access rule keeps apps away from the containers it
//! covers (API tokens act as the user and are not blocked).

use std::borrow::Cow;

use super::Refusal;
use crate::model::{Container, Policy};

/// The site's containers of one product, as they bear on one caller.
#[derive(Debug, Default)]
pub(crate) struct ContainerRules {
    containers: Vec<Container>,
    /// Container key → the name of an active policy keeping apps away from it.
    blocked_for_apps: Vec<(String, String)>,
    /// For a guest, the container keys it may reach; `None` for other roles.
    guest_allowed: Option<Vec<String>>,
}

impl ContainerRules {
    pub(crate) fn new(
        product_key: &str,
        containers: Vec<Container>,
        policies: &[Policy],
        guest_allowed: Option<Vec<String>>,
    ) -> Self {
        let blocked_for_apps = policies
            .iter()
            .filter(|p| p.active && p.blocks_apps)
            .flat_map(|p| {
                p.containers
                    .iter()
                    .filter(|(product, _)| product == product_key)
                    .map(|(_, key)| (key.clone(), p.name.clone()))
            })
            .collect();
        Self {
            containers,
            blocked_for_apps,
            guest_allowed,
        }
    }

    /// The container the call's path parameters name, if any: a project or space by key
    /// or id, or the project of an issue key (`DEMO-12`).
    pub(crate) fn addressed(&self, params: &[(&str, Cow<'_, str>)]) -> Option<&Container> {
        params.iter().find_map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            if name.contains("project") || name.contains("space") {
                self.containers
                    .iter()
                    .find(|c| c.key == *value || c.container_id == *value)
            } else if name.starts_with("issue") {
                let (key, number) = value.rsplit_once('-')?;
                let is_issue_key = !key.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
                is_issue_key
                    .then(|| self.containers.iter().find(|c| c.key == key))
                    .flatten()
            } else {
                None
            }
        })
    }

    /// Why the caller may not touch `container`, if it may not.
    pub(crate) fn refusal(&self, container: &Container, is_app: bool) -> Option<Refusal> {
        if let Some(allowed) = &self.guest_allowed
            && !allowed.contains(&container.key)
        {
            return Some(Refusal::new(
                403,
                "Guests can reach only the spaces or projects they were invited to.",
            ));
        }
        if is_app
            && let Some((_, policy)) = self
                .blocked_for_apps
                .iter()
                .find(|(key, _)| *key == container.key)
        {
            return Some(Refusal::new(
                403,
                format!(
                    "The data security policy \u{201c}{policy}\u{201d} does not allow apps to \
                     access this content."
                ),
            ));
        }
        None
    }

    /// The keys the upstream must keep out of searches and lists for this caller.
    pub(crate) fn blocked(&self, is_app: bool) -> Vec<String> {
        let mut blocked: Vec<String> = Vec::new();
        if is_app {
            blocked.extend(self.blocked_for_apps.iter().map(|(key, _)| key.clone()));
        }
        if let Some(allowed) = &self.guest_allowed {
            blocked.extend(
                self.containers
                    .iter()
                    .filter(|c| !allowed.contains(&c.key))
                    .map(|c| c.key.clone()),
            );
        }
        blocked.sort();
        blocked.dedup();
        blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn container(key: &str, id: &str) -> Container {
        Container {
            cloud_id: "c".into(),
            product_key: "jira".into(),
            key: key.into(),
            container_id: id.into(),
            name: key.into(),
        }
    }

    fn policy(name: &str, active: bool, keys: &[&str]) -> Policy {
        Policy {
            policy_id: name.into(),
            cloud_id: "c".into(),
            name: name.into(),
            blocks_apps: true,
            active,
            containers: keys
                .iter()
                .map(|k| ("jira".to_owned(), (*k).to_owned()))
                .collect(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn rules(guest: Option<&[&str]>) -> ContainerRules {
        ContainerRules::new(
            "jira",
            vec![container("DEMO", "10000"), container("OPS", "10001")],
            &[
                policy("Finance", true, &["OPS"]),
                policy("Draft", false, &["DEMO"]),
            ],
            guest.map(|keys| keys.iter().map(|k| (*k).to_owned()).collect()),
        )
    }

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, Cow<'a, str>)> {
        pairs.iter().map(|(k, v)| (*k, Cow::Borrowed(*v))).collect()
    }

    #[test]
    fn containers_are_found_by_key_id_or_issue_key() {
        let r = rules(None);
        let key = |p: &[(&str, &str)]| r.addressed(&params(p)).map(|c| c.key.clone());
        assert_eq!(key(&[("projectIdOrKey", "OPS")]), Some("OPS".into()));
        assert_eq!(key(&[("projectIdOrKey", "10000")]), Some("DEMO".into()));
        assert_eq!(key(&[("spaceKey", "DEMO")]), Some("DEMO".into()));
        assert_eq!(key(&[("issueIdOrKey", "OPS-12")]), Some("OPS".into()));
        assert_eq!(key(&[("issueIdOrKey", "10042")]), None);
        assert_eq!(key(&[("projectIdOrKey", "UNKNOWN")]), None);
        assert_eq!(key(&[("fieldId", "OPS")]), None);
    }

    #[test]
    fn active_policies_block_apps_and_name_the_policy() {
        let r = rules(None);
        let ops = container("OPS", "10001");
        let refusal = r.refusal(&ops, true).map(|x| x.message);
        assert!(refusal.is_some_and(|m| m.contains("Finance") && !m.contains("OPS")));
        assert!(
            r.refusal(&ops, false).is_none(),
            "API tokens are not blocked"
        );
        assert!(
            r.refusal(&container("DEMO", "10000"), true).is_none(),
            "inactive policy"
        );
        assert_eq!(r.blocked(true), vec!["OPS".to_owned()]);
        assert!(r.blocked(false).is_empty());
    }

    #[test]
    fn guests_reach_only_their_containers() {
        let r = rules(Some(&["DEMO"]));
        assert!(r.refusal(&container("DEMO", "10000"), false).is_none());
        assert!(r.refusal(&container("OPS", "10001"), false).is_some());
        assert_eq!(r.blocked(false), vec!["OPS".to_owned()]);
    }
}
