//! The code grant's store step for a batch of codes, in one statement: each code read
//! as it was, and, when it passes the plan's check, marked used (the compare-and-set that
//! lets one caller win), its grant row share-locked and read, its family inserted with its
//! first refresh token and its `token.issued` audit event, as data-modifying CTEs that
//! commit together. Against a read and then `trilo_store_sql::grants::redeem_code`'s
//! transaction of five to six statements this saves their round trips and executor
//! start-ups.
//!
//! A revocation of the grant in flight holds the grant row: the share lock waits for it,
//! and at READ COMMITTED the locked row is read as the revocation committed it, so the
//! family is then born revoked (security checklist H-C3), as in the transactional version.
//!
//! The statement takes a whole batch of codes at once (`EXCHANGE_BATCH`, fed by
//! `batch_queue` like the refreshes, one batch at a time; a batch never holds one code
//! twice), so concurrent exchanges share the round trip and the commit. Should a batch
//! deadlock with another instance's, PostgreSQL aborts one and `retry` runs it again.

use std::sync::LazyLock;

use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, FromRow, Row};
use trilo_core::code_plan::{CodeExchanged, CodePlan};
use trilo_core::model::{AuthorizationCode, Redeemed, TokenFamily, TokenKeeping};
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::conn::Fail;
use trilo_store_sql::convert::ms;
use trilo_store_sql::grants::{self, CodeRow, FamilyRow, sql};

use crate::PgStore;
use crate::batch_queue::{ExchangeJob, Exchanged, WriteTogether, job_of_row};

