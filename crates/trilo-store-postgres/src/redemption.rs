//! A code redemption in one statement: the code marked used (the compare-and-set that
//! lets one caller win), the grant row share-locked and read, the family inserted, its
//! first refresh token and its `token.issued` audit event stored, as data-modifying CTEs
//! that commit together. Against `trilo_store_sql::grants::redeem_code`'s transaction
//! of five to six statements this saves their round trips and executor start-ups.
//!
//! A revocation of the grant in flight holds the grant row: the share lock waits for it,
//! and at READ COMMITTED the locked row is read as the revocation committed it, so the
//! family is then born revoked (security checklist H-C3), as in the transactional version.
//!
//! The statement takes a whole batch of codes at once (`REDEEM_BATCH`, fed by
//! `batch_queue` like the refreshes, one batch at a time; a batch never holds one code
//! twice), so concurrent exchanges share the round trip and the commit. Should a batch
//! deadlock with another instance's, PostgreSQL aborts one and `retry` runs it again.

use std::sync::LazyLock;

use sqlx::{AssertSqlSafe, FromRow, Row};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use trilo_core::model::{AuditEvent, NewFamily, NewRefreshToken, Redeemed, TokenFamily, TokenHash};
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::conn::Fail;
use trilo_store_sql::convert::ms;
use trilo_store_sql::grants::{self, FamilyRow, sql};

use crate::PgStore;
use crate::batch_queue::{RedeemJob, WriteTogether, write_until_empty};
use crate::error::retry;

/// Redemptions of a batch of codes, in one statement. Parameters are parallel arrays, one
/// element per redemption: family id, now (ms), absolute expiry (ms), code hash, the first
/// refresh token's hash and inactivity expiry (NULL without one), the `token.issued` audit
/// event's seven columns (NULL without one). One row per code redeemed now (unknown and
/// used codes give none), with its `idx` (1-based) and the new family. Each grant row is
/// share-locked and read once (`IN`), however many of the batch's codes it holds: a join
/// would repeat it, and every family insert with it.
pub(crate) static REDEEM_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH i AS ( \
           SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::bytea[], $5::bytea[], \
                                $6::int8[], $7::text[], $8::int8[], $9::text[], $10::text[], \
                                $11::text[], $12::text[], $13::text[]) \
             WITH ORDINALITY AS i(family_id, now, absolute_expires, code_hash, first_hash, \
                                  first_expires, event_id, event_at, event_actor, \
                                  event_action, event_target, event_cloud, event_details, idx)), \
         marked AS ( \
           UPDATE codes c SET used_at = i.now, family_id = i.family_id FROM i \
            WHERE c.code_hash = i.code_hash AND c.used_at IS NULL \
           RETURNING i.idx, c.grant_id, c.app_id, c.account_id, c.scopes, c.audience), \
         grant_now AS ( \
           SELECT g.grant_id, g.revoked_at FROM grants g \
            WHERE g.grant_id IN (SELECT grant_id FROM marked) FOR SHARE), \
         family AS ( \
           INSERT INTO token_families (family_id, grant_id, app_id, account_id, scopes, \
                                       credential_generation, created_at, absolute_expires_at, \
                                       revoked_at, revoke_reason, audience) \
           SELECT i.family_id, m.grant_id, m.app_id, m.account_id, m.scopes, \
                  a.credential_generation, i.now, i.absolute_expires, \
                  CASE WHEN g.revoked_at IS NULL THEN NULL ELSE i.now END, \
                  CASE WHEN g.revoked_at IS NULL THEN NULL ELSE 'grant_revoked' END, \
                  m.audience \
             FROM marked m JOIN i ON i.idx = m.idx \
             JOIN accounts a ON a.account_id = m.account_id \
             JOIN grant_now g ON g.grant_id = m.grant_id \
           RETURNING {family}), \
         first_token AS ( \
           INSERT INTO refresh_tokens (token_hash, family_id, generation, issued_at, \
                                       inactivity_expires_at, rotated_at) \
           SELECT i.first_hash, f.family_id, 0, i.now, i.first_expires, NULL \
             FROM family f JOIN i ON i.family_id = f.family_id \
            WHERE i.first_hash IS NOT NULL \
           RETURNING 1), \
         issued AS ( \
           INSERT INTO audit_events (event_id, at, actor_account_id, action, target, \
                                     cloud_id, details) \
           SELECT i.event_id, i.event_at, i.event_actor, i.event_action, i.event_target, \
                  i.event_cloud, i.event_details \
             FROM family f JOIN i ON i.family_id = f.family_id \
            WHERE f.revoked_at IS NULL AND i.event_id IS NOT NULL \
           RETURNING 1) \
         SELECT i.idx, f.* FROM family f JOIN i ON i.family_id = f.family_id",
        family = sql::FAMILY_COLUMNS
    )
});

