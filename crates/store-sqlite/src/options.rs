/// How [`SqliteStore::open`](crate::SqliteStore::open) sets up the database.
///
/// ```
/// use buzzer_store_sqlite::{SqliteOptions, Synchronous};
///
/// let opts = SqliteOptions { synchronous: Synchronous::Normal, ..SqliteOptions::default() };
/// assert_eq!(opts.read_connections, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// When a commit counts as done. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// Connections kept for reads (lists, counts, the scheduler's and rescuer's look-ups), which
    /// run beside the writer without waiting for it. At least one is opened. Default 4.
    pub read_connections: usize,
    /// Run `PRAGMA quick_check` at open, so a damaged file fails at start-up instead of in the
    /// middle of serving. It reads the whole file: about a second per few hundred MB. Default
    /// `true`; without it, open still reads the schema, which catches a file that is not a
    /// SQLite database at all.
    pub quick_check: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            read_connections: 4,
            quick_check: true,
        }
    }
}

/// SQLite's `synchronous` setting, in WAL mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit is fsynced before the caller hears "done": an acknowledged change survives
    /// a process crash and a power loss or OS crash. The fsync runs on its own thread while
    /// the writer commits the next group, and one fsync covers every group committed before it.
    #[default]
    Full,
    /// Commits are written to the WAL but fsynced only at checkpoints. A process crash
    /// (kill -9) still loses nothing acknowledged, because the OS holds the written pages; a
    /// **power loss or OS crash can lose the last transactions that were acknowledged** (the
    /// database itself stays consistent). Faster on disks with slow fsync.
    Normal,
}
