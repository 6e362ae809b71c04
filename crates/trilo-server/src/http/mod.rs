//! The HTTP layer: thin handlers (extract → core → map), one `router()` per module,
//! merged here with the layers every response gets.

pub mod account;
pub mod acting;
pub mod api;
pub mod api_cors;
pub mod api_v1;
pub mod browser_clients;
pub mod common;
pub mod confirm;
pub mod console;
pub mod envelope;
pub mod errors;
pub mod extract;
pub mod gateway;
pub mod internal;
pub mod invitation;
pub mod login;
pub mod metrics;
pub mod oauth;
pub mod operator;
pub mod password_reset;
pub mod request_id;
pub mod revocation;
pub mod site_admin;
pub mod token;
pub mod wellknown;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::state::AppState;

/// Request bodies larger than this get 413 before any handler runs (H-P2).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    // What people change through the pages and /api/v1 is attributed to them; the token
    // endpoint, the gateway and the products' own calls are left out of it, so their hot
    // paths carry no actor slot.
    let attributed = Router::new()
        .merge(oauth::router())
        .merge(login::router())
        .merge(password_reset::router())
        .merge(invitation::router())
        .merge(console::router())
        .merge(site_admin::router())
        .merge(operator::router())
        .merge(account::router())
        .merge(api_v1::router())
        .layer(axum::middleware::from_fn(acting::attribute_to_the_caller));
    let routes = Router::new()
        .merge(attributed)
        .merge(token::router())
        .merge(revocation::router())
        .merge(api::router().layer(api_cors::ApiCorsLayer))
        .merge(wellknown::router())
        .merge(internal::router())
        .route("/metrics", axum::routing::get(metrics::metrics))
        .fallback(errors::not_found)
        .with_state(state.clone())
        .layer(envelope::KeepRouteLayer);
    // Around the whole router rather than on each route (see `envelope`): the body limit
    // axum's extractors (forms, JSON) apply, and the envelope.
    let limited = tower::Layer::layer(&DefaultBodyLimit::max(MAX_BODY_BYTES), routes);
    let gateway = tower::Layer::layer(
        &api_cors::ApiCorsLayer,
        gateway::GatewayService(state.clone()),
    );
    let dispatch = gateway::GatewayFirst {
        gateway,
        routes: limited,
    };
    Router::new().fallback_service(envelope::Envelope::new(dispatch, state))
}
