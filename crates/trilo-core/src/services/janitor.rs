//! The janitor: removes what nothing can use any more (expired codes and sessions, dead
//! refresh tokens, families past their retention, long-retired signing keys), a bounded
//! batch at a time, so the hot paths never wait long behind it. After each batch it waits
//! nine times as long as the batch took (and at least `janitor.pause`): it takes at most a
//! tenth of the store's time however large the backlog, and a backlog is worked off over
//! minutes instead of at the hot paths' expense. Every instance may run it: the deletes
//! are idempotent.

use std::sync::atomic::Ordering;

use super::Core;
use crate::error::CoreResult;
use crate::store::Sweep;

/// After a batch that took `t`, the janitor waits `BACK_OFF × t`: a tenth of the time.
const BACK_OFF: u32 = 9;

/// The kinds, by name (for logs and `/metrics`).
pub const SWEEP_KINDS: [&str; 8] = [
    "expired_codes",
    "expired_sessions",
    "dead_refresh_tokens",
    "revoked_families",
    "expired_families",
    "retired_keys",
    "ended_failure_windows",
    "expired_password_resets",
];

/// Rows one sweep removed, by kind, in [`SWEEP_KINDS`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport(pub [u64; 8]);

impl SweepReport {
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn removed(&self, kind: &str) -> u64 {
        SWEEP_KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.0[i])
    }
}

impl Core {
    /// What is removable now, each with its cutoff. A row is kept past the moment it stops
    /// being usable for as long as keeping it still tells something apart: a replayed code
    /// or refresh token is recognised (and revokes its family) while its row exists.
    fn sweeps(&self) -> [Sweep; 8] {
        let now = self.now();
        let s = &self.settings;
        [
            // A code's row outlives it by one more lifetime, so a late replay still
            // revokes what the first redemption produced.
            Sweep::ExpiredCodes(now - s.code_ttl),
            Sweep::ExpiredSessions(now),
            Sweep::DeadRefreshTokens(now - s.jwt_leeway),
            Sweep::RevokedFamilies(now - s.janitor.family_retention),
            Sweep::ExpiredFamilies(now - s.janitor.family_retention),
            Sweep::RetiredKeys(now - s.keys.retired_kept),
            Sweep::EndedFailureWindows(now),
            Sweep::ExpiredPasswordResets(now),
        ]
    }

    /// One sweep over every kind: batch after batch until a batch comes back short.
    pub async fn sweep_once(&self) -> CoreResult<SweepReport> {
        let settings = &self.settings.janitor;
        let pause = std::time::Duration::try_from(settings.pause).unwrap_or_default();
        let mut report = SweepReport::default();
        for (i, sweep) in self.sweeps().into_iter().enumerate() {
            loop {
                let started = std::time::Instant::now();
                let removed = self.store.sweep(sweep, settings.batch).await?;
                report.0[i] += removed;
                self.metrics.janitor_removed[i].fetch_add(removed, Ordering::Relaxed);
                if removed < u64::from(settings.batch) {
                    break;
                }
                tokio::time::sleep(pause.max(started.elapsed() * BACK_OFF)).await;
            }
        }
        if report.total() > 0 {
            tracing::info!(
                removed = report.total(),
                codes = report.0[0],
                sessions = report.0[1],
                refresh_tokens = report.0[2],
                revoked_families = report.0[3],
                expired_families = report.0[4],
                keys = report.0[5],
                failure_windows = report.0[6],
                password_resets = report.0[7],
                "janitor swept"
            );
        }
        Ok(report)
    }
}
