//! The handlers of `/api/v1`: extract → the developer console service → JSON.

use axum::Json;
use axum::extract::State;
use axum::http::header::{HeaderValue, LOCATION};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use trilo_core::model::{App, ClientType, Distribution, ProductScope, ReviewState};
use trilo_core::services::console::{
    AUTHORIZATION_TYPE, AppApi, AppChanges, AppQuery, NewConsoleApp, STATE_PLACEHOLDER,
    distribution_status, identity_scopes,
};

use super::auth::Developer;
use super::error::{ApiV1Error, Code};
use super::json::{self, AppPath, JsonBody, present};
use crate::state::AppState;

type Result<T> = std::result::Result<T, ApiV1Error>;

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DistributionWire {
    Private,
    Sharing,
}

impl From<DistributionWire> for Distribution {
    fn from(d: DistributionWire) -> Self {
        match d {
            DistributionWire::Private => Distribution::Private,
            DistributionWire::Sharing => Distribution::Sharing,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ClientTypeWire {
    Confidential,
    Public,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReviewWire {
    Approved,
    Unreviewed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAppRequest {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    avatar_url: Option<String>,
    #[serde(default)]
    callback_urls: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    distribution: Option<DistributionWire>,
    #[serde(default)]
    client_type: Option<ClientTypeWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAppRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    avatar_url: Option<Option<String>>,
    #[serde(default)]
    callback_urls: Option<Vec<String>>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    web_origins: Option<Vec<String>>,
    #[serde(default)]
    distribution: Option<DistributionWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    grace: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    review_state: ReviewWire,
}

pub async fn list_apps(
    State(state): State<AppState>,
    dev: Developer,
    uri: Uri,
) -> Result<Response> {
    let params = json::query(&uri, &["search", "limit", "cursor"])?;
    let limit = match params.get("limit") {
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            ApiV1Error::new(Code::InvalidRequest, "limit must be a positive integer")
        })?),
        None => None,
    };
    let query = AppQuery {
        search: params.get("search").map(str::to_owned),
        limit,
        cursor: params.get("cursor").map(str::to_owned),
    };
    let page = state.core.console(&dev.account).apps(&query).await?;
    Ok(Json(json!({
        "apps": page.apps.iter().map(summary).collect::<Vec<_>>(),
        "total": page.total,
        "next_cursor": page.next_cursor,
    }))
    .into_response())
}

pub async fn create_app(
    State(state): State<AppState>,
    dev: Developer,
    JsonBody(req): JsonBody<CreateAppRequest>,
) -> Result<Response> {
    let console = state.core.console(&dev.account);
    let created = console
        .create_app(NewConsoleApp {
            name: req.name,
            description: req.description,
            avatar_url: req.avatar_url,
            callback_urls: req.callback_urls,
            scopes: req.scopes,
            distribution: req.distribution.map(Distribution::from),
            client_type: req.client_type.map(|c| match c {
                ClientTypeWire::Confidential => ClientType::Confidential,
                ClientTypeWire::Public => ClientType::Public,
            }),
        })
        .await?;
    let apis = console.apis(&created.app).await?;
    let mut body = overview(&created.app, &apis);
    body["client_secret"] = json!(created.client_secret);
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/apps/{}", created.app.app_id)) {
        res.headers_mut().insert(LOCATION, location);
    }
    Ok(res)
}

pub async fn get_app(
    State(state): State<AppState>,
    dev: Developer,
    AppPath(id): AppPath,
) -> Result<Response> {
    let console = state.core.console(&dev.account);
    let app = console.app(&id).await?;
    let apis = console.apis(&app).await?;
    Ok(Json(overview(&app, &apis)).into_response())
}

pub async fn update_app(
    State(state): State<AppState>,
    dev: Developer,
    AppPath(id): AppPath,
    JsonBody(req): JsonBody<UpdateAppRequest>,
) -> Result<Response> {
    let console = state.core.console(&dev.account);
    let updated = console
        .update_app(
            &id,
            AppChanges {
                name: req.name,
                description: req.description,
                avatar_url: req.avatar_url,
                callback_urls: req.callback_urls,
                scopes: req.scopes,
                web_origins: req.web_origins,
                distribution: req.distribution.map(Distribution::from),
            },
        )
        .await?;
    let apis = console.apis(&updated.app).await?;
    let mut body = overview(&updated.app, &apis);
    body["new_scopes"] = json!(updated.new_scopes);
    Ok(Json(body).into_response())
}

pub async fn delete_app(
    State(state): State<AppState>,
    dev: Developer,
    AppPath(id): AppPath,
) -> Result<Response> {
    state.core.console(&dev.account).delete_app(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn authorization_url(
    State(state): State<AppState>,
    dev: Developer,
    AppPath(id): AppPath,
    uri: Uri,
) -> Result<Response> {
    let params = json::query(&uri, &["scope", "redirect_uri"])?;
    let url = state
        .core
        .console(&dev.account)
        .authorization_url(&id, params.get("scope"), params.get("redirect_uri"))
        .await?;
    Ok(Json(json!({
        "authorization_url": url.url,
        "scope": url.scope,
        "redirect_uri": url.redirect_uri,
        "state_placeholder": STATE_PLACEHOLDER,
    }))
    .into_response())
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    dev: Developer,
    AppPath(id): AppPath,
    JsonBody(req): JsonBody<RotateSecretRequest>,
) -> Result<Response> {
    let grace = parse_grace(&req.grace)?;
    let rotated = state
        .core
        .console(&dev.account)
        .rotate_secret(&id, grace)
        .await?;
    Ok(Json(json!({
        "client_secret": rotated.client_secret,
        "previous_secret_valid_until": timestamp(rotated.previous_valid_until),
        "grace_seconds": grace.whole_seconds(),
    }))
    .into_response())
}

pub async fn review_app(
    State(state): State<AppState>,
    dev: Developer,
    AppPath(id): AppPath,
    JsonBody(req): JsonBody<ReviewRequest>,
) -> Result<Response> {
    let review_state = match req.review_state {
        ReviewWire::Approved => ReviewState::Approved,
        ReviewWire::Unreviewed => ReviewState::Unreviewed,
    };
    let console = state.core.console(&dev.account);
    let app = console.review_app(&id, review_state).await?;
    let apis = console.apis(&app).await?;
    Ok(Json(overview(&app, &apis)).into_response())
}

pub async fn list_products(State(state): State<AppState>, dev: Developer) -> Result<Response> {
    let products = state.core.console(&dev.account).catalog().await?;
    Ok(Json(json!({
        "identity_scopes": identity_scopes(),
        "products": products
            .iter()
            .map(|p| product_json(&p.key, &p.display_name, &p.scopes))
            .collect::<Vec<_>>(),
    }))
    .into_response())
}

/// A grace period: a whole number and a unit, `s`, `m`, `h` or `d` (`0s` ends the
/// previous secret at once).
fn parse_grace(text: &str) -> Result<time::Duration> {
    let invalid = || {
        ApiV1Error::new(
            Code::InvalidRequest,
            format!("grace {text:?} is not a duration like 30m, 24h or 7d"),
        )
    };
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let n: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(invalid)?;
    Ok(time::Duration::seconds(seconds))
}

pub(super) fn timestamp(at: OffsetDateTime) -> Value {
    at.format(&Rfc3339)
        .map(Value::String)
        .unwrap_or(Value::Null)
}

/// One row of "My apps".
fn summary(app: &App) -> Value {
    json!({
        "id": app.app_id,
        "client_id": app.client_id,
        "name": app.name,
        "distribution": app.distribution.as_str(),
        "distribution_status": distribution_status(app.distribution),
        "review_state": app.review_state.as_str(),
        "updated_at": timestamp(app.updated_at),
    })
}

/// A product with its scopes, as the catalog lists it and as an app's APIs show it: one
/// shape for both, so a client reads them alike.
fn product_json(key: &str, name: &str, scopes: &[ProductScope]) -> Value {
    json!({
        "product": key,
        "name": name,
        "scopes": scopes
            .iter()
            .map(|s| json!({ "scope": s.scope, "description": s.description }))
            .collect::<Vec<_>>(),
    })
}

/// The app's overview: details, distribution, permissions and authorization.
fn overview(app: &App, apis: &[AppApi]) -> Value {
    json!({
        "id": app.app_id,
        "client_id": app.client_id,
        "name": app.name,
        "description": app.description,
        "avatar_url": app.avatar_url,
        "distribution": app.distribution.as_str(),
        "distribution_status": distribution_status(app.distribution),
        "review_state": app.review_state.as_str(),
        "authorization_type": AUTHORIZATION_TYPE,
        "client_type": app.client_type.as_str(),
        "callback_urls": app.callback_urls,
        "web_origins": app.web_origins,
        "scopes": app.scopes,
        "apis": apis
            .iter()
            .map(|api| product_json(&api.product_key, &api.display_name, &api.scopes))
            .collect::<Vec<_>>(),
        "created_at": timestamp(app.created_at),
        "updated_at": timestamp(app.updated_at),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn grace_periods_parse() {
        assert_eq!(parse_grace("24h").unwrap(), time::Duration::hours(24));
        assert_eq!(parse_grace("0s").unwrap(), time::Duration::ZERO);
        assert_eq!(parse_grace("7d").unwrap(), time::Duration::days(7));
        for bad in ["", "h", "10", "-1h", "1.5h", "1w", "99999999999999999999d"] {
            assert!(parse_grace(bad).is_err(), "{bad}");
        }
    }
}
