//! Which sites and products a token reaches: the rule behind accessible-resources and the
//! consent page's site picker (DESIGN §3).

use crate::scope::ScopeSet;

/// One product on one site, as seen by one account and one app.
#[derive(Clone, Debug)]
pub struct ProductOnSite<'a> {
    pub product_key: &'a str,
    /// The scopes of the product's catalog.
    pub catalog_scopes: &'a ScopeSet,
    /// The account has a membership (any role) for this product on this site.
    pub is_member: bool,
}

/// A site, with what the app and the account have there.
#[derive(Clone, Debug)]
pub struct SiteView<'a> {
    pub cloud_id: &'a str,
    pub products: Vec<ProductOnSite<'a>>,
    pub app_installed: bool,
    /// The installation was made by a site admin (survives a user-install block).
    pub installed_by_admin: bool,
    pub user_installs_blocked: bool,
}

impl SiteView<'_> {
    /// The admin blocked user installs and did not install this app (DESIGN §3 Authorize).
    pub fn blocks_app(&self) -> bool {
        self.user_installs_blocked && !self.installed_by_admin
    }
}

/// An entry of accessible-resources: a site and the granted scopes of one product there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reachable<'a> {
    pub cloud_id: &'a str,
    pub product_key: &'a str,
    pub scopes: ScopeSet,
}

/// Entries for a token with `scopes`: one per (site, product) where the app is installed,
/// the account is a member, the site does not block the app, and at least one granted scope
/// belongs to the product (account-level grants: every such site, DESIGN §2 Grant).
pub fn reachable<'a>(scopes: &ScopeSet, sites: &[SiteView<'a>]) -> Vec<Reachable<'a>> {
    let mut out = Vec::new();
    for site in sites {
        if !site.app_installed || site.blocks_app() {
            continue;
        }
        for product in site.products.iter().filter(|p| p.is_member) {
            let granted =
                ScopeSet::from_tokens(scopes.iter().filter(|s| product.catalog_scopes.contains(s)));
            if !granted.is_empty() {
                out.push(Reachable {
                    cloud_id: site.cloud_id,
                    product_key: product.product_key,
                    scopes: granted,
                });
            }
        }
    }
    out
}

/// Whether a site can be picked on the consent page for a request with `scopes`: the
/// account is a member of a product one of the scopes belongs to. Blocked sites are
/// still listed (with the admin message) but cannot be chosen; see [`SiteView::blocks_app`].
pub fn offers_site(scopes: &ScopeSet, site: &SiteView<'_>) -> bool {
    site.products
        .iter()
        .any(|p| p.is_member && scopes.iter().any(|s| p.catalog_scopes.contains(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jira() -> ScopeSet {
        ScopeSet::from_tokens(["read:jira-work", "write:jira-work"])
    }
    fn wiki() -> ScopeSet {
        ScopeSet::from_tokens(["read:confluence-content.all"])
    }

    #[test]
    fn one_entry_per_site_and_product_with_granted_scopes() {
        let (j, w) = (jira(), wiki());
        let sites = vec![
            SiteView {
                cloud_id: "s1",
                products: vec![
                    ProductOnSite {
                        product_key: "jira",
                        catalog_scopes: &j,
                        is_member: true,
                    },
                    ProductOnSite {
                        product_key: "confluence",
                        catalog_scopes: &w,
                        is_member: true,
                    },
                ],
                app_installed: true,
                installed_by_admin: false,
                user_installs_blocked: false,
            },
            // Not installed: unreachable.
            SiteView {
                cloud_id: "s2",
                products: vec![ProductOnSite {
                    product_key: "jira",
                    catalog_scopes: &j,
                    is_member: true,
                }],
                app_installed: false,
                installed_by_admin: false,
                user_installs_blocked: false,
            },
            // Blocked, but installed by an admin: reachable.
            SiteView {
                cloud_id: "s3",
                products: vec![ProductOnSite {
                    product_key: "jira",
                    catalog_scopes: &j,
                    is_member: true,
                }],
                app_installed: true,
                installed_by_admin: true,
                user_installs_blocked: true,
            },
            // Blocked, installed by a user: unreachable.
            SiteView {
                cloud_id: "s4",
                products: vec![ProductOnSite {
                    product_key: "jira",
                    catalog_scopes: &j,
                    is_member: true,
                }],
                app_installed: true,
                installed_by_admin: false,
                user_installs_blocked: true,
            },
            // Not a member: unreachable.
            SiteView {
                cloud_id: "s5",
                products: vec![ProductOnSite {
                    product_key: "jira",
                    catalog_scopes: &j,
                    is_member: false,
                }],
                app_installed: true,
                installed_by_admin: false,
                user_installs_blocked: false,
            },
        ];
        let granted = ScopeSet::from_tokens(["read:me", "read:jira-work", "offline_access"]);
        let got = reachable(&granted, &sites);
        let ids: Vec<_> = got
            .iter()
            .map(|r| (r.cloud_id, r.product_key, r.scopes.to_string()))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("s1", "jira", "read:jira-work".to_owned()),
                ("s3", "jira", "read:jira-work".to_owned())
            ]
        );
        assert!(offers_site(&granted, &sites[1]));
        assert!(!offers_site(&granted, &sites[4]));
        assert!(sites[3].blocks_app() && !sites[2].blocks_app());
    }
}
