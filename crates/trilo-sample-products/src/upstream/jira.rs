//! The sample Jira: a few endpoints of Jira's REST API v3, with the documented field names
//! (trimmed) and Jira's error shape, `{"errorMessages": [...], "errors": {...}}`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::data::{Issue, IssueFields, IssueType, Project, SEED_REPORTER, Site};
use super::{Caller, Product, Upstream, int_param, query_pairs};

const PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 100;
const MAX_SUMMARY_CHARS: usize = 255;
const ISSUE_NOT_FOUND: &str = "Issue does not exist or you do not have permission to see it.";

/// The same endpoints under REST v3 and v2 (the versions differ in rich-text fields,
/// which the sample keeps as sent), the enhanced JQL search, and Jira Service
/// Management's requests.
pub(super) fn router() -> Router<Upstream> {
    let mut router = Router::new();
    for version in ["3", "2"] {
        let at = |path: &str| format!("/rest/api/{version}{path}");
        router = router
            .route(&at("/myself"), get(get_myself))
            .route(&at("/serverInfo"), get(server_info))
            .route(&at("/field"), get(list_fields))
            .route(&at("/project"), get(list_projects))
            .route(&at("/project/search"), get(search_projects))
            .route(&at("/project/{projectIdOrKey}"), get(get_project))
            .route(&at("/issue"), post(create_issue))
            .route(&at("/issue/{issueIdOrKey}"), get(get_issue))
            .route(&at("/search"), get(search_issues))
            .route(
                &at("/search/jql"),
                get(super::jira_search::search_jql_get).post(super::jira_search::search_jql_post),
            );
    }
    router.merge(super::service_desk::router())
}

/// `GET /rest/api/{2,3}/serverInfo`: what clients read first (the Python `jira` package
/// checks `deploymentType` and `versionNumbers`).
async fn server_info(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    Json(json!({
        "baseUrl": base,
        "displayUrl": base,
        "version": "1001.0.0-SNAPSHOT",
        "versionNumbers": [1001, 0, 0],
        "deploymentType": "Cloud",
        "buildNumber": 100_000,
        "buildDate": "2024-01-15T09:00:00.000+0000",
        "serverTime": jira_time(OffsetDateTime::now_utc()),
        "scmInfo": "sample",
        "serverTitle": "Jira",
        "defaultLocale": { "locale": "en_US" },
    }))
    .into_response()
}

/// `GET /rest/api/{2,3}/project`: every project the caller may see, as a plain array
/// (the older call clients still make).
async fn list_projects(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let projects: Vec<Value> = upstream.sites.with_site(&caller.cloud_id, |site| {
        site.projects
            .iter()
            .filter(|p| !caller.is_blocked(&p.key))
            .map(|p| project_json(&base, p))
            .collect()
    });
    Json(projects).into_response()
}

/// `GET /rest/api/{2,3}/field`: the system fields the sample's issues carry (clients map
/// field names to ids with it before searching).
async fn list_fields() -> Response {
    let fields: Vec<Value> = [
        ("summary", "Summary", "string"),
        ("description", "Description", "string"),
        ("issuetype", "Issue Type", "issuetype"),
        ("project", "Project", "project"),
        ("status", "Status", "status"),
        ("priority", "Priority", "priority"),
        ("labels", "Labels", "array"),
        ("reporter", "Reporter", "user"),
        ("creator", "Creator", "user"),
        ("assignee", "Assignee", "user"),
        ("created", "Created", "datetime"),
        ("updated", "Updated", "datetime"),
    ]
    .iter()
    .map(|(id, name, kind)| {
        json!({
            "id": id,
            "key": id,
            "name": name,
            "custom": false,
            "orderable": true,
            "navigable": true,
            "searchable": true,
            "clauseNames": [id],
            "schema": { "type": kind, "system": id },
        })
    })
    .collect();
    Json(fields).into_response()
}