/// Exchanges of a batch of codes, in one statement. Parameters are parallel arrays, one
/// element per exchange (`CodePlan`): code hash, asking app, redirect URI, whether a
/// verifier was presented, the challenge it answers (`CodePlan::verifier_challenge`),
/// now (ms), the new family's id and absolute expiry (ms), its first refresh token's hash
/// and inactivity expiry (ms), the audit event's id, and whether the first token is kept
/// in the family's row (`TokenKeeping::Family`: no token row, the head's times on the
/// family, as `sql::INSERT_FAMILY_OF_CODE` sets them). One row per code found, with its
/// `idx` (1-based), its columns as read before the statement, and the family it started
/// now (`new_*`, NULL when it was not redeemed now).
///
/// The redemption condition restates `CodePlan::redeems` (client, expiry, redirect URI,
/// PKCE, unused), the first refresh token `code_plan::issues_refresh_token` (`refreshable`)
/// and the audit event `CodePlan::family`; the conformance cases `a_refused_code_exchange_changes_nothing`
/// and `a_code_exchange_answered_early_is_stored_once_durable` pin them to the Rust, and
/// every code redeemed here is checked against the plan once more (`exchange_together`).
///
/// Each code is read by a lateral primary-key lookup (see `rotation::REFRESH_BATCH` for
/// why). Each grant row is share-locked and read once (`IN`), however many of the batch's
/// codes it holds: a join would repeat it, and every family insert with it.
pub(crate) static EXCHANGE_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH i AS ( \
           SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::bool[], $5::text[], \
                                $6::int8[], $7::text[], $8::int8[], $9::bytea[], $10::int8[], \
                                $11::text[], $12::bool[]) \
             WITH ORDINALITY AS i(code_hash, asking_app, redirect_uri, verifier_given, \
                                  challenge, now, new_family, absolute_expires, first_hash, \
                                  first_expires, event_id, first_kept, idx)), \
         read AS ( \
           SELECT i.idx, i.new_family, code.* FROM i CROSS JOIN LATERAL ( \
             SELECT {code} FROM codes c WHERE c.code_hash = i.code_hash LIMIT 1) code), \
         marked AS ( \
           UPDATE codes c SET used_at = i.now, family_id = i.new_family FROM i \
            WHERE c.code_hash = i.code_hash AND c.used_at IS NULL \
              AND c.app_id = i.asking_app AND c.expires_at > i.now \
              AND (c.redirect_uri IS NULL OR c.redirect_uri = i.redirect_uri) \
              AND CASE WHEN c.code_challenge IS NULL THEN NOT i.verifier_given \
                       ELSE c.code_challenge = i.challenge END \
           RETURNING i.idx, c.grant_id, c.app_id, c.account_id, c.scopes, c.audience, \
                     position(' offline_access ' IN ' ' || c.scopes || ' ') > 0 \
                       AS refreshable), \
         grant_now AS ( \
           SELECT g.grant_id, g.revoked_at FROM grants g \
            WHERE g.grant_id IN (SELECT grant_id FROM marked) FOR SHARE), \
         family AS ( \
           INSERT INTO token_families (family_id, grant_id, app_id, account_id, scopes, \
                                       credential_generation, created_at, absolute_expires_at, \
                                       revoked_at, revoke_reason, audience, head_issued_at, \
                                       head_expires_at) \
           SELECT i.new_family, m.grant_id, m.app_id, m.account_id, m.scopes, \
                  a.credential_generation, i.now, i.absolute_expires, \
                  CASE WHEN g.revoked_at IS NULL THEN NULL ELSE i.now END, \
                  CASE WHEN g.revoked_at IS NULL THEN NULL ELSE 'grant_revoked' END, \
                  m.audience, \
                  CASE WHEN m.refreshable AND i.first_kept THEN i.now END, \
                  CASE WHEN m.refreshable AND i.first_kept THEN i.first_expires END \
             FROM marked m JOIN i ON i.idx = m.idx \
             JOIN accounts a ON a.account_id = m.account_id \
             JOIN grant_now g ON g.grant_id = m.grant_id \
           RETURNING {family}), \
         first_token AS ( \
           INSERT INTO refresh_tokens (token_hash, family_id, generation, issued_at, \
                                       inactivity_expires_at, rotated_at) \
           SELECT i.first_hash, f.family_id, 0, i.now, i.first_expires, NULL \
             FROM family f JOIN i ON i.new_family = f.family_id JOIN marked m ON m.idx = i.idx \
            WHERE m.refreshable AND NOT i.first_kept \
           RETURNING 1), \
         issued AS ( \
           INSERT INTO audit_events (event_id, at, actor_account_id, action, target, \
                                     cloud_id, details) \
           SELECT i.event_id, i.now, f.account_id, 'token.issued', f.family_id, NULL, \
                  json_build_object('app_id', f.app_id, 'grant_id', f.grant_id)::text \
             FROM family f JOIN i ON i.new_family = f.family_id \
            WHERE f.revoked_at IS NULL \
           RETURNING 1) \
         SELECT r.*, {new_family} \
           FROM read r LEFT JOIN family f ON f.family_id = r.new_family",
        code = sql::CODE_COLUMNS,
        family = sql::FAMILY_COLUMNS,
        new_family = new_family_columns(),
    )
});

