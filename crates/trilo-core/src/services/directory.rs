//! Read-only lookups for the handlers, pages and commands that only show what is stored
//! (lists of sites, products, accounts, apps): they call these rather than the store, so
//! the HTTP layer and the CLI reach storage through services only.

use super::Core;
use crate::error::CoreResult;
use crate::model::{Account, App, Container, Membership, Product, Site, SiteProduct};

impl Core {
    /// The store answers (`/readyz`).
    pub async fn ping(&self) -> CoreResult<()> {
        Ok(self.store.ping().await?)
    }

    /// Which backend stores the data (`sqlite`, `postgres`).
    pub fn backend_name(&self) -> &'static str {
        self.store.backend()
    }

    pub async fn account_by_id(&self, account_id: &str) -> CoreResult<Option<Account>> {
        Ok(self.store.account(account_id).await?)
    }

    pub async fn accounts(&self) -> CoreResult<Vec<Account>> {
        Ok(self.store.list_accounts().await?)
    }

    pub async fn sites(&self) -> CoreResult<Vec<Site>> {
        Ok(self.store.list_sites().await?)
    }

    /// The products a site hosts, with their upstreams.
    pub async fn site_products(&self, cloud_id: &str) -> CoreResult<Vec<SiteProduct>> {
        Ok(self.store.site_products(cloud_id).await?)
    }

    pub async fn products(&self) -> CoreResult<Vec<Product>> {
        Ok(self.store.list_products().await?)
    }

    pub async fn product(&self, key: &str) -> CoreResult<Option<Product>> {
        Ok(self.store.product(key).await?)
    }

    pub async fn memberships_of_account(&self, account_id: &str) -> CoreResult<Vec<Membership>> {
        Ok(self.store.memberships_of_account(account_id).await?)
    }

    pub async fn memberships_of_site(&self, cloud_id: &str) -> CoreResult<Vec<Membership>> {
        Ok(self.store.memberships_of_site(cloud_id).await?)
    }

    /// All apps, or those of one owner, oldest first.
    pub async fn apps_of(&self, owner_account_id: Option<&str>) -> CoreResult<Vec<App>> {
        Ok(self.store.list_apps(owner_account_id).await?)
    }

    /// The site's containers (spaces, projects) of every product.
    pub async fn site_containers(&self, cloud_id: &str) -> CoreResult<Vec<Container>> {
        Ok(self.store.containers(cloud_id, None).await?)
    }
}
