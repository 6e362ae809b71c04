//! The gateway's read of a new access token's standing (`GrantStore::access_token_standing`:
//! its family, its grant's scopes while live, its account's credential generation), for a
//! batch of tokens in one statement. At thousands of new tokens a second, each read on its
//! own paid PostgreSQL's executor start-up and a round trip of its own, about as much as
//! the read itself; reads that arrive while one batch is out go together in the next
//! (`batch_queue`, one batch at a time).

use std::sync::LazyLock;

use sqlx::{AssertSqlSafe, FromRow, Row};
use trilo_core::model::AccessTokenStanding;
use trilo_core::store::StoreResult;
use trilo_store_sql::conn::Fail;
use trilo_store_sql::grants::{AccessStandingRow, sql};

use crate::PgStore;
use crate::batch_queue::{StandingJob, WriteTogether, job_of_row};

/// The standings of a batch of families, one row per family found, with its `idx`
/// (1-based) in `$1`. The same columns and joins as `ACCESS_TOKEN_STANDING`; each family
/// is a lateral primary-key lookup (see `rotation::REFRESH_BATCH` for why).
static STANDING_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT r.idx, s.* FROM unnest($1::text[]) WITH ORDINALITY AS r(family_id, idx) \
         CROSS JOIN LATERAL ( \
           SELECT {columns} {from} WHERE f.family_id = r.family_id LIMIT 1) s",
        columns = sql::ACCESS_STANDING_COLUMNS,
        from = sql::ACCESS_STANDING_FROM,
    )
});

impl PgStore {
    /// `GrantStore::access_token_standing`: the read joins the next batch.
    pub(crate) async fn standing(
        &self,
        family_id: &str,
    ) -> StoreResult<Option<AccessTokenStanding>> {
        self.batched(
            |store| &store.standings,
            None,
            |reply| StandingJob {
                family_id: family_id.to_owned(),
                reply,
            },
        )
        .await
    }

    /// [`STANDING_BATCH`] for `jobs`: each job's standing, in order.
    async fn standings_together(
        &self,
        jobs: &[StandingJob],
    ) -> StoreResult<Vec<Option<AccessTokenStanding>>> {
        let families: Vec<&str> = jobs.iter().map(|j| j.family_id.as_str()).collect();
        let families = &families;
        self.standing_writer
            .run(move |mut held| async move {
                // Built once from constant parts only: nothing of the request is in the text.
                let rows = sqlx::query(AssertSqlSafe(STANDING_BATCH.as_str()))
                    .bind(families)
                    .fetch_all(held.connection()?)
                    .await
                    .map_err(Fail::Sql)?;
                let mut standings: Vec<Option<AccessTokenStanding>> =
                    jobs.iter().map(|_| None).collect();
                for row in rows {
                    let idx: i64 = row.try_get("idx").map_err(Fail::Sql)?;
                    let standing = AccessTokenStanding::try_from(
                        AccessStandingRow::from_row(&row).map_err(Fail::Sql)?,
                    )?;
                    standings[job_of_row(idx, jobs.len(), "standing")?] = Some(standing);
                }
                Ok(standings)
            })
            .await
    }
}

impl WriteTogether<StandingJob> for PgStore {
    async fn write_together(
        &self,
        jobs: &[StandingJob],
    ) -> StoreResult<Vec<Option<AccessTokenStanding>>> {
        self.standings_together(jobs).await
    }
}