async fn get_project(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    Path(id_or_key): Path<String>,
) -> Response {
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let project = upstream.sites.with_site(&caller.cloud_id, |site| {
        site.project(&id_or_key)
            .filter(|p| !caller.is_blocked(&p.key))
            .map(|p| project_json(&base, p))
    });
    match project {
        Some(project) => Json(project).into_response(),
        None => Product::Jira.error(
            StatusCode::NOT_FOUND,
            "No project could be found with key or id.",
        ),
    }
}

async fn get_myself(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let mut user = user_json(&base, &caller.account_id);
    if let Value::Object(fields) = &mut user {
        fields.insert("timeZone".into(), "Etc/UTC".into());
        fields.insert("locale".into(), "en_US".into());
        fields.insert("groups".into(), json!({ "size": 0, "items": [] }));
        fields.insert("applicationRoles".into(), json!({ "size": 1, "items": [] }));
        fields.insert("expand".into(), "groups,applicationRoles".into());
    }
    Json(user).into_response()
}

/// A classic Jira page request: `startAt`, `maxResults` and the query's other pairs.
/// Malformed numbers are refused with Jira's 400 before the handler runs.
struct StartAtPage {
    start: usize,
    max: usize,
    pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for StartAtPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let page = query_pairs(parts.uri.query()).and_then(|pairs| {
            Ok(StartAtPage {
                start: int_param(&pairs, "startAt", 0, usize::MAX)?,
                max: int_param(&pairs, "maxResults", PAGE_SIZE, MAX_PAGE_SIZE)?,
                pairs,
            })
        });
        page.map_err(|message| Product::Jira.error(StatusCode::BAD_REQUEST, message))
    }
}

