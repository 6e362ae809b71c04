//! The app's Webhooks page (DESIGN §3 "Webhooks"): its subscriptions with their signing
//! secrets, a form to add one, and the recent deliveries with a redeliver button each.
//! Plain forms with the session's CSRF token, as on the other app pages.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use trilo_core::CoreError;
use trilo_core::model::{Delivery, DeliveryStatus};
use trilo_core::services::console::ConsoleError;
use trilo_protocol::webhooks::{EVENT_TYPES, SIGNATURE_HEADER};

use super::{app_view, form_problem};
use crate::http::common::render;
use crate::http::errors::PageError;
use crate::http::extract::{CsrfForm, DeveloperApp};
use crate::state::AppState;
use crate::views::{Chrome, DeliveryItem, EventOption, WebhookItem, WebhooksPage};

/// Deliveries the page lists, newest first.
const RECENT_DELIVERIES: u32 = 50;

/// What the page shows besides the app's webhooks and deliveries.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    error: Option<String>,
    /// The add form's fields, kept after a refusal.
    url: String,
    chosen: Vec<String>,
    /// `200 OK` by default.
    status: StatusCode,
}

impl Shown {
    fn notice(text: &str, status: StatusCode) -> Self {
        Shown {
            notice: Some(text.to_owned()),
            status,
            ..Shown::default()
        }
    }

    fn error(text: String, status: StatusCode) -> Self {
        Shown {
            error: Some(text),
            status,
            ..Shown::default()
        }
    }
}

pub(super) async fn webhooks(
    State(state): State<AppState>,
    dev: DeveloperApp,
) -> Result<Response, PageError> {
    page(&state, &dev, Shown::default()).await
}

pub(super) async fn add_webhook(
    State(state): State<AppState>,
    dev: DeveloperApp,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let url = form.get("url").unwrap_or_default().trim().to_owned();
    let events = form.values("event")?;
    let app_id = &dev.app.app_id;
    let shown = match state.core.create_webhook(app_id, &url, &events).await {
        Ok(_) => Shown::notice("Webhook added.", StatusCode::CREATED),
        Err(CoreError::Invalid(message)) => Shown {
            url,
            chosen: events,
            ..Shown::error(
                form_problem(ConsoleError::Invalid(message))?,
                StatusCode::BAD_REQUEST,
            )
        },
        // Deleted since it was read above.
        Err(CoreError::NotFound(_)) => return Err(PageError::NotFound("There is no such app.")),
        Err(e) => return Err(e.into()),
    };
    page(&state, &dev, shown).await
}

pub(super) async fn delete_webhook(
    State(state): State<AppState>,
    Path((_, webhook_id)): Path<(String, String)>,
    dev: DeveloperApp,
    _: CsrfForm,
) -> Result<Response, PageError> {
    let shown = match state
        .core
        .delete_webhook(&dev.app.app_id, &webhook_id)
        .await
    {
        Ok(()) => Shown::notice("Webhook deleted.", StatusCode::OK),
        Err(CoreError::NotFound(_)) => Shown::error(
            "There is no such webhook: it may have been deleted already.".into(),
            StatusCode::NOT_FOUND,
        ),
        Err(e) => return Err(e.into()),
    };
    page(&state, &dev, shown).await
}

pub(super) async fn redeliver(
    State(state): State<AppState>,
    Path((_, delivery_id)): Path<(String, String)>,
    dev: DeveloperApp,
    _: CsrfForm,
) -> Result<Response, PageError> {
    let shown = match state.core.redeliver(&dev.app.app_id, &delivery_id).await {
        Ok(()) => Shown::notice("Delivery queued: it is sent again shortly.", StatusCode::OK),
        Err(CoreError::NotFound(_)) => Shown::error(
            "There is no such delivery for this app.".into(),
            StatusCode::NOT_FOUND,
        ),
        Err(e) => return Err(e.into()),
    };
    page(&state, &dev, shown).await
}

async fn page(state: &AppState, dev: &DeveloperApp, shown: Shown) -> Result<Response, PageError> {
    let app = &dev.app;
    let webhooks = state
        .core
        .webhooks_of_app(&app.app_id)
        .await?
        .into_iter()
        .map(|w| WebhookItem {
            secret: state.core.webhook_secret(&w.subscription_id),
            id: w.subscription_id,
            url: w.url,
            events: w.events,
            created: when(w.created_at),
        })
        .collect();
    let deliveries = state
        .core
        .deliveries_of_app(&app.app_id, RECENT_DELIVERIES)
        .await?
        .iter()
        .map(delivery_item)
        .collect();
    let events = EVENT_TYPES
        .iter()
        .map(|e| EventOption {
            name: e.name,
            source: match e.product {
                Some("jira") => "Jira",
                Some("confluence") => "Confluence",
                Some(other) => other,
                None => "Platform",
            },
            chosen: shown.chosen.iter().any(|c| c.trim() == e.name),
        })
        .collect();
    Ok(render(
        shown.status,
        &WebhooksPage {
            chrome: Chrome {
                notice: shown.notice,
                error: shown.error,
                ..dev.me.chrome("webhooks")
            },
            app: app_view(app),
            webhooks,
            url: shown.url,
            events,
            deliveries,
            signature_header: SIGNATURE_HEADER,
        },
    ))
}

fn delivery_item(d: &Delivery) -> DeliveryItem {
    let response = match (d.last_status_code, &d.last_error) {
        (Some(code), Some(error)) => format!("{code}: {error}"),
        (Some(code), None) => code.to_string(),
        (None, Some(error)) => error.clone(),
        (None, None) => String::new(),
    };
    DeliveryItem {
        id: d.delivery_id.clone(),
        event: d.event_name.clone(),
        status: match d.status {
            DeliveryStatus::Pending => "Pending",
            DeliveryStatus::Delivered => "Delivered",
            DeliveryStatus::Dead => "Failed",
        },
        attempts: d.attempts,
        response,
        next_try: match d.status {
            DeliveryStatus::Pending => when(d.next_attempt_at),
            DeliveryStatus::Delivered | DeliveryStatus::Dead => String::new(),
        },
        created: when(d.created_at),
    }
}

fn when(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default()
}
