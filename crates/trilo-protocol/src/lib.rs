//! trilo-protocol: the pure OAuth 2.0 / 3LO layer. Types, parsing, validation and
//! decisions, with explicit inputs (including the time). No I/O, no clock, no async.

pub mod alias;
pub mod authorize;
pub mod catalog;
pub mod error;
pub mod gateway;
pub mod jwt;
pub mod metadata;
pub mod model_catalog;
pub mod oidc;
pub mod operations;
pub mod params;
pub mod pkce;
pub mod redirect;
pub mod resources;
pub mod rotation;
pub mod route;
pub mod scope;
pub mod token_request;
pub mod web_origin;
pub mod webhooks;

pub use error::{ErrorCode, OAuthError};
pub use params::Params;
pub use scope::ScopeSet;
