//! The sample Jira's enhanced JQL search, `GET` and `POST /rest/api/{2,3}/search/jql`: the
//! only issue search the current Jira Cloud platform serves. Pages are chained with an
//! opaque `nextPageToken` instead of `startAt`; the answer has no `total`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::jira::{JsonObject, issue_json, matching_issues, parse_jql};
use super::{Caller, Product, Upstream, int_param, query_pairs};

const PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 5000;

/// One search: the JQL, where the page starts (from `nextPageToken`) and its size.
struct Search {
    jql: String,
    start: usize,
    max: usize,
}

pub(super) async fn search_jql_get(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Response {
    let search = query_pairs(raw.as_deref()).and_then(|pairs| {
        let text = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Ok(Search {
            jql: text("jql").unwrap_or_default(),
            start: page_start(text("nextPageToken").as_deref())?,
            max: int_param(&pairs, "maxResults", PAGE_SIZE, MAX_PAGE_SIZE)?,
        })
    });
    match search {
        Ok(search) => answer(&upstream, &caller, &search),
        Err(message) => Product::Jira.error(StatusCode::BAD_REQUEST, message),
    }
}

/// The body: `jql`, `nextPageToken`, `maxResults`; `fields`, `expand` and the rest are
/// accepted and ignored (every field is returned).
pub(super) async fn search_jql_post(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    JsonObject(body): JsonObject,
) -> Response {
    let search = (|| {
        let max = match body.get("maxResults") {
            None | Some(Value::Null) => PAGE_SIZE,
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or("maxResults must be a number from 1 to 5000.")?,
        };
        Ok::<_, String>(Search {
            jql: body
                .get("jql")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            start: page_start(body.get("nextPageToken").and_then(Value::as_str))?,
            max,
        })
    })();
    match search {
        Ok(search) => answer(&upstream, &caller, &search),
        Err(message) => Product::Jira.error(StatusCode::BAD_REQUEST, message),
    }
}

/// The sample's page tokens are the offset written in hex behind a prefix: opaque enough
/// for clients, which pass them back unread.
fn page_start(token: Option<&str>) -> Result<usize, String> {
    match token {
        None | Some("") => Ok(0),
        Some(token) => token
            .strip_prefix("page-")
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .ok_or_else(|| "The nextPageToken is invalid.".to_owned()),
    }
}

fn answer(upstream: &Upstream, caller: &Caller, search: &Search) -> Response {
    let project = match parse_jql(&search.jql) {
        Ok(project) => project,
        Err(message) => return Product::Jira.error(StatusCode::BAD_REQUEST, message),
    };
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let found = upstream.sites.with_site(&caller.cloud_id, |site| {
        let matching = matching_issues(site, caller, project.as_deref())?;
        let issues: Vec<Value> = matching
            .iter()
            .skip(search.start)
            .take(search.max)
            .filter_map(|i| Some(issue_json(&base, i, site.project(&i.fields.project_key)?)))
            .collect();
        Ok::<_, String>((matching.len(), issues))
    });
    match found {
        Ok((total, issues)) => {
            let next = search.start.saturating_add(search.max);
            let mut body = json!({ "issues": issues, "isLast": next >= total });
            if next < total {
                body["nextPageToken"] = format!("page-{next:x}").into();
            }
            Json(body).into_response()
        }
        Err(name) => Product::Jira.error(
            StatusCode::BAD_REQUEST,
            format!("The value '{name}' does not exist for the field 'project'."),
        ),
    }
}
