//! Request parsing for `/api/v1` with the API's own errors instead of axum's plain-text
//! rejections: JSON bodies (415, 413, 400), query strings and path ids.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::HeaderMap;
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use trilo_protocol::Params;

use super::error::{ApiV1Error, Code};
use crate::http::common::{charset_is_utf8, content_type, query_params};

/// A request body: `application/json` in UTF-8, parsed into `T` (whose unknown fields
/// are refused, so a misspelt field is an error rather than silently ignored).
pub fn body<T: DeserializeOwned>(
    headers: &HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<T, ApiV1Error> {
    if content_type(headers).as_deref() != Some("application/json") || !charset_is_utf8(headers) {
        return Err(ApiV1Error::new(
            Code::UnsupportedMediaType,
            "send the body as Content-Type: application/json (UTF-8)",
        ));
    }
    let bytes = bytes.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiV1Error::new(Code::PayloadTooLarge, "the body is too large")
        } else {
            ApiV1Error::new(Code::InvalidRequest, "the body could not be read")
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiV1Error::new(Code::InvalidRequest, e.to_string()),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiV1Error::new(Code::MalformedJson, e.to_string())
            }
        }
    })
}

/// A request body read by [`body`], as an extractor (it runs after the path's).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiV1Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        body(&headers, Bytes::from_request(req, state).await).map(JsonBody)
    }
}

/// The `{id}` of `/api/v1/apps/{id}…`: an app id or client id. A path that does not
/// parse is "no such app", as an unknown id is.
pub struct AppPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for AppPath {
    type Rejection = ApiV1Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::from_request_parts(parts, state)
            .await
            .map_err(|_| no_such_app())?;
        Ok(AppPath(id))
    }
}

/// `{id}` and the id of one of the app's items (a webhook, a delivery).
pub struct AppItemPath(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for AppItemPath {
    type Rejection = ApiV1Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((id, item)) = Path::from_request_parts(parts, state)
            .await
            .map_err(|_| no_such_app())?;
        Ok(AppItemPath(id, item))
    }
}

fn no_such_app() -> ApiV1Error {
    ApiV1Error::new(Code::NotFound, "no such app")
}

/// The query string, strictly decoded; a repeated parameter of `known` is refused.
pub fn query(uri: &Uri, known: &[&str]) -> Result<Params, ApiV1Error> {
    let params = query_params(uri)
        .map_err(|e| ApiV1Error::new(Code::InvalidRequest, format!("the query string: {e}")))?;
    if let Some(name) = params.first_repeated(known) {
        return Err(ApiV1Error::new(
            Code::InvalidRequest,
            format!("query parameter {name:?} is repeated"),
        ));
    }
    Ok(params)
}

/// For `Option<Option<T>>` fields: absent → `None`, `null` → `Some(None)`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
