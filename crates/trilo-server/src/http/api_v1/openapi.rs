//! The OpenAPI 3.1 document of `/api/v1`, written by hand with `serde_json` and built from
//! [`ROUTES`], so every route the router serves is described (and nothing else).

use serde_json::{Map, Value, json};
use trilo_core::services::console::{
    DEFAULT_PAGE_SIZE, MAX_CALLBACK_URLS, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_PAGE_SIZE,
    MAX_SEARCH_CHARS, STATE_PLACEHOLDER,
};
use trilo_protocol::webhooks::{
    DELIVERY_ID_HEADER, EVENT_ID_HEADER, EVENT_NAME_HEADER, EVENT_TYPES, SIGNATURE_HEADER,
};

use super::error::Code;
use super::webhooks::{DEFAULT_DELIVERIES, MAX_DELIVERIES};
use super::{Operation, ROUTES, Route};
use crate::http::common::SESSION_COOKIE;

pub const OPENAPI_VERSION: &str = "3.1.0";

/// The whole document; `server` is the auth host's base URL.
pub fn document(server: &str) -> Value {
    let mut paths = Map::new();
    for route in &ROUTES {
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(route.verb.as_str().to_ascii_lowercase(), operation(route));
        }
    }
    json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "trilo developer console API",
            "version": "1",
            "description": description(),
        },
        "servers": [{ "url": server.trim_end_matches('/') }],
        "security": [{ "session": [] }, { "apiToken": [] }],
        "paths": paths,
        "components": components(),
    })
}

fn description() -> String {
    let mut text = String::from(
        "Manage your OAuth 2.0 (3LO) apps: everything the developer console does.\n\n\
         **Authentication**: the console's session cookie, or HTTP Basic with your email \
         and an API token. An `Authorization` header, when sent, alone decides; OAuth \
         access tokens are refused.\n\n\
         **CSRF**: writes (POST, PATCH, DELETE) from a browser on another site are refused \
         (`Sec-Fetch-Site` cross-site or same-site, or an `Origin` that is not this \
         server). Writes authenticated by the session cookie must also send \
         `X-Requested-With: XMLHttpRequest`. Bodies must be `application/json`.\n\n\
         **Apps of other developers** are answered 404, never 403.\n\n\
         **Errors** are `{\"code\": <HTTP status>, \"message\": \"<prefix>: <detail>\"}`:\n\n\
         | status | message prefix | when |\n| --- | --- | --- |\n",
    );
    for code in Code::ALL {
        text.push_str(&format!(
            "| {} | {} | {} |\n",
            code.status().as_u16(),
            code.prefix(),
            code.meaning()
        ));
    }
    text
}

fn reference(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

fn schema(name: &str) -> Value {
    reference("schemas", name)
}

fn ok(description: &str, body: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema(body) } },
    })
}

fn json_body(name: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": schema(name) } },
    })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

/// The responses every authenticated operation may give, plus `extra` error responses.
fn responses(success: (&str, Value), extra: &[&str]) -> Value {
    let mut map = Map::new();
    map.insert(success.0.to_owned(), success.1);
    for name in ["Unauthorized", "Unavailable"].iter().chain(extra) {
        let status = match *name {
            "BadRequest" => "400",
            "Unauthorized" => "401",
            "Forbidden" => "403",
            "NotFound" => "404",
            "Conflict" => "409",
            "UnsupportedMediaType" => "415",
            _ => "503",
        };
        map.insert(status.to_owned(), reference("responses", name));
    }
    Value::Object(map)
}

/// Extra errors of a write with a JSON body.
const WRITE: [&str; 3] = ["BadRequest", "Forbidden", "UnsupportedMediaType"];

