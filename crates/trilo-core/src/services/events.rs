//! Webhooks (DESIGN §3 "Webhooks", "Admin controls"): apps' subscriptions, products'
//! events in, data security policy events, and the outbox's side of delivery (claiming,
//! signing, recording outcomes). The HTTP sending itself is the server's.
//!
//! Who receives an event is decided here, when the event is recorded, with
//! `trilo_protocol::webhooks::deliver_to`; the deliveries are written in the same
//! transaction as the event (or as the policy change that caused it), so nothing that was
//! accepted can be lost.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::sync::Notify;
use trilo_protocol::ScopeSet;
use trilo_protocol::webhooks::{
    self, Affected, AffectedObject, AfterFailure, EventType, Recipient, SubscriptionError,
};
use url::Url;

use super::ttl_cache::TtlCache;
use super::{Core, new_id};
use crate::crypto::{hmac_sha256, random_unit, sha256};
use crate::error::{CoreError, CoreResult};
use crate::model::{
    AttemptOutcome, ContainerObject, Delivery, DeliveryCounts, DueDelivery, Event, FinishedAttempt,
    NewDelivery, ObjectChange, Outbox, Policy, Subscriber, WebhookSubscription,
};

/// Subscriptions an app may have: enough for every event, bounded for the pages.
const MAX_SUBSCRIPTIONS_PER_APP: usize = 20;
/// The longest idempotency key, container key or object id a product may send.
const MAX_KEY_CHARS: usize = 200;

/// A subscription just created, with its secret (shown to the developer).
#[derive(Clone, Debug)]
pub struct CreatedWebhook {
    pub subscription: WebhookSubscription,
    pub secret: String,
}

/// An event as a product posts it (`POST /internal/events`).
#[derive(Clone, Debug, Default)]
pub struct ProductEvent {
    /// The product's own id for the event: a retried post with the same id is recorded once.
    pub id: Option<String>,
    pub name: String,
    pub cloud_id: String,
    /// The container (project, space) the event is about.
    pub container: Option<String>,
    /// The account that triggered it, when known.
    pub account_id: Option<String>,
    /// The object the event is about (kind, id), recorded for policy events.
    pub object: Option<(String, String)>,
    /// The event's data, sent to apps with `webhookEvent` and `timestamp` added.
    pub payload: Map<String, Value>,
}

/// What became of a posted event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    pub event_id: String,
    /// Deliveries created (0 for a duplicate).
    pub deliveries: usize,
    /// The event had been recorded before (same product id).
    pub duplicate: bool,
}

/// How one attempt to send went, as the sender saw it.
#[derive(Clone, Debug)]
pub enum SendResult {
    /// The receiver answered with this status.
    Answered(u16),
    /// No answer: connection refused, timeout, TLS failure… (the text says which).
    NoAnswer(String),
}

/// What the delivery rule reads, cached per (app, site, product) and per site for the
/// access caches' lifetime and cleared with them.
pub(crate) struct EventCaches {
    subscribers: TtlCache<(String, String), Arc<Vec<Subscriber>>>,
    grants: TtlCache<(String, String, String), Arc<Vec<ScopeSet>>>,
    /// Per site: (product, container) pairs an active policy keeps apps away from.
    blocked: TtlCache<String, Arc<Vec<(String, String)>>>,
}

impl EventCaches {
    pub(crate) fn new(ttl: time::Duration) -> Self {
        Self {
            subscribers: TtlCache::new(ttl),
            grants: TtlCache::new(ttl),
            blocked: TtlCache::new(ttl),
        }
    }

    pub(crate) fn clear(&self) {
        self.subscribers.clear();
        self.grants.clear();
        self.blocked.clear();
    }
}

/// Wakes the senders when deliveries were recorded on this instance.
#[derive(Debug, Default)]
pub struct DeliveriesReady(Notify);

