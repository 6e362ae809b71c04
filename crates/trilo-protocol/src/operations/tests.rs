//! Tests of the operation catalog against the two real sample documents.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde_json::json;

use super::*;
use crate::route::PathError;

fn load(text: &str) -> OperationCatalog {
    let doc: Value = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(e) => panic!("bad sample document: {e}"),
    };
    match OperationCatalog::from_openapi(&doc) {
        Ok(c) => c,
        Err(e) => panic!("import failed: {e}"),
    }
}

static JIRA: LazyLock<OperationCatalog> = LazyLock::new(|| {
    load(include_str!(
        "../../../trilo-sample-products/specs/jira-platform.openapi.json"
    ))
});
static CONFLUENCE: LazyLock<OperationCatalog> = LazyLock::new(|| {
    load(include_str!(
        "../../../trilo-sample-products/specs/confluence.openapi.json"
    ))
});

fn alts(c: &OperationCatalog, method: &str, template: &str) -> Option<Vec<Vec<String>>> {
    c.operation(method, template)
        .map(|o| o.alternatives.clone())
}

fn v(alternatives: &[&[&str]]) -> Option<Vec<Vec<String>>> {
    Some(
        alternatives
            .iter()
            .map(|a| a.iter().map(|s| s.to_string()).collect())
            .collect(),
    )
}

fn op_id<'c>(c: &'c OperationCatalog, method: &str, path: &str) -> Option<&'c str> {
    c.find(method, path)
        .and_then(|m| m.value.operation_id.as_deref())
}

#[test]
fn report_counts_every_operation_when_jira_imported() {
    let r = JIRA.report();
    assert_eq!(
        (r.operations, r.app_operations, r.scopes.len()),
        (468, 438, 179)
    );
    assert!(r.unparsed.is_empty(), "{:?}", r.unparsed);
    assert!(r.scopes.windows(2).all(|w| w[0] < w[1]));
    assert!(r.scopes.iter().any(|s| s == "read:jira-work"));
}

#[test]
fn report_counts_every_operation_when_confluence_imported() {
    let r = CONFLUENCE.report();
    assert_eq!(
        (r.operations, r.app_operations, r.scopes.len()),
        (155, 133, 15)
    );
    assert!(r.unparsed.is_empty(), "{:?}", r.unparsed);
}

#[test]
fn report_serializes_cli_fields_when_nothing_unparsed() {
    let value = serde_json::to_value(CONFLUENCE.report()).unwrap_or_default();
    let mut keys: Vec<_> = value
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .collect();
    keys.sort();
    assert_eq!(keys, vec!["app_operations", "operations", "scopes"]);
    assert_eq!(value["operations"], json!(155));
}

#[test]
fn jira_alternatives_are_current_then_beta_when_extension_present() {
    let c = &*JIRA;
    assert_eq!(
        alts(c, "GET", "/rest/api/3/myself"),
        v(&[
            &["read:jira-user"],
            &[
                "read:application-role:jira",
                "read:group:jira",
                "read:user:jira",
                "read:avatar:jira"
            ],
        ])
    );
    assert_eq!(
        alts(c, "GET", "/rest/api/3/issue/{issueIdOrKey}"),
        v(&[
            &["read:jira-work"],
            &[
                "read:issue-meta:jira",
                "read:issue-security-level:jira",
                "read:issue.vote:jira",
                "read:issue.changelog:jira",
                "read:avatar:jira",
                "read:issue:jira",
                "read:status:jira",
                "read:user:jira",
                "read:field-configuration:jira",
            ],
        ])
    );
    assert_eq!(
        alts(c, "POST", "/rest/api/3/issue"),
        v(&[
            &["write:jira-work"],
            &[
                "write:issue:jira",
                "write:comment:jira",
                "write:comment.property:jira",
                "write:attachment:jira",
                "read:issue:jira",
            ],
        ])
    );
    assert_eq!(
        alts(c, "DELETE", "/rest/api/3/issue/{issueIdOrKey}"),
        v(&[&["write:jira-work"], &["delete:issue:jira"]])
    );
    assert_eq!(
        c.operation("GET", "/rest/api/3/myself")
            .and_then(|o| o.operation_id.as_deref()),
        Some("getCurrentUser")
    );
}

#[test]
fn jira_keeps_only_non_empty_alternatives_when_one_side_is_empty() {
    // Current is empty: only the granular alternative opens it.
    assert_eq!(
        alts(&JIRA, "GET", "/rest/api/3/mypermissions"),
        v(&[&["read:permission:jira"]])
    );
    // Beta is empty: only the classic alternative.
    assert_eq!(
        alts(
            &JIRA,
            "GET",
            "/rest/api/3/component/{id}/relatedIssueCounts"
        ),
        v(&[&["read:jira-work"]])
    );
}

