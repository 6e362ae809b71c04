//! trilo-server: the HTTP server, its pages, configuration and the `trilo` CLI.

pub mod app;
#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod housekeeping;
pub mod http;
pub mod keyfile;
pub mod listener;
pub mod mail;
pub mod state;
pub mod views;
pub mod webhooks;
