//! A code redemption in one statement: the code marked used (the compare-and-set that
//! lets one caller win), the grant row share-locked and read, the family inserted, its
//! first refresh token and its `token.issued` audit event stored, as data-modifying CTEs
//! that commit together. Against `trilo_store_sql::grants::redeem_code`'s transaction
//! of five to six statements this saves their round trips and executor start-ups.
//!
//! A revocation of the grant in flight holds the grant row: the share lock waits for it,
//! and at READ COMMITTED the locked row is read as the revocation committed it, so the
//! family is then born revoked (security checklist H-C3), as in the transactional version.

use std::sync::LazyLock;

use sqlx::AssertSqlSafe;
use time::OffsetDateTime;
use trilo_core::model::{NewFamily, Redeemed, TokenFamily, TokenHash};
use trilo_core::store::StoreResult;
use trilo_store_sql::conn::Fail;
use trilo_store_sql::convert::ms;
use trilo_store_sql::grants::{self, FamilyRow, sql};

use crate::PgStore;
use crate::error::retry;

/// Parameters: $1 family id, $2 now (ms), $3 absolute expiry (ms), $4 code hash, $5 and $6
/// the first refresh token's hash and inactivity expiry (NULL without one), $7–$13 the
/// audit event's columns (NULL without one). No row when the code is unknown or used.
static REDEEM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH marked AS ( \
           UPDATE codes SET used_at = $2, family_id = $1 \
            WHERE code_hash = $4 AND used_at IS NULL \
           RETURNING grant_id, app_id, account_id, scopes, audience), \
         grant_now AS ( \
           SELECT g.grant_id, g.revoked_at FROM grants g JOIN marked m ON g.grant_id = m.grant_id \
              FOR SHARE OF g), \
         family AS ( \
           INSERT INTO token_families (family_id, grant_id, app_id, account_id, scopes, \
                                       credential_generation, created_at, absolute_expires_at, \
                                       revoked_at, revoke_reason, audience) \
           SELECT $1, m.grant_id, m.app_id, m.account_id, m.scopes, a.credential_generation, \
                  $2, $3, \
                  CASE WHEN g.revoked_at IS NULL THEN NULL ELSE $2 END, \
                  CASE WHEN g.revoked_at IS NULL THEN NULL ELSE 'grant_revoked' END, \
                  m.audience \
             FROM marked m JOIN accounts a ON a.account_id = m.account_id \
             JOIN grant_now g ON g.grant_id = m.grant_id \
           RETURNING {family}), \
         first_token AS ( \
           INSERT INTO refresh_tokens (token_hash, family_id, generation, issued_at, \
                                       inactivity_expires_at, rotated_at) \
           SELECT $5, family_id, 0, $2, $6, NULL FROM family WHERE $5::bytea IS NOT NULL \
           RETURNING 1), \
         issued AS ( \
           INSERT INTO audit_events (event_id, at, actor_account_id, action, target, \
                                     cloud_id, details) \
           SELECT $7, $8, $9, $10, $11, $12, $13 FROM family \
            WHERE revoked_at IS NULL AND $7::text IS NOT NULL \
           RETURNING 1) \
         SELECT * FROM family",
        family = sql::FAMILY_COLUMNS
    )
});

impl PgStore {
    /// `GrantStore::redeem_code` in one round trip when the code is redeemed now; a
    /// second read says why when it is not.
    pub(crate) async fn redeem(
        &self,
        code_hash: &TokenHash,
        family: &NewFamily,
        now: OffsetDateTime,
    ) -> StoreResult<Redeemed> {
        let first = family.refresh_token.as_ref();
        let issued = family.issued.as_ref();
        let details = issued.map(|event| event.details.to_string());
        let details = details.as_deref();
        let row: Option<FamilyRow> = retry(move || async move {
            // Built once from constant parts only: nothing of the request is in the text.
            sqlx::query_as(AssertSqlSafe(REDEEM.as_str()))
                .bind(&family.family_id)
                .bind(ms(now))
                .bind(ms(family.absolute_expires_at))
                .bind(code_hash.as_slice())
                .bind(first.map(|token| token.token_hash.as_slice()))
                .bind(first.map(|token| ms(token.inactivity_expires_at)))
                .bind(issued.map(|event| event.event_id.as_str()))
                .bind(issued.map(|event| ms(event.at)))
                .bind(issued.and_then(|event| event.actor_account_id.as_deref()))
                .bind(issued.map(|event| event.action.as_str()))
                .bind(issued.map(|event| event.target.as_str()))
                .bind(issued.and_then(|event| event.cloud_id.as_deref()))
                .bind(details)
                .fetch_optional(&self.pool)
                .await
                .map_err(Fail::Sql)
        })
        .await?;
        if let Some(row) = row {
            return Ok(Redeemed::First(TokenFamily::try_from(row)?));
        }
        Ok(match self.read(|c| grants::code(c, code_hash)).await? {
            Some(code) => Redeemed::AlreadyUsed(code),
            None => Redeemed::NotFound,
        })
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
