//! The sample Confluence's pages (REST v1 `content` and REST v2 `pages`) and its REST v2
//! spaces. Each sample space has one page, its home page (id: the space's + 1000), which
//! is all a client's basic listing needs to find.

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
/// A space's home page id is its id plus this.
const HOME_PAGE_OFFSET: u64 = 1000;

pub(super) fn router() -> Router<Upstream> {
    Router::new()
        .route("/wiki/rest/api/content", get(list_content))
        .route("/wiki/rest/api/content/{id}", get(get_content))
        .route("/wiki/api/v2/spaces", get(list_spaces_v2))
        .route("/wiki/api/v2/spaces/{id}", get(get_space_v2))
        .route("/wiki/api/v2/spaces/{id}/pages", get(pages_in_space_v2))
        .route("/wiki/api/v2/pages", get(list_pages_v2))
        .route("/wiki/api/v2/pages/{id}", get(get_page_v2))
}

/// The spaces the caller may see.
fn visible_spaces(upstream: &Upstream, caller: &Caller) -> Vec<Space> {
    upstream.sites.with_site(&caller.cloud_id, |site| {
        site.spaces
            .iter()
            .filter(|s| !caller.is_blocked(&s.key))
            .cloned()
            .collect()
    })
}

fn home_page_of(spaces: &[Space], page_id: &str) -> Option<Space> {
    let id: u64 = page_id.parse().ok()?;
    spaces
        .iter()
        .find(|s| s.id + HOME_PAGE_OFFSET == id)
        .cloned()
}

fn not_found() -> Response {
    Product::Confluence.error(
        StatusCode::NOT_FOUND,
        "No content found with the given id, or you do not have permission to see it.",
    )
}

/// `GET /wiki/rest/api/content`: `type` (`page`), `spaceKey`, `start`, `limit`.
async fn list_content(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = query_pairs(raw.as_deref()).and_then(|pairs| {
        let text = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Ok((
            int_param(&pairs, "start", 0, usize::MAX)?,
            int_param(&pairs, "limit", PAGE_SIZE, MAX_PAGE_SIZE)?,
            text("spaceKey"),
            text("type"),
        ))
    });
    let (start, limit, space_key, kind) = match params {
        Ok(params) => params,
        Err(message) => return Product::Confluence.error(StatusCode::BAD_REQUEST, message),
    };
    let spaces = visible_spaces(&upstream, &caller);
    let pages: Vec<Value> = spaces
        .iter()
        .filter(|s| space_key.as_ref().is_none_or(|k| *k == s.key))
        // The sample has pages only: blog posts are an empty list.
        .filter(|_| kind.as_deref().is_none_or(|k| k == "page"))
        .skip(start)
        .take(limit)
        .map(content_json)
        .collect();
    Json(json!({
        "results": pages,
        "start": start,
        "limit": limit,
        "size": pages.len(),
        "_links": { "context": "/wiki" },
    }))
    .into_response()
}

async fn get_content(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match home_page_of(&visible_spaces(&upstream, &caller), &id) {
        Some(space) => Json(content_json(&space)).into_response(),
        None => not_found(),
    }
}

fn content_json(space: &Space) -> Value {
    let id = space.id + HOME_PAGE_OFFSET;
    json!({
        "id": id.to_string(),
        "type": "page",
        "status": "current",
        "title": format!("{} Home", space.name),
        "space": { "id": space.id, "key": space.key, "name": space.name, "type": "global" },
        "_links": { "webui": format!("/spaces/{}/pages/{id}", space.key) },
    })
}

/// A REST v2 list request: where the page starts, its size, and the query's pairs.
struct CursorPage {
    start: usize,
    limit: usize,
    pairs: Vec<(String, String)>,
}