impl DeliveriesReady {
    pub fn notify(&self) {
        self.0.notify_one();
    }

    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

fn invalid(e: SubscriptionError) -> CoreError {
    CoreError::Invalid(e.to_string())
}

impl Core {
    /// Registers a webhook for the app: `url` must be https (or loopback http where the
    /// settings allow it), `events` known names.
    pub async fn create_webhook(
        &self,
        app_id: &str,
        url: &str,
        events: &[String],
    ) -> CoreResult<CreatedWebhook> {
        let settings = &self.settings.webhooks;
        let url = webhooks::validate_url(url, settings.allow_http_loopback).map_err(invalid)?;
        let events = webhooks::validate_events(events).map_err(invalid)?;
        if self.store.subscriptions_of_app(app_id).await?.len() >= MAX_SUBSCRIPTIONS_PER_APP {
            return Err(CoreError::Invalid(format!(
                "an app may have at most {MAX_SUBSCRIPTIONS_PER_APP} webhooks"
            )));
        }
        let subscription = WebhookSubscription {
            subscription_id: new_id(),
            app_id: app_id.to_owned(),
            url: url.into(),
            events,
            created_at: self.now(),
        };
        self.store
            .insert_subscription(&subscription)
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::NotFound(_) => CoreError::NotFound("app"),
                other => other,
            })?;
        self.caches.events.subscribers.clear();
        Ok(CreatedWebhook {
            secret: self.webhook_secret(&subscription.subscription_id),
            subscription,
        })
    }

    pub async fn webhooks_of_app(&self, app_id: &str) -> CoreResult<Vec<WebhookSubscription>> {
        Ok(self.store.subscriptions_of_app(app_id).await?)
    }

    /// Deletes the app's webhook and its pending deliveries.
    pub async fn delete_webhook(&self, app_id: &str, subscription_id: &str) -> CoreResult<()> {
        if self
            .store
            .delete_subscription(app_id, subscription_id)
            .await?
        {
            self.caches.events.subscribers.clear();
            Ok(())
        } else {
            Err(CoreError::NotFound("webhook"))
        }
    }

    /// The secret deliveries of this subscription are signed with.
    pub fn webhook_secret(&self, subscription_id: &str) -> String {
        self.webhook_secrets.subscription_secret(subscription_id)
    }

    /// The secret a product authenticates its events with.
    pub fn product_events_secret(&self, product_key: &str) -> String {
        self.webhook_secrets.product_secret(product_key)
    }

    /// Which product, if any, `presented` is the events secret of.
    pub async fn product_of_events_secret(&self, presented: &str) -> CoreResult<Option<String>> {
        let products = self.store.list_products().await?;
        Ok(products
            .into_iter()
            .find(|p| self.webhook_secrets.is_product_secret(&p.key, presented))
            .map(|p| p.key))
    }

    /// Records a product's event (see [`Core::ingest_events`]).
    pub async fn ingest_event(
        &self,
        product_key: &str,
        event: ProductEvent,
    ) -> CoreResult<Ingested> {
        let mut ingested = self.ingest_events(product_key, vec![event]).await?;
        ingested
            .pop()
            .ok_or_else(|| CoreError::Internal(anyhow::anyhow!("no answer for the event")))
    }

    /// Records a product's events, each with a delivery for every subscribed app the rule
    /// admits (installed, a member's live grant covers the event, no active policy blocks
    /// its container), all in one transaction, and wakes the senders. An invalid event
    /// refuses the whole post (`Invalid` naming it) and records nothing.
    pub async fn ingest_events(
        &self,
        product_key: &str,
        events: Vec<ProductEvent>,
    ) -> CoreResult<Vec<Ingested>> {
        let many = events.len() > 1;
        let mut outboxes = Vec::with_capacity(events.len());
        let mut hosted_on: Vec<String> = Vec::new();
        for (n, event) in events.into_iter().enumerate() {
            let outbox = self
                .product_outbox(product_key, event, &mut hosted_on)
                .await
                .map_err(|e| match e {
                    CoreError::Invalid(m) if many => {
                        CoreError::Invalid(format!("events[{n}]: {m}"))
                    }
                    other => other,
                })?;
            outboxes.push(outbox);
        }
        let recorded = self.store.record_events(&outboxes).await?;
        if recorded
            .iter()
            .zip(&outboxes)
            .any(|(r, o)| *r && !o.deliveries.is_empty())
        {
            self.deliveries_ready.notify();
        }
        Ok(outboxes
            .iter()
            .zip(recorded)
            .map(|(o, recorded)| Ingested {
                event_id: o.event.event_id.clone(),
                deliveries: if recorded { o.deliveries.len() } else { 0 },
                duplicate: !recorded,
            })
            .collect())
    }

    /// Checks one posted event and builds what to record for it. `hosted_on` remembers the
    /// sites already found to host the product.
    async fn product_outbox(
        &self,
        product_key: &str,
        event: ProductEvent,
        hosted_on: &mut Vec<String>,
    ) -> CoreResult<Outbox> {
        let kind = webhooks::event_type(&event.name)
            .filter(|k| k.product.is_some())
            .ok_or_else(|| CoreError::Invalid(format!("unknown event {:?}", event.name)))?;
        if kind.product != Some(product_key) {
            return Err(CoreError::Invalid(format!(
                "event {:?} is not an event of product {product_key:?}",
                event.name
            )));
        }
        for value in [&event.id, &event.container, &event.account_id]
            .into_iter()
            .flatten()
            .chain(event.object.iter().flat_map(|(k, i)| [k, i]))
        {
            if value.is_empty() || value.chars().count() > MAX_KEY_CHARS {
                return Err(CoreError::Invalid(format!(
                    "ids, keys and kinds must have 1 to {MAX_KEY_CHARS} characters"
                )));
            }
        }
        if !hosted_on.contains(&event.cloud_id) {
            self.require_hosted(&event.cloud_id, product_key).await?;
            hosted_on.push(event.cloud_id.clone());
        }
        let now = self.now();
        let event_id = match &event.id {
            Some(id) => product_event_id(product_key, id),
            None => new_id(),
        };
        let mut body = event.payload;
        body.insert("webhookEvent".into(), Value::String(event.name.clone()));
        body.insert("timestamp".into(), json!(unix_ms(now)));
        let body = Value::Object(body).to_string();
        if body.len() > self.settings.webhooks.max_event_bytes {
            return Err(CoreError::Invalid(format!(
                "an event body may have at most {} bytes",
                self.settings.webhooks.max_event_bytes
            )));
        }
        let stored = Event {
            event_id,
            name: kind.name.to_owned(),
            cloud_id: Some(event.cloud_id.clone()),
            product_key: Some(product_key.to_owned()),
            container_key: event.container.clone(),
            account_id: event.account_id.clone(),
            body,
            created_at: now,
        };
        let deliveries = self.recipients(kind, &stored).await?;
        let object = match (&event.container, event.object) {
            (Some(container), Some((kind_name, object_id))) => {
                let object = ContainerObject {
                    cloud_id: event.cloud_id.clone(),
                    product_key: product_key.to_owned(),
                    container_key: container.clone(),
                    kind: kind_name,
                    object_id,
                };
                Some(if is_removal(kind) {
                    ObjectChange::Remove(object)
                } else {
                    ObjectChange::Put(object)
                })
            }
            _ => None,
        };
        Ok(Outbox {
            event: stored,
            deliveries,
            object,
        })
    }

    /// Adds objects a product reports inside its containers (what policy events list).
    pub async fn report_container_objects(
        &self,
        product_key: &str,
        cloud_id: &str,
        container: &str,
        kind: &str,
        ids: Vec<String>,
    ) -> CoreResult<usize> {
        if [container, kind]
            .iter()
            .chain(ids.iter().map(String::as_str).collect::<Vec<_>>().iter())
            .any(|v| v.is_empty() || v.chars().count() > MAX_KEY_CHARS)
        {
            return Err(CoreError::Invalid(format!(
                "ids, keys and kinds must have 1 to {MAX_KEY_CHARS} characters"
            )));
        }
        self.require_hosted(cloud_id, product_key).await?;
        let objects: Vec<ContainerObject> = ids
            .into_iter()
            .map(|object_id| ContainerObject {
                cloud_id: cloud_id.to_owned(),
                product_key: product_key.to_owned(),
                container_key: container.to_owned(),
                kind: kind.to_owned(),
                object_id,
            })
            .collect();
        self.store.put_container_objects(&objects).await?;
        Ok(objects.len())
    }

    async fn require_hosted(&self, cloud_id: &str, product_key: &str) -> CoreResult<()> {
        let hosted = self
            .store
            .site_products(cloud_id)
            .await?
            .iter()
            .any(|p| p.product_key == product_key);
        if hosted {
            Ok(())
        } else {
            Err(CoreError::NotFound("product on the site"))
        }
    }

    /// The deliveries of a product event: one per subscription whose app the rule admits.
    async fn recipients(&self, kind: &EventType, event: &Event) -> CoreResult<Vec<NewDelivery>> {
        let (Some(cloud_id), Some(product)) = (&event.cloud_id, &event.product_key) else {
            return Ok(Vec::new());
        };
        let subscribers = self.subscribers(kind.name, cloud_id).await?;
        if subscribers.is_empty() {
            return Ok(Vec::new());
        }
        let container_blocked = match &event.container_key {
            Some(container) => self
                .blocked_containers(cloud_id)
                .await?
                .iter()
                .any(|(p, c)| p == product && c == container),
            None => false,
        };
        let mut out = Vec::new();
        for s in subscribers.iter() {
            let grants = if s.installed {
                self.member_grants(&s.subscription.app_id, cloud_id, product)
                    .await?
            } else {
                Arc::default()
            };
            let to = Recipient {
                installed: s.installed,
                grants: &grants,
                container_blocked,
            };
            if webhooks::deliver_to(kind, &to).is_ok() {
                out.push(delivery_to(
                    &s.subscription,
                    kind,
                    event.account_id.as_deref(),
                ));
            }
        }
        Ok(out)
    }

    /// The event's subscribers on the site, cached like the rule's other inputs and
    /// cleared by this instance's subscription changes (other instances see a new webhook
    /// within the cache's lifetime; a deleted one's deliveries are left out when stored).
    async fn subscribers(
        &self,
        event_name: &str,
        cloud_id: &str,
    ) -> CoreResult<Arc<Vec<Subscriber>>> {
        let key = (event_name.to_owned(), cloud_id.to_owned());
        if let Some(hit) = self.caches.events.subscribers.get(&key) {
            return Ok(hit);
        }
        let subscribers = Arc::new(self.store.subscribers(event_name, cloud_id).await?);
        self.caches.events.subscribers.put(key, subscribers.clone());
        Ok(subscribers)
    }

    async fn member_grants(
        &self,
        app_id: &str,
        cloud_id: &str,
        product: &str,
    ) -> CoreResult<Arc<Vec<ScopeSet>>> {
        let key = (app_id.to_owned(), cloud_id.to_owned(), product.to_owned());
        if let Some(hit) = self.caches.events.grants.get(&key) {
            return Ok(hit);
        }
        let grants: Arc<Vec<ScopeSet>> = Arc::new(
            self.store
                .member_grant_scopes(app_id, cloud_id, product)
                .await?
                .into_iter()
                .map(ScopeSet::from_tokens)
                .collect(),
        );
        self.caches.events.grants.put(key, grants.clone());
        Ok(grants)
    }

    async fn blocked_containers(&self, cloud_id: &str) -> CoreResult<Arc<Vec<(String, String)>>> {
        if let Some(hit) = self.caches.events.blocked.get(cloud_id) {
            return Ok(hit);
        }
        let blocked: Arc<Vec<(String, String)>> = Arc::new(
            self.store
                .policies(cloud_id)
                .await?
                .into_iter()
                .filter(|p| p.active && p.blocks_apps)
                .flat_map(|p| p.containers)
                .collect(),
        );
        self.caches
            .events
            .blocked
            .put(cloud_id.to_owned(), blocked.clone());
        Ok(blocked)
    }

    /// The events a policy change emits, one per installed app's subscription (reference,
    /// 19 July 2024): activation, a change while active, deactivation, of a policy with
    /// the app access rule. `before` is the policy as it was.
    pub(crate) async fn policy_events(
        &self,
        policy: &Policy,
        before: Option<&Policy>,
    ) -> CoreResult<Vec<Outbox>> {
        let was_blocking = before.is_some_and(|b| b.active && b.blocks_apps);
        let blocking = policy.active && policy.blocks_apps;
        let name = match (was_blocking, blocking) {
            (false, true) => webhooks::POLICY_ACTIVATED,
            (true, true) => webhooks::POLICY_UPDATED,
            (true, false) => webhooks::POLICY_DEACTIVATED,
            (false, false) => return Ok(Vec::new()),
        };
        let Some(kind) = webhooks::event_type(name) else {
            return Ok(Vec::new());
        };
        let subscribers: Vec<_> = self
            .store
            .subscribers(kind.name, &policy.cloud_id)
            .await?
            .into_iter()
            .filter(|s| {
                let to = Recipient {
                    installed: s.installed,
                    grants: &[],
                    container_blocked: false,
                };
                webhooks::deliver_to(kind, &to).is_ok()
            })
            .collect();
        if subscribers.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let body = self.policy_event_body(kind, policy, now).await?;
        let event = Event {
            event_id: new_id(),
            name: kind.name.to_owned(),
            cloud_id: Some(policy.cloud_id.clone()),
            product_key: None,
            container_key: None,
            account_id: None,
            body,
            created_at: now,
        };
        let deliveries = subscribers
            .iter()
            .map(|s| delivery_to(&s.subscription, kind, None))
            .collect();
        Ok(vec![Outbox {
            event,
            deliveries,
            object: None,
        }])
    }

    /// The policy event's JSON: the policy, and the objects it affects (its containers,
    /// then the objects products reported in them), capped with the total and a flag.
    async fn policy_event_body(
        &self,
        kind: &EventType,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> CoreResult<String> {
        let max = self.settings.webhooks.max_policy_objects;
        let containers = self.store.containers(&policy.cloud_id, None).await?;
        let mut objects: Vec<AffectedObject<'_>> = policy
            .containers
            .iter()
            .filter_map(|(product, key)| {
                containers
                    .iter()
                    .find(|c| &c.product_key == product && &c.key == key)
            })
            .map(|c| AffectedObject {
                product: c.product_key.as_str().into(),
                kind: "container".into(),
                id: c.container_id.as_str().into(),
                container: c.key.as_str().into(),
            })
            .collect();
        let listed_containers = objects.len() as u64;
        let room = max.saturating_sub(objects.len()) as u64;
        let (inside, inside_total) = self
            .store
            .container_objects(&policy.cloud_id, &policy.containers, room)
            .await?;
        objects.extend(inside.into_iter().map(|o| AffectedObject {
            product: o.product_key.into(),
            kind: o.kind.into(),
            id: o.object_id.into(),
            container: o.container_key.into(),
        }));
        let affected = Affected::new(objects, listed_containers + inside_total, max);
        Ok(json!({
            "webhookEvent": kind.name,
            "timestamp": unix_ms(now),
            "cloudId": policy.cloud_id,
            "policy": {
                "id": policy.policy_id,
                "name": policy.name,
                "active": policy.active,
                "appAccessRule": policy.blocks_apps,
            },
            "affected": affected,
        })
        .to_string())
    }

    /// Claims due deliveries for this instance's senders, leased for the configured time.
    pub async fn claim_due_deliveries(&self, limit: u32) -> CoreResult<Vec<DueDelivery>> {
        let now = self.now();
        Ok(self
            .store
            .claim_deliveries(now, now + self.settings.webhooks.lease, limit)
            .await?)
    }

    /// The outcome to record for an attempt: delivered on a 2xx; otherwise retried after
    /// the backoff, or dead after the last attempt.
    pub fn attempt_outcome(&self, delivery: &Delivery, result: SendResult) -> FinishedAttempt {
        let (status_code, error) = match result {
            SendResult::Answered(code) if (200..300).contains(&code) => {
                return FinishedAttempt {
                    delivery_id: delivery.delivery_id.clone(),
                    attempt: delivery.attempts,
                    outcome: AttemptOutcome::Delivered {
                        status_code: i64::from(code),
                    },
                };
            }
            SendResult::Answered(code) if (300..400).contains(&code) => (
                Some(i64::from(code)),
                format!("HTTP {code}: redirects are not followed"),
            ),
            SendResult::Answered(code) => (Some(i64::from(code)), format!("HTTP {code}")),
            SendResult::NoAnswer(why) => (None, why),
        };
        let retry_at = match self
            .settings
            .webhooks
            .retry
            .after_failure(delivery.attempts, random_unit())
        {
            AfterFailure::RetryInMs(ms) => Some(self.now() + time::Duration::milliseconds(ms)),
            AfterFailure::Dead => None,
        };
        FinishedAttempt {
            delivery_id: delivery.delivery_id.clone(),
            attempt: delivery.attempts,
            outcome: AttemptOutcome::Failed {
                status_code,
                error,
                retry_at,
            },
        }
    }

    pub async fn finish_attempts(&self, attempts: &[FinishedAttempt]) -> CoreResult<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        Ok(self.store.finish_attempts(attempts, self.now()).await?)
    }

    /// The `X-Trilo-Signature` value of a delivery's body sent at `now`.
    pub fn sign_delivery(&self, subscription_id: &str, body: &[u8], now: OffsetDateTime) -> String {
        let t = now.unix_timestamp();
        let mac = hmac_sha256(
            &self.webhook_secret(subscription_id),
            &webhooks::signature_base(t, body),
        );
        webhooks::signature_header(t, &mac)
    }

    pub async fn deliveries_of_app(&self, app_id: &str, limit: u32) -> CoreResult<Vec<Delivery>> {
        Ok(self.store.deliveries_of_app(app_id, limit).await?)
    }

    /// Sends the app's delivery again now, with a fresh count of attempts.
    pub async fn redeliver(&self, app_id: &str, delivery_id: &str) -> CoreResult<()> {
        if self
            .store
            .redeliver(app_id, delivery_id, self.now())
            .await?
        {
            self.deliveries_ready.notify();
            Ok(())
        } else {
            Err(CoreError::NotFound("delivery"))
        }
    }

    pub async fn delivery_counts(&self) -> CoreResult<DeliveryCounts> {
        Ok(self.store.delivery_counts().await?)
    }
}

