//! Small HTTP helpers shared by the handlers: cookies, the current user, strict body and
//! query parsing, HTML responses with the page security headers.

use axum::body::Bytes;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use trilo_core::CoreError;
use trilo_core::model::{Account, Session};
use trilo_protocol::Params;
use trilo_protocol::params;

use super::errors::PageError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "trilo_session";
pub const LOGIN_CSRF_COOKIE: &str = "trilo_login_csrf";

/// The value of cookie `name`, if the request sent exactly one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    return None;
                }
                found = Some(v.to_owned());
            }
        }
    }
    found
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure behind https.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age_secs: Option<i64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age_secs {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if state.secure_cookies {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

pub fn clear_cookie(state: &AppState, name: &str) -> HeaderValue {
    set_cookie(state, name, "", Some(0))
}

/// The address of a page on the auth host that carries a mailed single-use `token`
/// (a reset link, an invitation).
pub fn link_with_token(state: &AppState, path: &str, token: &str) -> String {
    format!(
        "{}{path}?token={}",
        state.core.settings.auth_url.trim_end_matches('/'),
        params::encode(token)
    )
}

/// The logged-in user, if the session cookie names a live session.
pub async fn current_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(Session, Account, String)>, CoreError> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let found = state.core.session(&value).await?;
    if let Some((_, account)) = &found {
        // A change this request makes is theirs (see `acting`).
        trilo_core::Core::act_for(&account.account_id);
    }
    Ok(found.map(|(s, a)| (s, a, value)))
}

/// The query string parsed strictly (bad escapes and bad UTF-8 are errors).
pub fn query_params(uri: &Uri) -> Result<Params, trilo_protocol::params::ParamsError> {
    Params::parse(uri.query().unwrap_or_default().as_bytes())
}

/// The media type of the request, lower-cased, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether the `charset` parameter of `Content-Type`, if there is one, names UTF-8. Bodies
/// are decoded as UTF-8 only; another declared charset would be misread (H-P encoding).
pub fn charset_is_utf8(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    value.split(';').skip(1).all(|param| {
        let Some((name, charset)) = param.split_once('=') else {
            return true;
        };
        if !name.trim().eq_ignore_ascii_case("charset") {
            return true;
        }
        let charset = charset.trim().trim_matches('"');
        charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")
    })
}

/// All values of `name` in urlencoded input (checkbox lists, which [`Params`] keeps one
/// value of), strictly decoded.
pub fn form_values(input: &[u8], name: &str) -> Result<Vec<String>, PageError> {
    let unreadable = |_| PageError::BadRequest("The form could not be read.");
    let mut values = Vec::new();
    for pair in input.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        if params::decode(key).map_err(unreadable)? == name {
            values.push(params::decode(value).map_err(unreadable)?);
        }
    }
    Ok(values)
}

/// A urlencoded UTF-8 form body parsed strictly; `None` for another content type or charset.
pub fn form_params(
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Result<Params, trilo_protocol::params::ParamsError>> {
    (content_type(headers).as_deref() == Some("application/x-www-form-urlencoded")
        && charset_is_utf8(headers))
    .then(|| Params::parse(body))
}

/// A page form's body, read strictly: 400 when it cannot be read, 415 when it is not a
/// UTF-8 urlencoded form.
pub fn read_form(headers: &HeaderMap, body: &Bytes) -> Result<Params, PageError> {
    match form_params(headers, body) {
        Some(Ok(params)) => Ok(params),
        Some(Err(_)) => Err(PageError::BadRequest("The form could not be read.")),
        None => Err(PageError::UnsupportedMediaType),
    }
}

/// An HTML page with the page security headers (DESIGN §3, security checklist A2, A3).
pub fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, Html(body)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            // No form-action: browsers apply it to the redirect after the consent POST,
            // which goes to the app's own origin.
            "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Renders an askama page; a rendering failure is a 500 with a plain message.
pub fn render<T: askama::Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A `303 See Other` (never 307/308 after a credential POST, security checklist A4).
pub fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Whether a post-login target is a path on this server (security checklist R6): it must
/// start with one `/`, not `//` or `/\`, and hold no control characters.
pub fn is_local_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.starts_with("//")
        && !target.starts_with("/\\")
        && !target.chars().any(|c| c.is_control() || c == '\\')
}

/// Constant-time comparison of two short secrets (CSRF tokens).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_only() {
        assert!(is_local_path("/authorize?client_id=x"));
        for bad in [
            "https://evil.test",
            "//evil.test",
            "/\\evil.test",
            "https:evil.test",
            "javascript:alert(1)",
            "/a\nb",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn duplicate_cookies_are_ignored() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        h.append(header::COOKIE, HeaderValue::from_static("b=3"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
