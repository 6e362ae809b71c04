//! Webhook subscriptions, the outbox of events and deliveries, and the objects products
//! report inside containers (`EventStore`): rows, SQL and the operations.

use trilo_core::model::{
    AttemptOutcome, ContainerObject, Delivery, DeliveryCounts, DeliveryStatus, DueDelivery,
    FinishedAttempt, ObjectChange, Outbox, Subscriber, WebhookSubscription,
};
use trilo_core::store::StoreError;

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::{ms, opt_time, parse, time};

/// Where the backends' SQL differs for these operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub mod sql {
    //! The SQL of webhooks, the same text on SQLite and PostgreSQL unless named for one.

    pub const INSERT_SUBSCRIPTION: &str = "INSERT INTO webhook_subscriptions \
         (subscription_id, app_id, url, created_at) VALUES ($1, $2, $3, $4)";
    pub const INSERT_SUBSCRIPTION_EVENT: &str = "INSERT INTO webhook_subscription_events \
         (subscription_id, event_name, ordinal) VALUES ($1, $2, $3)";
    pub const SUBSCRIPTIONS_OF_APP: &str = "SELECT subscription_id, app_id, url, created_at \
         FROM webhook_subscriptions WHERE app_id = $1 ORDER BY created_at, subscription_id";
    pub const EVENTS_OF_APP: &str = "SELECT e.subscription_id, e.event_name \
         FROM webhook_subscription_events e \
         JOIN webhook_subscriptions s ON s.subscription_id = e.subscription_id \
         WHERE s.app_id = $1 ORDER BY e.subscription_id, e.ordinal";
    pub const DELETE_SUBSCRIPTION: &str = "DELETE FROM webhook_subscriptions \
         WHERE app_id = $1 AND subscription_id = $2";
    /// Subscriptions to one event, with whether the app is installed on the site.
    pub const SUBSCRIBERS: &str = "SELECT s.subscription_id, s.app_id, s.url, s.created_at, \
         CAST(CASE WHEN i.app_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS installed \
         FROM webhook_subscription_events e \
         JOIN webhook_subscriptions s ON s.subscription_id = e.subscription_id \
         LEFT JOIN installations i ON i.app_id = s.app_id AND i.cloud_id = $2 \
         WHERE e.event_name = $1 ORDER BY s.created_at, s.subscription_id";
    pub const EVENTS_OF_SUBSCRIBERS: &str = "SELECT e2.subscription_id, e2.event_name \
         FROM webhook_subscription_events e \
         JOIN webhook_subscription_events e2 ON e2.subscription_id = e.subscription_id \
         WHERE e.event_name = $1 ORDER BY e2.subscription_id, e2.ordinal";
    /// Live grants of the app whose account is a member of the product on the site.
    pub const MEMBER_GRANT_SCOPES: &str = "SELECT g.scopes FROM grants g \
         JOIN memberships m ON m.account_id = g.account_id \
         WHERE g.app_id = $1 AND g.revoked_at IS NULL AND m.cloud_id = $2 \
         AND m.product_key = $3 ORDER BY g.grant_id";
    pub const INSERT_EVENT: &str = "INSERT INTO events (event_id, name, cloud_id, \
         product_key, container_key, account_id, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING";
    /// Nothing when the subscription was deleted since the recipients were chosen.
    pub const INSERT_DELIVERY: &str = "INSERT INTO deliveries (delivery_id, event_id, \
         subscription_id, app_id, url, status, attempts, next_attempt_at, created_at) \
         SELECT $1, $2, $3, $4, $5, 'pending', 0, $6, $6 WHERE EXISTS (SELECT 1 \
         FROM webhook_subscriptions WHERE subscription_id = $3)";
    pub const PUT_OBJECT: &str = "INSERT INTO container_objects (cloud_id, product_key, \
         container_key, kind, object_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    pub const REMOVE_OBJECT: &str = "DELETE FROM container_objects WHERE cloud_id = $1 \
         AND product_key = $2 AND container_key = $3 AND kind = $4 AND object_id = $5";
    /// Many objects of one kind in one container: `$5` is a JSON array of ids.
    pub const PUT_OBJECTS_SQLITE: &str = "INSERT INTO container_objects (cloud_id, \
         product_key, container_key, kind, object_id) \
         SELECT $1, $2, $3, $4, value FROM json_each($5) WHERE true ON CONFLICT DO NOTHING";
    pub const PUT_OBJECTS_POSTGRES: &str = "INSERT INTO container_objects (cloud_id, \
         product_key, container_key, kind, object_id) \
         SELECT $1, $2, $3, $4, value FROM jsonb_array_elements_text($5::jsonb) \
         ON CONFLICT DO NOTHING";
    pub const OBJECTS_OF_CONTAINER: &str = "SELECT cloud_id, product_key, container_key, \
         kind, object_id FROM container_objects WHERE cloud_id = $1 AND product_key = $2 \
         AND container_key = $3 ORDER BY kind, object_id LIMIT $4";
    pub const COUNT_OBJECTS_OF_CONTAINER: &str = "SELECT COUNT(*) AS n FROM container_objects \
         WHERE cloud_id = $1 AND product_key = $2 AND container_key = $3";

    /// Claims due deliveries: the attempt count goes up, the delivery is not due again
    /// before the lease ends (`$2`), and `$4` marks the batch for [`CLAIMED`]. SQLite has
    /// one writer, so nothing else can claim the same rows meanwhile.
    pub const CLAIM_SQLITE: &str = "UPDATE deliveries SET attempts = attempts + 1, \
         next_attempt_at = $2, claim_id = $4 WHERE delivery_id IN (SELECT delivery_id \
         FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at LIMIT $3)";
    /// The same on PostgreSQL, where several instances claim at once: `SKIP LOCKED` hands
    /// each due row to one of them.
    pub const CLAIM_POSTGRES: &str = "UPDATE deliveries SET attempts = attempts + 1, \
         next_attempt_at = $2, claim_id = $4 WHERE delivery_id IN (SELECT delivery_id \
         FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)";
    pub const CLAIMED: &str = "SELECT d.delivery_id, d.event_id, e.name AS event_name, \
         d.subscription_id, d.app_id, d.url, d.status, d.attempts, d.next_attempt_at, \
         d.last_status_code, d.last_error, d.created_at, d.finished_at, e.body \
         FROM deliveries d JOIN events e ON e.event_id = d.event_id \
         WHERE d.claim_id = $1 ORDER BY d.next_attempt_at, d.delivery_id";
    pub const FINISH_DELIVERED: &str = "UPDATE deliveries SET status = 'delivered', \
         last_status_code = $3, last_error = NULL, finished_at = $4, claim_id = NULL \
         WHERE delivery_id = $1 AND attempts = $2 AND status = 'pending'";
    pub const FINISH_RETRY: &str = "UPDATE deliveries SET next_attempt_at = $3, \
         last_status_code = $4, last_error = $5, claim_id = NULL \
         WHERE delivery_id = $1 AND attempts = $2 AND status = 'pending'";
    pub const FINISH_DEAD: &str = "UPDATE deliveries SET status = 'dead', \
         last_status_code = $3, last_error = $4, finished_at = $5, claim_id = NULL \
         WHERE delivery_id = $1 AND attempts = $2 AND status = 'pending'";
    pub const DELIVERIES_OF_APP: &str = "SELECT d.delivery_id, d.event_id, \
         e.name AS event_name, d.subscription_id, d.app_id, d.url, d.status, d.attempts, \
         d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.finished_at \
         FROM deliveries d JOIN events e ON e.event_id = d.event_id \
         WHERE d.app_id = $1 ORDER BY d.created_at DESC, d.delivery_id DESC LIMIT $2";
    pub const REDELIVER: &str = "UPDATE deliveries SET status = 'pending', attempts = 0, \
         next_attempt_at = $3, finished_at = NULL, claim_id = NULL \
         WHERE app_id = $1 AND delivery_id = $2";
    pub const DELIVERY_COUNTS: &str = "SELECT status, COUNT(*) AS n FROM deliveries \
         GROUP BY status ORDER BY status";
}

