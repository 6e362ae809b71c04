//! Refresh-token rotation on PostgreSQL, each in one statement.
//!
//! A token kept in its family's row (`TokenKeeping::Family`, every token issued since
//! migration 0020) rotates by the family row alone: `ADVANCE_KEPT_HEAD`, the shared
//! compare-and-set, and for the refresh grant a whole batch of presented tokens at once
//! (`REFRESH_BATCH`, fed by `batch_queue`, one batch at a time). Racing rotations serialize
//! on the family row, and at READ COMMITTED the loser re-checks the head after the winner
//! commits and changes nothing. A batch locks its families in no particular order; should
//! it deadlock with another writer, PostgreSQL aborts one and `retry` runs it again.
//!
//! A token with its own row (issued before migration 0020) rotates by `ROTATE`: the family
//! head advanced, the parent marked rotated and the child inserted, as data-modifying CTEs
//! that run atomically in the statement's own transaction. Each later step follows only
//! from the one before, so the child is inserted exactly when the head advanced and the
//! parent was marked. (A head whose token is missing, which only a damaged database has,
//! would advance without a child and end that family: safe, where the transactional
//! version reports the damage.)

use std::sync::LazyLock;

use sqlx::{AssertSqlSafe, FromRow, Row};
use trilo_core::model::{Rotation, TokenKeeping};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{Durable, Refreshed, StoreResult};
use trilo_store_sql::conn::Fail;
use trilo_store_sql::convert::ms;
use trilo_store_sql::grants::{KeptStateRow, sql};
use trilo_store_sql::store::read_then_rotate;

use crate::PgStore;
use crate::batch_queue::{RefreshJob, WriteTogether, job_of_row};

const ROTATE: &str = "WITH advanced AS ( \
       UPDATE token_families SET head_generation = $1 \
        WHERE family_id = $2 AND head_generation = $3 AND revoked_at IS NULL \
       RETURNING family_id), \
     marked AS ( \
       UPDATE refresh_tokens SET rotated_at = $5 \
        WHERE token_hash = $4 AND family_id IN (SELECT family_id FROM advanced) \
          AND generation = $3 AND rotated_at IS NULL \
       RETURNING family_id) \
     INSERT INTO refresh_tokens (token_hash, family_id, generation, issued_at, \
                                 inactivity_expires_at, rotated_at) \
     SELECT $6, family_id, $1, $5, $7, NULL FROM marked";

/// The refresh grant for a batch of presented tokens kept in their families' rows
/// (`TokenKeeping::Family`), in one statement: each family's state as `KEPT_TOKEN_STATE`
/// reads it, and its rotation when the state is what `RotationRule::decide` answers
/// `Rotate` for: the client's own live family, a live grant that still holds
/// `offline_access` (`trilo_protocol::scope::grant_allows_refresh`), an active account
/// with the family's credential generation, the presented generation at the head and
/// neither lifetime over. The family's own conditions are checked on the locked row, so
/// the compare-and-set holds as in `ADVANCE_KEPT_HEAD`; the state returned is the one read
/// before it (the presented token itself is the family's to say, `TokenFamily::kept_token`).
/// Parameters are parallel arrays, one element per refresh: the presented token's family
/// and generation, asking app, clock reading (ms), successor's inactivity expiry (ms).
/// A batch never presents one token twice (`batch_queue::take_batch`).
///
/// Each state is read by a lateral subquery that cannot be flattened (`LIMIT 1`; the
/// family id is the primary key): the plan is then one primary-key lookup per presented
/// token whatever the statistics said when PostgreSQL cached its generic plan. Joined
/// plainly, a plan made while a table was small scanned the whole table on every batch as
/// it grew.
static REFRESH_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH r AS ( \
           SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::int8[]) \
             WITH ORDINALITY AS r(presented_family, presented_generation, asking_app, at, \
                                  child_expires, idx)), \
         s AS ( \
           SELECT r.idx, r.presented_generation, r.asking_app, r.at, r.child_expires, state.* \
             FROM r CROSS JOIN LATERAL ( \
               SELECT {columns} FROM token_families f {joins} \
                WHERE f.family_id = r.presented_family AND f.head_expires_at IS NOT NULL \
                LIMIT 1) state), \
         advanced AS ( \
           UPDATE token_families f SET head_generation = s.presented_generation + 1, \
                  previous_issued_at = f.head_issued_at, head_issued_at = s.at, \
                  head_expires_at = s.child_expires \
             FROM s \
            WHERE f.family_id = s.family_id AND f.head_generation = s.presented_generation \
              AND f.revoked_at IS NULL AND f.app_id = s.asking_app AND s.grant_live = 1 \
              AND position(' offline_access ' IN ' ' || s.grant_scopes || ' ') > 0 \
              AND s.account_generation = f.credential_generation \
              AND f.absolute_expires_at > s.at AND f.head_expires_at > s.at \
           RETURNING s.idx) \
         SELECT s.*, EXISTS (SELECT 1 FROM advanced a WHERE a.idx = s.idx) AS rotated \
           FROM s",
        columns = sql::KEPT_STATE_COLUMNS,
        joins = sql::KEPT_STATE_JOINS,
    )
});

