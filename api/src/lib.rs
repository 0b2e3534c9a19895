//! Esqase's HTTP API (axum) and the `esqase` binary's commands.

pub mod app;
pub mod caller;
pub mod config;
pub mod cors;
pub mod deadline;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod progress;
pub mod rate_limit;
pub mod requests;
pub mod response;
pub mod routes;
pub mod serve;
pub mod web;
