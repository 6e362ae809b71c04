//! The paths clients written for the reference platform send (issue 15), through the
//! gateway with the real operation catalogs and the sample upstreams: Jira REST v2 beside
//! v3, the enhanced JQL search, Jira Service Management's requests, Confluence without
//! `/wiki` and its REST v2; and the small wire details those clients read.

use serde_json::{Value, json};

use crate::gateway::{Client, access_token, another_app, call, jira_get};
use crate::on_both_backends;
use crate::support::{Backend, Fetch, TestApp};
use crate::token::Answer;

/// What a client of all those APIs asks for: classic and granular scopes.
const CLIENT_SCOPES: &str = "read:jira-user read:jira-work read:servicedesk-request \
     read:confluence-space.summary read:confluence-content.all \
     read:confluence-content.summary read:space:confluence \
     read:page:confluence";

async fn client_token(app: &TestApp, scopes: &str) -> String {
    let scope_list: Vec<&str> = scopes.split(' ').filter(|s| !s.is_empty()).collect();
    let client: Client = another_app(app, &scope_list).await;
    access_token(app, 0, &client, scopes, 0).await
}

async fn post_json(
    app: &TestApp,
    token: &str,
    product: &str,
    site: &str,
    path: &str,
    body: Value,
) -> Answer {
    let res = reqwest::Client::new()
        .post(app.url(&format!("/ex/{product}/{site}{path}")))
        .bearer_auth(token)
        .json(&body)
        .fetch()
        .await;
    Answer::of(res).await
}

#[track_caller]
fn assert_ok(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {answer:?}");
}

on_both_backends!(
    the_paths_existing_clients_send_reach_the_products,
    super::the_paths_existing_clients_send_reach_the_products_body
);
async fn the_paths_existing_clients_send_reach_the_products_body(app: TestApp) {
    let token = client_token(&app, CLIENT_SCOPES).await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let jira = |path: &'static str| jira_get(&app, &token, &acme, path);

    // Jira REST v2, as the most used Python client sends it by default: it reads
    // serverInfo first (no scope needed), then fields before a search.
    let info = jira("/rest/api/2/serverInfo").await;
    assert_ok(&info, "serverInfo");
    assert_eq!(info.body["deploymentType"], "Cloud");
    let all = jira("/rest/api/2/project").await;
    assert_ok(&all, "v2 all projects");
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    let fields = jira("/rest/api/2/field").await;
    assert_ok(&fields, "v2 fields");
    assert!(
        fields
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "summary")
    );
    let me = jira("/rest/api/2/myself").await;
    assert_ok(&me, "v2 myself");
    assert_eq!(me.body["accountId"], app.demo.users[0].account_id.as_str());
    let projects = jira("/rest/api/2/project/search").await;
    assert_ok(&projects, "v2 project search");
    assert_eq!(projects.body["values"][0]["key"], "DEMO");
    assert_ok(&jira("/rest/api/2/project/DEMO").await, "v2 project");
    assert_ok(&jira("/rest/api/3/project/OPS").await, "v3 project");

    // The enhanced JQL search, GET and POST, pages chained by nextPageToken.
    let first = jira("/rest/api/3/search/jql?jql=project%20%3D%20DEMO&maxResults=1").await;
    assert_ok(&first, "search/jql GET");
    assert_eq!(first.body["issues"].as_array().unwrap().len(), 1);
    let token_of_next = first.body["nextPageToken"]
        .as_str()
        .expect("more pages")
        .to_owned();
    let second = post_json(
        &app,
        &token,
        "jira",
        &acme,
        "/rest/api/3/search/jql",
        json!({ "jql": "project = DEMO", "maxResults": 1, "nextPageToken": token_of_next, "fields": ["summary"] }),
    )
    .await;
    assert_ok(&second, "search/jql POST");
    assert_ne!(
        second.body["issues"][0]["key"],
        first.body["issues"][0]["key"]
    );
    assert_ok(&jira("/rest/api/2/search/jql?jql=").await, "v2 search/jql");

    // Jira Service Management, the reference's third example URL.
    let requests = jira("/rest/servicedeskapi/request").await;
    assert_ok(&requests, "JSM requests");
    assert!(!requests.body["values"].as_array().unwrap().is_empty());

    // Confluence without /wiki (the reference's example), with it, and REST v2.
    let confluence = |path: &'static str| call(&app, "GET", &token, "confluence", &acme, path);
    for path in ["/rest/api/space", "/wiki/rest/api/space"] {
        let spaces = confluence(path).await;
        assert_ok(&spaces, path);
        assert_eq!(spaces.body["results"][0]["key"], "DEMO", "{path}");
    }
    for path in [
        "/wiki/api/v2/spaces",
        "/api/v2/spaces",
        "/wiki/api/v2/pages",
        "/api/v2/pages",
    ] {
        let listed = confluence(path).await;
        assert_ok(&listed, path);
        assert!(
            !listed.body["results"].as_array().unwrap().is_empty(),
            "{path}"
        );
    }
    assert_ok(
        &confluence("/rest/api/content?type=page&spaceKey=DEMO").await,
        "v1 content",
    );
}

