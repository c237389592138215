//! The cron service: on the leader, fires each schedule's due tick and sleeps until the next
//! one (or `max_idle`, to notice schedules written on other nodes, or a nudge from a `PUT`).

use crate::{Engine, ServiceEvent};

pub(super) async fn run(engine: Engine) {
    loop {
        let due = if engine.is_leader() {
            engine.cron_fire_due().await.map(|(fired, next)| {
                if fired > 0 {
                    engine.emit(ServiceEvent::CronFired(fired));
                }
                next
            })
        } else {
            Ok(None)
        };
        let keep_going = match due {
            Ok(due) => {
                engine
                    .sleep_until_due(due, &engine.inner.cron_nudge, None)
                    .await
            }
            Err(e) => engine.pause_after_error("cron", e).await,
        };
        if !keep_going {
            return;
        }
    }
}
