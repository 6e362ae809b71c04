//! The store conformance suite: one case per documented behaviour of the storage traits
//! (`crate::store`), run unchanged against every backend.
//!
//! Each case takes a freshly migrated, empty store and panics on failure. Runners iterate
//! [`all`] or call the cases by name (one test per case and backend).

mod accounts;
mod api_tokens;
mod apps;
mod events;
mod grants;
mod keys_audit;
mod policies;
mod refresh;

pub use refresh::{tokens_after_keying, tokens_before_keying};
mod sites;

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::store::{Store, StoreError, StoreResult};

pub use accounts::*;
pub use api_tokens::*;
pub use apps::*;
pub use events::*;
pub use grants::*;
pub use keys_audit::*;
pub use policies::*;
pub use refresh::*;
pub use sites::*;

/// The future of one case.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// One case: takes a fresh store, panics on failure.
pub type CaseFn = fn(Arc<dyn Store>) -> CaseFuture;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        vec![$(
            (
                stringify!($name),
                (|store: Arc<dyn Store>| Box::pin($name(store)) as CaseFuture) as CaseFn,
            )
        ),*]
    };
}

/// Calls the macro `$then` with every case's name, in a stable order: the one list of
/// cases, which [`all`] and the per-case test runners (the server's `tests/it/conformance.rs`)
/// both expand, so a case cannot be listed in one and missed in the other.
#[macro_export]
macro_rules! for_each_conformance_case {
    ($then:ident) => {
        $then! {
            // accounts and sessions
            account_round_trips_with_every_field,
            account_email_is_unique_case_insensitively,
            account_id_is_unique,
            list_accounts_returns_every_account_oldest_first,
            change_password_bumps_generation_ends_other_sessions_and_revokes_families,
            change_password_without_a_kept_session_ends_every_session,
            change_password_of_unknown_account_is_not_found,
            an_invitation_is_accepted_once_and_only_for_an_invited_account,
            session_is_returned_until_it_expires,
            delete_session_removes_only_that_session,
            timestamps_round_trip_at_millisecond_precision,
            ping_answers_and_backend_is_named,
            // API tokens
            api_token_round_trips_and_is_found_by_hash,
            api_token_needs_a_known_account,
            revoke_api_token_acts_once_and_only_for_its_account,
            touch_api_token_records_the_last_use,
            // sites, products, memberships
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
            // apps
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
            // grants, codes, families
            accept_consent_creates_grant_installs_app_and_links_code,
            second_consent_replaces_scopes_of_the_same_grant,
            incremental_consent_adds_to_the_granted_scopes,
            consents_on_more_sites_accumulate_cloud_ids_in_order,
            consent_keeps_an_existing_installation,
            consent_after_revocation_creates_a_new_grant,
            revoke_grant_revokes_its_families,
            access_token_standing_reads_family_live_grant_and_account,
            concurrent_standings_each_answer_their_own_family,
            access_token_standing_of_an_inactive_account_has_no_generation,
            redeem_code_first_then_already_used_then_not_found,
            a_code_exchange_answered_early_is_stored_once_durable,
            a_refused_code_exchange_changes_nothing,
            a_code_without_pkce_is_refused_with_a_verifier,
            redeem_code_under_a_revoked_grant_creates_a_revoked_family,
            redeem_code_appends_its_issued_event_with_a_live_family,
            redeemed_family_copies_the_credential_generation,
            concurrent_redemptions_yield_exactly_one_first,
            a_burst_of_redemptions_redeems_each_code_once,
            concurrent_consents_share_one_live_grant,
            revoke_family_returns_true_once,
            log_in_with_and_kept_grants_change_no_site_and_no_scope,
            // refresh tokens
            redeem_code_stores_the_first_refresh_token_with_its_family,
            a_family_keeping_its_tokens_dates_their_rotations,
            refresh_token_state_reports_a_revoked_grant,
            rotate_refresh_token_is_a_compare_and_set_on_the_head,
            rotation_of_a_revoked_family_changes_nothing,
            deleting_the_app_deletes_its_refresh_tokens,
            concurrent_rotations_of_one_token_have_exactly_one_winner,
            refresh_and_rotate_rotates_exactly_when_the_rule_allows,
            a_grant_without_offline_access_refreshes_nothing,
            concurrent_refreshes_of_one_token_rotate_it_once,
            concurrent_refreshes_of_many_tokens_each_get_their_own_answer,
            a_failing_refresh_does_not_fail_those_written_with_it,
            // keys and audit
            signing_keys_round_trip_and_only_one_is_current,
            a_rotation_is_a_compare_and_set_on_current_and_next,
            a_scheduled_rotation_beaten_to_it_rotates_nothing_more,
            failure_counters_count_per_key_and_window,
            audit_events_filter_by_site_and_action_prefix_newest_first,
            audit_limit_zero_means_one_hundred,
            audit_events_page_by_date_and_cursor,
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
        }
    };
}

