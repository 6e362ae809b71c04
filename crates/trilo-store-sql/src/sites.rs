//! Sites, products (with their ordered scope catalogs), the products a site hosts, and
//! memberships (`SiteStore`): rows, SQL and the operations.

use trilo_core::model::{
    Membership, Product, ProductOperation, ProductScope, Role, Site, SiteProduct, UserInstalls,
};
use trilo_core::store::StoreError;
use trilo_protocol::alias::{join_aliases, split_aliases};

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::{ms, parse, time};

pub mod sql {
    //! The SQL of sites, products, site products and memberships (same text on both
    //! backends).

    pub const INSERT_SITE: &str = "INSERT INTO sites (cloud_id, name, url, avatar_url, \
         user_installs, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    pub const SITE: &str = "SELECT cloud_id, name, url, avatar_url, user_installs, created_at \
         FROM sites WHERE cloud_id = $1";
    pub const LIST_SITES: &str = "SELECT cloud_id, name, url, avatar_url, user_installs, \
         created_at FROM sites ORDER BY created_at, cloud_id";
    pub const SET_USER_INSTALLS: &str = "UPDATE sites SET user_installs = $1 WHERE cloud_id = $2";

    pub const UPSERT_PRODUCT: &str = "INSERT INTO products (product_key, display_name, \
         path_aliases) VALUES ($1, $2, $3) \
         ON CONFLICT (product_key) DO UPDATE SET display_name = excluded.display_name, \
         path_aliases = excluded.path_aliases";
    pub const DELETE_PRODUCT_OPERATIONS: &str =
        "DELETE FROM product_operations WHERE product_key = $1";
    pub const INSERT_PRODUCT_OPERATION: &str = "INSERT INTO product_operations (product_key, \
         ordinal, method, template, alternatives) VALUES ($1, $2, $3, $4, $5)";
    pub const PRODUCT_OPERATIONS: &str = "SELECT method, template, alternatives \
         FROM product_operations WHERE product_key = $1 ORDER BY ordinal";
    pub const DELETE_PRODUCT_SCOPES: &str = "DELETE FROM product_scopes WHERE product_key = $1";
    pub const INSERT_PRODUCT_SCOPE: &str = "INSERT INTO product_scopes (product_key, ordinal, \
         scope, description) VALUES ($1, $2, $3, $4)";
    pub const PRODUCT: &str = "SELECT product_key, display_name, path_aliases FROM products \
         WHERE product_key = $1";
    pub const SCOPES_OF_PRODUCT: &str = "SELECT product_key, scope, description \
         FROM product_scopes WHERE product_key = $1 ORDER BY ordinal";
    pub const LIST_PRODUCTS: &str = "SELECT product_key, display_name, path_aliases \
         FROM products ORDER BY product_key";
    pub const LIST_PRODUCT_SCOPES: &str = "SELECT product_key, scope, description \
         FROM product_scopes ORDER BY product_key, ordinal";

    pub const PUT_SITE_PRODUCT: &str = "INSERT INTO site_products (cloud_id, product_key, \
         upstream_url) VALUES ($1, $2, $3) ON CONFLICT (cloud_id, product_key) \
         DO UPDATE SET upstream_url = excluded.upstream_url";
    pub const SITE_PRODUCTS: &str = "SELECT cloud_id, product_key, upstream_url \
         FROM site_products WHERE cloud_id = $1 ORDER BY product_key";

    pub const PUT_MEMBERSHIP: &str = "INSERT INTO memberships (account_id, cloud_id, \
         product_key, role, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id, cloud_id, product_key) DO UPDATE SET role = excluded.role";
    pub const REMOVE_MEMBERSHIP: &str = "DELETE FROM memberships WHERE account_id = $1 \
         AND cloud_id = $2 AND product_key = $3";
    pub const MEMBERSHIPS_OF_ACCOUNT: &str = "SELECT account_id, cloud_id, product_key, role, \
         created_at FROM memberships WHERE account_id = $1 \
         ORDER BY created_at, cloud_id, product_key";
    pub const MEMBERSHIPS_OF_SITE: &str = "SELECT account_id, cloud_id, product_key, role, \
         created_at FROM memberships WHERE cloud_id = $1 \
         ORDER BY created_at, account_id, product_key";
}

#[derive(sqlx::FromRow)]
pub struct SiteRow {
    cloud_id: String,
    name: String,
    url: String,
    avatar_url: Option<String>,
    user_installs: String,
    created_at: i64,
}

impl TryFrom<SiteRow> for Site {
    type Error = StoreError;

