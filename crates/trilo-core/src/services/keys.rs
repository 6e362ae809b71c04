//! Signing-key rotation, by hand (`trilo admin keys rotate`) and on a schedule, and how an
//! instance follows rotations made elsewhere (see `crate::keys` for why that is safe).

use serde_json::json;

use super::Core;
use crate::error::{CoreError, CoreResult};
use crate::keys::{KeyError, Rotated};

impl Core {
    /// Rotates the signing keys now. `Ok(None)` when another instance rotated the same keys
    /// at the same moment (this one then holds the result). `actor` is the account that
    /// asked, if any (None for the CLI and the schedule).
    pub async fn rotate_signing_keys(&self, actor: Option<&str>) -> CoreResult<Option<Rotated>> {
        self.rotate_keys(actor, None).await
    }

    /// See `KeyRing::rotate` for `only_if_due`.
    async fn rotate_keys(
        &self,
        actor: Option<&str>,
        only_if_due: Option<time::Duration>,
    ) -> CoreResult<Option<Rotated>> {
        let rotated = self
            .keys
            .rotate(self.store.as_ref(), self.now(), only_if_due)
            .await
            .map_err(key_error)?;
        if let Some(r) = &rotated {
            tracing::info!(retired = %r.retired, current = %r.current, next = %r.next, "signing keys rotated");
            self.audit(
                actor,
                "signing_key.rotated",
                &r.current,
                None,
                json!({ "retired": r.retired, "current": r.current, "next": r.next }),
            )
            .await?;
        }
        Ok(rotated)
    }

    /// Every stored signing key, oldest first (for `trilo admin keys list`).
    pub async fn signing_keys(&self) -> CoreResult<Vec<crate::model::SigningKeyRecord>> {
        Ok(self.store.signing_keys().await?)
    }

    /// One turn of the key loop every instance runs (`settings.keys.reload_every`): read
    /// the stored keys, and rotate them when the schedule says so.
    pub async fn follow_signing_keys(&self) -> CoreResult<()> {
        let now = self.now();
        self.keys
            .reload(self.store.as_ref(), now)
            .await
            .map_err(key_error)?;
        if let Some(every) = self.settings.keys.rotate_every
            && self.keys.rotation_due(now, every)
        {
            self.rotate_keys(None, Some(every)).await?;
        }
        Ok(())
    }
}

fn key_error(e: KeyError) -> CoreError {
    match e {
        KeyError::Store(e) => e.into(),
        e => CoreError::Internal(e.into()),
    }
}
