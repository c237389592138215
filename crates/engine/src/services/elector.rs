use std::sync::atomic::Ordering;

use buzzer_store::LeaderElect;

use crate::{Engine, ServiceEvent};

/// Renews (or seeks) leadership every third of the ttl, so a renewal can fail twice before the
/// term runs out. A store error counts as not leading: a node that cannot reach the database
/// must not believe it still runs the services.
pub(super) async fn run(engine: Engine) {
    let config = &engine.inner.config;
    let params = LeaderElect {
        node_id: config.node_id.clone(),
        ttl_ms: config.leader_ttl.as_millis() as u64,
    };
    let renew_every = config.leader_ttl / 3;
    loop {
        let leading = match engine
            .inner
            .store
            .leader_attempt_elect(params.clone())
            .await
        {
            Ok(leading) => leading,
            Err(e) => {
                tracing::warn!(error = %e, "leader election failed; not running the services");
                false
            }
        };
        let was = engine.inner.leader.swap(leading, Ordering::AcqRel);
        if leading != was {
            tracing::info!(node = %params.node_id, leading, "leadership changed");
            if leading {
                // Start at once rather than at the end of the services' idle sleep.
                engine.inner.scheduler_nudge.notify_one();
                engine.inner.rescuer_nudge.notify_one();
            }
            engine.emit(ServiceEvent::Leader(leading));
        }
        tokio::select! {
            _ = tokio::time::sleep(renew_every) => {}
            _ = engine.inner.closing.cancelled() => break,
        }
    }
    if engine.inner.leader.swap(false, Ordering::AcqRel)
        && let Err(e) = engine.inner.store.leader_resign(&params.node_id).await
    {
        tracing::warn!(error = %e, "could not resign leadership; another node takes over after the ttl");
    }
}
