//! Operator operations on sites, products, memberships and apps (the `trilo admin` CLI and
//! the demo seed; the consoles reuse them later).

use serde_json::json;
use time::Duration;
use trilo_protocol::ScopeSet;
use trilo_protocol::catalog::{CatalogError, scopes_from_openapi};
use trilo_protocol::operations::{CatalogReport, OperationCatalog};
use trilo_protocol::redirect::validate_registration;
use trilo_protocol::scope::is_identity_scope;

use super::{Core, new_id};
use crate::crypto::{random_alphanumeric, random_token, sha256};
use crate::error::{CoreError, CoreResult};
use crate::model::{
    App, AppSecret, ClientType, Distribution, Membership, PathAlias, Product, ProductOperation,
    ProductScope, ReviewState, Role, Site, SiteProduct, UserInstalls,
};

#[derive(Clone, Debug)]
pub struct NewSite {
    pub name: String,
    pub url: String,
    pub avatar_url: Option<String>,
    /// A fixed cloud id (demo and tests); a new UUID when `None`.
    pub cloud_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewApp {
    pub owner_account_id: String,
    pub name: String,
    pub description: String,
    pub avatar_url: Option<String>,
    pub callback_urls: Vec<String>,
    pub scopes: Vec<String>,
    pub distribution: Distribution,
    pub client_type: ClientType,
}

/// An app just created, with its secret, which is shown this once and never again.
#[derive(Clone)]
pub struct CreatedApp {
    pub app: App,
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for CreatedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApp")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl Core {
    pub async fn create_site(&self, input: NewSite) -> CoreResult<Site> {
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(CoreError::invalid_field(
                "name",
                "The site's name must be 1 to 200 characters, without control characters.",
            ));
        }
        validate_http_url(&input.url, "url", "The site's address")?;
        if let Some(avatar) = &input.avatar_url {
            validate_http_url(avatar, "avatar_url", "The site's avatar URL")?;
        }
        let cloud_id = match input.cloud_id {
            Some(id) => uuid::Uuid::parse_str(&id)
                .map_err(|_| CoreError::Invalid("cloud id must be a UUID".into()))?
                .to_string(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let site = Site {
            cloud_id,
            name,
            url: input.url,
            avatar_url: input.avatar_url,
            user_installs: UserInstalls::Allowed,
            created_at: self.now(),
        };
        self.store
            .insert_site(&site)
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::Conflict(_) => {
                    CoreError::Conflict("a site with this cloud id exists".into())
                }
                other => other,
            })?;
        self.audit(
            None,
            "site.created",
            &site.cloud_id,
            Some(&site.cloud_id),
            json!({ "name": site.name }),
        )
        .await?;
        Ok(site)
    }

    pub async fn set_user_installs(&self, cloud_id: &str, value: UserInstalls) -> CoreResult<()> {
        self.store
            .set_user_installs(cloud_id, value)
            .await
            .map_err(not_found("site"))?;
        self.access_changed().await;
        self.audit(
            None,
            "site.user_installs_changed",
            cloud_id,
            Some(cloud_id),
            json!({ "user_installs": value.as_str() }),
        )
        .await
    }

