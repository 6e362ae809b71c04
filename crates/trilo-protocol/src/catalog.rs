//! Scope catalogs read from a product's OpenAPI 3 description: every OAuth scope the
//! product defines, with the description the consent page shows.
//!
//! Both forms found in real descriptions are read: scopes listed under an OAuth 2.0
//! security scheme's flows (`components.securitySchemes.*.flows.*.scopes`), and scopes
//! named by operations (`security` requirements and `x-atlassian-oauth2-scopes`), which
//! may lack a description.

use serde_json::Value;

use crate::model_catalog::CatalogScope;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("the document is not an OpenAPI 3 description")]
    NotOpenApi,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The scopes of an OpenAPI document, described ones first (by name), then scopes that
/// operations name without a description.
pub fn scopes_from_openapi(doc: &Value) -> Result<Vec<CatalogScope>, CatalogError> {
    if !doc
        .get("openapi")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with('3'))
    {
        return Err(CatalogError::NotOpenApi);
    }
    let mut out: Vec<CatalogScope> = Vec::new();
    let schemes = doc
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object);
    for scheme in schemes.into_iter().flat_map(|m| m.values()) {
        if scheme.get("type").and_then(Value::as_str) != Some("oauth2") {
            continue;
        }
        for flow in scheme
            .get("flows")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
        {
            for (name, desc) in flow
                .get("scopes")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                push(&mut out, name, desc.as_str().unwrap_or_default());
            }
        }
    }
    let mut named = Vec::new();
    for item in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
    {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            for req in op
                .get("security")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for scopes in req.as_object().into_iter().flat_map(|m| m.values()) {
                    named.extend(
                        scopes
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str),
                    );
                }
            }
            for alt in op
                .get("x-atlassian-oauth2-scopes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                named.extend(
                    alt.get("scopes")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str),
                );
            }
        }
    }
    for name in named {
        push(&mut out, name, "");
    }
    Ok(out)
}

fn push(out: &mut Vec<CatalogScope>, name: &str, description: &str) {
    if name.is_empty() || crate::scope::ScopeSet::parse(name).map(|s| s.len()) != Ok(1) {
        return;
    }
    match out.iter_mut().find(|s| s.scope == name) {
        Some(existing) if existing.description.is_empty() => {
            existing.description = description.to_owned()
        }
        Some(_) => {}
        None => out.push(CatalogScope {
            scope: name.to_owned(),
            description: description.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scheme_scopes_and_operation_scopes() {
        let doc = serde_json::json!({
            "openapi": "3.0.1",
            "components": {"securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "OAuth2": {"type": "oauth2", "flows": {"authorizationCode": {"scopes": {
                    "read:a": "Read A.", "write:a": "Write A."
                }}}}
            }},
            "paths": {
                "/a/{id}": {
                    "get": {"security": [{"basicAuth": []}, {"OAuth2": ["read:a"]}],
                            "x-atlassian-oauth2-scopes": [{"state": "Beta", "scheme": "OAuth2", "scopes": ["read:a:granular"]}]},
                    "parameters": []
                }
            }
        });
        let scopes = scopes_from_openapi(&doc).unwrap_or_default();
        let names: Vec<_> = scopes.iter().map(|s| s.scope.as_str()).collect();
        assert_eq!(names, vec!["read:a", "write:a", "read:a:granular"]);
        assert_eq!(scopes[0].description, "Read A.");
        assert_eq!(scopes[2].description, "");
    }

    #[test]
    fn refuses_non_openapi() {
        assert_eq!(
            scopes_from_openapi(&serde_json::json!({"swagger": "2.0"})),
            Err(CatalogError::NotOpenApi)
        );
    }
}