#[derive(sqlx::FromRow)]
pub struct SubscriptionRow {
    subscription_id: String,
    app_id: String,
    url: String,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
pub struct SubscriberRow {
    #[sqlx(flatten)]
    subscription: SubscriptionRow,
    installed: i64,
}

#[derive(sqlx::FromRow)]
pub struct SubscriptionEventRow {
    subscription_id: String,
    event_name: String,
}

#[derive(sqlx::FromRow)]
pub struct ScopesRow {
    pub(crate) scopes: String,
}

#[derive(sqlx::FromRow)]
pub struct ContainerObjectRow {
    cloud_id: String,
    product_key: String,
    container_key: String,
    kind: String,
    object_id: String,
}

#[derive(sqlx::FromRow)]
pub struct CountRow {
    n: i64,
}

impl CountRow {
    pub fn n(&self) -> i64 {
        self.n
    }
}

#[derive(sqlx::FromRow)]
pub struct StatusCountRow {
    status: String,
    n: i64,
}

#[derive(sqlx::FromRow)]
pub struct DeliveryRow {
    delivery_id: String,
    event_id: String,
    event_name: String,
    subscription_id: String,
    app_id: String,
    url: String,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub struct DueDeliveryRow {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    body: String,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        Ok(Delivery {
            status: parse(&r.status, DeliveryStatus::parse, "delivery status")?,
            next_attempt_at: time(r.next_attempt_at)?,
            created_at: time(r.created_at)?,
            finished_at: opt_time(r.finished_at)?,
            delivery_id: r.delivery_id,
            event_id: r.event_id,
            event_name: r.event_name,
            subscription_id: r.subscription_id,
            app_id: r.app_id,
            url: r.url,
            attempts: r.attempts,
            last_status_code: r.last_status_code,
            last_error: r.last_error,
        })
    }
}

impl From<ContainerObjectRow> for ContainerObject {
    fn from(r: ContainerObjectRow) -> Self {
        ContainerObject {
            cloud_id: r.cloud_id,
            product_key: r.product_key,
            container_key: r.container_key,
            kind: r.kind,
            object_id: r.object_id,
        }
    }
}

fn subscription_of(
    row: SubscriptionRow,
    events: &[SubscriptionEventRow],
) -> Result<WebhookSubscription, StoreError> {
    Ok(WebhookSubscription {
        events: events
            .iter()
            .filter(|e| e.subscription_id == row.subscription_id)
            .map(|e| e.event_name.clone())
            .collect(),
        created_at: time(row.created_at)?,
        subscription_id: row.subscription_id,
        app_id: row.app_id,
        url: row.url,
    })
}

pub async fn insert_subscription(mut tx: impl Tx, s: &WebhookSubscription) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::INSERT_SUBSCRIPTION)
            .bind(&s.subscription_id)
            .bind(&s.app_id)
            .bind(&s.url)
            .bind(ms(s.created_at)),
    )
    .await?;
    for (ordinal, name) in (0_i64..).zip(&s.events) {
        tx.execute(
            Stmt::new(sql::INSERT_SUBSCRIPTION_EVENT)
                .bind(&s.subscription_id)
                .bind(name)
                .bind(ordinal),
        )
        .await?;
    }
    tx.commit().await
}