    /// Registers a product or replaces its scope catalog.
    pub async fn put_product(&self, product: &Product) -> CoreResult<()> {
        if product.key.is_empty()
            || !product
                .key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(CoreError::Invalid(
                "product key must be lowercase letters, digits and '-'".into(),
            ));
        }
        self.store.upsert_product(product).await?;
        self.product_scopes.clear();
        self.audit(
            None,
            "product.updated",
            &product.key,
            None,
            json!({ "scopes": product.scopes.len() }),
        )
        .await
    }

    /// Registers a product, or replaces its catalog, from its OpenAPI 3 descriptions (one
    /// or more: Jira's v2 and v3, Confluence's v1 and v2): the scopes the consent page
    /// describes and the operations the gateway checks, with the path aliases the gateway
    /// rewrites. A scope or operation that an earlier description has already stays as
    /// that one says. Returns the product and the catalogs' report, summed.
    pub async fn import_product(
        &self,
        key: &str,
        display_name: &str,
        descriptions: &[serde_json::Value],
        path_aliases: Vec<PathAlias>,
    ) -> CoreResult<(Product, CatalogReport)> {
        if descriptions.is_empty() {
            return Err(CoreError::Invalid(
                "a product needs at least one OpenAPI description".into(),
            ));
        }
        let mut scopes: Vec<ProductScope> = Vec::new();
        let mut operations: Vec<ProductOperation> = Vec::new();
        let mut report = CatalogReport::default();
        for (n, openapi) in descriptions.iter().enumerate() {
            let invalid =
                |e: CatalogError| CoreError::Invalid(format!("description {}: {e}", n + 1));
            for s in scopes_from_openapi(openapi).map_err(invalid)? {
                if !scopes.iter().any(|known| known.scope == s.scope) {
                    scopes.push(ProductScope {
                        scope: s.scope,
                        description: s.description,
                    });
                }
            }
            let catalog = OperationCatalog::from_openapi(openapi).map_err(invalid)?;
            for op in catalog.operations() {
                if operations
                    .iter()
                    .any(|known| known.method == op.method && known.template == op.path)
                {
                    report.unparsed.push(format!(
                        "{} {} (already in an earlier description)",
                        op.method, op.path
                    ));
                    continue;
                }
                operations.push(ProductOperation {
                    method: op.method.clone(),
                    template: op.path.clone(),
                    alternatives: op.alternatives.clone(),
                });
            }
            report.add(catalog.report());
        }
        let product = Product {
            key: key.to_owned(),
            display_name: display_name.to_owned(),
            scopes,
            path_aliases,
        };
        self.put_product(&product).await?;
        self.store.put_product_operations(key, &operations).await?;
        Ok((product, report))
    }

    pub async fn add_product_to_site(
        &self,
        cloud_id: &str,
        product_key: &str,
        upstream_url: &str,
    ) -> CoreResult<()> {
        validate_http_url(upstream_url, "upstream", "The upstream URL")?;
        let sp = SiteProduct {
            cloud_id: cloud_id.to_owned(),
            product_key: product_key.to_owned(),
            upstream_url: upstream_url.to_owned(),
        };
        self.store
            .put_site_product(&sp)
            .await
            .map_err(not_found("site or product"))?;
        self.access_changed().await;
        self.audit(
            None,
            "site.product_added",
            cloud_id,
            Some(cloud_id),
            json!({ "product": product_key }),
        )
        .await
    }

    pub async fn set_membership(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
        role: Role,
    ) -> CoreResult<()> {
        self.set_membership_by(None, account_id, cloud_id, product_key, role)
            .await
    }

    /// As [`Core::set_membership`], recording `actor` (a site admin) in the audit log.
    pub async fn set_membership_by(
        &self,
        actor: Option<&str>,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
        role: Role,
    ) -> CoreResult<()> {
        let m = Membership {
            account_id: account_id.to_owned(),
            cloud_id: cloud_id.to_owned(),
            product_key: product_key.to_owned(),
            role,
            created_at: self.now(),
        };
        self.store
            .put_membership(&m)
            .await
            .map_err(not_found("account, site or product on the site"))?;
        self.access_changed().await;
        self.audit(
            actor,
            "membership.set",
            account_id,
            Some(cloud_id),
            json!({ "product": product_key, "role": role.as_str() }),
        )
        .await
    }

    pub async fn remove_membership(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> CoreResult<()> {
        self.remove_membership_by(None, account_id, cloud_id, product_key)
            .await
    }

    /// As [`Core::remove_membership`], recording `actor` in the audit log.
    pub async fn remove_membership_by(
        &self,
        actor: Option<&str>,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> CoreResult<()> {
        if !self
            .store
            .remove_membership(account_id, cloud_id, product_key)
            .await?
        {
            return Err(CoreError::NotFound("membership"));
        }
        self.access_changed().await;
        self.audit(
            actor,
            "membership.removed",
            account_id,
            Some(cloud_id),
            json!({ "product": product_key }),
        )
        .await
    }

    /// Creates an app. Callback URLs are checked as security checklist R5 says; scopes must
    /// be identity scopes or belong to a product's catalog.
    pub async fn create_app(&self, input: NewApp) -> CoreResult<CreatedApp> {
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            return Err(CoreError::Invalid(
                "app name must be 1 to 200 characters".into(),
            ));
        }
        if self.store.account(&input.owner_account_id).await?.is_none() {
            return Err(CoreError::NotFound("owner account"));
        }
        for url in &input.callback_urls {
            validate_registration(url).map_err(|e| CoreError::Invalid(format!("{url:?}: {e}")))?;
        }
        if let Some(avatar) = &input.avatar_url {
            validate_http_url(avatar, "avatar_url", "The avatar URL")?;
        }
        let scopes = self.check_app_scopes(&input.scopes).await?;
        let now = self.now();
        let app = App {
            app_id: new_id(),
            client_id: random_alphanumeric(32),
            owner_account_id: input.owner_account_id,
            name,
            description: input.description,
            avatar_url: input.avatar_url,
            callback_urls: dedup(input.callback_urls),
            scopes,
            web_origins: Vec::new(),
            distribution: input.distribution,
            review_state: ReviewState::Unreviewed,
            client_type: input.client_type,
            created_at: now,
            updated_at: now,
        };
        let client_secret = (app.client_type == ClientType::Confidential).then(random_token);
        let secret = client_secret.as_ref().map(|s| AppSecret {
            secret_id: new_id(),
            app_id: app.app_id.clone(),
            secret_hash: sha256(s),
            created_at: now,
            expires_at: None,
        });
        self.store.insert_app(&app, secret.as_ref()).await?;
        self.audit(
            Some(&app.owner_account_id),
            "app.created",
            &app.app_id,
            None,
            json!({ "name": app.name }),
        )
        .await?;
        Ok(CreatedApp { app, client_secret })
    }

    /// Looks an app up by app id or client id.
    pub async fn find_app(&self, id: &str) -> CoreResult<App> {
        if let Some(app) = self.store.app(id).await? {
            return Ok(app);
        }
        self.store
            .app_by_client_id(id)
            .await?
            .ok_or(CoreError::NotFound("app"))
    }

    pub async fn update_app(&self, mut app: App) -> CoreResult<App> {
        app.name = app.name.trim().to_owned();
        if app.name.is_empty() || app.name.len() > 200 {
            return Err(CoreError::Invalid(
                "app name must be 1 to 200 characters".into(),
            ));
        }
        if let Some(avatar) = &app.avatar_url {
            validate_http_url(avatar, "avatar_url", "The avatar URL")?;
        }
        for url in &app.callback_urls {
            validate_registration(url).map_err(|e| CoreError::Invalid(format!("{url:?}: {e}")))?;
        }
        app.scopes = self.check_app_scopes(&app.scopes).await?;
        app.callback_urls = dedup(app.callback_urls);
        app.updated_at = self.now();
        self.store
            .update_app(&app)
            .await
            .map_err(not_found("app"))?;
        self.access_changed().await;
        self.audit(None, "app.updated", &app.app_id, None, json!({}))
            .await?;
        Ok(app)
    }

    /// Issues a new secret; the previous ones stay valid for `grace`.
    pub async fn rotate_app_secret(&self, app_id: &str, grace: Duration) -> CoreResult<String> {
        let app = self.find_app(app_id).await?;
        if app.client_type != ClientType::Confidential {
            return Err(CoreError::Invalid("public clients have no secret".into()));
        }
        let secret = random_token();
        let now = self.now();
        let record = AppSecret {
            secret_id: new_id(),
            app_id: app.app_id.clone(),
            secret_hash: sha256(&secret),
            created_at: now,
            expires_at: None,
        };
        self.store.rotate_app_secret(&record, now + grace).await?;
        self.access_changed().await;
        self.audit(
            None,
            "app.secret_rotated",
            &app.app_id,
            None,
            json!({ "grace_seconds": grace.whole_seconds() }),
        )
        .await?;
        Ok(secret)
    }

    /// Deletes an app; refused while it is installed on any site (the reference's rule).
    pub async fn delete_app(&self, app_id: &str) -> CoreResult<()> {
        let app = self.find_app(app_id).await?;
        let installs = self.store.installations_of_app(&app.app_id).await?;
        if !installs.is_empty() {
            let sites: Vec<&str> = installs.iter().map(|i| i.cloud_id.as_str()).collect();
            return Err(CoreError::Conflict(format!(
                "the app is installed on {} site(s): {}; uninstall it first",
                sites.len(),
                sites.join(", ")
            )));
        }
        self.store.delete_app(&app.app_id).await?;
        self.access_changed().await;
        self.audit(
            None,
            "app.deleted",
            &app.app_id,
            None,
            json!({ "name": app.name }),
        )
        .await
    }

    async fn check_app_scopes(&self, scopes: &[String]) -> CoreResult<Vec<String>> {
        let set = ScopeSet::from_tokens(scopes);
        let products = self.store.list_products().await?;
        for scope in set.iter() {
            let known = is_identity_scope(scope)
                || products
                    .iter()
                    .any(|p| p.scopes.iter().any(|s| s.scope == scope));
            if !known {
                return Err(CoreError::Invalid(format!(
                    "unknown scope {scope:?}: not in any product's catalog"
                )));
            }
        }
        Ok(set.to_vec())
    }
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// `value` is an absolute http(s) URL, else an error about `field`, which `what` names.
fn validate_http_url(value: &str, field: &'static str, what: &str) -> CoreResult<()> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(CoreError::invalid_field(
            field,
            format!("{what} must be a full web address starting with https:// or http://."),
        )),
    }
}

fn not_found(what: &'static str) -> impl Fn(crate::store::StoreError) -> CoreError {
    move |e| match e {
        crate::store::StoreError::NotFound => CoreError::NotFound(what),
        other => other.into(),
    }
}