impl PgStore {
    /// `GrantStore::redeem_code`: the redemption joins the next batch of the redemption
    /// queue; when the code was not redeemed now, a second read says why.
    pub(crate) async fn redeem(
        &self,
        code_hash: &TokenHash,
        family: &NewFamily,
        now: OffsetDateTime,
    ) -> StoreResult<Redeemed> {
        let (reply, answer) = oneshot::channel();
        let job = RedeemJob {
            code_hash: *code_hash,
            family: family.clone(),
            now,
            reply,
        };
        if let Some(batch) = self.redemptions.push(job) {
            let store = self.clone();
            tokio::spawn(async move {
                write_until_empty(&store, &store.redemptions, &store.batches, batch).await;
            });
        }
        let redeemed = answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the redemption writer stopped".to_owned(),
            ))
        })?;
        if let Some(family) = redeemed {
            return Ok(Redeemed::First(family));
        }
        Ok(match self.read(|c| grants::code(c, code_hash)).await? {
            Some(code) => Redeemed::AlreadyUsed(code),
            None => Redeemed::NotFound,
        })
    }

    /// [`REDEEM_BATCH`] for `jobs`: each job's new family, in order (`None`: its code was
    /// unknown or used already).
    async fn redeem_together(&self, jobs: &[RedeemJob]) -> StoreResult<Vec<Option<TokenFamily>>> {
        // One array per column, borrowed from the jobs (the audit details are rendered).
        fn event(j: &RedeemJob) -> Option<&AuditEvent> {
            j.family.issued.as_ref()
        }
        fn first(j: &RedeemJob) -> Option<&NewRefreshToken> {
            j.family.refresh_token.as_ref()
        }
        let family_id: Vec<&str> = jobs.iter().map(|j| j.family.family_id.as_str()).collect();
        let now: Vec<i64> = jobs.iter().map(|j| ms(j.now)).collect();
        let absolute: Vec<i64> = jobs
            .iter()
            .map(|j| ms(j.family.absolute_expires_at))
            .collect();
        let code_hash: Vec<&[u8]> = jobs.iter().map(|j| j.code_hash.as_slice()).collect();
        let first_hash: Vec<Option<&[u8]>> = jobs
            .iter()
            .map(|j| first(j).map(|t| t.token_hash.as_slice()))
            .collect();
        let first_expires: Vec<Option<i64>> = jobs
            .iter()
            .map(|j| first(j).map(|t| ms(t.inactivity_expires_at)))
            .collect();
        let event_id: Vec<Option<&str>> = jobs
            .iter()
            .map(|j| event(j).map(|e| e.event_id.as_str()))
            .collect();
        let event_at: Vec<Option<i64>> = jobs.iter().map(|j| event(j).map(|e| ms(e.at))).collect();
        let event_actor: Vec<Option<&str>> = jobs
            .iter()
            .map(|j| event(j).and_then(|e| e.actor_account_id.as_deref()))
            .collect();
        let event_action: Vec<Option<&str>> = jobs
            .iter()
            .map(|j| event(j).map(|e| e.action.as_str()))
            .collect();
        let event_target: Vec<Option<&str>> = jobs
            .iter()
            .map(|j| event(j).map(|e| e.target.as_str()))
            .collect();
        let event_cloud: Vec<Option<&str>> = jobs
            .iter()
            .map(|j| event(j).and_then(|e| e.cloud_id.as_deref()))
            .collect();
        let event_details: Vec<Option<String>> = jobs
            .iter()
            .map(|j| event(j).map(|e| e.details.to_string()))
            .collect();
        let (family_id, now, absolute, code_hash) = (&family_id, &now, &absolute, &code_hash);
        let (first_hash, first_expires) = (&first_hash, &first_expires);
        let (event_id, event_at, event_actor) = (&event_id, &event_at, &event_actor);
        let (event_action, event_target) = (&event_action, &event_target);
        let (event_cloud, event_details) = (&event_cloud, &event_details);
        retry(move || async move {
            // Built once from constant parts only: nothing of the request is in the text.
            let rows = sqlx::query(AssertSqlSafe(REDEEM_BATCH.as_str()))
                .bind(family_id)
                .bind(now)
                .bind(absolute)
                .bind(code_hash)
                .bind(first_hash)
                .bind(first_expires)
                .bind(event_id)
                .bind(event_at)
                .bind(event_actor)
                .bind(event_action)
                .bind(event_target)
                .bind(event_cloud)
                .bind(event_details)
                .fetch_all(&self.pool)
                .await
                .map_err(Fail::Sql)?;
            let mut families: Vec<Option<TokenFamily>> = jobs.iter().map(|_| None).collect();
            for row in rows {
                let idx: i64 = row.try_get("idx").map_err(Fail::Sql)?;
                let family = TokenFamily::try_from(FamilyRow::from_row(&row).map_err(Fail::Sql)?)?;
                let slot = usize::try_from(idx - 1)
                    .ok()
                    .and_then(|i| families.get_mut(i))
                    .ok_or_else(|| StoreError::Corrupt(format!("redemption batch row {idx}")))?;
                *slot = Some(family);
            }
            Ok(families)
        })
        .await
    }
}

