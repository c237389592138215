//! Answering a transaction's commands once it has ended, committed or not.

use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::{Command, Commands, Counters, Group, Syncer, sync::fail_all};
use crate::checkpointer::Nudge;

/// Where a transaction's commands go once it ends.
pub(super) struct Ends<'a> {
    pub(super) counters: &'a Counters,
    pub(super) syncer: Option<&'a Syncer>,
    pub(super) checkpoints: Option<&'a mut Nudge>,
}

impl Ends<'_> {
    /// Commits the open transaction, whose commands began at `changes` (`total_changes`);
    /// `urgent`: a caller waits for it to be on disk ([`Group::urgent`]).
    pub(super) fn commit(
        &mut self,
        conn: &Connection,
        commands: Commands,
        changes: u64,
        urgent: bool,
    ) {
        let outcome = conn
            .prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]))
            .map(|_| true);
        self.finish(conn, commands, outcome, changes, urgent);
    }

    /// Answers a transaction's commands by how it ended: `Ok(true)` committed, `Ok(false)` its
    /// one command failed and nothing was left to commit, `Err` nothing of it is committed.
    pub(super) fn finish(
        &mut self,
        conn: &Connection,
        mut commands: Commands,
        outcome: rusqlite::Result<bool>,
        changes: u64,
        urgent: bool,
    ) {
        match outcome {
            Ok(committed) => {
                if committed {
                    self.counters.commits.fetch_add(1, Ordering::Relaxed);
                }
                commands.iter_mut().for_each(|c| c.committed());
                let wrote = committed && conn.total_changes() != changes;
                match self.syncer {
                    Some(syncer) => syncer.push(Group {
                        commands,
                        wrote,
                        urgent: wrote && urgent,
                    }),
                    None => commands.into_iter().for_each(|c| c.reply()),
                }
                if committed && let Some(checkpoints) = &mut self.checkpoints {
                    checkpoints.committed(conn);
                }
            }
            Err(e) => {
                self.counters.failed_groups.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, commands = commands.len(), "SQLite group commit failed");
                self.fail(conn, commands, &format!("the write was not committed: {e}"));
            }
        }
    }

    /// Rolls back what is left of the transaction and fails every command of it.
    pub(super) fn fail(
        &mut self,
        conn: &Connection,
        commands: impl IntoIterator<Item = Box<dyn Command>>,
        message: &str,
    ) {
        if !conn.is_autocommit()
            && let Err(e) = conn.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "SQLite rollback failed");
        }
        fail_all(commands, message);
    }
}
