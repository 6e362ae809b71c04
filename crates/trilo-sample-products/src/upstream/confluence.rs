//! The sample Confluence: the space endpoints of Confluence's REST API v1. Its OpenAPI
//! document lists paths with the `/wiki` prefix (`servers` is the bare site), so they are
//! routed with it and the gateway forwards `{api}` = `/wiki/rest/api/space` unchanged.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::data::Space;
use super::{Caller, Product, Upstream, int_param, query_pairs};

const PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 250;

pub(super) fn router() -> Router<Upstream> {
    Router::new()
        .route("/wiki/rest/api/space", get(list_spaces))
        .route("/wiki/rest/api/space/{spaceKey}", get(get_space))
        .merge(super::confluence_pages::router())
}

/// `GET /wiki/rest/api/space`: `spaceKey` (repeatable), `type` (`global` | `personal`),
/// `start`, `limit`.
async fn list_spaces(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = query_pairs(raw.as_deref()).and_then(|pairs| {
        let start = int_param(&pairs, "start", 0, usize::MAX)?;
        let limit = int_param(&pairs, "limit", PAGE_SIZE, MAX_PAGE_SIZE)?;
        let keys: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == "spaceKey")
            .map(|(_, v)| v.clone())
            .collect();
        let kind = pairs
            .iter()
            .find(|(k, _)| k == "type")
            .map(|(_, v)| v.clone());
        if let Some(kind) = &kind
            && kind != "global"
            && kind != "personal"
        {
            return Err(format!("The value '{kind}' is invalid for type."));
        }
        Ok((start, limit, keys, kind))
    });
    let (start, limit, keys, kind) = match params {
        Ok(params) => params,
        Err(message) => return Product::Confluence.error(StatusCode::BAD_REQUEST, message),
    };
    let base = wiki_base(&upstream, &caller);
    let spaces: Vec<Space> = upstream.sites.with_site(&caller.cloud_id, |site| {
        site.spaces
            .iter()
            .filter(|s| !caller.is_blocked(&s.key))
            .filter(|s| keys.is_empty() || keys.contains(&s.key))
            // Every sample space is a global one.
            .filter(|_| kind.as_deref() != Some("personal"))
            .cloned()
            .collect()
    });
    let results: Vec<Value> = spaces
        .iter()
        .skip(start)
        .take(limit)
        .map(|s| space_json(&base, s))
        .collect();
    let page = |at: usize| format!("/rest/api/space?limit={limit}&start={at}");
    let mut links = json!({
        "base": base,
        "context": "/wiki",
        "self": format!("{base}/rest/api/space"),
    });
    if start.saturating_add(limit) < spaces.len() {
        links["next"] = page(start + limit).into();
    }
    Json(json!({
        "results": results,
        "start": start,
        "limit": limit,
        "size": results.len(),
        "_links": links,
    }))
    .into_response()
}

async fn get_space(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Response {
    let base = wiki_base(&upstream, &caller);
    let space = upstream.sites.with_site(&caller.cloud_id, |site| {
        // A blocked space is as absent as a missing one.
        site.space(&key)
            .filter(|s| !caller.is_blocked(&s.key))
            .map(|s| space_json(&base, s))
    });
    match space {
        Some(space) => Json(space).into_response(),
        None => {
            Product::Confluence.error(StatusCode::NOT_FOUND, format!("No space with key : {key}"))
        }
    }
}

/// Confluence's `_links.base`: the site's URL with the `/wiki` context.
fn wiki_base(upstream: &Upstream, caller: &Caller) -> String {
    format!(
        "{}/wiki",
        upstream.site_base(Product::Confluence, &caller.cloud_id)
    )
}

fn space_json(base: &str, s: &Space) -> Value {
    let key = &s.key;
    json!({
        "id": s.id,
        "key": key,
        "name": s.name,
        "type": "global",
        "status": "current",
        "_expandable": {
            "settings": format!("/rest/api/space/{key}/settings"),
            "metadata": "",
            "operations": "",
            "lookAndFeel": format!("/rest/api/settings/lookandfeel?spaceKey={key}"),
            "permissions": "",
            "icon": "",
            "description": "",
            "theme": format!("/rest/api/space/{key}/theme"),
            "history": "",
            "homepage": format!("/rest/api/content/{}", s.id + 1000),
        },
        "_links": {
            "webui": format!("/spaces/{key}"),
            "self": format!("{base}/rest/api/space/{key}"),
        },
    })
}
