//! The sample Jira Service Management: its customer requests and service desks under
//! `/rest/servicedeskapi` (the reference's third example URL). Every sample project acts as
//! a service desk and its issues as customer requests, in JSM's paged shape
//! (`size`, `start`, `limit`, `isLastPage`, `values`).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::data::{Issue, Project};
use super::jira::{jira_time, user_json};
use super::{Caller, Product, Upstream, int_param, query_pairs};

const PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 100;

pub(super) fn router() -> Router<Upstream> {
    Router::new()
        .route("/rest/servicedeskapi/request", get(list_requests))
        .route(
            "/rest/servicedeskapi/request/{issueIdOrKey}",
            get(get_request),
        )
        .route("/rest/servicedeskapi/servicedesk", get(list_service_desks))
}

/// `start` and `limit` of a JSM page; malformed ones are refused with Jira's 400 before
/// the handler runs.
struct JsmPage {
    start: usize,
    limit: usize,
}

impl<S: Send + Sync> FromRequestParts<S> for JsmPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let page = query_pairs(parts.uri.query()).and_then(|pairs| {
            Ok(JsmPage {
                start: int_param(&pairs, "start", 0, usize::MAX)?,
                limit: int_param(&pairs, "limit", PAGE_SIZE, MAX_PAGE_SIZE)?,
            })
        });
        page.map_err(|message| Product::Jira.error(StatusCode::BAD_REQUEST, message))
    }
}

impl JsmPage {
    /// This page of `values`, in JSM's paged shape.
    fn paged(&self, values: Vec<Value>) -> Response {
        let (start, limit) = (self.start, self.limit);
        let total = values.len();
        let values: Vec<Value> = values.into_iter().skip(start).take(limit).collect();
        Json(json!({
            "size": values.len(),
            "start": start,
            "limit": limit,
            "isLastPage": start.saturating_add(limit) >= total,
            "values": values,
        }))
        .into_response()
    }
}

async fn list_requests(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    page: JsmPage,
) -> Response {
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let requests = upstream.sites.with_site(&caller.cloud_id, |site| {
        site.issues
            .values()
            .filter(|i| !caller.is_blocked(&i.fields.project_key))
            .filter_map(|i| Some(request_json(&base, i, site.project(&i.fields.project_key)?)))
            .collect()
    });
    page.paged(requests)
}

async fn get_request(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    Path(id_or_key): Path<String>,
) -> Response {
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let request = upstream.sites.with_site(&caller.cloud_id, |site| {
        let issue = site.issue(&id_or_key)?;
        if caller.is_blocked(&issue.fields.project_key) {
            return None;
        }
        Some(request_json(
            &base,
            issue,
            site.project(&issue.fields.project_key)?,
        ))
    });
    match request {
        Some(request) => Json(request).into_response(),
        None => Product::Jira.error(
            StatusCode::NOT_FOUND,
            "The request does not exist or you do not have permission to see it.",
        ),
    }
}

async fn list_service_desks(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    page: JsmPage,
) -> Response {
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let desks = upstream.sites.with_site(&caller.cloud_id, |site| {
        site.projects
            .iter()
            .filter(|p| !caller.is_blocked(&p.key))
            .map(|p| {
                json!({
                    "id": p.id.to_string(),
                    "projectId": p.id.to_string(),
                    "projectName": p.name,
                    "projectKey": p.key,
                    "_links": { "self": format!("{base}/rest/servicedeskapi/servicedesk/{}", p.id) },
                })
            })
            .collect()
    });
    page.paged(desks)
}

fn request_json(base: &str, issue: &Issue, project: &Project) -> Value {
    let created = jira_time(issue.created);
    let date = json!({
        "iso8601": created,
        "jira": created,
        "epochMillis": issue.created.unix_timestamp() * 1000,
    });
    json!({
        "issueId": issue.id.to_string(),
        "issueKey": issue.key,
        "requestTypeId": issue.fields.issue_type.id,
        "serviceDeskId": project.id.to_string(),
        "createdDate": date,
        "reporter": user_json(base, &issue.fields.reporter),
        "requestFieldValues": [
            { "fieldId": "summary", "label": "Summary", "value": issue.fields.summary },
        ],
        "currentStatus": { "status": "Open", "statusCategory": "NEW", "statusDate": date },
        "_links": { "self": format!("{base}/rest/servicedeskapi/request/{}", issue.id) },
    })
}