#[test]
fn jira_falls_back_to_security_when_extension_absent() {
    assert_eq!(
        alts(&JIRA, "GET", "/rest/api/3/announcementBanner"),
        v(&[&["manage:jira-configuration"]])
    );
}

/// Jira's document says some operations need no scope from an app: they are open with one
/// empty alternative; its Forge-only operations say the same words and stay closed.
#[test]
fn operations_that_need_no_scope_are_open_to_any_app_token() {
    for path in ["/rest/api/3/serverInfo", "/rest/api/3/task/{taskId}"] {
        let op = JIRA.operation("GET", path);
        assert_eq!(op.map(Operation::is_open_to_apps), Some(true), "{path}");
        assert_eq!(
            op.map(|o| o.alternatives.clone()),
            Some(vec![Vec::<String>::new()]),
            "{path}"
        );
    }
    let forge = JIRA.operation("POST", "/rest/api/3/app/field/value");
    assert_eq!(forge.map(Operation::is_open_to_apps), Some(false));
}

#[test]
fn operations_are_closed_when_no_alternative_has_scopes() {
    for (c, method, path) in [
        // No extension; security names only basic auth.
        (&*JIRA, "GET", "/rest/api/3/applicationrole"),
        // No extension; `{"OAuth2": []}`.
        (
            &*JIRA,
            "DELETE",
            "/rest/api/3/uiModifications/{uiModificationId}",
        ),
        // Neither extension nor security.
        (
            &*JIRA,
            "GET",
            "/rest/atlassian-connect/1/app/module/dynamic",
        ),
        (&*CONFLUENCE, "GET", "/wiki/rest/api/audit"),
        (&*CONFLUENCE, "GET", "/wiki/rest/api/user/email"),
    ] {
        let op = c.operation(method, path);
        assert_eq!(
            op.map(Operation::is_open_to_apps),
            Some(false),
            "{method} {path}"
        );
    }
}

#[test]
fn confluence_alternatives_come_from_security_when_standard_form() {
    let c = &*CONFLUENCE;
    assert_eq!(
        alts(c, "GET", "/wiki/rest/api/space"),
        v(&[&["read:confluence-space.summary"]])
    );
    assert_eq!(
        alts(c, "DELETE", "/wiki/rest/api/space/{spaceKey}"),
        v(&[&["write:confluence-space"]])
    );
    assert_eq!(
        alts(
            c,
            "PUT",
            "/wiki/rest/api/content/{id}/child/attachment/{attachmentId}"
        ),
        v(&[&["write:confluence-file", "write:confluence-props"]])
    );
}

#[test]
fn granted_alternative_needs_every_scope_when_checked() {
    let Some(op) = JIRA.operation("GET", "/rest/api/3/myself") else {
        panic!("missing operation");
    };
    let classic = ScopeSet::from_tokens(["read:jira-user", "offline_access"]);
    assert_eq!(
        op.granted_alternative(&classic),
        Some(&op.alternatives[0][..])
    );
    let partial = ScopeSet::from_tokens(["read:user:jira", "read:group:jira"]);
    assert_eq!(op.granted_alternative(&partial), None);
}

#[test]
fn static_template_wins_when_jira_path_is_ambiguous() {
    assert_eq!(
        op_id(&JIRA, "GET", "/rest/api/3/issue/createmeta"),
        Some("getCreateIssueMeta")
    );
    let m = JIRA.find("GET", "/rest/api/3/issue/PROJ-1");
    assert_eq!(
        m.as_ref().and_then(|m| m.value.operation_id.as_deref()),
        Some("getIssue")
    );
    assert_eq!(
        m.as_ref().and_then(|m| m.param("issueIdOrKey")),
        Some("PROJ-1")
    );
    let m = JIRA.find("GET", "/rest/api/3/issue/PROJ-1/comment/10001");
    assert_eq!(
        m.map(|m| m.params),
        Some(vec![
            ("issueIdOrKey", Cow::Borrowed("PROJ-1")),
            ("id", Cow::Borrowed("10001"))
        ])
    );
    assert_eq!(
        op_id(&CONFLUENCE, "GET", "/wiki/rest/api/group/by-id"),
        Some("getGroupByGroupId")
    );
    assert_eq!(
        op_id(&CONFLUENCE, "GET", "/wiki/rest/api/group/admins"),
        Some("getGroupByName")
    );
}

