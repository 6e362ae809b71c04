//! The upstreams driven in-process through [`super::router`], as trilo's gateway would call
//! them: identity headers plus an assertion signed with a key generated per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::test_support::{Assertion, TestKey, config_with, identity_headers};
use super::{ASSERTION_HEADER, router};

const CLOUD_A: &str = "11111111-1111-4111-8111-111111111111";
const CLOUD_B: &str = "22222222-2222-4222-8222-222222222222";
const ACCOUNT: &str = "712020:acc-alice";

struct Harness {
    key: TestKey,
    router: Router,
}

impl Harness {
    fn new() -> Self {
        let key = TestKey::generate("k1");
        let router = router(config_with(&[&key]));
        Self { key, router }
    }

    fn assertion(&self, product: &str, cloud_id: &str) -> Assertion<'_> {
        Assertion::new(&self.key, product, ACCOUNT, cloud_id)
    }

    async fn get(&self, uri: &str, headers: HeaderMap) -> (StatusCode, Value) {
        self.call(Method::GET, uri, headers, Body::empty()).await
    }

    async fn post(&self, uri: &str, headers: HeaderMap, body: Value) -> (StatusCode, Value) {
        let body = Body::from(serde_json::to_vec(&body).unwrap());
        self.call(Method::POST, uri, headers, body).await
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: HeaderMap,
        body: Body,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        *request.headers_mut().unwrap() = headers;
        let request = request
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes)));
        (status, json)
    }

    /// Jira, cloud A, nothing blocked.
    fn jira(&self) -> HeaderMap {
        self.assertion("jira", CLOUD_A).headers()
    }

    fn confluence(&self) -> HeaderMap {
        self.assertion("confluence", CLOUD_A).headers()
    }

    /// A GET as Jira's caller on the first site, the most common call here.
    async fn jira_get(&self, uri: &str) -> (StatusCode, Value) {
        self.get(uri, self.jira()).await
    }
}

/// The first of the messages of a Jira error body.
fn first_error_message(body: &Value) -> &str {
    body["errorMessages"][0].as_str().unwrap()
}

fn new_issue(project: Value, summary: &str) -> Value {
    json!({ "fields": { "project": project, "summary": summary, "issuetype": { "name": "Task" } } })
}

#[tokio::test]
async fn myself_returns_asserted_account_when_assertion_valid() {
    let h = Harness::new();
    let (status, body) = h.jira_get("/jira/rest/api/3/myself").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accountId"], ACCOUNT);
    assert_eq!(body["accountType"], "atlassian");
    assert_eq!(body["active"], true);
    assert_eq!(
        body["self"],
        format!("https://api.trilo.test/ex/jira/{CLOUD_A}/rest/api/3/user?accountId={ACCOUNT}")
    );
}