pub async fn subscriptions_of_app(
    mut tx: impl Tx,
    app_id: &str,
) -> Result<Vec<WebhookSubscription>, Fail> {
    let rows: Vec<SubscriptionRow> = tx
        .fetch_all(Stmt::new(sql::SUBSCRIPTIONS_OF_APP).bind(app_id))
        .await?;
    let events: Vec<SubscriptionEventRow> = tx
        .fetch_all(Stmt::new(sql::EVENTS_OF_APP).bind(app_id))
        .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| subscription_of(r, &events))
        .collect::<Result<_, _>>()?)
}

pub async fn delete_subscription(
    mut tx: impl Tx,
    app_id: &str,
    subscription_id: &str,
) -> Result<bool, Fail> {
    let n = tx
        .execute(
            Stmt::new(sql::DELETE_SUBSCRIPTION)
                .bind(app_id)
                .bind(subscription_id),
        )
        .await?;
    tx.commit().await?;
    Ok(n > 0)
}

pub async fn subscribers(
    mut tx: impl Tx,
    event_name: &str,
    cloud_id: &str,
) -> Result<Vec<Subscriber>, Fail> {
    let rows: Vec<SubscriberRow> = tx
        .fetch_all(Stmt::new(sql::SUBSCRIBERS).bind(event_name).bind(cloud_id))
        .await?;
    let events: Vec<SubscriptionEventRow> = tx
        .fetch_all(Stmt::new(sql::EVENTS_OF_SUBSCRIBERS).bind(event_name))
        .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            Ok(Subscriber {
                installed: r.installed != 0,
                subscription: subscription_of(r.subscription, &events)?,
            })
        })
        .collect::<Result<_, StoreError>>()?)
}

