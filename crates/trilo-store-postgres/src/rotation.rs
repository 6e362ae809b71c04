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

use trilo_core::model::Rotation;
use trilo_core::store::StoreResult;
use trilo_store_sql::conn::Fail;
use trilo_store_sql::convert::ms;

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

impl PgStore {
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
