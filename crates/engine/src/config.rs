use std::time::Duration;

use buzzer_types::Backoff;

/// Engine defaults and service timings. Every field has a documented default; tests shorten
/// the timings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Attempts a job gets unless it says otherwise (20).
    pub default_max_attempts: i32,
    /// Backoff a job gets unless it says otherwise (1 s initial, factor 2, 1 h max).
    pub default_backoff: Backoff,
    /// Lease of a fetch that names none (30 s).
    pub default_lease_ms: u64,
    /// How long completed and cancelled jobs are kept (24 h).
    pub finished_retention: Duration,
    /// How long dead jobs are kept (30 days).
    pub dead_retention: Duration,
    /// How often the pruner runs (60 s).
    pub prune_interval: Duration,
    /// Rows the pruner deletes per transaction, so pruning never holds the writer for long (1000).
    pub prune_batch: u32,
    /// The longest the scheduler and rescuer sleep without a timer or a nudge (1 s). They
    /// normally wake exactly when the next job is due; this only bounds how late they notice
    /// work written by another node.
    pub max_idle: Duration,
    /// This process's id in leader election (random unless set).
    pub node_id: String,
    /// How long a leader's term lasts without renewal (5 s); it renews every third of that.
    /// With a multi-node store, a dead leader's services move to another node within it.
    pub leader_ttl: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_max_attempts: 20,
            default_backoff: Backoff::default(),
            default_lease_ms: 30_000,
            finished_retention: Duration::from_secs(24 * 3600),
            dead_retention: Duration::from_secs(30 * 24 * 3600),
            prune_interval: Duration::from_secs(60),
            prune_batch: 1_000,
            max_idle: Duration::from_secs(1),
            node_id: random_node_id(),
            leader_ttl: Duration::from_secs(5),
        }
    }
}

fn random_node_id() -> String {
    format!("node-{:016x}", rand::random::<u64>())
}