    fn try_from(r: SiteRow) -> Result<Self, StoreError> {
        Ok(Site {
            cloud_id: r.cloud_id,
            name: r.name,
            url: r.url,
            avatar_url: r.avatar_url,
            user_installs: parse(&r.user_installs, UserInstalls::parse, "user_installs")?,
            created_at: time(r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ProductRow {
    product_key: String,
    display_name: String,
    path_aliases: String,
}

#[derive(sqlx::FromRow)]
pub struct ProductScopeRow {
    product_key: String,
    scope: String,
    description: String,
}

/// Puts each product's scopes (ordered by product, then position) into its record.
fn assemble_products(
    products: Vec<ProductRow>,
    scopes: Vec<ProductScopeRow>,
) -> Result<Vec<Product>, StoreError> {
    let mut out: Vec<Product> = products
        .into_iter()
        .map(|p| {
            Ok(Product {
                path_aliases: split_aliases(&p.path_aliases)
                    .map_err(|e| StoreError::Corrupt(format!("product {}: {e}", p.product_key)))?,
                key: p.product_key,
                display_name: p.display_name,
                scopes: Vec::new(),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    for s in scopes {
        if let Some(p) = out.iter_mut().find(|p| p.key == s.product_key) {
            p.scopes.push(ProductScope {
                scope: s.scope,
                description: s.description,
            });
        }
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
pub struct SiteProductRow {
    cloud_id: String,
    product_key: String,
    upstream_url: String,
}

impl From<SiteProductRow> for SiteProduct {
    fn from(r: SiteProductRow) -> Self {
        SiteProduct {
            cloud_id: r.cloud_id,
            product_key: r.product_key,
            upstream_url: r.upstream_url,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct MembershipRow {
    account_id: String,
    cloud_id: String,
    product_key: String,
    role: String,
    created_at: i64,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;

    fn try_from(r: MembershipRow) -> Result<Self, StoreError> {
        Ok(Membership {
            account_id: r.account_id,
            cloud_id: r.cloud_id,
            product_key: r.product_key,
            role: parse(&r.role, Role::parse, "role")?,
            created_at: time(r.created_at)?,
        })
    }
}

fn memberships(rows: Vec<MembershipRow>) -> Result<Vec<Membership>, StoreError> {
    rows.into_iter().map(Membership::try_from).collect()
}

pub async fn insert_site(mut tx: impl Tx, site: &Site) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::INSERT_SITE)
            .bind(&site.cloud_id)
            .bind(&site.name)
            .bind(&site.url)
            .bind(&site.avatar_url)
            .bind(site.user_installs.as_str())
            .bind(ms(site.created_at)),
    )
    .await?;
    tx.commit().await
}

pub async fn site(mut c: impl Conn, cloud_id: &str) -> Result<Option<Site>, Fail> {
    let row: Option<SiteRow> = c
        .fetch_optional(Stmt::new(sql::SITE).bind(cloud_id))
        .await?;
    Ok(row.map(Site::try_from).transpose()?)
}

pub async fn list_sites(mut c: impl Conn) -> Result<Vec<Site>, Fail> {
    let rows: Vec<SiteRow> = c.fetch_all(Stmt::new(sql::LIST_SITES)).await?;
    Ok(rows
        .into_iter()
        .map(Site::try_from)
        .collect::<Result<_, _>>()?)
}

/// `NotFound` when the site does not exist.
pub async fn set_user_installs(
    mut tx: impl Tx,
    cloud_id: &str,
    value: UserInstalls,
) -> Result<(), Fail> {
    let updated = tx
        .execute(
            Stmt::new(sql::SET_USER_INSTALLS)
                .bind(value.as_str())
                .bind(cloud_id),
        )
        .await?;
    if updated == 0 {
        return Err(StoreError::NotFound.into());
    }
    tx.commit().await
}

/// Inserts the product or replaces its display name and scope list.
pub async fn upsert_product(mut tx: impl Tx, product: &Product) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::UPSERT_PRODUCT)
            .bind(&product.key)
            .bind(&product.display_name)
            .bind(join_aliases(&product.path_aliases)),
    )
    .await?;
    tx.execute(Stmt::new(sql::DELETE_PRODUCT_SCOPES).bind(&product.key))
        .await?;
    for (i, s) in (0_i64..).zip(&product.scopes) {
        tx.execute(
            Stmt::new(sql::INSERT_PRODUCT_SCOPE)
                .bind(&product.key)
                .bind(i)
                .bind(&s.scope)
                .bind(&s.description),
        )
        .await?;
    }
    tx.commit().await
}

/// One product with its scopes, read in one snapshot.
pub async fn product(mut tx: impl Tx, key: &str) -> Result<Option<Product>, Fail> {
    let products: Vec<ProductRow> = tx.fetch_all(Stmt::new(sql::PRODUCT).bind(key)).await?;
    let scopes: Vec<ProductScopeRow> = tx
        .fetch_all(Stmt::new(sql::SCOPES_OF_PRODUCT).bind(key))
        .await?;
    tx.commit().await?;
    Ok(assemble_products(products, scopes)?.into_iter().next())
}

/// Every product with its scopes, read in one snapshot.
pub async fn list_products(mut tx: impl Tx) -> Result<Vec<Product>, Fail> {
    let products: Vec<ProductRow> = tx.fetch_all(Stmt::new(sql::LIST_PRODUCTS)).await?;
    let scopes: Vec<ProductScopeRow> = tx.fetch_all(Stmt::new(sql::LIST_PRODUCT_SCOPES)).await?;
    tx.commit().await?;
    Ok(assemble_products(products, scopes)?)
}

pub async fn put_site_product(mut tx: impl Tx, sp: &SiteProduct) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::PUT_SITE_PRODUCT)
            .bind(&sp.cloud_id)
            .bind(&sp.product_key)
            .bind(&sp.upstream_url),
    )
    .await?;
    tx.commit().await
}

pub async fn site_products(mut c: impl Conn, cloud_id: &str) -> Result<Vec<SiteProduct>, Fail> {
    let rows: Vec<SiteProductRow> = c
        .fetch_all(Stmt::new(sql::SITE_PRODUCTS).bind(cloud_id))
        .await?;
    Ok(rows.into_iter().map(SiteProduct::from).collect())
}

pub async fn put_membership(mut tx: impl Tx, m: &Membership) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::PUT_MEMBERSHIP)
            .bind(&m.account_id)
            .bind(&m.cloud_id)
            .bind(&m.product_key)
            .bind(m.role.as_str())
            .bind(ms(m.created_at)),
    )
    .await?;
    tx.commit().await
}

/// Returns whether a membership was removed.
pub async fn remove_membership(
    mut tx: impl Tx,
    account_id: &str,
    cloud_id: &str,
    product_key: &str,
) -> Result<bool, Fail> {
    let removed = tx
        .execute(
            Stmt::new(sql::REMOVE_MEMBERSHIP)
                .bind(account_id)
                .bind(cloud_id)
                .bind(product_key),
        )
        .await?;
    tx.commit().await?;
    Ok(removed > 0)
}

pub async fn memberships_of_account(
    mut c: impl Conn,
    account_id: &str,
) -> Result<Vec<Membership>, Fail> {
    let rows: Vec<MembershipRow> = c
        .fetch_all(Stmt::new(sql::MEMBERSHIPS_OF_ACCOUNT).bind(account_id))
        .await?;
    Ok(memberships(rows)?)
}

pub async fn memberships_of_site(
    mut c: impl Conn,
    cloud_id: &str,
) -> Result<Vec<Membership>, Fail> {
    let rows: Vec<MembershipRow> = c
        .fetch_all(Stmt::new(sql::MEMBERSHIPS_OF_SITE).bind(cloud_id))
        .await?;
    Ok(memberships(rows)?)
}

#[derive(sqlx::FromRow)]
pub struct ProductOperationRow {
    method: String,
    template: String,
    alternatives: String,
}

impl TryFrom<ProductOperationRow> for ProductOperation {
    type Error = StoreError;

    fn try_from(r: ProductOperationRow) -> Result<Self, StoreError> {
        let alternatives = serde_json::from_str(&r.alternatives).map_err(|e| {
            StoreError::Corrupt(format!(
                "scope alternatives of {} {}: {e}",
                r.method, r.template
            ))
        })?;
        Ok(ProductOperation {
            method: r.method,
            template: r.template,
            alternatives,
        })
    }
}

/// Replaces the product's operations in one transaction.
pub async fn put_product_operations(
    mut tx: impl Tx,
    product_key: &str,
    operations: &[ProductOperation],
) -> Result<(), Fail> {
    let exists: Option<ProductRow> = tx
        .fetch_optional(Stmt::new(sql::PRODUCT).bind(product_key))
        .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound.into());
    }
    tx.execute(Stmt::new(sql::DELETE_PRODUCT_OPERATIONS).bind(product_key))
        .await?;
    for (ordinal, op) in operations.iter().enumerate() {
        let alternatives = serde_json::to_string(&op.alternatives)
            .map_err(|e| StoreError::Corrupt(format!("scope alternatives: {e}")))?;
        tx.execute(
            Stmt::new(sql::INSERT_PRODUCT_OPERATION)
                .bind(product_key)
                .bind(i64::try_from(ordinal).unwrap_or(i64::MAX))
                .bind(op.method.as_str())
                .bind(op.template.as_str())
                .bind(alternatives),
        )
        .await?;
    }
    tx.commit().await
}

pub async fn product_operations(
    mut c: impl Conn,
    product_key: &str,
) -> Result<Vec<ProductOperation>, Fail> {
    let rows: Vec<ProductOperationRow> = c
        .fetch_all(Stmt::new(sql::PRODUCT_OPERATIONS).bind(product_key))
        .await?;
    Ok(rows
        .into_iter()
        .map(ProductOperation::try_from)
        .collect::<Result<_, _>>()?)
}
