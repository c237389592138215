//! The store conformance suite: the job lifecycle rules of `DESIGN.md` ("The job lifecycle",
//! rules 1–8), written once as tests that every store runs unchanged.
//!
//! A store crate implements [`StoreFactory`] (how to make an isolated database and open a
//! store over it) in its `tests/conformance.rs` and calls [`conformance_tests!`], which expands
//! to one `#[tokio::test]` per check, so each is reported by name and they run in parallel:
//!
//! ```ignore
//! // crates/store-sqlite/tests/conformance.rs
//! use std::sync::Arc;
//! use buzzer_store::Store;
//! use buzzer_store_sqlite::{SqliteOptions, SqliteStore};
//! use buzzer_store_tests::StoreFactory;
//!
//! struct Sqlite;
//!
//! impl StoreFactory for Sqlite {
//!     type Database = tempfile::TempDir;
//!
//!     async fn create(&self) -> tempfile::TempDir {
//!         tempfile::tempdir().unwrap()
//!     }
//!
//!     async fn open(&self, dir: &tempfile::TempDir) -> Arc<dyn Store> {
//!         let path = dir.path().join("buzzer.db");
//!         Arc::new(SqliteStore::open(path, SqliteOptions::default()).unwrap())
//!     }
//! }
//!
//! buzzer_store_tests::conformance_tests!(Sqlite);
//! ```
//!
//! Most checks drive the lifecycle through the [`Engine`](buzzer_engine::Engine) (retry policy,
//! wake-ups and services live there, once), and call [`Store`] methods directly where a rule is
//! about the store itself (lease guards, prune limits, atomic batches). They wait on events
//! (long-poll fetches, job watches, service events) and use sleeps only to let time pass (a
//! lease run out, a retention period end).
//!
//! | module | rule |
//! |---|---|
//! | [`at_least_once`] | 1: nothing acknowledged is lost, batches are all or nothing |
//! | [`leases`] | 2: fresh tokens, heartbeats, fencing, rescue of expired leases, timely promotion |
//! | [`retries`] | 3: full-jitter backoff, overrides, dead-letter queue, operator retry |
//! | [`priorities`] | 4: higher priority first, FIFO within a priority |
//! | [`idempotency`] | 5: one job per key and queue until it is pruned |
//! | [`ordering`] | 6: one job per ordering key at a time, in enqueue order |
//! | [`clock`] | 7: every time comes from the store's clock |
//! | [`retention`] | 8: terminal jobs pruned after their retention, in batches |
//! | [`states`] | the state machine: cancel, terminal states, pause, queue counts, lists |
//! | [`wakeups`] | waiters are woken by changes, not by polling |
//! | [`handoff`] | an enqueue leases to a waiting fetcher, under every fetch rule |
//! | [`operator`] | delete, the ordering key's head, why a job is not running, trace context |
//! | [`pubsub`] | subscriptions, and publishing: one job per matching subscription, atomically |
//! | [`schedules`] | cron schedules: each tick claimed once, one job after downtime |

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{future::Future, sync::Arc, time::Duration};

pub use buzzer_store::Store;

mod support;

pub mod at_least_once;
pub mod bench;
pub mod clock;
pub mod handoff;
pub mod idempotency;
pub mod leases;
pub mod operator;
pub mod ordering;
pub mod priorities;
pub mod pubsub;
pub mod retention;
pub mod retries;
pub mod schedules;
pub mod states;
pub mod wakeups;

pub use support::{TestContext, job_insert, test_config};

