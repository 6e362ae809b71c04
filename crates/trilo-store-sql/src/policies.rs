//! Containers, guests' containers and data security policies (`PolicyStore`): rows, SQL
//! and the operations.

use trilo_core::model::{Container, Outbox, Policy};
use trilo_core::store::StoreError;

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::{ms, time};

pub mod sql {
    //! The SQL of containers and policies, the same text on SQLite and PostgreSQL.

    pub const PUT_CONTAINER: &str = "INSERT INTO containers (cloud_id, product_key, \
         container_key, container_id, name) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (cloud_id, product_key, container_key) \
         DO UPDATE SET container_id = excluded.container_id, name = excluded.name";
    pub const CONTAINERS: &str = "SELECT cloud_id, product_key, container_key, container_id, \
         name FROM containers WHERE cloud_id = $1 ORDER BY product_key, container_key";
    pub const CONTAINERS_OF_PRODUCT: &str = "SELECT cloud_id, product_key, container_key, \
         container_id, name FROM containers WHERE cloud_id = $1 AND product_key = $2 \
         ORDER BY container_key";
    pub const DELETE_GUEST_CONTAINERS: &str = "DELETE FROM guest_containers \
         WHERE account_id = $1 AND cloud_id = $2 AND product_key = $3";
    pub const INSERT_GUEST_CONTAINER: &str = "INSERT INTO guest_containers (account_id, \
         cloud_id, product_key, container_key) VALUES ($1, $2, $3, $4)";
    pub const GUEST_CONTAINERS: &str = "SELECT container_key FROM guest_containers \
         WHERE account_id = $1 AND cloud_id = $2 AND product_key = $3 ORDER BY container_key";
    pub const PUT_POLICY: &str = "INSERT INTO policies (policy_id, cloud_id, name, \
         blocks_apps, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (policy_id) DO UPDATE SET name = excluded.name, \
         blocks_apps = excluded.blocks_apps, active = excluded.active, \
         updated_at = excluded.updated_at";
    pub const DELETE_POLICY_CONTAINERS: &str = "DELETE FROM policy_containers WHERE policy_id = $1";
    pub const INSERT_POLICY_CONTAINER: &str = "INSERT INTO policy_containers (policy_id, \
         cloud_id, product_key, container_key) VALUES ($1, $2, $3, $4)";
    pub const POLICY: &str = "SELECT policy_id, cloud_id, name, blocks_apps, active, \
         created_at, updated_at FROM policies WHERE policy_id = $1";
    pub const POLICIES: &str = "SELECT policy_id, cloud_id, name, blocks_apps, active, \
         created_at, updated_at FROM policies WHERE cloud_id = $1 \
         ORDER BY created_at, policy_id";
    pub const POLICY_CONTAINERS: &str = "SELECT policy_id, product_key, container_key \
         FROM policy_containers WHERE policy_id = $1 ORDER BY product_key, container_key";
    pub const POLICY_CONTAINERS_OF_SITE: &str = "SELECT policy_id, product_key, container_key \
         FROM policy_containers WHERE cloud_id = $1 ORDER BY product_key, container_key";
}

#[derive(sqlx::FromRow)]
pub struct ContainerRow {
    cloud_id: String,
    product_key: String,
    container_key: String,
    container_id: String,
    name: String,
}

