//! A refresh-token rotation in one statement: the family head advanced, the parent marked
//! rotated and the child inserted, as data-modifying CTEs that run atomically in the
//! statement's own transaction. Against the three statements of
//! `trilo_store_sql::grants::rotate_refresh_token` in an explicit transaction this saves
//! four round trips per rotation; the SQL stays portable (no procedural code).
//!
//! The family row is the compare-and-set: racing rotations serialize on it, and at READ
//! COMMITTED the loser re-checks the head after the winner commits and changes nothing.
//! Each later step follows only from the one before, so the child is inserted exactly
//! when the head advanced and the parent was marked. (A head whose token is missing, which
//! only a damaged database has, would advance without a child and end that family: safe,
//! where the transactional version reports the damage.)

use std::sync::LazyLock;

use sqlx::{AssertSqlSafe, FromRow, Row};
use trilo_core::model::{RefreshTokenState, Rotation, TokenHash};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{Refreshed, StoreResult, read_then_rotate};
use trilo_store_sql::conn::Fail;
use trilo_store_sql::convert::ms;
use trilo_store_sql::grants::{RefreshStateRow, sql};

use crate::PgStore;
use crate::error::retry;

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

/// The refresh grant in one statement: the presented token's state as
/// `REFRESH_TOKEN_STATE` reads it, and the rotation when the state is what
/// `RotationRule::decide` answers `Rotate` for: the client's own live family, a live grant,
/// an active account with the family's credential generation, the presented token at the
/// head and neither lifetime over. The family's own conditions are checked on the locked
/// row, so the compare-and-set holds as in [`ROTATE`]; the state returned is the one read
/// before it.
static REFRESH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH s AS ({state}), \
         advanced AS ( \
           UPDATE token_families f SET head_generation = s.generation + 1 FROM s \
            WHERE f.family_id = s.family_id AND f.head_generation = s.generation \
              AND f.revoked_at IS NULL AND f.app_id = $2 AND s.grant_live = 1 \
              AND s.account_generation = f.credential_generation \
              AND f.absolute_expires_at > $3 AND s.inactivity_expires_at > $3 \
           RETURNING f.family_id, f.head_generation), \
         marked AS ( \
           UPDATE refresh_tokens t SET rotated_at = $3 FROM advanced a \
            WHERE t.token_hash = $1 AND t.family_id = a.family_id \
              AND t.generation = a.head_generation - 1 AND t.rotated_at IS NULL \
           RETURNING a.family_id, a.head_generation), \
         inserted AS ( \
           INSERT INTO refresh_tokens (token_hash, family_id, generation, issued_at, \
                                       inactivity_expires_at, rotated_at) \
           SELECT $4, family_id, head_generation, $3, $5, NULL FROM marked RETURNING 1) \
         SELECT s.*, (SELECT count(*) FROM inserted) AS rotated FROM s",
        state = sql::REFRESH_TOKEN_STATE
    )
});

impl PgStore {
    /// The refresh grant's store step in one round trip, when the plan leaves the scopes
    /// as granted; otherwise (a narrowing `scope` parameter is checked in Rust) a read and
    /// then a rotation.
    pub(crate) async fn refresh(
        &self,
        token_hash: &TokenHash,
        plan: &RefreshPlan,
    ) -> StoreResult<Option<Refreshed>> {
        if !plan.keeps_family_scopes() {
            return read_then_rotate(self, token_hash, plan).await;
        }
        retry(move || async move {
            // Built once from constant parts only: nothing of the request is in the text.
            let Some(row) = sqlx::query(AssertSqlSafe(REFRESH.as_str()))
                .bind(token_hash.as_slice())
                .bind(&plan.rule.app_id)
                .bind(ms(plan.rule.now))
                .bind(plan.child.token_hash.as_slice())
                .bind(ms(plan.child.inactivity_expires_at))
                .fetch_optional(&self.pool)
                .await
                .map_err(Fail::Sql)?
            else {
                return Ok(None);
            };
            let rotated: i64 = row.try_get("rotated").map_err(Fail::Sql)?;
            let state =
                RefreshTokenState::try_from(RefreshStateRow::from_row(&row).map_err(Fail::Sql)?)?;
            Ok(Some(Refreshed {
                state,
                rotated: rotated == 1,
            }))
        })
        .await
    }

    /// One rotation; `false`, changing nothing, when the compare-and-set lost.
    pub(crate) async fn rotate(&self, rotation: &Rotation) -> StoreResult<bool> {
        let child_generation = rotation.parent_generation + 1;
        retry(move || async move {
            let inserted = sqlx::query(ROTATE)
                .bind(child_generation)
                .bind(&rotation.family_id)
                .bind(rotation.parent_generation)
                .bind(rotation.parent_hash.as_slice())
                .bind(ms(rotation.at))
                .bind(rotation.child.token_hash.as_slice())
                .bind(ms(rotation.child.inactivity_expires_at))
                .execute(&self.pool)
                .await
                .map_err(Fail::Sql)?
                .rows_affected();
            Ok(inserted == 1)
        })
        .await
    }
}