impl WriteTogether<RedeemJob> for PgStore {
    async fn write_together(&self, jobs: &[RedeemJob]) -> StoreResult<Vec<Option<TokenFamily>>> {
        self.redeem_together(jobs).await
    }
}

#[cfg(all(test, feature = "test-support"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use sqlx::{Connection, PgConnection};
    use trilo_core::model::Redeemed;
    use trilo_core::store::GrantStore;
    use trilo_core::testing::fixtures::{self, World, at};
    use trilo_store_sql::convert::ms;
    use trilo_store_sql::store::SqlStore;

    use crate::PgStore;
    use crate::testing::{fresh_database, test_url};

    /// Security checklist H-C3 on PostgreSQL, where only row locks order a redemption
    /// against a revocation: with a revocation of the grant uncommitted, the redemption
    /// waits for it and its family is born revoked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redemption_waits_for_a_revocation_in_flight_and_is_born_revoked() {
        let Some(base) = test_url() else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let db = fresh_database(&base).await.unwrap();
        let store = Arc::new(SqlStore(PgStore::connect(&db.url, 4).await.unwrap()));
        store.migrate().await.unwrap();
        let w = World::seed(store.as_ref()).await.unwrap();
        let (grant, code) = w
            .consented(store.as_ref(), &["read:jira-work"], at(1))
            .await
            .unwrap();

        let mut revoker = PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut revoker).await.unwrap();
        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE grant_id = $2")
            .bind(ms(at(2)))
            .bind(&grant.grant_id)
            .execute(&mut revoker)
            .await
            .unwrap();

        let redeeming = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .redeem_code(&code.code_hash, &fixtures::new_family(at(3)), at(3))
                    .await
                    .unwrap()
            })
        };
        let mut watcher = PgConnection::connect(&db.url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(
                !redeeming.is_finished() && Instant::now() < deadline,
                "the redemption did not wait for the revocation in flight"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sqlx::query("COMMIT").execute(&mut revoker).await.unwrap();

        match redeeming.await.unwrap() {
            Redeemed::First(family) => {
                assert_eq!(family.revoked_at, Some(at(3)));
                assert_eq!(family.revoke_reason.as_deref(), Some("grant_revoked"));
            }
            other => panic!("expected First, got {other:?}"),
        }
        store.close().await;
        drop((revoker, watcher));
        db.drop_database().await.unwrap();
    }
}