#[tokio::test]
async fn request_gets_401_in_product_shape_when_assertion_missing() {
    let h = Harness::new();
    let (status, body) = h
        .get(
            "/jira/rest/api/3/myself",
            identity_headers(ACCOUNT, Some("client-1"), CLOUD_A),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let message = first_error_message(&body);
    assert!(
        message.contains("x-trilo-assertion header is missing"),
        "{message}"
    );
    assert_eq!(body["errors"], json!({}));

    let (status, body) = h
        .get("/confluence/wiki/rest/api/space", HeaderMap::new())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["statusCode"], 401);
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn request_gets_401_when_assertion_garbage_expired_or_for_other_product() {
    let h = Harness::new();
    let mut garbage = h.jira();
    garbage.insert(ASSERTION_HEADER, "garbage".parse().unwrap());
    let mut expired = h.assertion("jira", CLOUD_A);
    expired.claims.iat -= 600;
    expired.claims.exp -= 600;
    let wrong_aud = h.assertion("confluence", CLOUD_A).headers();
    let mut wrong_iss = h.assertion("jira", CLOUD_A);
    wrong_iss.claims.iss = "https://evil.test".into();
    let stranger = TestKey::generate("k9");
    let other_kid = Assertion::new(&stranger, "jira", ACCOUNT, CLOUD_A).headers();
    let cases = [
        ("garbage", garbage),
        ("expired", expired.headers()),
        ("wrong aud", wrong_aud),
        ("wrong iss", wrong_iss.headers()),
        ("other kid", other_kid),
    ];
    for (name, headers) in cases {
        let (status, _) = h.get("/jira/rest/api/3/myself", headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
    }
}

#[tokio::test]
async fn request_gets_401_when_identity_header_differs_from_claim() {
    let h = Harness::new();
    // Another account's headers with Alice's assertion: the gateway's signature binds them.
    let mut headers = h.jira();
    headers.insert("x-trilo-account-id", "712020:acc-mallory".parse().unwrap());
    let (status, _) = h.get("/jira/rest/api/3/myself", headers).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut headers = h.jira();
    headers.insert("x-trilo-cloud-id", CLOUD_B.parse().unwrap());
    let (status, _) = h.get("/jira/rest/api/3/myself", headers).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn project_search_returns_paged_shape_when_listing() {
    let h = Harness::new();
    let (status, body) = h.jira_get("/jira/rest/api/3/project/search").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 2);
    assert_eq!(body["startAt"], 0);
    assert_eq!(body["maxResults"], 50);
    assert_eq!(body["isLast"], true);
    let keys: Vec<_> = body["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["DEMO", "OPS"]);
    assert_eq!(body["values"][0]["id"], "10000");
    assert!(body.get("nextPage").is_none());

    let (_, page) = h
        .jira_get("/jira/rest/api/3/project/search?startAt=0&maxResults=1")
        .await;
    assert_eq!(
        (page["total"].as_u64(), page["isLast"].as_bool()),
        (Some(2), Some(false))
    );
    assert_eq!(page["values"].as_array().unwrap().len(), 1);
    assert!(
        page["nextPage"]
            .as_str()
            .unwrap()
            .ends_with("startAt=1&maxResults=1")
    );

    let (status, body) = h
        .jira_get("/jira/rest/api/3/project/search?startAt=-1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(first_error_message(&body).contains("startAt"));
}

#[tokio::test]
async fn created_issue_is_readable_when_fetched_by_key_or_id() {
    let h = Harness::new();
    let (status, created) = h
        .post(
            "/jira/rest/api/3/issue",
            h.jira(),
            new_issue(json!({ "key": "DEMO" }), "Ship the gateway"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["key"], "DEMO-3");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["self"],
        format!("https://api.trilo.test/ex/jira/{CLOUD_A}/rest/api/3/issue/{id}")
    );
    for path in [id, "DEMO-3"] {
        let (status, issue) = h.jira_get(&format!("/jira/rest/api/3/issue/{path}")).await;
        assert_eq!(status, StatusCode::OK, "{issue}");
        assert_eq!(issue["key"], "DEMO-3");
        assert_eq!(issue["fields"]["summary"], "Ship the gateway");
        assert_eq!(issue["fields"]["project"]["key"], "DEMO");
        assert_eq!(issue["fields"]["issuetype"]["name"], "Task");
        assert_eq!(issue["fields"]["reporter"]["accountId"], ACCOUNT);
    }
}

#[tokio::test]
async fn created_issue_is_404_when_read_from_other_cloud() {
    let h = Harness::new();
    let (status, created) = h
        .post(
            "/jira/rest/api/3/issue",
            h.jira(),
            new_issue(json!({ "id": "10001" }), "Only on A"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["key"], "OPS-2");
    let on_b = h.assertion("jira", CLOUD_B).headers();
    let (status, body) = h.get("/jira/rest/api/3/issue/OPS-2", on_b).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["errorMessages"][0],
        "Issue does not exist or you do not have permission to see it."
    );
}

#[tokio::test]
async fn create_issue_returns_400_in_jira_shape_when_body_invalid() {
    let h = Harness::new();
    let (status, body) = h
        .call(
            Method::POST,
            "/jira/rest/api/3/issue",
            h.jira(),
            Body::from("{nope"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"], json!({}));
    assert!(body["errorMessages"][0].is_string());

    let (status, body) = h
        .post(
            "/jira/rest/api/3/issue",
            h.jira(),
            json!({ "fields": { "project": { "key": "NOPE" }, "issuetype": { "id": "99" },
                               "description": "plain text" } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorMessages"], json!([]));
    let errors = body["errors"].as_object().unwrap();
    let mut fields: Vec<_> = errors.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["description", "issuetype", "project", "summary"]);
}

#[tokio::test]
async fn blocked_project_is_hidden_when_listed_searched_or_read() {
    let h = Harness::new();
    let blocked = || h.assertion("jira", CLOUD_A).blocking("DEMO").headers();
    let (_, list) = h.get("/jira/rest/api/3/project/search", blocked()).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["values"][0]["key"], "OPS");
    let (status, _) = h.get("/jira/rest/api/3/issue/DEMO-1", blocked()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.get("/jira/rest/api/3/issue/10000", blocked()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .post(
            "/jira/rest/api/3/issue",
            blocked(),
            new_issue(json!({ "key": "DEMO" }), "x"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, all) = h.get("/jira/rest/api/3/search", blocked()).await;
    assert_eq!(all["total"], 1);
    assert_eq!(all["issues"][0]["key"], "OPS-1");
    let (status, _) = h
        .get(
            "/jira/rest/api/3/search?jql=project%20%3D%20DEMO",
            blocked(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Unblocked, the same issue is there.
    let (status, _) = h.jira_get("/jira/rest/api/3/issue/DEMO-1").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn issue_search_filters_by_project_when_jql_names_one() {
    let h = Harness::new();
    let (status, body) = h
        .jira_get("/jira/rest/api/3/search?jql=project%20%3D%20DEMO%20ORDER%20BY%20key")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 2);
    assert_eq!(body["issues"][0]["key"], "DEMO-1");
    assert_eq!(body["issues"][1]["key"], "DEMO-2");
    let (status, body) = h
        .jira_get("/jira/rest/api/3/search?jql=assignee%3DcurrentUser()")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(first_error_message(&body).starts_with("Error in the JQL Query"));
}

#[tokio::test]
async fn space_list_returns_results_shape_when_listing() {
    let h = Harness::new();
    let (status, body) = h
        .get("/confluence/wiki/rest/api/space", h.confluence())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["start"].as_u64(), body["limit"].as_u64()),
        (Some(0), Some(25))
    );
    assert_eq!(body["size"], 2);
    assert_eq!(body["results"][0]["key"], "DEMO");
    assert_eq!(body["results"][1]["key"], "TEAM");
    assert_eq!(body["results"][0]["type"], "global");
    assert_eq!(
        body["_links"]["base"],
        format!("https://api.trilo.test/ex/confluence/{CLOUD_A}/wiki")
    );

    let (_, page) = h
        .get(
            "/confluence/wiki/rest/api/space?limit=1&spaceKey=TEAM&spaceKey=DEMO",
            h.confluence(),
        )
        .await;
    assert_eq!(page["size"], 1);
    assert_eq!(page["_links"]["next"], "/rest/api/space?limit=1&start=1");

    let hidden = h
        .assertion("confluence", CLOUD_A)
        .blocking("TEAM")
        .headers();
    let (_, body) = h.get("/confluence/wiki/rest/api/space", hidden).await;
    assert_eq!(body["size"], 1);
    assert_eq!(body["results"][0]["key"], "DEMO");
}

#[tokio::test]
async fn space_get_returns_space_when_visible_and_404_when_blocked() {
    let h = Harness::new();
    let (status, body) = h
        .get("/confluence/wiki/rest/api/space/TEAM", h.confluence())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key"], "TEAM");
    assert_eq!(body["name"], "Team Handbook");
    assert_eq!(body["status"], "current");
    assert!(
        body["_links"]["self"]
            .as_str()
            .unwrap()
            .ends_with("/wiki/rest/api/space/TEAM")
    );

    let hidden = h
        .assertion("confluence", CLOUD_A)
        .blocking("DEMO,TEAM")
        .headers();
    let (status, body) = h.get("/confluence/wiki/rest/api/space/TEAM", hidden).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["statusCode"], 404);
    assert_eq!(body["message"], "No space with key : TEAM");
}

#[tokio::test]
async fn unknown_path_returns_404_json_when_authenticated() {
    let h = Harness::new();
    let (status, body) = h.jira_get("/jira/rest/api/3/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["errorMessages"][0].is_string());
    let (status, body) = h
        .get("/confluence/wiki/rest/api/nothing", h.confluence())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["statusCode"], 404);
    let (status, body) = h.jira_get("/bitbucket/2.0/user").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["statusCode"], 404);
    let (status, body) = h
        .call(
            Method::DELETE,
            "/jira/rest/api/3/myself",
            h.jira(),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["errorMessages"][0].is_string());
}

#[tokio::test]
async fn unknown_path_returns_401_when_unauthenticated() {
    let h = Harness::new();
    let (status, _) = h
        .get("/jira/rest/api/3/nothing-here", HeaderMap::new())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn router_serves_paths_when_nested_under_sample() {
    let key = TestKey::generate("k1");
    let app = Router::new().nest("/sample", router(config_with(&[&key])));
    let h = Harness { key, router: app };
    let (status, body) = h.jira_get("/sample/jira/rest/api/3/myself").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = h
        .get(
            "/sample/confluence/wiki/rest/api/space/DEMO",
            h.confluence(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = h.jira_get("/sample/jira/rest/api/3/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn serve_answers_over_tcp_when_bound_to_port_zero() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(super::serve(listener, h.router.clone()));
    let mut request = String::from("GET /jira/rest/api/3/myself HTTP/1.1\r\nhost: upstream\r\n");
    for (name, value) in &h.jira() {
        request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    request.push_str("connection: close\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains(ACCOUNT));
    server.abort();
}