/// The new catalogs' scopes are enforced like any: a token without the granular page
/// scope reads spaces but not pages, whether the path has `/wiki` or not; unknown paths
/// under an alias are 404 naming the product's own path.
#[tokio::test]
async fn the_new_operations_need_their_own_scopes() {
    let app = TestApp::sqlite().await;
    let token = client_token(&app, "read:space:confluence read:jira-work").await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let confluence = |path: &'static str| call(&app, "GET", &token, "confluence", &acme, path);
    assert_ok(&confluence("/api/v2/spaces").await, "spaces");
    for path in ["/wiki/api/v2/pages", "/api/v2/pages"] {
        let refused = confluence(path).await;
        assert_eq!(refused.status, 403, "{path}: {refused:?}");
        let message = refused.body["message"].as_str().unwrap();
        assert!(message.contains("read:page:confluence"), "{message}");
    }
    let unknown = confluence("/rest/api/nothing-here").await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(
        unknown.body["message"]
            .as_str()
            .unwrap()
            .contains("/wiki/rest/api/nothing-here"),
        "{unknown:?}"
    );
    // An operation the document says needs no scope is open to any token reaching the site.
    let info = jira_get(&app, &token, &acme, "/rest/api/3/serverInfo").await;
    assert_ok(&info, "serverInfo without a Jira read scope of its own");
    let jsm = jira_get(&app, &token, &acme, "/rest/servicedeskapi/request").await;
    assert_eq!(jsm.status, 403, "{jsm:?}");
    assert!(
        jsm.body["message"]
            .as_str()
            .unwrap()
            .contains("read:servicedesk-request")
    );
}

/// `gateway.scope_mismatch = "reference"` answers a missing scope as the reference does.
#[tokio::test]
async fn a_missing_scope_can_be_answered_as_the_reference_does() {
    let app = TestApp::spawn(Backend::Sqlite, |config| {
        config.gateway.scope_mismatch = "reference".into();
    })
    .await
    .unwrap();
    let token = client_token(&app, "read:jira-user").await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let refused = jira_get(&app, &token, &acme, "/rest/api/3/project/search").await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.body,
        json!({ "code": 401, "message": "Unauthorized; scope does not match" })
    );
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|c| c.contains("insufficient_scope"))
    );
    // An admitted call is unchanged.
    assert_ok(
        &jira_get(&app, &token, &acme, "/rest/api/3/myself").await,
        "myself",
    );
}

/// `/me` always has `picture` (the reference's shape), a default avatar when the account
/// has none, served by the API host; `/oauth/revoke` answers JSON.
#[tokio::test]
async fn me_has_a_picture_and_revoke_answers_json() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    let tokens = crate::token::redeem(&app, &code).await;
    let access = tokens.assert_tokens();
    let me: Value = reqwest::Client::new()
        .get(app.url("/me"))
        .bearer_auth(&access)
        .fetch_json()
        .await;
    let picture = me["picture"].as_str().expect("a picture");
    let avatar = reqwest::get(picture).await.unwrap();
    assert_eq!(avatar.status(), 200, "{picture}");
    assert_eq!(avatar.headers()["content-type"], "image/svg+xml");
    assert!(avatar.text().await.unwrap().starts_with("<svg"));

    let demo = app.app();
    let revoked = reqwest::Client::new()
        .post(app.url("/oauth/revoke"))
        .basic_auth(&demo.client_id, Some(&demo.client_secret))
        .form(&[("token", access.as_str())])
        .fetch()
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(revoked.headers()["content-type"], "application/json");
    assert_eq!(revoked.json::<Value>().await.unwrap(), json!({}));
}

/// `audience_aliases`: a client that hard-codes the reference's audience gets tokens for
/// it, which the gateway, refresh and introspection honour; an audience that is neither
/// trilo's nor an alias is refused at /authorize.
#[tokio::test]
async fn an_audience_alias_is_accepted_and_carried_by_the_tokens() {
    let app = TestApp::spawn(Backend::Sqlite, |config| {
        config.audience_aliases = vec!["api.atlassian.com".into()];
    })
    .await
    .unwrap();
    let code = app
        .obtain_code(&app.authorize_url(&[("audience", "api.atlassian.com")]))
        .await;
    let tokens = crate::token::redeem(&app, &code).await;
    let access = tokens.assert_tokens();
    assert_eq!(
        crate::refresh::claims_of(&access)["aud"],
        "api.atlassian.com"
    );
    let acme = app.demo.sites[0].cloud_id.clone();
    let projects = jira_get(&app, &access, &acme, "/rest/api/3/project/search").await;
    assert_ok(&projects, "an alias audience token at the gateway");
    let refreshed = crate::refresh::refresh(&app, &crate::refresh::refresh_token_of(&tokens)).await;
    let renewed = refreshed.assert_tokens();
    assert_eq!(
        crate::refresh::claims_of(&renewed)["aud"],
        "api.atlassian.com"
    );
    let demo = app.app();
    let described: Value = reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .basic_auth(&demo.client_id, Some(&demo.client_secret))
        .form(&[("token", renewed.as_str())])
        .fetch_json()
        .await;
    assert_eq!(described["aud"], "api.atlassian.com");
    // trilo's own audience still works and is what its tokens carry.
    let own = app.demo_code().await;
    let own = crate::token::redeem(&app, &own).await.assert_tokens();
    assert_eq!(
        crate::refresh::claims_of(&own)["aud"],
        app.demo.audience.as_str()
    );

    assert_audience_refused(&app, "api.example.org").await;
}

/// Alice's authorization request for `audience` goes back to the app as `invalid_request`.
async fn assert_audience_refused(app: &TestApp, audience: &str) {
    let browser = crate::authorize::logged_in(app, 0).await;
    let res = browser
        .get(app.url_of_authorize_with_audience(audience))
        .fetch()
        .await;
    let location = crate::support::location(&res);
    assert_eq!(
        crate::support::query_param(&location, "error").as_deref(),
        Some("invalid_request"),
        "{location}"
    );
}

/// Without aliases (the default), the reference's audience is refused.
#[tokio::test]
async fn without_aliases_only_trilos_audience_is_accepted() {
    let app = TestApp::sqlite().await;
    assert_audience_refused(&app, "api.atlassian.com").await;
}