fn operation(route: &Route) -> Value {
    let id_param = reference("parameters", "AppId");
    let requested_with = reference("parameters", "RequestedWith");
    let webhook_id = reference("parameters", "WebhookId");
    let mut op = match route.operation {
        Operation::GetOpenApi => json!({
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": { "200": {
                "description": "The OpenAPI document",
                "content": { "application/json": { "schema": { "type": "object" } } },
            } },
        }),
        Operation::ListProducts => json!({
            "operationId": "listProducts",
            "summary": "The APIs an app can add, with their scopes and descriptions",
            "responses": responses(("200", ok("The catalog", "Catalog")), &[]),
        }),
        Operation::ListApps => json!({
            "operationId": "listApps",
            "summary": "My apps, in the order they were created; search by name",
            "parameters": [
                query("search", "Case-insensitive part of the name",
                    json!({ "type": "string", "maxLength": MAX_SEARCH_CHARS })),
                query("limit", "Apps per page",
                    json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                            "default": DEFAULT_PAGE_SIZE })),
                query("cursor", "`next_cursor` of the previous page", json!({ "type": "string" })),
            ],
            "responses": responses(("200", ok("A page of apps", "AppList")), &["BadRequest"]),
        }),
        Operation::CreateApp => json!({
            "operationId": "createApp",
            "summary": "Create an app; the client secret is in this answer only",
            "parameters": [requested_with],
            "requestBody": json_body("CreateApp"),
            "responses": responses(("201", ok("Created", "CreatedApp")), &WRITE),
        }),
        Operation::GetApp => json!({
            "operationId": "getApp",
            "summary": "The app's overview",
            "parameters": [id_param],
            "responses": responses(("200", ok("The app", "App")), &["NotFound"]),
        }),
        Operation::UpdateApp => json!({
            "operationId": "updateApp",
            "summary": "Change settings, callback URLs, scopes or distribution",
            "description": "Fields left out stay as they are; `avatar_url: null` removes \
                            the avatar. `new_scopes` lists scopes this change added: users \
                            who consented before must consent again to them.",
            "parameters": [id_param, requested_with],
            "requestBody": json_body("UpdateApp"),
            "responses": responses(("200", ok("The app", "UpdatedApp")), &[&WRITE[..], &["NotFound"]].concat()),
        }),
        Operation::DeleteApp => json!({
            "operationId": "deleteApp",
            "summary": "Delete the app and revoke everything it holds",
            "description": "Refused (409, with `sites`) while the app is installed on a site.",
            "parameters": [id_param, requested_with],
            "responses": responses(("204", json!({ "description": "Deleted" })),
                &["Forbidden", "NotFound", "Conflict"]),
        }),
        Operation::GetAuthorizationUrl => json!({
            "operationId": "getAuthorizationUrl",
            "summary": "The ready-made authorization URL for chosen scopes",
            "parameters": [
                id_param,
                query("scope", "Space-separated scopes (default: all the app added)",
                    json!({ "type": "string" })),
                query("redirect_uri", "One of the app's callback URLs (default: the first)",
                    json!({ "type": "string" })),
            ],
            "responses": responses(("200", ok("The URL", "AuthorizationUrl")),
                &["BadRequest", "NotFound"]),
        }),
        Operation::RotateSecret => json!({
            "operationId": "rotateSecret",
            "summary": "Issue a new client secret; the previous one stays valid for `grace`",
            "parameters": [id_param, requested_with],
            "requestBody": json_body("RotateSecret"),
            "responses": responses(("200", ok("The new secret, shown once", "RotatedSecret")),
                &[&WRITE[..], &["NotFound"]].concat()),
        }),
        Operation::ReviewApp => json!({
            "operationId": "reviewApp",
            "summary": "Mark any developer's app reviewed or not (operators only)",
            "description": "Operators are the accounts named in the configuration's \
                            `operators`; nobody reviews their own app. Others get 403 \
                            whatever the id.",
            "parameters": [id_param, requested_with],
            "requestBody": json_body("Review"),
            "responses": responses(("200", ok("The app", "App")),
                &[&WRITE[..], &["NotFound"]].concat()),
        }),
        Operation::ListWebhooks => json!({
            "operationId": "listWebhooks",
            "summary": "The app's webhooks, in the order they were created",
            "parameters": [id_param],
            "responses": responses(("200", ok("The webhooks", "WebhookList")), &["NotFound"]),
        }),
        Operation::CreateWebhook => json!({
            "operationId": "createWebhook",
            "summary": "Subscribe a URL to events; the answer holds the signing secret",
            "description": format!(
                "Each event the app may receive (installed on the site, a member's grant \
                 covers the event's data, no data security policy blocks it) is POSTed to \
                 `url` as JSON, signed in `{SIGNATURE_HEADER}` (see `WebhookWithSecret`). \
                 A refused URL or event name is 400 `Invalid request`."
            ),
            "parameters": [id_param, requested_with],
            "requestBody": json_body("CreateWebhook"),
            "responses": responses(("201", ok("Created", "WebhookWithSecret")),
                &[&WRITE[..], &["NotFound"]].concat()),
        }),
        Operation::GetWebhook => json!({
            "operationId": "getWebhook",
            "summary": "One webhook of the app, with its signing secret",
            "parameters": [id_param, webhook_id],
            "responses": responses(("200", ok("The webhook", "WebhookWithSecret")),
                &["NotFound"]),
        }),
        Operation::DeleteWebhook => json!({
            "operationId": "deleteWebhook",
            "summary": "Delete a webhook; its pending deliveries are dropped",
            "parameters": [id_param, webhook_id, requested_with],
            "responses": responses(("204", json!({ "description": "Deleted" })),
                &["Forbidden", "NotFound"]),
        }),
        Operation::ListDeliveries => json!({
            "operationId": "listDeliveries",
            "summary": "The app's recent deliveries, newest first",
            "parameters": [
                id_param,
                query("limit", "Deliveries to list",
                    json!({ "type": "integer", "minimum": 1, "maximum": MAX_DELIVERIES,
                            "default": DEFAULT_DELIVERIES })),
            ],
            "responses": responses(("200", ok("The deliveries", "DeliveryList")),
                &["BadRequest", "NotFound"]),
        }),
        Operation::Redeliver => json!({
            "operationId": "redeliver",
            "summary": "Send a delivery again now, with a fresh count of attempts",
            "parameters": [id_param, reference("parameters", "DeliveryId"), requested_with],
            "responses": responses(
                ("202", json!({ "description": "Accepted: the delivery is pending again" })),
                &["Forbidden", "NotFound"]),
        }),
    };
    let tag = match route.operation {
        Operation::ListWebhooks
        | Operation::CreateWebhook
        | Operation::GetWebhook
        | Operation::DeleteWebhook
        | Operation::ListDeliveries
        | Operation::Redeliver => "webhooks",
        _ => "apps",
    };
    if let Value::Object(map) = &mut op {
        map.insert("tags".into(), json!([tag]));
    }
    op
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema("Error") } },
    })
}

