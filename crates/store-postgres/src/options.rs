use std::time::Duration;

/// How [`PgStore::connect`](crate::PgStore::connect) sets up the pool and the schema.
///
/// ```
/// use std::time::Duration;
/// use buzzer_store_postgres::PgOptions;
///
/// let opts = PgOptions {
///     schema: Some("buzzer".into()),
///     max_connections: 32,
///     ..PgOptions::default()
/// };
/// assert_eq!(opts.acquire_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// The schema that holds Buzzer's tables; created if missing, and set as the `search_path`
    /// of every connection of the store. Lowercase letters, digits and `_`, at most 48
    /// characters. `None` (the default): a `schema=NAME` parameter of the URL if there is one,
    /// else the connection's own `search_path` (normally `public`, or whatever the URL's
    /// `options=-csearch_path%3D…` says).
    pub schema: Option<String>,
    /// Most connections the pool opens (the change listener has one more of its own).
    /// Default 16.
    pub max_connections: usize,
    /// How long a call waits for a free pooled connection (or a new one) before it fails with
    /// [`StoreError::Unavailable`](buzzer_store::StoreError::Unavailable). Default 5 s.
    pub acquire_timeout: Duration,
    /// How long opening one connection may take. Default 5 s.
    pub connect_timeout: Duration,
    /// Apply pending migrations at connect (default `true`). With `false`, connect refuses a
    /// schema that is not at this build's version, and `buzzer migrate` brings it there.
    pub migrate: bool,
    /// How often the change listener checks that its connection is alive (a connection cut by
    /// a firewall or a proxy may never say so). Default 5 s.
    pub listener_check: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: None,
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            migrate: true,
            listener_check: Duration::from_secs(5),
        }
    }
}
