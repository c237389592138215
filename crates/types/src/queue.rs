use serde::{Deserialize, Serialize};

use crate::JobState;

/// A queue with its job counts, as `GET /v1/queues` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueInfo {
    pub name: String,
    pub paused: bool,
    pub counts: StateCounts,
    /// Age of the oldest job that is waiting to be fetched; 0 when none is.
    pub oldest_available_age_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub scheduled: u64,
    pub available: u64,
    pub running: u64,
    pub retryable: u64,
    pub completed: u64,
    pub dead: u64,
    pub cancelled: u64,
}

impl StateCounts {
    pub fn get_mut(&mut self, state: JobState) -> &mut u64 {
        match state {
            JobState::Scheduled => &mut self.scheduled,
            JobState::Available => &mut self.available,
            JobState::Running => &mut self.running,
            JobState::Retryable => &mut self.retryable,
            JobState::Completed => &mut self.completed,
            JobState::Dead => &mut self.dead,
            JobState::Cancelled => &mut self.cancelled,
        }
    }

    pub fn get(&self, state: JobState) -> u64 {
        let mut copy = *self;
        *copy.get_mut(state)
    }
}