/// Every case with its name, in a stable order.
pub fn all() -> Vec<(&'static str, CaseFn)> {
    crate::for_each_conformance_case!(cases)
}

/// The constraint a `Conflict` names; panics on anything else.
#[track_caller]
pub(crate) fn conflict<T: Debug>(result: StoreResult<T>) -> String {
    match result {
        Err(StoreError::Conflict { constraint }) => constraint,
        other => panic!("expected a Conflict, got {other:?}"),
    }
}

/// Panics unless the result is `NotFound`.
#[track_caller]
pub(crate) fn assert_not_found<T: Debug>(result: StoreResult<T>) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// `w` consents to `scopes` at second `at_s`, unwrapped: one line per consent in the cases,
/// which set up many.
pub(crate) async fn consent_at(
    w: &crate::testing::fixtures::World,
    store: &dyn Store,
    scopes: &[&str],
    at_s: i64,
) -> (crate::model::Grant, crate::model::NewCode) {
    w.consented(store, scopes, crate::testing::fixtures::at(at_s))
        .await
        .unwrap()
}

/// Redeems the code `code_hash` into `family` at second `at_s`, unwrapped, for the cases
/// that match on how the redemption went.
pub(crate) async fn redeem_at(
    store: &dyn Store,
    code_hash: &crate::model::TokenHash,
    family: &crate::model::NewFamily,
    at_s: i64,
) -> crate::model::Redeemed {
    store
        .redeem_code(code_hash, family, crate::testing::fixtures::at(at_s))
        .await
        .unwrap()
}

/// The developer's admin installation of the world's app on its site: the record the
/// installation cases compare against.
pub(crate) fn installed_by_admin(
    w: &crate::testing::fixtures::World,
) -> crate::model::Installation {
    crate::testing::fixtures::installation(
        &w.app.app_id,
        &w.site.cloud_id,
        &w.developer.account_id,
        crate::model::InstalledBy::Admin,
    )
}

/// Redeems a code at second `at_s` and returns the family of the first redemption (panics
/// on any other outcome).
pub(crate) async fn redeem_first(
    store: &dyn Store,
    code_hash: &crate::model::TokenHash,
    at_s: i64,
) -> crate::model::TokenFamily {
    let family = crate::testing::fixtures::new_family(crate::testing::fixtures::at(at_s));
    match redeem_at(store, code_hash, &family, at_s).await {
        crate::model::Redeemed::First(family) => family,
        other => panic!("expected First, got {other:?}"),
    }
}

/// Revokes the family `family_id` for `reason` at second `at_s`; true when this call
/// revoked it (the cases check both answers).
pub(crate) async fn revoke_family_at(
    store: &dyn Store,
    family_id: &str,
    reason: &str,
    at_s: i64,
) -> bool {
    store
        .revoke_family(family_id, reason, crate::testing::fixtures::at(at_s))
        .await
        .unwrap()
}

/// The grant `grant_id` as the store holds it now; panics when there is none.
pub(crate) async fn stored_grant(store: &dyn Store, grant_id: &str) -> crate::model::Grant {
    store
        .grant(grant_id)
        .await
        .unwrap()
        .expect("the grant is stored")
}
