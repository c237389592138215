//! Operator commands: each one is a few calls to a running server's HTTP API.

pub mod dlq;
pub mod jobs;
pub mod queues;
pub mod schedules;
pub mod topics;

use crate::http_client::ApiClient;

/// What every operator command needs: the server to talk to and how to print.
#[derive(Debug)]
pub struct Context {
    pub client: ApiClient,
    /// One JSON document on stdout instead of tables.
    pub json: bool,
}