impl PgStore {
    /// The refresh grant's store step. A kept token whose plan leaves the scopes as
    /// granted joins the next batch of the refresh queue; otherwise (a narrowing `scope`
    /// parameter is checked in Rust, and a token with its own row is one issued before
    /// migration 0020) it is a read and then a rotation.
    pub(crate) async fn refresh(&self, plan: &RefreshPlan) -> StoreResult<Option<Refreshed>> {
        if !plan.keeps_family_scopes() || plan.parent.kept != TokenKeeping::Family {
            return read_then_rotate(self, plan).await;
        }
        self.batched(
            |store| &store.refreshes,
            Some(|store| &store.batches),
            |reply| RefreshJob {
                plan: plan.clone(),
                reply,
            },
        )
        .await
    }

    /// [`REFRESH_BATCH`] for `jobs` (kept tokens only, see [`PgStore::refresh`]): each
    /// job's outcome, in order.
    async fn refresh_together(&self, jobs: &[RefreshJob]) -> StoreResult<Vec<Option<Refreshed>>> {
        let family_id: Vec<&str> = jobs
            .iter()
            .map(|job| job.plan.parent.family_id.as_str())
            .collect();
        let generation: Vec<i64> = jobs.iter().map(|job| job.plan.parent.generation).collect();
        let asking_app: Vec<&str> = jobs
            .iter()
            .map(|job| job.plan.rule.app_id.as_str())
            .collect();
        let at: Vec<i64> = jobs.iter().map(|job| ms(job.plan.rule.now)).collect();
        let child_expires: Vec<i64> = jobs
            .iter()
            .map(|job| ms(job.plan.child.inactivity_expires_at))
            .collect();
        let (family_id, generation, asking_app) = (&family_id, &generation, &asking_app);
        let (at, child_expires) = (&at, &child_expires);
        self.refresh_writer
            .run(move |mut held| async move {
                // Built once from constant parts only: nothing of the request is in the text.
                let rows = sqlx::query(AssertSqlSafe(REFRESH_BATCH.as_str()))
                    .bind(family_id)
                    .bind(generation)
                    .bind(asking_app)
                    .bind(at)
                    .bind(child_expires)
                    .fetch_all(held.connection()?)
                    .await
                    .map_err(Fail::Sql)?;
                let mut outcomes: Vec<Option<Refreshed>> = jobs.iter().map(|_| None).collect();
                for row in rows {
                    let idx: i64 = row.try_get("idx").map_err(Fail::Sql)?;
                    let rotated: bool = row.try_get("rotated").map_err(Fail::Sql)?;
                    let place = job_of_row(idx, jobs.len(), "refresh")?;
                    let (slot, job) = (&mut outcomes[place], &jobs[place]);
                    let family = KeptStateRow::from_row(&row).map_err(Fail::Sql)?;
                    // A generation the family never issued is no token: the SQL cannot have
                    // rotated it (it rotates only the head).
                    *slot = family.state(&job.plan.parent)?.map(|state| Refreshed {
                        state,
                        rotated,
                        durable: Durable::committed(),
                    });
                }
                Ok(outcomes)
            })
            .await
    }

    /// One rotation; `false`, changing nothing, when the compare-and-set lost.
    pub(crate) async fn rotate(&self, rotation: &Rotation) -> StoreResult<bool> {
        let child_generation = rotation.parent_generation + 1;
        let kept = rotation.child.kept == TokenKeeping::Family;
        self.retry(move || async move {
            let query = if kept {
                sqlx::query(sql::ADVANCE_KEPT_HEAD)
                    .bind(child_generation)
                    .bind(ms(rotation.at))
                    .bind(ms(rotation.child.inactivity_expires_at))
                    .bind(&rotation.family_id)
                    .bind(rotation.parent_generation)
            } else {
                sqlx::query(ROTATE)
                    .bind(child_generation)
                    .bind(&rotation.family_id)
                    .bind(rotation.parent_generation)
                    .bind(rotation.parent_hash.as_slice())
                    .bind(ms(rotation.at))
                    .bind(rotation.child.token_hash.as_slice())
                    .bind(ms(rotation.child.inactivity_expires_at))
            };
            let changed = query
                .execute(&self.pool)
                .await
                .map_err(Fail::Sql)?
                .rows_affected();
            Ok(changed == 1)
        })
        .await
    }
}

impl WriteTogether<RefreshJob> for PgStore {
    async fn write_together(&self, jobs: &[RefreshJob]) -> StoreResult<Vec<Option<Refreshed>>> {
        self.refresh_together(jobs).await
    }
}