pub async fn member_grant_scopes(
    mut c: impl Conn,
    app_id: &str,
    cloud_id: &str,
    product_key: &str,
) -> Result<Vec<Vec<String>>, Fail> {
    let rows: Vec<ScopesRow> = c
        .fetch_all(
            Stmt::new(sql::MEMBER_GRANT_SCOPES)
                .bind(app_id)
                .bind(cloud_id)
                .bind(product_key),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| crate::convert::split_scopes(&r.scopes))
        .collect())
}

/// Writes an outbox entry inside a transaction the caller commits (so a policy change and
/// its events commit together). Returns `false` when the event exists.
pub async fn write_outbox<C: Conn>(tx: &mut C, outbox: &Outbox) -> Result<bool, Fail> {
    let e = &outbox.event;
    let created = ms(e.created_at);
    let inserted = tx
        .execute(
            Stmt::new(sql::INSERT_EVENT)
                .bind(&e.event_id)
                .bind(&e.name)
                .bind(&e.cloud_id)
                .bind(&e.product_key)
                .bind(&e.container_key)
                .bind(&e.account_id)
                .bind(&e.body)
                .bind(created),
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    for d in &outbox.deliveries {
        tx.execute(
            Stmt::new(sql::INSERT_DELIVERY)
                .bind(&d.delivery_id)
                .bind(&e.event_id)
                .bind(&d.subscription_id)
                .bind(&d.app_id)
                .bind(&d.url)
                .bind(created),
        )
        .await?;
    }
    match &outbox.object {
        Some(ObjectChange::Put(o)) => {
            tx.execute(object_stmt(sql::PUT_OBJECT, o)).await?;
        }
        Some(ObjectChange::Remove(o)) => {
            tx.execute(object_stmt(sql::REMOVE_OBJECT, o)).await?;
        }
        None => {}
    }
    Ok(true)
}

fn object_stmt<'a>(sql: &'static str, o: &'a ContainerObject) -> Stmt<'a> {
    Stmt::new(sql)
        .bind(&o.cloud_id)
        .bind(&o.product_key)
        .bind(&o.container_key)
        .bind(&o.kind)
        .bind(&o.object_id)
}

pub async fn record_events(mut tx: impl Tx, outboxes: &[Outbox]) -> Result<Vec<bool>, Fail> {
    let mut recorded = Vec::with_capacity(outboxes.len());
    for outbox in outboxes {
        recorded.push(write_outbox(&mut tx, outbox).await?);
    }
    tx.commit().await?;
    Ok(recorded)
}

/// Objects are grouped by container and kind, each group one statement with its ids as a
/// JSON array: a report of 250,000 objects is a handful of statements, not 250,000.
pub async fn put_container_objects(
    mut tx: impl Tx,
    dialect: Dialect,
    objects: &[ContainerObject],
) -> Result<(), Fail> {
    let sql = match dialect {
        Dialect::Sqlite => sql::PUT_OBJECTS_SQLITE,
        Dialect::Postgres => sql::PUT_OBJECTS_POSTGRES,
    };
    let mut start = 0;
    while start < objects.len() {
        let first = &objects[start];
        let same_group = |o: &ContainerObject| {
            o.cloud_id == first.cloud_id
                && o.product_key == first.product_key
                && o.container_key == first.container_key
                && o.kind == first.kind
        };
        let end = objects[start..]
            .iter()
            .position(|o| !same_group(o))
            .map_or(objects.len(), |n| start + n);
        let ids: Vec<&str> = objects[start..end]
            .iter()
            .map(|o| o.object_id.as_str())
            .collect();
        let ids = serde_json::to_string(&ids)
            .map_err(|e| Fail::Store(StoreError::Corrupt(e.to_string())))?;
        tx.execute(
            Stmt::new(sql)
                .bind(&first.cloud_id)
                .bind(&first.product_key)
                .bind(&first.container_key)
                .bind(&first.kind)
                .bind(ids),
        )
        .await?;
        start = end;
    }
    tx.commit().await
}

pub async fn container_objects(
    mut tx: impl Tx,
    cloud_id: &str,
    containers: &[(String, String)],
    limit: u64,
) -> Result<(Vec<ContainerObject>, u64), Fail> {
    let mut listed = Vec::new();
    let mut total: u64 = 0;
    for (product, container) in containers {
        let count: CountRow = tx
            .fetch_one(
                Stmt::new(sql::COUNT_OBJECTS_OF_CONTAINER)
                    .bind(cloud_id)
                    .bind(product)
                    .bind(container),
            )
            .await?;
        total += u64::try_from(count.n).unwrap_or(0);
        let room = limit.saturating_sub(u64::try_from(listed.len()).unwrap_or(u64::MAX));
        if room == 0 {
            continue;
        }
        let rows: Vec<ContainerObjectRow> = tx
            .fetch_all(
                Stmt::new(sql::OBJECTS_OF_CONTAINER)
                    .bind(cloud_id)
                    .bind(product)
                    .bind(container)
                    .bind(i64::try_from(room).unwrap_or(i64::MAX)),
            )
            .await?;
        listed.extend(rows.into_iter().map(ContainerObject::from));
    }
    tx.commit().await?;
    Ok((listed, total))
}

pub async fn claim_deliveries(
    mut tx: impl Tx,
    dialect: Dialect,
    claim_id: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> Result<Vec<DueDelivery>, Fail> {
    let claim = match dialect {
        Dialect::Sqlite => sql::CLAIM_SQLITE,
        Dialect::Postgres => sql::CLAIM_POSTGRES,
    };
    let claimed = tx
        .execute(
            Stmt::new(claim)
                .bind(now)
                .bind(lease_until)
                .bind(i64::from(limit))
                .bind(claim_id),
        )
        .await?;
    if claimed == 0 {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let rows: Vec<DueDeliveryRow> = tx.fetch_all(Stmt::new(sql::CLAIMED).bind(claim_id)).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            Ok(DueDelivery {
                delivery: Delivery::try_from(r.delivery)?,
                body: r.body,
            })
        })
        .collect::<Result<_, StoreError>>()?)
}