#[test]
fn lookup_reports_method_not_allowed_when_path_exists_for_others() {
    assert_eq!(op_id(&JIRA, "PATCH", "/rest/api/3/issue/PROJ-1"), None);
    let Lookup::MethodNotAllowed { mut allowed } = JIRA.lookup("PATCH", "/rest/api/3/issue/PROJ-1")
    else {
        panic!("expected 405");
    };
    allowed.sort();
    assert_eq!(allowed, vec!["DELETE", "GET", "PUT"]);
    assert_eq!(
        CONFLUENCE.allowed_methods("/wiki/rest/api/space"),
        vec!["GET", "POST"]
    );
    assert!(JIRA.allowed_methods("/rest/api/3/nothing-here").is_empty());
}

#[test]
fn lookup_is_not_found_when_path_unknown_or_base_path_missing() {
    assert_eq!(
        JIRA.lookup("GET", "/rest/api/3/nothing-here"),
        Lookup::NotFound
    );
    assert_eq!(JIRA.lookup("GET", "/rest/api/2/myself"), Lookup::NotFound);
    assert_eq!(
        CONFLUENCE.lookup("GET", "/rest/api/space"),
        Lookup::NotFound
    );
    assert_eq!(
        op_id(&CONFLUENCE, "GET", "/wiki/rest/api/space/"),
        Some("getSpaces")
    );
}

#[test]
fn lookup_refuses_paths_when_they_could_reach_another_operation() {
    for (path, err) in [
        ("/rest/api/3/issue/../myself", PathError::DotSegment),
        ("/rest/api/3/issue/%2e%2e/myself", PathError::DotSegment),
        (
            "/rest/api/3/issue/PROJ-1%2F..%2F..%2Fmyself",
            PathError::ForbiddenCharacter,
        ),
        ("/rest/api/3//myself", PathError::EmptySegment),
        ("rest/api/3/myself", PathError::NotAbsolute),
    ] {
        assert_eq!(JIRA.lookup("GET", path), Lookup::Invalid(err), "{path}");
    }
}

#[test]
fn every_operation_is_found_when_its_template_is_filled() {
    for c in [&*JIRA, &*CONFLUENCE] {
        for op in c.operations() {
            let path: String = op
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "v-1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let found = c.find(&op.method, &path).map(|m| m.value);
            assert_eq!(found, Some(op), "{} {path}", op.method);
        }
    }
}

#[test]
fn document_security_and_base_path_apply_when_operation_has_none() {
    let doc = json!({
        "openapi": "3.1.0",
        "servers": [{"url": "https://{host}/{base}/", "variables": {
            "host": {"default": "x.example"}, "base": {"default": "api"}}}],
        "security": [{"oidc": ["read:a"]}],
        "components": {"securitySchemes": {
            "oidc": {"type": "openIdConnect", "openIdConnectUrl": "https://x/.well-known"},
            "basic": {"type": "http", "scheme": "basic"}}},
        "paths": {
            "/a": {"get": {}, "delete": {"security": []}},
            "/b": {"get": {"security": [{"basic": [], "oidc": ["w:b"]}, {"oidc": ["w:b"]}, {"oidc": ["bad scope"]}]}},
            "/c/{x}{y}": {"get": {}},
            "/other": {"servers": [{"url": "/v2"}], "put": {}}
        }
    });
    let Ok(c) = OperationCatalog::from_openapi(&doc) else {
        panic!("import failed");
    };
    assert_eq!(alts(&c, "GET", "/api/a"), v(&[&["read:a"]]));
    assert_eq!(alts(&c, "DELETE", "/api/a"), v(&[]));
    assert_eq!(alts(&c, "GET", "/api/b"), v(&[&["w:b"]]));
    assert_eq!(op_id(&c, "GET", "/api/a"), None);
    assert!(c.find("GET", "/api/a").is_some());
    assert!(c.find("PUT", "/v2/other").is_some());
    let r = c.report();
    assert_eq!((r.operations, r.app_operations), (5, 4));
    assert_eq!(r.unparsed, vec!["/api/c/{x}{y}".to_string()]);
    assert_eq!(r.scopes, vec!["read:a".to_string(), "w:b".to_string()]);
}

#[test]
fn import_fails_when_not_openapi_3() {
    let r = OperationCatalog::from_openapi(&json!({"swagger": "2.0", "paths": {}}));
    assert!(matches!(r, Err(CatalogError::NotOpenApi)));
}