impl From<ContainerRow> for Container {
    fn from(r: ContainerRow) -> Self {
        Container {
            cloud_id: r.cloud_id,
            product_key: r.product_key,
            key: r.container_key,
            container_id: r.container_id,
            name: r.name,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct ContainerKeyRow {
    container_key: String,
}

#[derive(sqlx::FromRow)]
pub struct PolicyRow {
    policy_id: String,
    cloud_id: String,
    name: String,
    blocks_apps: i64,
    active: i64,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
pub struct PolicyContainerRow {
    policy_id: String,
    product_key: String,
    container_key: String,
}

fn policy_of(row: PolicyRow, covered: &[PolicyContainerRow]) -> Result<Policy, StoreError> {
    Ok(Policy {
        containers: covered
            .iter()
            .filter(|c| c.policy_id == row.policy_id)
            .map(|c| (c.product_key.clone(), c.container_key.clone()))
            .collect(),
        policy_id: row.policy_id,
        cloud_id: row.cloud_id,
        name: row.name,
        blocks_apps: row.blocks_apps != 0,
        active: row.active != 0,
        created_at: time(row.created_at)?,
        updated_at: time(row.updated_at)?,
    })
}

pub async fn put_container(mut tx: impl Tx, c: &Container) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::PUT_CONTAINER)
            .bind(&c.cloud_id)
            .bind(&c.product_key)
            .bind(&c.key)
            .bind(&c.container_id)
            .bind(&c.name),
    )
    .await?;
    tx.commit().await
}

pub async fn containers(
    mut c: impl Conn,
    cloud_id: &str,
    product_key: Option<&str>,
) -> Result<Vec<Container>, Fail> {
    let rows: Vec<ContainerRow> = match product_key {
        Some(product) => {
            c.fetch_all(
                Stmt::new(sql::CONTAINERS_OF_PRODUCT)
                    .bind(cloud_id)
                    .bind(product),
            )
            .await?
        }
        None => {
            c.fetch_all(Stmt::new(sql::CONTAINERS).bind(cloud_id))
                .await?
        }
    };
    Ok(rows.into_iter().map(Container::from).collect())
}

pub async fn set_guest_containers(
    mut tx: impl Tx,
    account_id: &str,
    cloud_id: &str,
    product_key: &str,
    keys: &[String],
) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::DELETE_GUEST_CONTAINERS)
            .bind(account_id)
            .bind(cloud_id)
            .bind(product_key),
    )
    .await?;
    for key in keys {
        tx.execute(
            Stmt::new(sql::INSERT_GUEST_CONTAINER)
                .bind(account_id)
                .bind(cloud_id)
                .bind(product_key)
                .bind(key.as_str()),
        )
        .await?;
    }
    tx.commit().await
}

pub async fn guest_containers(
    mut c: impl Conn,
    account_id: &str,
    cloud_id: &str,
    product_key: &str,
) -> Result<Vec<String>, Fail> {
    let rows: Vec<ContainerKeyRow> = c
        .fetch_all(
            Stmt::new(sql::GUEST_CONTAINERS)
                .bind(account_id)
                .bind(cloud_id)
                .bind(product_key),
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.container_key).collect())
}

/// The policy and its events commit together (the outbox rule).
pub async fn put_policy(mut tx: impl Tx, p: &Policy, outbox: &[Outbox]) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::PUT_POLICY)
            .bind(&p.policy_id)
            .bind(&p.cloud_id)
            .bind(&p.name)
            .bind(i64::from(p.blocks_apps))
            .bind(i64::from(p.active))
            .bind(ms(p.created_at))
            .bind(ms(p.updated_at)),
    )
    .await?;
    tx.execute(Stmt::new(sql::DELETE_POLICY_CONTAINERS).bind(&p.policy_id))
        .await?;
    for (product, key) in &p.containers {
        tx.execute(
            Stmt::new(sql::INSERT_POLICY_CONTAINER)
                .bind(&p.policy_id)
                .bind(&p.cloud_id)
                .bind(product)
                .bind(key),
        )
        .await?;
    }
    for entry in outbox {
        crate::events::write_outbox(&mut tx, entry).await?;
    }
    tx.commit().await
}

pub async fn policy(mut tx: impl Tx, policy_id: &str) -> Result<Option<Policy>, Fail> {
    let row: Option<PolicyRow> = tx
        .fetch_optional(Stmt::new(sql::POLICY).bind(policy_id))
        .await?;
    let covered: Vec<PolicyContainerRow> = tx
        .fetch_all(Stmt::new(sql::POLICY_CONTAINERS).bind(policy_id))
        .await?;
    tx.commit().await?;
    Ok(row.map(|r| policy_of(r, &covered)).transpose()?)
}

pub async fn policies(mut tx: impl Tx, cloud_id: &str) -> Result<Vec<Policy>, Fail> {
    let rows: Vec<PolicyRow> = tx
        .fetch_all(Stmt::new(sql::POLICIES).bind(cloud_id))
        .await?;
    let covered: Vec<PolicyContainerRow> = tx
        .fetch_all(Stmt::new(sql::POLICY_CONTAINERS_OF_SITE).bind(cloud_id))
        .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| policy_of(r, &covered))
        .collect::<Result<_, _>>()?)
}
