//! The operator console's services. Operators run this trilo: they are named by email in
//! the configuration (`operators`), not by any role on a site, because what they do
//! reaches every customer: they see every site, create sites, choose where a site's
//! product API calls go, and review other developers' apps. Anyone else is told the
//! console does not exist ([`CoreError::NotFound`]), as for a site they do not administer.

use super::Core;
use super::admin::NewSite;
use super::console::ConsoleResult;
use crate::error::{CoreError, CoreResult};
use crate::model::{Account, App, Distribution, ReviewState, Role, Site, SiteProduct};

/// The operator console of one operator.
pub struct Operator<'a> {
    core: &'a Core,
    account: &'a Account,
}

/// A site as the operator console lists it.
pub struct SiteOverview {
    pub site: Site,
    /// The products it hosts, with the upstream each one's API calls go to.
    pub products: Vec<SiteProduct>,
    /// The emails of its admins (of any product), each once.
    pub admins: Vec<String>,
}

/// An app other people may authorize, with who made it.
pub struct AppToReview {
    pub app: App,
    pub owner_email: String,
    /// The operator's own app: never reviewed by themselves.
    pub own: bool,
}

impl Core {
    /// Whether `account` is one of the configured operators (emails compare without case,
    /// as logins do).
    pub fn is_operator(&self, account: &Account) -> bool {
        self.settings
            .operators
            .iter()
            .any(|email| email.trim().eq_ignore_ascii_case(&account.email))
    }

    /// The operator console for `account`, or "not found" when it is no operator.
    pub fn operator<'a>(&'a self, account: &'a Account) -> CoreResult<Operator<'a>> {
        if !self.is_operator(account) {
            return Err(CoreError::NotFound("operator console"));
        }
        Ok(Operator {
            core: self,
            account,
        })
    }
}

impl Operator<'_> {
    /// Every site, by name, with its products and admins.
    pub async fn sites(&self) -> CoreResult<Vec<SiteOverview>> {
        let mut emails = Emails::default();
        let mut sites = self.core.sites().await?;
        sites.sort_by_key(|s| s.name.to_lowercase());
        let mut overviews = Vec::with_capacity(sites.len());
        for site in sites {
            let products = self.core.site_products(&site.cloud_id).await?;
            let mut admins = Vec::new();
            for m in self.core.memberships_of_site(&site.cloud_id).await? {
                if m.role == Role::Admin {
                    admins.push(emails.of(self.core, &m.account_id).await?);
                }
            }
            admins.sort();
            admins.dedup();
            overviews.push(SiteOverview {
                site,
                products,
                admins,
            });
        }
        Ok(overviews)
    }

    /// A new site with a generated cloud id; its products and admins come next.
    pub async fn create_site(&self, name: &str, url: &str) -> CoreResult<Site> {
        self.core
            .create_site(NewSite {
                name: name.to_owned(),
                url: url.trim().to_owned(),
                avatar_url: None,
                cloud_id: None,
            })
            .await
    }

    /// Hosts a product on a site (or moves its upstream): the gateway sends the site's
    /// calls of that product to `upstream_url`.
    pub async fn host_product(
        &self,
        cloud_id: &str,
        product_key: &str,
        upstream_url: &str,
    ) -> CoreResult<()> {
        if self.core.product(product_key).await?.is_none() {
            return Err(CoreError::Invalid(format!(
                "there is no product {product_key:?}"
            )));
        }
        self.core
            .add_product_to_site(cloud_id, product_key, upstream_url.trim())
            .await
    }

    /// The apps other people may authorize (private apps reach only their owner, so there
    /// is nothing to review): those awaiting review first, then the approved, oldest first.
    pub async fn apps_to_review(&self) -> CoreResult<Vec<AppToReview>> {
        let mut emails = Emails::default();
        let mut apps = Vec::new();
        for app in self.core.apps_of(None).await? {
            if app.distribution != Distribution::Sharing {
                continue;
            }
            apps.push(AppToReview {
                owner_email: emails.of(self.core, &app.owner_account_id).await?,
                own: app.owner_account_id == self.account.account_id,
                app,
            });
        }
        apps.sort_by_key(|a| a.app.review_state == ReviewState::Approved);
        Ok(apps)
    }

    /// Marks an app reviewed or not: the developer console's rule (operators only, never
    /// their own app), so the page and `/api/v1` cannot differ.
    pub async fn review(&self, app_id: &str, state: ReviewState) -> ConsoleResult<App> {
        self.core
            .console(self.account)
            .review_app(app_id, state)
            .await
    }
}

/// Accounts' emails, each looked up once per page.
#[derive(Default)]
struct Emails(std::collections::HashMap<String, String>);

impl Emails {
    async fn of(&mut self, core: &Core, account_id: &str) -> CoreResult<String> {
        if let Some(email) = self.0.get(account_id) {
            return Ok(email.clone());
        }
        let email = core
            .account_by_id(account_id)
            .await?
            .map_or_else(|| account_id.to_owned(), |a| a.email);
        self.0.insert(account_id.to_owned(), email.clone());
        Ok(email)
    }
}
