//! Leader election: one row per role in `buzzer_leader`, held by the node whose term
//! (`expires_at`, the database's clock) has not run out. A node takes the row when it is free
//! or expired and keeps it by renewing before the term ends; the engine's elector renews every
//! third of the ttl, so two renewals may fail before another node can take over.
//!
//! A row with a ttl rather than a session advisory lock: a session lock lives on one
//! connection, which a pool hands to anyone and recycles at will, and it vanishes silently
//! with the connection, so a node could keep believing it leads. The row is checked on every
//! renewal against the database's clock, survives reconnects, and shows in a plain `SELECT`
//! who leads.

use buzzer_store::LeaderElect;

use crate::{
    clock::{ms, now},
    db::Db,
    error::Error,
};

/// The role the background services run under.
const SERVICES: &str = "services";

/// Takes the row if it is free or expired, or renews it if it is ours; returns a row only if
/// this node holds it afterwards. Two nodes racing for an expired row serialise on its row
/// lock, and the loser's `WHERE` sees the winner's fresh term.
const ELECT: &str = concat!(
    "INSERT INTO buzzer_leader AS l (name, node_id, elected_at, expires_at) \
     VALUES ($1, $2, ",
    now!(),
    ", ",
    now!(),
    " + $3::int8 * interval '1 millisecond') \
     ON CONFLICT (name) DO UPDATE SET node_id = excluded.node_id, \
       elected_at = CASE WHEN l.node_id = excluded.node_id THEN l.elected_at \
                         ELSE excluded.elected_at END, \
       expires_at = excluded.expires_at \
     WHERE l.node_id = excluded.node_id OR l.expires_at < ",
    now!(),
    " RETURNING l.node_id"
);

const RESIGN: &str = "DELETE FROM buzzer_leader WHERE name = $1 AND node_id = $2";

pub(crate) async fn attempt_elect(db: &impl Db, params: &LeaderElect) -> Result<bool, Error> {
    let rows = db
        .rows(ELECT, &[&SERVICES, &params.node_id, &ms(params.ttl_ms)])
        .await?;
    Ok(!rows.is_empty())
}

pub(crate) async fn resign(db: &impl Db, node_id: &str) -> Result<(), Error> {
    db.exec(RESIGN, &[&SERVICES, &node_id]).await?;
    Ok(())
}
