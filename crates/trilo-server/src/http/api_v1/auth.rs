//! Who calls `/api/v1`, and the CSRF defence on writes.
//!
//! Authentication, one of:
//! - HTTP Basic `email:api-token` (RFC 7617), for scripts. When an `Authorization` header
//!   is sent it alone decides: a bad one is 401 even if a session cookie came too, and
//!   OAuth access tokens (Bearer) are refused, so an app can never manage apps.
//! - The console session cookie set by the login page, for the browser.
//!
//! CSRF, on every method other than GET, HEAD and OPTIONS:
//! - any credentials: a browser's cross-site request is refused, whether it says so with
//!   `Sec-Fetch-Site: cross-site|same-site` or with an `Origin` that is not trilo's own
//!   (the auth or API host). Scripts send neither header and are unaffected;
//! - session cookie: the request must also carry a non-empty `X-Requested-With` header.
//!   A cross-site page cannot add a custom header without a CORS preflight, and
//!   `/api/v1` answers no preflight, so this holds even where a browser omits `Origin`.
//!
//! Bodies must be `application/json` besides (415 otherwise), which no HTML form can send.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, HeaderMap, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderName, Method};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use trilo_core::model::Account;

use super::error::{ApiV1Error, Code};
use crate::http::common::current_user;
use crate::state::AppState;

pub const REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// How the caller authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    ApiToken,
    Session,
}

/// The authenticated developer, with the CSRF rules of the request's method applied.
#[derive(Debug)]
pub struct Developer {
    pub account: Account,
    pub via: Via,
}

impl FromRequestParts<AppState> for Developer {
    type Rejection = ApiV1Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let developer = authenticate(state, &parts.headers).await?;
        if !is_safe(&parts.method) {
            refuse_cross_site(state, &parts.headers)?;
            if developer.via == Via::Session && !has_requested_with(&parts.headers) {
                return Err(ApiV1Error::new(
                    Code::CrossSiteRequest,
                    "writes with a session cookie must send the header \
                     X-Requested-With: XMLHttpRequest",
                ));
            }
        }
        Ok(developer)
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Developer, ApiV1Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err(unauthenticated("send one Authorization header"));
        }
        let (email, secret) = basic_credentials(value.to_str().ok()).ok_or_else(|| {
            unauthenticated(
                "Authorization must be Basic with email:api-token; OAuth access tokens \
                 cannot manage apps",
            )
        })?;
        return match state.core.check_api_token(&email, &secret).await? {
            Some(account) => {
                // A change this request makes is theirs (see `http::acting`).
                trilo_core::Core::act_for(&account.account_id);
                Ok(Developer {
                    account,
                    via: Via::ApiToken,
                })
            }
            None => Err(unauthenticated(
                "the email and API token do not match a live token",
            )),
        };
    }
    match current_user(state, headers).await? {
        Some((_, account, _)) => Ok(Developer {
            account,
            via: Via::Session,
        }),
        None => Err(unauthenticated(
            "log in to the console, or send Basic email:api-token",
        )),
    }
}

fn unauthenticated(detail: &str) -> ApiV1Error {
    ApiV1Error::new(Code::Unauthenticated, detail)
}

/// `Basic base64(email:token)`; the scheme is case-insensitive (RFC 7617 §2).
fn basic_credentials(value: Option<&str>) -> Option<(String, String)> {
    let (scheme, rest) = value?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (email, secret) = decoded.split_once(':')?;
    (!email.is_empty() && !secret.is_empty()).then(|| (email.to_owned(), secret.to_owned()))
}

fn has_requested_with(headers: &HeaderMap) -> bool {
    headers
        .get(REQUESTED_WITH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty())
}

/// Refuses a write a browser sent from another site (Fetch Metadata, then `Origin`).
fn refuse_cross_site(state: &AppState, headers: &HeaderMap) -> Result<(), ApiV1Error> {
    let refused = |detail: &str| ApiV1Error::new(Code::CrossSiteRequest, detail);
    for value in headers.get_all(SEC_FETCH_SITE) {
        match value.to_str().unwrap_or_default() {
            "same-origin" | "none" => {}
            _ => {
                return Err(refused(
                    "the browser says the request comes from another site",
                ));
            }
        }
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    if let Some(origin) = origins.next() {
        let own = [&state.core.settings.auth_url, &state.core.settings.api_url]
            .into_iter()
            .filter_map(|u| url::Url::parse(u).ok())
            .map(|u| u.origin().ascii_serialization());
        let origin = origin.to_str().unwrap_or_default();
        if origins.next().is_some() || !own.into_iter().any(|o| o == origin) {
            return Err(refused("the Origin is not this server"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_parse() {
        let v = format!("Basic {}", STANDARD.encode("a@b.test:tok:en"));
        assert_eq!(
            basic_credentials(Some(&v)),
            Some(("a@b.test".into(), "tok:en".into()))
        );
        let v = format!("basic {}", STANDARD.encode("a@b.test:t"));
        assert!(basic_credentials(Some(&v)).is_some());
        for bad in [
            "Bearer abc".to_owned(),
            "Basic !!".to_owned(),
            format!("Basic {}", STANDARD.encode("no-colon")),
            format!("Basic {}", STANDARD.encode(":secret")),
            "Basic".to_owned(),
        ] {
            assert_eq!(basic_credentials(Some(&bad)), None, "{bad}");
        }
    }
}