pub async fn finish_attempts(
    mut tx: impl Tx,
    attempts: &[FinishedAttempt],
    now: i64,
) -> Result<(), Fail> {
    for a in attempts {
        let stmt = match &a.outcome {
            AttemptOutcome::Delivered { status_code } => Stmt::new(sql::FINISH_DELIVERED)
                .bind(&a.delivery_id)
                .bind(a.attempt)
                .bind(*status_code)
                .bind(now),
            AttemptOutcome::Failed {
                status_code,
                error,
                retry_at: Some(at),
            } => Stmt::new(sql::FINISH_RETRY)
                .bind(&a.delivery_id)
                .bind(a.attempt)
                .bind(ms(*at))
                .bind(*status_code)
                .bind(error.as_str()),
            AttemptOutcome::Failed {
                status_code,
                error,
                retry_at: None,
            } => Stmt::new(sql::FINISH_DEAD)
                .bind(&a.delivery_id)
                .bind(a.attempt)
                .bind(*status_code)
                .bind(error.as_str())
                .bind(now),
        };
        tx.execute(stmt).await?;
    }
    tx.commit().await
}

pub async fn deliveries_of_app(
    mut c: impl Conn,
    app_id: &str,
    limit: u32,
) -> Result<Vec<Delivery>, Fail> {
    let rows: Vec<DeliveryRow> = c
        .fetch_all(
            Stmt::new(sql::DELIVERIES_OF_APP)
                .bind(app_id)
                .bind(i64::from(limit)),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(Delivery::try_from)
        .collect::<Result<_, _>>()?)
}

pub async fn redeliver(
    mut tx: impl Tx,
    app_id: &str,
    delivery_id: &str,
    now: i64,
) -> Result<bool, Fail> {
    let n = tx
        .execute(
            Stmt::new(sql::REDELIVER)
                .bind(app_id)
                .bind(delivery_id)
                .bind(now),
        )
        .await?;
    tx.commit().await?;
    Ok(n > 0)
}

pub async fn delivery_counts(mut c: impl Conn) -> Result<DeliveryCounts, Fail> {
    let rows: Vec<StatusCountRow> = c.fetch_all(Stmt::new(sql::DELIVERY_COUNTS)).await?;
    let mut counts = DeliveryCounts::default();
    for r in rows {
        match DeliveryStatus::parse(&r.status) {
            Some(DeliveryStatus::Pending) => counts.pending = r.n,
            Some(DeliveryStatus::Delivered) => counts.delivered = r.n,
            Some(DeliveryStatus::Dead) => counts.dead = r.n,
            None => {}
        }
    }
    Ok(counts)
}
