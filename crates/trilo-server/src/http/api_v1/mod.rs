//! `/api/v1`: the developer console's JSON management API (issue 5, DESIGN §1), apps'
//! webhooks included (DESIGN §3), described by the OpenAPI document at
//! `/api/v1/openapi.json`.
//!
//! [`ROUTES`] is the one list of operations: the router is built from it and so is the
//! document, so neither can hold a route the other lacks. Authentication and the CSRF
//! rules are in [`auth`]; the error table is [`error::Code`]. Every answer carries
//! `Cache-Control: no-store` (client secrets pass through here).

pub mod apps;
pub mod auth;
pub mod error;
pub mod json;
pub mod openapi;
pub mod webhooks;

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, any, on};
use axum::{Json, Router};
use tower_http::set_header::SetResponseHeaderLayer;

use self::error::{ApiV1Error, Code};
use crate::state::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// What a route does; each has one handler and one entry in the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    GetOpenApi,
    ListProducts,
    ListApps,
    CreateApp,
    GetApp,
    UpdateApp,
    DeleteApp,
    GetAuthorizationUrl,
    RotateSecret,
    ReviewApp,
    ListWebhooks,
    CreateWebhook,
    GetWebhook,
    DeleteWebhook,
    ListDeliveries,
    Redeliver,
}

#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub verb: Verb,
    /// In axum's syntax, which is also OpenAPI's path template syntax.
    pub path: &'static str,
    pub operation: Operation,
}

const fn route(verb: Verb, path: &'static str, operation: Operation) -> Route {
    Route {
        verb,
        path,
        operation,
    }
}

/// Every route `/api/v1` serves.
pub const ROUTES: [Route; 16] = [
    route(Verb::Get, "/api/v1/openapi.json", Operation::GetOpenApi),
    route(Verb::Get, "/api/v1/products", Operation::ListProducts),
    route(Verb::Get, "/api/v1/apps", Operation::ListApps),
    route(Verb::Post, "/api/v1/apps", Operation::CreateApp),
    route(Verb::Get, "/api/v1/apps/{id}", Operation::GetApp),
    route(Verb::Patch, "/api/v1/apps/{id}", Operation::UpdateApp),
    route(Verb::Delete, "/api/v1/apps/{id}", Operation::DeleteApp),
    route(
        Verb::Get,
        "/api/v1/apps/{id}/authorization-url",
        Operation::GetAuthorizationUrl,
    ),
    route(
        Verb::Post,
        "/api/v1/apps/{id}/secret",
        Operation::RotateSecret,
    ),
    route(Verb::Post, "/api/v1/apps/{id}/review", Operation::ReviewApp),
    route(
        Verb::Get,
        "/api/v1/apps/{id}/webhooks",
        Operation::ListWebhooks,
    ),
    route(
        Verb::Post,
        "/api/v1/apps/{id}/webhooks",
        Operation::CreateWebhook,
    ),
    route(
        Verb::Get,
        "/api/v1/apps/{id}/webhooks/{webhookId}",
        Operation::GetWebhook,
    ),
    route(
        Verb::Delete,
        "/api/v1/apps/{id}/webhooks/{webhookId}",
        Operation::DeleteWebhook,
    ),
    route(
        Verb::Get,
        "/api/v1/apps/{id}/deliveries",
        Operation::ListDeliveries,
    ),
    route(
        Verb::Post,
        "/api/v1/apps/{id}/deliveries/{deliveryId}/redeliver",
        Operation::Redeliver,
    ),
];

fn handler(route: &Route) -> MethodRouter<AppState> {
    let f = route.verb.filter();
    match route.operation {
        Operation::GetOpenApi => on(f, get_openapi),
        Operation::ListProducts => on(f, apps::list_products),
        Operation::ListApps => on(f, apps::list_apps),
        Operation::CreateApp => on(f, apps::create_app),
        Operation::GetApp => on(f, apps::get_app),
        Operation::UpdateApp => on(f, apps::update_app),
        Operation::DeleteApp => on(f, apps::delete_app),
        Operation::GetAuthorizationUrl => on(f, apps::authorization_url),
        Operation::RotateSecret => on(f, apps::rotate_secret),
        Operation::ReviewApp => on(f, apps::review_app),
        Operation::ListWebhooks => on(f, webhooks::list_webhooks),
        Operation::CreateWebhook => on(f, webhooks::create_webhook),
        Operation::GetWebhook => on(f, webhooks::get_webhook),
        Operation::DeleteWebhook => on(f, webhooks::delete_webhook),
        Operation::ListDeliveries => on(f, webhooks::list_deliveries),
        Operation::Redeliver => on(f, webhooks::redeliver),
    }
}

pub fn router() -> Router<AppState> {
    let mut paths: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for route in &ROUTES {
        let methods = match paths.remove(route.path) {
            Some(existing) => existing.merge(handler(route)),
            None => handler(route),
        };
        paths.insert(route.path, methods);
    }
    let mut router = Router::new();
    for (path, methods) in paths {
        router = router.route(path, methods.fallback(method_not_allowed));
    }
    router
        .route("/api/v1", any(no_route))
        .route("/api/v1/", any(no_route))
        .route("/api/v1/{*rest}", any(no_route))
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

async fn get_openapi(State(state): State<AppState>) -> Response {
    Json(openapi::document(&state.core.settings.auth_url)).into_response()
}

async fn method_not_allowed() -> ApiV1Error {
    ApiV1Error::new(
        Code::MethodNotAllowed,
        "see the Allow header, or /api/v1/openapi.json",
    )
}

async fn no_route() -> ApiV1Error {
    ApiV1Error::new(
        Code::NotFound,
        "no such route; /api/v1/openapi.json lists them",
    )
}