/// How the suite gets stores: one isolated database per test, and a way to open a store over
/// it (again, after [`Store::close`], for the durability checks).
pub trait StoreFactory: Send + Sync + Sized + 'static {
    /// One isolated database: a temporary SQLite file, a fresh PostgreSQL schema. Dropping it
    /// removes it.
    type Database: Send + Sync + 'static;

    /// Makes a new, empty database.
    fn create(&self) -> impl Future<Output = Self::Database> + Send;

    /// Opens a store over `db`. Called once per test, and again after the previous store over
    /// the same database was closed.
    fn open(&self, db: &Self::Database) -> impl Future<Output = Arc<dyn Store>> + Send;

    /// How far the store's clock may be from this process's clock. The suite compares the two
    /// only in `clock::store_now_is_monotone_and_close_to_system_time`; everywhere else it
    /// compares store times with store times.
    fn max_clock_skew(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// Expands to the whole suite: one `#[tokio::test]` per check, grouped in a module per rule
/// (`leases::stale_token_complete_is_rejected_and_changes_nothing`, …). `$factory` is an
/// expression of a type that implements [`StoreFactory`]; it is evaluated once per test.
///
/// The calling crate needs `tokio` (with the `macros` and `rt-multi-thread` features) as a
/// dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::__conformance_tests! { $factory;
            at_least_once: [
                concurrent_producers_and_workers_finish_every_acknowledged_job,
                every_job_survives_close_and_reopen_unchanged,
                close_during_load_keeps_every_acknowledged_job,
                batch_with_an_invalid_job_inserts_nothing,
                batch_insert_becomes_visible_all_at_once,
                batch_insert_returns_jobs_in_request_order,
            ],
            leases: [
                fetch_leases_with_a_fresh_token_each_attempt,
                fetch_marks_the_job_running_for_this_worker,
                fetch_hands_out_whole_jobs_in_batches_of_any_size,
                job_reads_never_reveal_the_lease_token,
                heartbeat_extends_the_lease_from_store_now_and_records_progress,
                stale_token_complete_is_rejected_and_changes_nothing,
                stale_token_fail_is_rejected_and_changes_nothing,
                stale_token_heartbeat_is_rejected_and_changes_nothing,
                second_complete_is_lease_lost,
                finish_of_unknown_job_is_not_found,
                finish_many_answers_per_item,
                finish_many_brief_answers_like_finish_many,
                finish_many_of_completions_answers_per_item,
                expired_lease_is_rescued_within_a_second_as_a_failed_attempt,
                expired_lease_at_max_attempts_goes_dead,
                rescued_job_rejects_its_old_token,
                heartbeats_keep_a_lease_alive_past_its_first_expiry,
                rescue_guard_rejects_a_lease_that_has_not_expired,
                rescue_guard_loses_to_a_heartbeat_after_expiry,
                lease_expired_lists_only_expired_leases_with_tokens,
                scheduled_job_becomes_available_within_a_second_of_its_time,
                retryable_job_becomes_available_within_a_second_of_its_time,
                release_hands_the_job_back_at_once_without_counting_the_attempt,
                stale_token_release_is_rejected_and_changes_nothing,
            ],
            retries: [
                defaults_are_visible_on_the_job,
                per_job_backoff_and_max_attempts_override_the_defaults,
                backoff_delay_stays_within_the_ceiling_of_each_attempt,
                backoff_delays_spread_over_the_whole_jitter_range,
                default_backoff_first_retry_is_within_one_second,
                retry_in_ms_is_honoured_exactly,
                retry_false_goes_dead_at_once,
                exhausted_attempts_go_dead,
                errors_record_every_attempt_with_its_details,
                operator_retry_of_dead_job_keeps_attempt_and_errors,
                operator_retry_of_cancelled_job_makes_it_available,
                operator_retry_of_a_job_that_is_not_dead_or_cancelled_is_conflict,
                operator_retry_of_unknown_job_is_not_found,
                dead_letter_replay_filters_by_tag_and_limit_oldest_first,
                dead_letter_replay_by_ids,
                dead_letter_replay_of_unknown_queue_is_not_found,
            ],
            priorities: [
                higher_priority_is_fetched_first,
                fifo_within_a_priority,
                one_fetch_takes_the_best_jobs,
                priority_out_of_range_is_invalid_naming_priority,
                priority_and_fifo_apply_across_queues_in_one_fetch,
            ],
            idempotency: [
                same_key_same_queue_returns_the_existing_job,
                same_key_in_another_queue_is_another_job,
                duplicate_key_inside_one_batch_inserts_once,
                key_is_held_by_a_finished_job_until_it_is_pruned,
                key_is_free_again_after_the_job_is_pruned,
                concurrent_enqueues_with_one_key_create_one_job,
            ],
            ordering: [
                one_key_runs_one_at_a_time_in_enqueue_order_across_workers,
                later_higher_priority_job_does_not_jump_its_key,
                next_job_waits_until_the_previous_completes,
                batch_completion_releases_the_next_job_of_each_key,
                dead_head_releases_the_next_job,
                retrying_head_blocks_its_key_until_it_succeeds,
                rescued_head_keeps_its_key_blocked,
                cancelling_the_head_releases_the_next_job,
                cancelling_a_running_head_releases_the_next_job_when_it_finishes,
                scheduled_head_blocks_later_jobs_of_its_key,
                different_keys_run_in_parallel,
                ordering_keys_are_per_queue,
                keyless_jobs_are_not_held_back,
                waiting_fetch_wakes_when_the_head_finishes,
                released_head_keeps_its_key,
            ],
            clock: [
                delay_is_added_to_the_store_clock_exactly,
                lease_expires_at_is_started_at_plus_lease_ms,
                store_now_is_monotone_and_close_to_system_time,
                run_at_in_the_past_is_available_immediately,
                run_at_in_the_future_waits_until_then,
                worker_transitions_are_stamped_by_the_store,
            ],
            retention: [
                completed_and_cancelled_are_pruned_after_finished_retention,
                dead_jobs_are_pruned_after_dead_retention,
                non_terminal_jobs_are_never_pruned,
                prune_deletes_at_most_its_limit_per_call,
                engine_prunes_everything_due_in_batches,
                pruner_service_prunes_on_its_interval,
                pruned_ids_are_never_reused,
            ],
            states: [
                cancel_of_a_waiting_job_is_immediate,
                cancel_of_a_running_job_requests_cancellation,
                worker_that_completes_despite_a_cancel_request_completes,
                store_turns_a_retry_of_a_cancel_requested_job_into_cancel,
                lease_expiry_of_a_cancel_requested_job_cancels_it,
                cancel_of_a_terminal_job_is_conflict,
                cancel_of_unknown_job_is_not_found,
                terminal_jobs_only_leave_by_operator_retry,
                paused_queue_accepts_jobs_but_hands_none_out,
                resume_wakes_a_waiting_fetch,
                pause_of_unknown_queue_is_not_found,
                paused_flag_survives_reopen,
                queue_counts_every_state,
                queue_counts_jobs_waiting_behind_an_ordering_key,
                completed_counts_follow_every_way_in_and_out,
                oldest_available_age_grows_while_a_job_waits,
                queue_exists_once_a_job_names_it,
                list_is_newest_first_with_cursor_paging,
                list_filters_by_queue_state_and_tag,
                job_fields_round_trip_exactly,
                unknown_job_reads_as_none,
                release_of_a_cancel_requested_job_cancels_it,
            ],
            wakeups: [
                long_poll_fetch_wakes_on_enqueue_from_another_task,
                long_poll_fetch_wakes_for_any_of_its_queues,
                long_poll_fetch_returns_empty_when_the_wait_ends,
                long_poll_fetch_wakes_on_operator_retry,
                wait_terminal_returns_as_soon_as_the_job_completes,
                wait_terminal_gives_the_current_job_when_time_is_up,
                watch_sees_available_running_completed,
            ],
            handoff: [
                insert_and_fetch_leases_the_new_job_of_an_empty_queue,
                insert_and_fetch_early_answers_like_insert_and_fetch,
                insert_and_fetch_answers_the_job_as_stored,
                insert_and_fetch_keeps_priority_and_fifo,
                insert_and_fetch_leases_nothing_from_a_paused_queue_or_a_blocked_key,
                insert_and_fetch_with_a_held_idempotency_key_returns_the_existing_job,
                an_enqueue_leases_to_a_waiting_fetcher,
                a_delayed_or_paused_job_is_not_handed_to_a_waiting_fetcher,
                a_fetcher_that_goes_away_leaves_no_job_leased_to_it,
                a_hybrid_call_handed_to_a_waiting_fetcher_answers_with_the_result,
                an_abandoned_enqueue_still_reaches_the_waiting_fetcher,
            ],
            operator: [
                delete_removes_a_job_in_any_state_but_running,
                deleting_the_head_of_an_ordering_key_releases_the_next,
                deleting_a_waiting_job_of_a_key_keeps_the_head,
                ordering_head_is_the_job_holding_the_key,
                waiting_reason_names_each_cause,
                traceparent_is_stored_and_handed_to_the_worker,
            ],
            pubsub: [
                subscription_put_creates_then_replaces,
                subscription_fields_round_trip_exactly,
                subscription_to_a_queue_makes_the_queue_exist,
                subscription_list_by_topic_is_sorted,
                subscription_delete_says_whether_it_existed,
                subscription_disable_and_a_new_put_enables_it,
                delivery_health_counts_failures_in_a_row,
                subscriptions_survive_reopen,
                subscription_requests_are_validated_naming_the_field,
                webhook_secrets_are_generated_kept_and_rotated,
                publish_makes_one_job_per_matching_subscription,
                publish_without_subscribers_delivers_nothing,
                publish_skips_disabled_subscriptions,
                repeated_publish_with_a_key_is_a_no_op,
                concurrent_publishes_with_one_key_deliver_once,
                webhook_subscriptions_queue_a_delivery_for_the_dispatcher,
                failed_publish_leaves_nothing_behind,
                long_poll_fetch_wakes_on_publish,
                publish_keys_are_forgotten_when_pruned,
            ],
            schedules: [
                schedule_put_creates_then_replaces_keeping_the_last_tick,
                schedule_fields_round_trip_exactly,
                schedule_list_and_delete,
                claim_tick_only_moves_forward,
                concurrent_claims_of_one_tick_succeed_once,
                schedules_survive_reopen,
                a_schedule_fires_once_after_downtime,
                a_new_schedule_waits_for_its_first_tick,
                two_engines_firing_one_tick_make_one_job,
                schedule_requests_are_validated_naming_the_field,
                the_cron_service_fires_on_its_own,
            ],
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($factory:expr; $($module:ident: [$($test:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $test() {
                        $crate::$module::$test($factory).await;
                    }
                )*
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// A check that is written but not listed in [`conformance_tests!`] would silently never
    /// run: every `pub async fn` of a rule module must appear in the macro.
    #[test]
    fn every_check_is_listed_in_the_macro() {
        let lib = include_str!("lib.rs");
        let listed = &lib[lib.find("macro_rules! conformance_tests").unwrap()..];
        let listed = &listed[..listed.find("macro_rules! __conformance_tests").unwrap()];
        let modules = [
            ("at_least_once", include_str!("at_least_once.rs")),
            ("leases", include_str!("leases.rs")),
            ("retries", include_str!("retries.rs")),
            ("priorities", include_str!("priorities.rs")),
            ("idempotency", include_str!("idempotency.rs")),
            ("ordering", include_str!("ordering.rs")),
            ("clock", include_str!("clock.rs")),
            ("retention", include_str!("retention.rs")),
            ("states", include_str!("states.rs")),
            ("wakeups", include_str!("wakeups.rs")),
            ("handoff", include_str!("handoff.rs")),
            ("pubsub", include_str!("pubsub.rs")),
            ("schedules", include_str!("schedules.rs")),
        ];
        for (module, source) in modules {
            assert!(listed.contains(&format!("{module}: [")), "{module}");
            for line in source.lines() {
                if let Some(rest) = line.strip_prefix("pub async fn ") {
                    let name = &rest[..rest.find('<').unwrap()];
                    assert!(
                        listed.contains(&format!(" {name},")),
                        "{module}::{name} is not listed in conformance_tests!"
                    );
                }
            }
        }
    }
}
