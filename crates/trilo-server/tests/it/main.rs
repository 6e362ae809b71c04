//! The one integration-test binary (STYLE "Tests"): every HTTP-level test is a module here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod account;
mod account_browser;
mod api_v1;
mod api_v1_webhooks;
mod authorize;
mod browser;
mod browser_clients;
mod cli;
mod compat;
mod confirm;
mod conformance;
mod consent;
mod console;
mod console_webhooks;
mod flow;
mod gateway;
mod grants;
mod invitations;
mod janitor;
mod keys;
mod limits;
mod listener;
mod malformed;
mod metrics;
mod oidc;
mod operator;
mod pages;
mod pages_browser;
mod password_reset;
mod process;
mod refresh;
mod revocation;
mod rotation_crash;
mod rotation_races;
mod site_admin;
mod site_admin_browser;
mod snapshots;
mod token;
mod webhooks;