/// The family columns of `f` as `new_<column>`: the row holds the code's columns too.
fn new_family_columns() -> String {
    sql::FAMILY_COLUMNS
        .split(',')
        .map(|column| format!("f.{0} AS new_{0}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The family an [`EXCHANGE_BATCH`] row started, read from its `new_*` columns.
fn new_family(row: &PgRow) -> Result<Option<FamilyRow>, sqlx::Error> {
    let Some(family_id) = row.try_get::<Option<String>, _>("new_family_id")? else {
        return Ok(None);
    };
    Ok(Some(FamilyRow {
        family_id,
        grant_id: row.try_get("new_grant_id")?,
        app_id: row.try_get("new_app_id")?,
        account_id: row.try_get("new_account_id")?,
        scopes: row.try_get("new_scopes")?,
        credential_generation: row.try_get("new_credential_generation")?,
        created_at: row.try_get("new_created_at")?,
        absolute_expires_at: row.try_get("new_absolute_expires_at")?,
        head_generation: row.try_get("new_head_generation")?,
        revoked_at: row.try_get("new_revoked_at")?,
        revoke_reason: row.try_get("new_revoke_reason")?,
        audience: row.try_get("new_audience")?,
        head_issued_at: row.try_get("new_head_issued_at")?,
        head_expires_at: row.try_get("new_head_expires_at")?,
        previous_issued_at: row.try_get("new_previous_issued_at")?,
    }))
}

/// One row of [`EXCHANGE_BATCH`]: the code as read, and the family it started now.
struct ExchangeRow {
    idx: i64,
    code: AuthorizationCode,
    family: Option<TokenFamily>,
}

impl ExchangeRow {
    fn read(row: &PgRow) -> Result<ExchangeRow, Fail> {
        let idx: i64 = row.try_get("idx").map_err(Fail::Sql)?;
        let code = AuthorizationCode::try_from(CodeRow::from_row(row).map_err(Fail::Sql)?)?;
        let family = new_family(row)
            .map_err(Fail::Sql)?
            .map(TokenFamily::try_from)
            .transpose()?;
        Ok(ExchangeRow { idx, code, family })
    }
}

impl PgStore {
    /// `GrantStore::exchange_code`: the exchange joins the next batch of the exchange
    /// queue. A code the plan redeems that another transaction used first is read again,
    /// to say who used it.
    pub(crate) async fn exchange(&self, plan: &CodePlan) -> StoreResult<Option<CodeExchanged>> {
        let exchanged = self
            .batched(
                |store| &store.exchanges,
                Some(|store| &store.batches),
                |reply| ExchangeJob {
                    plan: plan.clone(),
                    reply,
                },
            )
            .await?;
        let Some(exchanged) = exchanged else {
            return Ok(None);
        };
        let CodeExchanged { code, redeemed } = exchanged?;
        let redeemed = match redeemed {
            Some(Redeemed::AlreadyUsed(_)) => Some(
                self.read(|c| grants::code(c, &plan.code_hash))
                    .await?
                    .map_or(Redeemed::NotFound, Redeemed::AlreadyUsed),
            ),
            // The batch ran again after a broken connection lost the answer to an attempt
            // that had committed: that attempt's family is this exchange's.
            None if plan.spent_by_this_plan(&code) => Some(
                self.read(|c| grants::family(c, &plan.family_id))
                    .await?
                    .map_or(Redeemed::NotFound, Redeemed::First),
            ),
            other => other,
        };
        Ok(Some(CodeExchanged { code, redeemed }))
    }

    /// [`EXCHANGE_BATCH`] for `jobs`: each job's outcome, in order. A code the plan
    /// redeems but the statement did not was used by another transaction meanwhile
    /// (`AlreadyUsed`, with the code as read: [`PgStore::exchange`] reads it again).
    async fn exchange_together(&self, jobs: &[ExchangeJob]) -> StoreResult<Vec<Exchanged>> {
        let plans: Vec<&CodePlan> = jobs.iter().map(|j| &j.plan).collect();
        let code_hash: Vec<&[u8]> = plans.iter().map(|p| p.code_hash.as_slice()).collect();
        let asking_app: Vec<&str> = plans.iter().map(|p| p.app_id.as_str()).collect();
        let redirect_uri: Vec<Option<&str>> =
            plans.iter().map(|p| p.redirect_uri.as_deref()).collect();
        let verifier_given: Vec<bool> = plans.iter().map(|p| p.code_verifier.is_some()).collect();
        let challenge: Vec<Option<String>> = plans.iter().map(|p| p.verifier_challenge()).collect();
        let now: Vec<i64> = plans.iter().map(|p| ms(p.now)).collect();
        let new_family: Vec<&str> = plans.iter().map(|p| p.family_id.as_str()).collect();
        let absolute: Vec<i64> = plans.iter().map(|p| ms(p.absolute_expires_at)).collect();
        let first_hash: Vec<&[u8]> = plans
            .iter()
            .map(|p| p.first_refresh_token.token_hash.as_slice())
            .collect();
        let first_expires: Vec<i64> = plans
            .iter()
            .map(|p| ms(p.first_refresh_token.inactivity_expires_at))
            .collect();
        let event_id: Vec<&str> = plans.iter().map(|p| p.event_id.as_str()).collect();
        let first_kept: Vec<bool> = plans
            .iter()
            .map(|p| p.first_refresh_token.kept == TokenKeeping::Family)
            .collect();
        let (code_hash, asking_app, redirect_uri) = (&code_hash, &asking_app, &redirect_uri);
        let (verifier_given, challenge, now) = (&verifier_given, &challenge, &now);
        let (new_family, absolute, event_id) = (&new_family, &absolute, &event_id);
        let (first_hash, first_expires, first_kept) = (&first_hash, &first_expires, &first_kept);
        let rows = self
            .exchange_writer
            .run(move |mut held| async move {
                // Built once from constant parts only: nothing of the request is in the text.
                let rows = sqlx::query(AssertSqlSafe(EXCHANGE_BATCH.as_str()))
                    .bind(code_hash)
                    .bind(asking_app)
                    .bind(redirect_uri)
                    .bind(verifier_given)
                    .bind(challenge)
                    .bind(now)
                    .bind(new_family)
                    .bind(absolute)
                    .bind(first_hash)
                    .bind(first_expires)
                    .bind(event_id)
                    .bind(first_kept)
                    .fetch_all(held.connection()?)
                    .await
                    .map_err(Fail::Sql)?;
                rows.iter()
                    .map(ExchangeRow::read)
                    .collect::<Result<Vec<_>, Fail>>()
            })
            .await?;
        let mut outcomes: Vec<Exchanged> = jobs.iter().map(|_| None).collect();
        for ExchangeRow { idx, code, family } in rows {
            let place = job_of_row(idx, jobs.len(), "exchange")?;
            let (slot, plan) = (&mut outcomes[place], plans[place]);
            let redeemed = match family {
                // The SQL restates the plan's check: never let the two disagree silently,
                // and fail only the exchange they disagree on.
                Some(_) if !plan.redeems(&code) => {
                    *slot = Some(Err(StoreError::Corrupt(
                        "the exchange statement redeemed a code its plan refuses".to_owned(),
                    )));
                    continue;
                }
                Some(family) => Some(Redeemed::First(family)),
                None if plan.redeems(&code) => Some(Redeemed::AlreadyUsed(code.clone())),
                None => None,
            };
            *slot = Some(Ok(CodeExchanged { code, redeemed }));
        }
        Ok(outcomes)
    }
}

impl WriteTogether<ExchangeJob> for PgStore {
    async fn write_together(&self, jobs: &[ExchangeJob]) -> StoreResult<Vec<Exchanged>> {
        self.exchange_together(jobs).await
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

    use crate::testing::fresh_store;

    /// Security checklist H-C3 on PostgreSQL, where only row locks order a redemption
    /// against a revocation: with a revocation of the grant uncommitted, the exchange (the
    /// batched statement) and the transactional redemption each wait for it, and the
    /// family each starts is born revoked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redemption_waits_for_a_revocation_in_flight_and_is_born_revoked() {
        let Some((db, store)) = fresh_store(4).await.unwrap() else {
            return;
        };
        let store = Arc::new(store);
        let w = World::seed(store.as_ref()).await.unwrap();
        for batched in [true, false] {
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
                let plan = fixtures::code_plan(&w.app.app_id, &code, at(3));
                tokio::spawn(async move {
                    if batched {
                        let (exchanged, _) = store.exchange_code(&plan).await.unwrap();
                        exchanged.unwrap().redeemed.unwrap()
                    } else {
                        let family = fixtures::new_family(at(3));
                        store
                            .redeem_code(&code.code_hash, &family, at(3))
                            .await
                            .unwrap()
                    }
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
                    "the redemption did not wait for the revocation in flight (batched: {batched})"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sqlx::query("COMMIT").execute(&mut revoker).await.unwrap();

            match redeeming.await.unwrap() {
                Redeemed::First(family) => {
                    assert_eq!(family.revoked_at, Some(at(3)));
                    assert_eq!(family.revoke_reason.as_deref(), Some("grant_revoked"));
                }
                other => panic!("expected First, got {other:?} (batched: {batched})"),
            }
            drop((revoker, watcher));
        }
        store.close().await;
        db.drop_database().await.unwrap();
    }
}