impl StartAtPage {
    /// The first value of the parameter `name`.
    fn text(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET /rest/api/3/project/search`: `startAt`, `maxResults`, `query` (matches key or name).
async fn search_projects(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    page: StartAtPage,
) -> Response {
    let (start, max) = (page.start, page.max);
    let query = page.text("query").map(str::to_lowercase);
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let mut projects: Vec<Project> = upstream.sites.with_site(&caller.cloud_id, |site| {
        site.projects
            .iter()
            .filter(|p| !caller.is_blocked(&p.key))
            .filter(|p| {
                query.as_deref().is_none_or(|q| {
                    p.key.to_lowercase().contains(q) || p.name.to_lowercase().contains(q)
                })
            })
            .cloned()
            .collect()
    });
    projects.sort_by(|a, b| a.key.cmp(&b.key));
    let total = projects.len();
    let values: Vec<Value> = projects
        .iter()
        .skip(start)
        .take(max)
        .map(|p| project_json(&base, p))
        .collect();
    let is_last = start.saturating_add(max) >= total;
    let page_url =
        |at: usize| format!("{base}/rest/api/3/project/search?startAt={at}&maxResults={max}");
    let mut body = json!({
        "self": page_url(start),
        "maxResults": max,
        "startAt": start,
        "total": total,
        "isLast": is_last,
        "values": values,
    });
    if !is_last {
        body["nextPage"] = page_url(start + max).into();
    }
    Json(body).into_response()
}

async fn get_issue(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    Path(id_or_key): Path<String>,
) -> Response {
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let found = upstream.sites.with_site(&caller.cloud_id, |site| {
        let issue = site.issue(&id_or_key)?;
        // A blocked project's issues are as absent as the project itself.
        if caller.is_blocked(&issue.fields.project_key) {
            return None;
        }
        let project = site.project(&issue.fields.project_key)?;
        Some(issue_json(&base, issue, project))
    });
    match found {
        Some(issue) => Json(issue).into_response(),
        None => Product::Jira.error(StatusCode::NOT_FOUND, ISSUE_NOT_FOUND),
    }
}

/// A request body that must be a JSON object, as Jira's POST endpoints want: anything
/// else is refused with Jira's 400 before the handler runs.
pub(super) struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(object)) => Ok(JsonObject(object)),
            _ => Err(Product::Jira.error(
                StatusCode::BAD_REQUEST,
                "The request body must be a JSON object.",
            )),
        }
    }
}

/// `POST /rest/api/3/issue` with `fields.project` (`id` or `key`), `fields.summary`,
/// `fields.issuetype` (`id` or `name`) and optional `fields.description` (an ADF document)
/// and `fields.labels`.
async fn create_issue(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    JsonObject(body): JsonObject,
) -> Response {
    let Some(Value::Object(fields)) = body.get("fields") else {
        return Product::Jira.error(StatusCode::BAD_REQUEST, "The request has no fields.");
    };
    let mut errors = BTreeMap::new();
    let parsed = parse_fields(fields, &caller, &mut errors);
    let project_ref = fields.get("project");
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let created = upstream.sites.with_site(&caller.cloud_id, |site| {
        let project_key = project_ref
            .and_then(|r| {
                let by_id = r.get("id").and_then(id_text);
                let by_key = r.get("key").and_then(Value::as_str);
                by_id.or(by_key.map(str::to_owned))
            })
            .and_then(|id_or_key| site.project(&id_or_key))
            .filter(|p| !caller.is_blocked(&p.key))
            .map(|p| p.key.clone());
        let Some(project_key) = project_key else {
            errors.insert("project", "Specify a valid project ID or key".to_owned());
            return None;
        };
        let mut new = parsed?;
        new.project_key = project_key;
        let (id, key) = {
            let issue = site.create_issue(new, OffsetDateTime::now_utc())?;
            (issue.id, issue.key.clone())
        };
        let issue = site.issue(&key)?;
        let project = site.project(&issue.fields.project_key)?;
        Some((id, key, issue_json(&base, issue, project)))
    });
    match created {
        Some((id, key, issue)) if errors.is_empty() => {
            upstream.config.emit(
                Product::Jira.key(),
                issue_created_event(&caller, &key, id, issue),
            );
            created_response(id, &key, &base)
        }
        _ => field_errors(errors),
    }
}

/// `jira:issue_created` as the sample Jira posts it to trilo: its id is the issue's, so a
/// retried post is recorded once.
fn issue_created_event(caller: &Caller, key: &str, id: u64, issue: Value) -> Value {
    let project = key.rsplit_once('-').map_or(key, |(project, _)| project);
    json!({
        "id": format!("issue_created:{id}"),
        "event": "jira:issue_created",
        "cloudId": caller.cloud_id,
        "container": project,
        "accountId": caller.account_id,
        "object": { "type": "issue", "id": id.to_string() },
        "payload": {
            "issue_event_type_name": "issue_created",
            "issue": issue,
            "user": { "accountId": caller.account_id },
        },
    })
}

fn created_response(id: u64, key: &str, base: &str) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({
            "id": id.to_string(),
            "key": key,
            "self": format!("{base}/rest/api/3/issue/{id}"),
        })),
    )
        .into_response()
}

/// Everything but the project, which needs the site; errors are keyed by field, as Jira
/// reports them.
fn parse_fields(
    fields: &Map<String, Value>,
    caller: &Caller,
    errors: &mut BTreeMap<&'static str, String>,
) -> Option<IssueFields> {
    let summary = match fields.get("summary").and_then(Value::as_str).map(str::trim) {
        Some(s) if s.chars().count() > MAX_SUMMARY_CHARS => {
            errors.insert(
                "summary",
                "Summary must be less than 255 characters.".into(),
            );
            None
        }
        Some(s) if !s.is_empty() => Some(s.to_owned()),
        _ => {
            errors.insert("summary", "You must specify a summary of the issue.".into());
            None
        }
    };
    let issue_type = match fields.get("issuetype") {
        None | Some(Value::Null) => {
            errors.insert("issuetype", "Specify an issue type".into());
            None
        }
        Some(t) => {
            let id = t.get("id").and_then(id_text);
            let name = t.get("name").and_then(Value::as_str);
            let found = IssueType::find(id.as_deref(), name);
            if found.is_none() {
                errors.insert("issuetype", "The issue type selected is invalid.".into());
            }
            found
        }
    };
    let description = match fields.get("description") {
        None | Some(Value::Null) => Some(None),
        Some(doc) if is_adf_document(doc) => Some(Some(doc.clone())),
        Some(_) => {
            errors.insert(
                "description",
                "Operation value must be an Atlassian Document (see the Atlassian Document \
                 Format)."
                    .into(),
            );
            None
        }
    };
    let labels = match fields.get("labels") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|l| {
                l.as_str()
                    .filter(|l| !l.is_empty() && !l.contains(char::is_whitespace))
                    .map(str::to_owned)
            })
            .collect::<Option<Vec<_>>>(),
        Some(_) => None,
    };
    if labels.is_none() {
        errors.insert("labels", "Labels must be strings without spaces.".into());
    }
    Some(IssueFields {
        project_key: String::new(),
        summary: summary?,
        description: description?,
        issue_type: issue_type?,
        labels: labels?,
        reporter: caller.account_id.clone(),
    })
}

/// `GET /rest/api/3/search`: `jql` (only `project = KEY`, optionally with `ORDER BY …`,
/// which is ignored), `startAt`, `maxResults`.
async fn search_issues(
    State(upstream): State<Upstream>,
    Extension(caller): Extension<Caller>,
    page: StartAtPage,
) -> Response {
    let (start, max) = (page.start, page.max);
    let project = match parse_jql(page.text("jql").unwrap_or_default()) {
        Ok(project) => project,
        Err(message) => return Product::Jira.error(StatusCode::BAD_REQUEST, message),
    };
    let base = upstream.site_base(Product::Jira, &caller.cloud_id);
    let found = upstream.sites.with_site(&caller.cloud_id, |site| {
        let matching = matching_issues(site, &caller, project.as_deref())?;
        let issues: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(max)
            .filter_map(|i| Some(issue_json(&base, i, site.project(&i.fields.project_key)?)))
            .collect();
        Ok::<_, String>((matching.len(), issues))
    });
    match found {
        Ok((total, issues)) => Json(json!({
            "expand": "schema,names",
            "startAt": start,
            "maxResults": max,
            "total": total,
            "issues": issues,
        }))
        .into_response(),
        // Jira answers an unknown project this way too, so a blocked one looks the same.
        Err(name) => Product::Jira.error(
            StatusCode::BAD_REQUEST,
            format!("The value '{name}' does not exist for the field 'project'."),
        ),
    }
}

/// The issues a search finds: those of `project` (a key or name, `None` for all) the
/// caller may see. `Err` names a project that is unknown or blocked, which Jira reports
/// alike.
pub(super) fn matching_issues<'s>(
    site: &'s Site,
    caller: &Caller,
    project: Option<&str>,
) -> Result<Vec<&'s Issue>, String> {
    let project_key = match project {
        Some(name) => Some(
            site.project(name)
                .filter(|p| !caller.is_blocked(&p.key))
                .map(|p| p.key.clone())
                .ok_or_else(|| name.to_owned())?,
        ),
        None => None,
    };
    Ok(site
        .issues
        .values()
        .filter(|i| !caller.is_blocked(&i.fields.project_key))
        .filter(|i| {
            project_key
                .as_ref()
                .is_none_or(|k| *k == i.fields.project_key)
        })
        .collect())
}

/// The project a JQL query names, if any: only `project = KEY` (or `"KEY"`) is understood.
pub(super) fn parse_jql(jql: &str) -> Result<Option<String>, String> {
    let lower = jql.to_ascii_lowercase();
    let clause = match lower.find("order by") {
        Some(at) => &jql[..at],
        None => jql,
    }
    .trim();
    if clause.is_empty() {
        return Ok(None);
    }
    let unsupported = || {
        format!(
            "Error in the JQL Query: the sample Jira understands only 'project = KEY', not '{clause}'."
        )
    };
    let (field, value) = clause.split_once('=').ok_or_else(unsupported)?;
    if !field.trim().eq_ignore_ascii_case("project") {
        return Err(unsupported());
    }
    let value = value.trim().trim_matches('"').trim();
    if value.is_empty() || value.contains(char::is_whitespace) {
        return Err(unsupported());
    }
    Ok(Some(value.to_owned()))
}

fn field_errors(errors: BTreeMap<&'static str, String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "errorMessages": [], "errors": errors })),
    )
        .into_response()
}

/// Jira takes ids as strings or numbers.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// API v3 takes rich text only as an Atlassian Document Format document.
fn is_adf_document(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("doc")
        && v.get("version").and_then(Value::as_u64) == Some(1)
        && v.get("content").is_some_and(Value::is_array)
}

pub(super) fn jira_time(t: OffsetDateTime) -> String {
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

fn avatar_urls(base: &str, path: &str) -> Value {
    let sized = |size: &str| format!("{base}/secure/{path}&size={size}");
    json!({
        "48x48": sized("large"),
        "24x24": sized("small"),
        "16x16": sized("xsmall"),
        "32x32": sized("medium"),
    })
}

/// The short user shape Jira embeds in issues (reporter, creator).
pub(super) fn user_json(base: &str, account_id: &str) -> Value {
    // The seeded reporter is the OpenAPI document's example user; trilo tells the upstream
    // no names, so everyone else is a generic sample user.
    let display_name = if account_id == SEED_REPORTER {
        "Mia Krystof"
    } else {
        "Sample User"
    };
    json!({
        "self": format!("{base}/rest/api/3/user?accountId={account_id}"),
        "accountId": account_id,
        "accountType": "atlassian",
        "avatarUrls": avatar_urls(base, &format!("useravatar?ownerId={account_id}")),
        "displayName": display_name,
        "active": true,
    })
}

fn project_json(base: &str, p: &Project) -> Value {
    json!({
        "self": format!("{base}/rest/api/3/project/{}", p.id),
        "id": p.id.to_string(),
        "key": p.key,
        "name": p.name,
        "avatarUrls": avatar_urls(base, &format!("projectavatar?pid={}", p.id)),
        "projectTypeKey": "software",
        "simplified": false,
        "style": "classic",
        "isPrivate": false,
        "properties": {},
    })
}

pub(super) fn issue_json(base: &str, issue: &Issue, project: &Project) -> Value {
    let issue_type = issue.fields.issue_type;
    let created = jira_time(issue.created);
    json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog",
        "id": issue.id.to_string(),
        "self": format!("{base}/rest/api/3/issue/{}", issue.id),
        "key": issue.key,
        "fields": {
            "summary": issue.fields.summary,
            "description": issue.fields.description,
            "issuetype": {
                "self": format!("{base}/rest/api/3/issuetype/{}", issue_type.id),
                "id": issue_type.id,
                "name": issue_type.name,
                "description": issue_type.description,
                "subtask": false,
            },
            "project": project_json(base, project),
            "status": {
                "self": format!("{base}/rest/api/3/status/10000"),
                "id": "10000",
                "name": "To Do",
                "statusCategory": { "id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do" },
            },
            "priority": { "id": "3", "name": "Medium" },
            "labels": issue.fields.labels,
            "reporter": user_json(base, &issue.fields.reporter),
            "creator": user_json(base, &issue.fields.reporter),
            "assignee": null,
            "created": created,
            "updated": created,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_jql_reads_project_when_query_is_simple() {
        assert_eq!(parse_jql(""), Ok(None));
        assert_eq!(parse_jql("ORDER BY created DESC"), Ok(None));
        assert_eq!(parse_jql("project = DEMO"), Ok(Some("DEMO".into())));
        assert_eq!(
            parse_jql("project=\"OPS\" order by key"),
            Ok(Some("OPS".into()))
        );
        assert!(parse_jql("assignee = currentUser()").is_err());
        assert!(parse_jql("project = DEMO AND status = Done").is_err());
    }

    #[test]
    fn jira_time_uses_jira_format_when_formatting() {
        let t = time::macros::datetime!(2024-01-15 09:00:00.5 UTC);
        assert_eq!(jira_time(t), "2024-01-15T09:00:00.500+0000");
    }
}