fn delivery_to(
    subscription: &WebhookSubscription,
    kind: &EventType,
    account_id: Option<&str>,
) -> NewDelivery {
    let url = match Url::parse(&subscription.url) {
        Ok(url) => webhooks::delivery_url(&url, kind, account_id),
        // Stored URLs were validated; one that no longer parses fails at sending.
        Err(_) => subscription.url.clone(),
    };
    NewDelivery {
        delivery_id: new_id(),
        subscription_id: subscription.subscription_id.clone(),
        app_id: subscription.app_id.clone(),
        url,
    }
}

/// Events that say an object is gone remove it from what policy events list.
fn is_removal(kind: &EventType) -> bool {
    kind.name.ends_with("_deleted") || kind.name.ends_with("_removed")
}

/// The event id of a product's own id: the same on every retry of the post, distinct
/// across products.
fn product_event_id(product_key: &str, id: &str) -> String {
    let digest = sha256(&format!("{product_key}\n{id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::from_bytes(bytes).to_string()
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_event_ids_are_stable_and_distinct_across_products() {
        assert_eq!(product_event_id("jira", "1"), product_event_id("jira", "1"));
        assert_ne!(
            product_event_id("jira", "1"),
            product_event_id("confluence", "1")
        );
        assert_ne!(product_event_id("jira", "1"), product_event_id("jira", "2"));
    }
}