/// REST v2's cursor pages: `limit` and an opaque `cursor` (the offset behind a prefix).
fn cursor_page(raw: Option<&str>) -> Result<CursorPage, String> {
    let pairs = query_pairs(raw)?;
    let start = match pairs.iter().find(|(k, _)| k == "cursor") {
        None => 0,
        Some((_, cursor)) => cursor
            .strip_prefix("at-")
            .and_then(|n| n.parse().ok())
            .ok_or("The cursor is invalid.")?,
    };
    let limit = int_param(&pairs, "limit", PAGE_SIZE, MAX_PAGE_SIZE)?;
    Ok(CursorPage {
        start,
        limit,
        pairs,
    })
}

fn results(all: Vec<Value>, start: usize, limit: usize, path: &str) -> Response {
    let total = all.len();
    let page: Vec<Value> = all.into_iter().skip(start).take(limit).collect();
    let mut links = json!({ "base": "/wiki" });
    if start.saturating_add(limit) < total {
        links["next"] = format!(
            "/wiki/api/v2{path}?cursor=at-{}&limit={limit}",
            start + limit
        )
        .into();
    }
    Json(json!({ "results": page, "_links": links })).into_response()
}

async fn list_spaces_v2(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Response {
    let CursorPage {
        start,
        limit,
        pairs,
    } = match cursor_page(raw.as_deref()) {
        Ok(page) => page,
        Err(message) => return Product::Confluence.error(StatusCode::BAD_REQUEST, message),
    };
    let keys: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "keys")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    let spaces: Vec<Value> = visible_spaces(&upstream, &caller)
        .iter()
        .filter(|s| keys.is_empty() || keys.contains(&s.key.as_str()))
        .map(space_v2_json)
        .collect();
    results(spaces, start, limit, "/spaces")
}

async fn get_space_v2(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let spaces = visible_spaces(&upstream, &caller);
    match spaces.iter().find(|s| s.id.to_string() == id) {
        Some(space) => Json(space_v2_json(space)).into_response(),
        None => not_found(),
    }
}

async fn pages_in_space_v2(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let CursorPage { start, limit, .. } = match cursor_page(raw.as_deref()) {
        Ok(page) => page,
        Err(message) => return Product::Confluence.error(StatusCode::BAD_REQUEST, message),
    };
    let spaces = visible_spaces(&upstream, &caller);
    let Some(space) = spaces.iter().find(|s| s.id.to_string() == id) else {
        return not_found();
    };
    results(
        vec![page_v2_json(space)],
        start,
        limit,
        &format!("/spaces/{id}/pages"),
    )
}

async fn list_pages_v2(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Response {
    let CursorPage {
        start,
        limit,
        pairs,
    } = match cursor_page(raw.as_deref()) {
        Ok(page) => page,
        Err(message) => return Product::Confluence.error(StatusCode::BAD_REQUEST, message),
    };
    let space_ids: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "space-id")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    let pages: Vec<Value> = visible_spaces(&upstream, &caller)
        .iter()
        .filter(|s| space_ids.is_empty() || space_ids.contains(&s.id.to_string().as_str()))
        .map(page_v2_json)
        .collect();
    results(pages, start, limit, "/pages")
}

async fn get_page_v2(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match home_page_of(&visible_spaces(&upstream, &caller), &id) {
        Some(space) => Json(page_v2_json(&space)).into_response(),
        None => not_found(),
    }
}

fn space_v2_json(space: &Space) -> Value {
    json!({
        "id": space.id.to_string(),
        "key": space.key,
        "name": space.name,
        "type": "global",
        "status": "current",
        "homepageId": (space.id + HOME_PAGE_OFFSET).to_string(),
        "_links": { "webui": format!("/spaces/{}", space.key) },
    })
}

fn page_v2_json(space: &Space) -> Value {
    let id = space.id + HOME_PAGE_OFFSET;
    json!({
        "id": id.to_string(),
        "status": "current",
        "title": format!("{} Home", space.name),
        "spaceId": space.id.to_string(),
        "parentId": null,
        "_links": { "webui": format!("/spaces/{}/pages/{id}", space.key) },
    })
}
