//! The background loops every instance runs besides the webhook sender: following (and on
//! schedule making) signing-key rotations, and the janitor.

use std::time::Duration;

use tokio::task::JoinHandle;
use trilo_core::Core;

/// The running loops; dropping the handle stops them.
#[derive(Debug)]
pub struct HousekeepingHandle(Vec<JoinHandle<()>>);

impl Drop for HousekeepingHandle {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Starts the loops on the current runtime.
pub fn spawn(core: Core) -> HousekeepingHandle {
    let mut tasks = vec![tokio::spawn(follow_keys(core.clone()))];
    if core.settings.janitor.enabled {
        tasks.push(tokio::spawn(janitor(core)));
    }
    HousekeepingHandle(tasks)
}

fn std(d: time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::from_secs(1))
}

async fn follow_keys(core: Core) {
    let mut tick = tokio::time::interval(std(core.settings.keys.reload_every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = core.follow_signing_keys().await {
            tracing::warn!(error = %e, "could not re-read the signing keys");
        }
    }
}

async fn janitor(core: Core) {
    let every = std(core.settings.janitor.every);
    loop {
        // First after one period: a starting instance has better things to do.
        tokio::time::sleep(every).await;
        if let Err(e) = core.sweep_once().await {
            tracing::warn!(error = %e, "the janitor's sweep failed; it tries again next time");
        }
    }
}
