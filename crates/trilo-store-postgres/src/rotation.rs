//! A refresh-token rotation in one statement: the compare-and-set on the family head,
//! the parent marked rotated and the child inserted, as data-modifying CTEs that run
//! atomically in the statement's own transaction. Against the three statements of
//! `trilo_store_sql::grants::rotate_refresh_token` in an explicit transaction this saves
//! four round trips per rotation; the SQL stays portable (no procedural code).
//!
//! The head advances only if the parent token is still unrotated, checked in the same
//! statement; the marking and the insert follow only from an advanced head. Racing
//! rotations serialize on the family row: at READ COMMITTED the loser re-checks the head
//! after the winner commits and advances nothing.

use trilo_core::model::Rotation;
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::conn::Fail;
use trilo_store_sql::convert::ms;

use crate::PgStore;
use crate::error::retry;

const ROTATE: &str = "WITH advanced AS ( \
       UPDATE token_families SET head_generation = $1 \
        WHERE family_id = $2 AND head_generation = $3 AND revoked_at IS NULL \
          AND EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $4 \
                      AND family_id = $2 AND generation = $3 AND rotated_at IS NULL) \
       RETURNING family_id), \
     marked AS ( \
       UPDATE refresh_tokens SET rotated_at = $5 \
        WHERE token_hash = $4 AND family_id = $2 AND generation = $3 AND rotated_at IS NULL \
          AND EXISTS (SELECT 1 FROM advanced) \
       RETURNING token_hash), \
     inserted AS ( \
       INSERT INTO refresh_tokens (token_hash, family_id, generation, issued_at, \
                                   inactivity_expires_at, rotated_at) \
       SELECT $6, family_id, $1, $5, $7, NULL FROM advanced \
       RETURNING token_hash) \
     SELECT (SELECT COUNT(*) FROM advanced) + (SELECT COUNT(*) FROM marked) \
          + (SELECT COUNT(*) FROM inserted)";

impl PgStore {
    /// One rotation; `false`, changing nothing, when the compare-and-set lost.
    pub(crate) async fn rotate(&self, rotation: &Rotation) -> StoreResult<bool> {
        let child_generation = rotation.parent_generation + 1;
        retry(move || async move {
            let changed: i64 = sqlx::query_scalar(ROTATE)
                .bind(child_generation)
                .bind(&rotation.family_id)
                .bind(rotation.parent_generation)
                .bind(rotation.parent_hash.as_slice())
                .bind(ms(rotation.at))
                .bind(rotation.child.token_hash.as_slice())
                .bind(ms(rotation.child.inactivity_expires_at))
                .fetch_one(&self.pool)
                .await
                .map_err(Fail::Sql)?;
            // All three changes (the head, the parent and the child) or none.
            match changed {
                0 => Ok(false),
                3 => Ok(true),
                _ => Err(Fail::Store(StoreError::Corrupt(
                    "a rotation changed only part of the family".to_owned(),
                ))),
            }
        })
        .await
    }
}
