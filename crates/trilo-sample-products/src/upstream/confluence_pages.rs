//! The sample Confluence's pages (REST v1 `content` and REST v2 `pages`) and its REST v2
//! spaces. Each sample space has one page, its home page (id: the space's + 1000), which
//! is all a client's basic listing needs to find.

use axum::extract::rejection::ExtensionRejection;
use axum::extract::{FromRequestParts, Path, RawQuery};
use axum::http::StatusCode;
use axum::http::request::Parts;
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

/// The spaces the caller may see: what every handler here starts from.
struct VisibleSpaces(Vec<Space>);

impl FromRequestParts<Upstream> for VisibleSpaces {
    type Rejection = ExtensionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        upstream: &Upstream,
    ) -> Result<Self, Self::Rejection> {
        let Extension(caller) = Extension::<Caller>::from_request_parts(parts, upstream).await?;
        Ok(VisibleSpaces(upstream.sites.with_site(
            &caller.cloud_id,
            |site| {
                site.spaces
                    .iter()
                    .filter(|s| !caller.is_blocked(&s.key))
                    .cloned()
                    .collect()
            },
        )))
    }
}

/// The home page with this id, shown by `to_json` (REST v1 `content` or REST v2 `page`),
/// or Confluence's 404.
fn home_page(spaces: &[Space], page_id: &str, to_json: fn(&Space) -> Value) -> Response {
    let home = page_id
        .parse::<u64>()
        .ok()
        .and_then(|id| spaces.iter().find(|s| s.id + HOME_PAGE_OFFSET == id));
    match home {
        Some(space) => Json(to_json(space)).into_response(),
        None => not_found(),
    }
}

/// A comma-separated filter that may also repeat (`keys=A,B&keys=C`); empty when absent.
fn listed<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .collect()
}

fn not_found() -> Response {
    Product::Confluence.error(
        StatusCode::NOT_FOUND,
        "No content found with the given id, or you do not have permission to see it.",
    )
}

/// `GET /wiki/rest/api/content`: `type` (`page`), `spaceKey`, `start`, `limit`.
async fn list_content(VisibleSpaces(spaces): VisibleSpaces, RawQuery(raw): RawQuery) -> Response {
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

async fn get_content(VisibleSpaces(spaces): VisibleSpaces, Path(id): Path<String>) -> Response {
    home_page(&spaces, &id, content_json)
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

/// A REST v2 list request: where the page starts, its size, and the query's pairs. A
/// malformed one is refused with Confluence's 400 before the handler runs.
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

impl<S: Send + Sync> FromRequestParts<S> for CursorPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        cursor_page(parts.uri.query())
            .map_err(|message| Product::Confluence.error(StatusCode::BAD_REQUEST, message))
    }
}

impl CursorPage {
    /// This page of `all`, with the link to the next one.
    fn results(&self, all: Vec<Value>, path: &str) -> Response {
        let (start, limit) = (self.start, self.limit);
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
}

async fn list_spaces_v2(VisibleSpaces(spaces): VisibleSpaces, page: CursorPage) -> Response {
    let keys = listed(&page.pairs, "keys");
    let spaces: Vec<Value> = spaces
        .iter()
        .filter(|s| keys.is_empty() || keys.contains(&s.key.as_str()))
        .map(space_v2_json)
        .collect();
    page.results(spaces, "/spaces")
}

async fn get_space_v2(VisibleSpaces(spaces): VisibleSpaces, Path(id): Path<String>) -> Response {
    match spaces.iter().find(|s| s.id.to_string() == id) {
        Some(space) => Json(space_v2_json(space)).into_response(),
        None => not_found(),
    }
}

async fn pages_in_space_v2(
    VisibleSpaces(spaces): VisibleSpaces,
    Path(id): Path<String>,
    page: CursorPage,
) -> Response {
    let Some(space) = spaces.iter().find(|s| s.id.to_string() == id) else {
        return not_found();
    };
    page.results(vec![page_v2_json(space)], &format!("/spaces/{id}/pages"))
}

async fn list_pages_v2(VisibleSpaces(spaces): VisibleSpaces, page: CursorPage) -> Response {
    let space_ids = listed(&page.pairs, "space-id");
    let pages: Vec<Value> = spaces
        .iter()
        .filter(|s| space_ids.is_empty() || space_ids.contains(&s.id.to_string().as_str()))
        .map(page_v2_json)
        .collect();
    page.results(pages, "/pages")
}

async fn get_page_v2(VisibleSpaces(spaces): VisibleSpaces, Path(id): Path<String>) -> Response {
    home_page(&spaces, &id, page_v2_json)
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