fn components() -> Value {
    let string = json!({ "type": "string" });
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let time = json!({ "type": "string", "format": "date-time" });
    let distribution = json!({ "type": "string", "enum": ["private", "sharing"],
        "description": "`sharing`: anyone with the authorization URL may authorize the app \
                        (\"Sharing\"); `private`: only its developer (\"Not sharing\")" });
    let scope_description = json!({
        "type": "object", "required": ["scope", "description"],
        "properties": { "scope": string, "description": string },
    });
    let mut unauthorized = error_response("No valid session cookie or Basic email:api-token");
    unauthorized["headers"] = json!({ "WWW-Authenticate": { "schema": string } });
    let mut components = json!({
        "securitySchemes": {
            "session": { "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                "description": "The console's login session; writes also need X-Requested-With" },
            "apiToken": { "type": "http", "scheme": "basic",
                "description": "Your email as the user name and an API token as the password" },
        },
        "parameters": {
            "AppId": { "name": "id", "in": "path", "required": true,
                "description": "The app id or the client id", "schema": string },
            "WebhookId": { "name": "webhookId", "in": "path", "required": true,
                "description": "A webhook's id (`id` of `Webhook`)", "schema": string },
            "DeliveryId": { "name": "deliveryId", "in": "path", "required": true,
                "description": "A delivery's id (`id` of `Delivery`)", "schema": string },
            "RequestedWith": { "name": "X-Requested-With", "in": "header", "required": false,
                "description": "Required (any value, e.g. XMLHttpRequest) when authenticated \
                                by the session cookie", "schema": string },
        },
        "responses": {
            "BadRequest": error_response("Malformed JSON or an invalid field"),
            "Unauthorized": unauthorized,
            "Forbidden": error_response("A cross-site write, or not allowed"),
            "NotFound": error_response(
                "No such app for this developer, or no such webhook or delivery of it"),
            "Conflict": {
                "description": "The app is installed; `sites` lists where",
                "content": { "application/json": { "schema": schema("Error") } },
            },
            "UnsupportedMediaType": error_response("The body is not application/json"),
            "Unavailable": error_response("The database cannot be reached"),
        },
        "schemas": {
            "Error": {
                "type": "object", "required": ["code", "message"],
                "properties": {
                    "code": { "type": "integer", "description": "The HTTP status" },
                    "message": { "type": "string",
                        "description": "A stable prefix (see the table above), `: `, a detail" },
                    "sites": { "type": "array", "items": schema("InstalledSite") },
                },
            },
            "InstalledSite": {
                "type": "object", "required": ["cloud_id", "name", "url"],
                "properties": { "cloud_id": string, "name": string, "url": string },
            },
            "AppSummary": {
                "type": "object",
                "required": ["id", "client_id", "name", "distribution", "distribution_status",
                             "review_state", "updated_at"],
                "properties": {
                    "id": string, "client_id": string, "name": string,
                    "distribution": distribution,
                    "distribution_status": { "type": "string", "enum": ["Sharing", "Not sharing"] },
                    "review_state": { "type": "string", "enum": ["unreviewed", "approved"] },
                    "updated_at": time,
                },
            },
            "AppList": {
                "type": "object", "required": ["apps", "total", "next_cursor"],
                "properties": {
                    "apps": { "type": "array", "items": schema("AppSummary") },
                    "total": { "type": "integer", "description": "Apps matching the search" },
                    "next_cursor": { "type": ["string", "null"],
                        "description": "Pass as `cursor` for the next page; null on the last" },
                },
            },
            "Api": {
                "type": "object", "required": ["product", "name", "scopes"],
                "properties": { "product": string, "name": string,
                    "scopes": { "type": "array", "items": schema("ScopeDescription") } },
            },
            "ScopeDescription": scope_description,
            "App": {
                "type": "object",
                "required": ["id", "client_id", "name", "description", "avatar_url",
                             "distribution", "distribution_status", "review_state",
                             "authorization_type", "client_type", "callback_urls", "scopes",
                             "apis", "created_at", "updated_at"],
                "properties": {
                    "id": string, "client_id": string, "name": string, "description": string,
                    "avatar_url": { "type": ["string", "null"] },
                    "distribution": distribution,
                    "distribution_status": { "type": "string", "enum": ["Sharing", "Not sharing"] },
                    "review_state": { "type": "string", "enum": ["unreviewed", "approved"] },
                    "authorization_type": { "type": "string", "const": "OAuth 2.0 (3LO)" },
                    "client_type": { "type": "string", "enum": ["confidential", "public"] },
                    "callback_urls": strings,
                    "web_origins": strings,
                    "scopes": strings,
                    "apis": { "type": "array", "items": schema("Api") },
                    "created_at": time, "updated_at": time,
                },
            },
            "CreatedApp": {
                "allOf": [schema("App"), {
                    "type": "object", "required": ["client_secret"],
                    "properties": { "client_secret": { "type": ["string", "null"],
                        "description": "Shown only now; null for public clients" } },
                }],
            },
            "UpdatedApp": {
                "allOf": [schema("App"), {
                    "type": "object", "required": ["new_scopes"],
                    "properties": { "new_scopes": strings },
                }],
            },
            "CreateApp": {
                "type": "object", "required": ["name"], "additionalProperties": false,
                "properties": {
                    "name": { "type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS },
                    "description": { "type": "string", "maxLength": MAX_DESCRIPTION_CHARS },
                    "avatar_url": { "type": ["string", "null"], "format": "uri",
                        "description": "An https URL" },
                    "callback_urls": { "type": "array", "items": string,
                        "maxItems": MAX_CALLBACK_URLS,
                        "description": "https, or http on loopback, or a private-use scheme; \
                                        no fragment, no user information, no wildcard" },
                    "scopes": { "type": "array", "items": string,
                        "description": "Identity scopes or scopes of a product's catalog" },
                    "distribution": distribution,
                    "client_type": { "type": "string", "enum": ["confidential", "public"],
                        "default": "confidential" },
                },
            },
            "UpdateApp": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "name": { "type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS },
                    "description": { "type": "string", "maxLength": MAX_DESCRIPTION_CHARS },
                    "avatar_url": { "type": ["string", "null"], "format": "uri" },
                    "callback_urls": { "type": "array", "items": string,
                        "maxItems": MAX_CALLBACK_URLS },
                    "web_origins": { "type": "array", "items": string,
                        "maxItems": MAX_CALLBACK_URLS,
                        "description": "Origins (https://app.example.com) of browser pages \
                                        that call the token and revocation endpoints" },
                    "scopes": strings,
                    "distribution": distribution,
                },
            },
            "AuthorizationUrl": {
                "type": "object",
                "required": ["authorization_url", "scope", "redirect_uri", "state_placeholder"],
                "properties": {
                    "authorization_url": string, "scope": string, "redirect_uri": string,
                    "state_placeholder": { "type": "string", "const": STATE_PLACEHOLDER,
                        "description": "Replace with a value bound to the user's session" },
                },
            },
            "RotateSecret": {
                "type": "object", "required": ["grace"], "additionalProperties": false,
                "properties": { "grace": { "type": "string", "pattern": "^[0-9]+[smhd]$",
                    "description": "How long the previous secret stays valid, at most 7d; \
                                    0s ends it now", "examples": ["24h"] } },
            },
            "RotatedSecret": {
                "type": "object",
                "required": ["client_secret", "previous_secret_valid_until", "grace_seconds"],
                "properties": {
                    "client_secret": string,
                    "previous_secret_valid_until": time,
                    "grace_seconds": { "type": "integer" },
                },
            },
            "Review": {
                "type": "object", "required": ["review_state"], "additionalProperties": false,
                "properties": { "review_state": { "type": "string",
                    "enum": ["approved", "unreviewed"] } },
            },
            "Catalog": {
                "type": "object", "required": ["identity_scopes", "products"],
                "properties": {
                    "identity_scopes": strings,
                    "products": { "type": "array", "items": schema("Api") },
                },
            },
        },
    });
    if let Some(Value::Object(schemas)) = components.get_mut("schemas") {
        schemas.extend(webhook_schemas());
    }
    components
}

/// The schemas of the webhook operations.
fn webhook_schemas() -> Map<String, Value> {
    let string = json!({ "type": "string" });
    let time = json!({ "type": "string", "format": "date-time" });
    let event_name = json!({ "type": "string",
        "enum": EVENT_TYPES.iter().map(|e| e.name).collect::<Vec<_>>() });
    let schemas = json!({
        "EventName": event_name,
        "Webhook": {
            "type": "object", "required": ["id", "url", "events", "created_at"],
            "properties": {
                "id": string,
                "url": { "type": "string", "format": "uri" },
                "events": { "type": "array", "items": schema("EventName") },
                "created_at": time,
            },
        },
        "WebhookWithSecret": {
            "allOf": [schema("Webhook"), {
                "type": "object", "required": ["secret"],
                "properties": { "secret": { "type": "string",
                    "description": signature_description() } },
            }],
        },
        "WebhookList": {
            "type": "object", "required": ["webhooks"],
            "properties": { "webhooks": { "type": "array", "items": schema("Webhook") } },
        },
        "CreateWebhook": {
            "type": "object", "required": ["url", "events"], "additionalProperties": false,
            "properties": {
                "url": { "type": "string", "format": "uri",
                    "description": "An https URL without user information or fragment \
                                    (http to 127.0.0.1, ::1 or localhost only where the \
                                    server allows it for development)" },
                "events": { "type": "array", "items": schema("EventName"),
                    "minItems": 1, "maxItems": EVENT_TYPES.len(),
                    "description": "Event names; a repeated name counts once" },
            },
        },
        "Delivery": {
            "type": "object",
            "required": ["id", "event_id", "event", "webhook_id", "url", "status",
                         "attempts", "next_attempt_at", "last_status_code", "last_error",
                         "created_at", "finished_at"],
            "properties": {
                "id": string,
                "event_id": { "type": "string", "description": format!(
                    "Also sent as `{EVENT_ID_HEADER}`; the delivery's own id is sent as \
                     `{DELIVERY_ID_HEADER}`") },
                "event": { "type": "string", "description": format!(
                    "The event's name, also sent as `{EVENT_NAME_HEADER}`") },
                "webhook_id": string,
                "url": { "type": "string",
                    "description": "Where it is sent: the webhook's URL, plus \
                                    `triggeredByUser` when the event has one" },
                "status": { "type": "string", "enum": ["pending", "delivered", "dead"],
                    "description": "`dead`: every attempt failed; redeliver to try again" },
                "attempts": { "type": "integer", "description": "Attempts started so far" },
                "next_attempt_at": { "type": ["string", "null"], "format": "date-time",
                    "description": "When it is tried next; null once delivered or dead" },
                "last_status_code": { "type": ["integer", "null"],
                    "description": "The receiver's status code of the last attempt" },
                "last_error": { "type": ["string", "null"],
                    "description": "Why the last attempt failed" },
                "created_at": time,
                "finished_at": { "type": ["string", "null"], "format": "date-time" },
            },
        },
        "DeliveryList": {
            "type": "object", "required": ["deliveries"],
            "properties": { "deliveries": { "type": "array", "items": schema("Delivery") } },
        },
    });
    match schemas {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// How a receiver checks a delivery, for the secret's description.
fn signature_description() -> String {
    format!(
        "The webhook's signing secret. Each delivery carries \
         `{SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex>`, where `<hex>` is the \
         HMAC-SHA256, keyed with this secret, of `<t>.<body>` (the timestamp, a dot, then \
         the raw body). Compare in constant time and refuse old timestamps."
    )
}
