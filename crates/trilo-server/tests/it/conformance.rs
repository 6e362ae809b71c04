//! The store conformance suite (`trilo_core::testing::conformance`) on both backends: one
//! test per case and backend, `conformance::sqlite::<case>` and
//! `conformance::postgres::<case>`.
//!
//! SQLite gets a fresh database file per test. PostgreSQL gets a fresh database cloned from
//! the migrated template when `TRILO_TEST_POSTGRES_URL` is set; otherwise its tests pass
//! with a note on stderr, unless `TRILO_REQUIRE_POSTGRES=1` makes that a failure.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::task::JoinError;
use trilo_core::Store;
use trilo_core::testing::conformance;
use trilo_store_postgres::PgStore;
use trilo_store_postgres::testing::{fresh_database, test_url};
use trilo_store_sqlite::{SqlStore, SqliteStore};

/// Connections of each PostgreSQL test store (the concurrency cases need several).
const PG_CONNECTIONS: u32 = 8;

/// Runs one case on a fresh SQLite file, removes the file, then reports the case's panic.
async fn on_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let path = std::env::temp_dir().join(format!(
        "trilo-conformance-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    let store = Arc::new(SqlStore(SqliteStore::open(&path).await.unwrap()));
    store.migrate().await.unwrap();
    store.self_check().await.unwrap();
    let outcome = tokio::spawn(case(store.clone())).await;
    store.close().await;
    remove_sqlite_files(&path);
    rethrow(outcome);
}

/// Runs one case on a fresh PostgreSQL database, drops it, then reports the case's panic.
async fn on_postgres<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(base_url) = test_url() else {
        eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
        return;
    };
    let db = fresh_database(&base_url).await.unwrap();
    let store = Arc::new(SqlStore(
        PgStore::connect(&db.url, PG_CONNECTIONS).await.unwrap(),
    ));
    store.migrate().await.unwrap();
    let outcome = tokio::spawn(case(store.clone())).await;
    store.close().await;
    if let Err(e) = db.drop_database().await {
        eprintln!("could not drop the test database: {e}");
    }
    rethrow(outcome);
}

fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

fn rethrow(outcome: Result<(), JoinError>) {
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the case did not finish: {e}"),
        }
    }
}

macro_rules! conformance_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::on_sqlite(super::conformance::$case).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::on_postgres(super::conformance::$case).await;
                }
            )*
        }

        /// A case added to the suite but not here would silently never run.
        #[test]
        fn every_case_of_the_suite_has_tests() {
            let here = [$(stringify!($case)),*];
            let suite: Vec<&str> = conformance::all().into_iter().map(|(name, _)| name).collect();
            assert_eq!(here.to_vec(), suite);
        }
    };
}

conformance_tests![
    account_round_trips_with_every_field,
    account_email_is_unique_case_insensitively,
    account_id_is_unique,
    list_accounts_returns_every_account_oldest_first,
    change_password_bumps_generation_ends_other_sessions_and_revokes_families,
    change_password_without_a_kept_session_ends_every_session,
    change_password_of_unknown_account_is_not_found,
    session_is_returned_until_it_expires,
    delete_session_removes_only_that_session,
    timestamps_round_trip_at_millisecond_precision,
    ping_answers_and_backend_is_named,
    api_token_round_trips_and_is_found_by_hash,
    api_token_needs_a_known_account,
    revoke_api_token_acts_once_and_only_for_its_account,
    touch_api_token_records_the_last_use,
    site_round_trips_and_duplicate_cloud_id_conflicts,
    set_user_installs_changes_the_site_or_is_not_found,
    upsert_product_replaces_display_name_and_scopes,
    put_site_product_upserts_and_needs_known_site_and_product,
    memberships_are_put_changed_listed_and_removed,
    put_membership_needs_account_site_and_site_product,
    product_operations_are_replaced_whole_and_kept_in_order,
    containers_are_upserted_listed_and_need_a_hosted_product,
    guest_containers_are_replaced_and_need_membership_and_containers,
    policies_round_trip_and_replace_their_containers,
    app_round_trips_with_ordered_callback_urls_and_scopes,
    app_client_id_is_unique,
    list_apps_filters_by_owner_oldest_first,
    update_app_replaces_the_mutable_fields_only,
    update_unknown_app_is_not_found,
    public_app_is_stored_without_secret,
    rotate_app_secret_keeps_old_secret_until_its_grace_ends,
    delete_app_removes_everything_it_holds_but_keeps_audit,
    install_app_is_idempotent_and_the_first_record_wins,
    install_app_needs_known_app_and_site,
    accept_consent_creates_grant_installs_app_and_links_code,
    second_consent_replaces_scopes_of_the_same_grant,
    incremental_consent_adds_to_the_granted_scopes,
    consents_on_more_sites_accumulate_cloud_ids_in_order,
    consent_keeps_an_existing_installation,
    consent_after_revocation_creates_a_new_grant,
    revoke_grant_revokes_its_families,
    redeem_code_first_then_already_used_then_not_found,
    redeem_code_under_a_revoked_grant_creates_a_revoked_family,
    redeem_code_appends_its_issued_event_with_a_live_family,
    redeemed_family_copies_the_credential_generation,
    concurrent_redemptions_yield_exactly_one_first,
    concurrent_consents_share_one_live_grant,
    revoke_family_returns_true_once,
    redeem_code_stores_the_first_refresh_token_with_its_family,
    refresh_token_state_reports_a_revoked_grant,
    rotate_refresh_token_is_a_compare_and_set_on_the_head,
    rotation_of_a_revoked_family_changes_nothing,
    deleting_the_app_deletes_its_refresh_tokens,
    concurrent_rotations_of_one_token_have_exactly_one_winner,
    refresh_and_rotate_rotates_exactly_when_the_rule_allows,
    concurrent_refreshes_of_one_token_rotate_it_once,
    concurrent_refreshes_of_many_tokens_each_get_their_own_answer,
    a_failing_refresh_does_not_fail_those_written_with_it,
    signing_keys_round_trip_and_only_one_is_current,
    audit_events_filter_by_site_and_action_prefix_newest_first,
    audit_limit_zero_means_one_hundred,
    // webhooks
    subscriptions_round_trip_list_by_event_and_delete,
    member_grant_scopes_are_those_of_live_grants_of_members,
    recorded_events_are_claimed_once_until_their_lease_ends,
    attempt_outcomes_deliver_retry_or_kill_and_ignore_stale_claims,
    concurrent_claims_hand_each_delivery_to_one_claimant,
    deleting_a_subscription_or_app_drops_its_deliveries,
    container_objects_are_reported_listed_capped_and_counted,
    a_policy_and_its_events_commit_together,
    a_batch_of_events_commits_together_and_skips_retries_and_deleted_subscriptions,
];
