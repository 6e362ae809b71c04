//! Group commit for the hot writes: refreshes (`rotation::REFRESH_BATCH`) and code
//! exchanges (`exchange::EXCHANGE_BATCH`) that arrive while others are being written
//! wait here and then go to the database together, in one statement and one transaction.
//! The gateway's reads of new tokens' standings (`standing::STANDING_BATCH`) are batched
//! the same way.
//! Executor start-up, the commit's WAL flush and the round trip are then paid once per
//! batch instead of once per request, which is what bounded PostgreSQL's rates.
//!
//! At most [`MAX_WRITERS`] batches of a kind are in flight. A request that finds a free
//! writer slot starts a writer with whatever waits; a writer that finishes a batch takes
//! the next one or, when nothing waits, leaves. Both decisions are made under the one
//! lock, so a waiting request always has a writer coming for it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;
use trilo_core::code_plan::{CodeExchanged, CodePlan};
use trilo_core::metrics::CommitStats;
use trilo_core::model::{AccessTokenStanding, RefreshTokenKey, TokenHash};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{Refreshed, StoreError, StoreResult};

use crate::PgStore;

/// Requests written by one statement at most.
pub(crate) const MAX_BATCH: usize = 64;
/// Batches of a kind in flight at once. One: measured on two cores, a second writer only
/// split the work into smaller batches (about 6,500 refreshes/s against 7,000–10,000 with
/// one, and four gave 5,000), and again with each writer on a connection of its own
/// (`writer_conn`): 0.61–0.75 of `direct` against 0.79–0.81. One writer also means
/// batches never wait on each other's row locks.
pub(crate) const MAX_WRITERS: usize = 1;

/// The place in its batch of the job a batch statement's row answers: the row's `idx` is
/// the job's 1-based place in the statement's arrays. A row naming no job of a batch of
/// `len` is corrupt.
pub(crate) fn job_of_row(idx: i64, len: usize, batch: &str) -> Result<usize, StoreError> {
    usize::try_from(idx - 1)
        .ok()
        .filter(|&place| place < len)
        .ok_or_else(|| StoreError::Corrupt(format!("{batch} batch row {idx}")))
}

/// A request a batch statement runs, named by the token or code it uses up: one
/// statement cannot use up the same one twice.
pub(crate) trait BatchJob: Send + Sized {
    /// What the caller is answered when the statement succeeded (`None`-like by default:
    /// the statement did nothing for this job).
    type Answer: Default + Send;
    type Key: PartialEq;
    /// Whether a batch holds each key at most once (writes that use something up); reads
    /// may share one.
    const ONE_PER_KEY: bool = true;
    fn key(&self) -> &Self::Key;
    /// Answers the caller; one that went away no longer needs it.
    fn answer(self, answer: StoreResult<Self::Answer>);
}

/// The statement that writes a batch of `J`: one answer per job, in order.
pub(crate) trait WriteTogether<J: BatchJob>: Sync {
    fn write_together(
        &self,
        jobs: &[J],
    ) -> impl Future<Output = StoreResult<Vec<J::Answer>>> + Send;
}

/// One refresh waiting to be written, with the way back to its caller.
pub(crate) struct RefreshJob {
    pub plan: RefreshPlan,
    pub reply: oneshot::Sender<StoreResult<Option<Refreshed>>>,
}

impl BatchJob for RefreshJob {
    type Answer = Option<Refreshed>;
    type Key = RefreshTokenKey;

    fn key(&self) -> &RefreshTokenKey {
        &self.plan.parent
    }

    fn answer(self, answer: StoreResult<Self::Answer>) {
        let _ = self.reply.send(answer);
    }
}

/// One code exchange waiting to be written, with the way back to its caller.
pub(crate) struct ExchangeJob {
    pub plan: CodePlan,
    pub reply: oneshot::Sender<StoreResult<Exchanged>>,
}

/// What a batch answers one exchange: `None` when no code has its hash, an error when this
/// exchange alone failed (the others of its batch, already committed, stand).
pub(crate) type Exchanged = Option<StoreResult<CodeExchanged>>;

impl BatchJob for ExchangeJob {
    type Answer = Exchanged;
    type Key = TokenHash;

    fn key(&self) -> &TokenHash {
        &self.plan.code_hash
    }

    fn answer(self, answer: StoreResult<Self::Answer>) {
        let _ = self.reply.send(answer);
    }
}

/// One read of an access token's standing, with the way back to its caller.
pub(crate) struct StandingJob {
    pub family_id: String,
    pub reply: oneshot::Sender<StoreResult<Option<AccessTokenStanding>>>,
}

impl BatchJob for StandingJob {
    type Answer = Option<AccessTokenStanding>;
    type Key = String;
    const ONE_PER_KEY: bool = false;

    fn key(&self) -> &String {
        &self.family_id
    }

    fn answer(self, answer: StoreResult<Self::Answer>) {
        let _ = self.reply.send(answer);
    }
}

pub(crate) type RefreshQueue = BatchQueue<RefreshJob>;
pub(crate) type StandingQueue = BatchQueue<StandingJob>;
pub(crate) type ExchangeQueue = BatchQueue<ExchangeJob>;

pub(crate) struct BatchQueue<J> {
    state: Mutex<QueueState<J>>,
}

impl<J> Default for BatchQueue<J> {
    fn default() -> Self {
        BatchQueue {
            state: Mutex::new(QueueState {
                waiting: VecDeque::new(),
                writers: 0,
            }),
        }
    }
}

struct QueueState<J> {
    waiting: VecDeque<J>,
    writers: usize,
}

impl<J: BatchJob> BatchQueue<J> {
    /// Queues `job`. Returns a batch when the caller is to start a writer for it (a slot
    /// was free); otherwise a running writer will take the job.
    pub(crate) fn push(&self, job: J) -> Option<Vec<J>> {
        let mut state = self.lock();
        state.waiting.push_back(job);
        if state.writers == MAX_WRITERS {
            return None;
        }
        state.writers += 1;
        Some(take_batch(&mut state.waiting))
    }

    /// The next batch for a writer that wrote one; `None` when nothing waits, and the
    /// writer has then left.
    pub(crate) fn next_or_leave(&self) -> Option<Vec<J>> {
        let mut state = self.lock();
        if state.waiting.is_empty() {
            state.writers -= 1;
            return None;
        }
        Some(take_batch(&mut state.waiting))
    }

    /// A writer that stopped without [`BatchQueue::next_or_leave`] (its task was
    /// cancelled or panicked) gives its slot back, so the next refresh starts another.
    pub(crate) fn abandon(&self) {
        self.lock().writers -= 1;
    }

    fn lock(&self) -> MutexGuard<'_, QueueState<J>> {
        // The state stays consistent at every unlock; a panic elsewhere does not spoil it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PgStore {
    /// Queues the job `make` builds on `queue` (one of this store's), starts a writer for
    /// what waits there when a writer slot is free, and waits for the job's answer. `stats`,
    /// when given, records the batches (the commits' figures in `/metrics`).
    pub(crate) async fn batched<J>(
        &self,
        queue: fn(&PgStore) -> &BatchQueue<J>,
        stats: Option<fn(&PgStore) -> &CommitStats>,
        make: impl FnOnce(oneshot::Sender<StoreResult<J::Answer>>) -> J,
    ) -> StoreResult<J::Answer>
    where
        J: BatchJob + 'static,
        PgStore: WriteTogether<J>,
    {
        let (reply, answer) = oneshot::channel();
        if let Some(batch) = queue(self).push(make(reply)) {
            let store = self.clone();
            tokio::spawn(async move {
                write_until_empty(&store, queue(&store), stats.map(|s| s(&store)), batch).await;
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the batch writer stopped".to_owned(),
            ))
        })
    }
}

/// A writer: writes `batch` with `store`, then whatever waited meanwhile, until nothing
/// waits. Run it in a task of its own: a caller that goes away must not cancel the
/// others' write halfway.
async fn write_until_empty<J: BatchJob, S: WriteTogether<J>>(
    store: &S,
    queue: &BatchQueue<J>,
    stats: Option<&CommitStats>,
    mut batch: Vec<J>,
) {
    let slot = WriterSlot(queue);
    loop {
        write_batch(store, stats, batch).await;
        match queue.next_or_leave() {
            Some(next) => batch = next,
            None => break,
        }
    }
    std::mem::forget(slot);
}

/// Writes one batch and answers each caller. When the database is unavailable every
/// caller hears so at once; a batch that failed for another reason (a conflict, a row
/// that does not read back) is written again one job at a time, so that one job's failure
/// is not the others'.
async fn write_batch<J: BatchJob, S: WriteTogether<J>>(
    store: &S,
    stats: Option<&CommitStats>,
    batch: Vec<J>,
) {
    let started = std::time::Instant::now();
    match store.write_together(&batch).await {
        Ok(answers) => {
            if let Some(stats) = stats {
                stats.record(started.elapsed(), batch.len());
            }
            for (job, answer) in batch.into_iter().zip(answers) {
                job.answer(Ok(answer));
            }
        }
        Err(StoreError::Unavailable(reason)) => {
            for job in batch {
                job.answer(Err(StoreError::Unavailable(reason.clone())));
            }
        }
        Err(error) if batch.len() == 1 => {
            if let Some(job) = batch.into_iter().next() {
                job.answer(Err(error));
            }
        }
        Err(_) => {
            for job in batch {
                let answer = store
                    .write_together(std::slice::from_ref(&job))
                    .await
                    .map(|mut one| one.pop().unwrap_or_default());
                job.answer(answer);
            }
        }
    }
}

/// A running writer's slot, given back if the writer stops early (its task cancelled at
/// shutdown, or a panic); a writer that finishes leaves through `next_or_leave` and
/// forgets this.
struct WriterSlot<'a, J: BatchJob>(&'a BatchQueue<J>);

impl<J: BatchJob> Drop for WriterSlot<'_, J> {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// Up to [`MAX_BATCH`] waiting jobs in arrival order, each key once: a token or code
/// presented twice waits for the next batch, where the first presentation's effect is
/// visible (one statement cannot use up the same one twice).
fn take_batch<J: BatchJob>(waiting: &mut VecDeque<J>) -> Vec<J> {
    let mut batch: Vec<J> = Vec::with_capacity(waiting.len().min(MAX_BATCH));
    let mut held_back = VecDeque::new();
    while batch.len() < MAX_BATCH
        && let Some(job) = waiting.pop_front()
    {
        if J::ONE_PER_KEY && batch.iter().any(|taken| taken.key() == job.key()) {
            held_back.push_back(job);
        } else {
            batch.push(job);
        }
    }
    // Held-back jobs keep their place ahead of later arrivals.
    while let Some(job) = held_back.pop_back() {
        waiting.push_front(job);
    }
    batch
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use time::{Duration, OffsetDateTime};
    use trilo_core::model::{NewRefreshToken, TokenKeeping};
    use trilo_core::refresh_plan::RotationRule;

    use super::*;

    #[test]
    fn a_rows_idx_names_its_jobs_place_or_the_batch_is_corrupt() {
        assert_eq!(job_of_row(1, 3, "refresh").unwrap(), 0);
        assert_eq!(job_of_row(3, 3, "refresh").unwrap(), 2);
        for idx in [0, 4, -1] {
            assert!(matches!(
                job_of_row(idx, 3, "refresh"),
                Err(StoreError::Corrupt(message)) if message == format!("refresh batch row {idx}")
            ));
        }
    }

    fn job(
        token: u8,
    ) -> (
        RefreshJob,
        oneshot::Receiver<StoreResult<Option<Refreshed>>>,
    ) {
        let (reply, receiver) = oneshot::channel();
        let now = OffsetDateTime::UNIX_EPOCH;
        let plan = RefreshPlan {
            rule: RotationRule {
                app_id: "app".to_owned(),
                now,
                reuse_leeway: Duration::ZERO,
            },
            parent: RefreshTokenKey {
                family_id: "family".to_owned(),
                generation: 0,
                token_hash: TokenHash::from([token; 32]),
                kept: TokenKeeping::Family,
            },
            child: NewRefreshToken {
                token_hash: TokenHash::from([token.wrapping_add(100); 32]),
                inactivity_expires_at: now,
                kept: TokenKeeping::Family,
            },
            scope: None,
        };
        let job = RefreshJob { plan, reply };
        (job, receiver)
    }

    fn tokens(batch: &[RefreshJob]) -> Vec<u8> {
        batch
            .iter()
            .map(|job| job.plan.parent.token_hash[0])
            .collect()
    }

    /// Takes every writer slot, each with a token of its own outside 0..=99.
    fn occupy_every_writer(queue: &RefreshQueue) {
        for slot in 0..MAX_WRITERS {
            let token = 200 + slot as u8;
            let batch = queue
                .push(job(token).0)
                .expect("a free slot starts a writer");
            assert_eq!(tokens(&batch), [token], "a writer starts with what waits");
        }
    }

    #[test]
    fn refreshes_start_writers_up_to_the_limit_then_wait_for_them() {
        let queue = RefreshQueue::default();
        occupy_every_writer(&queue);
        for token in 3..=5 {
            assert!(queue.push(job(token).0).is_none(), "every slot is taken");
        }
        // A writer that finishes takes everything that waited, in order.
        assert_eq!(tokens(&queue.next_or_leave().unwrap()), [3, 4, 5]);
        for _ in 0..MAX_WRITERS {
            assert!(queue.next_or_leave().is_none());
        }
        // Every writer left: the next refresh starts one again.
        assert!(queue.push(job(6).0).is_some());
    }

    #[test]
    fn a_token_presented_twice_waits_for_the_next_batch_in_its_place() {
        let queue = RefreshQueue::default();
        occupy_every_writer(&queue);
        for token in [1, 2, 1, 3, 1] {
            assert!(queue.push(job(token).0).is_none());
        }
        assert_eq!(tokens(&queue.next_or_leave().unwrap()), [1, 2, 3]);
        assert_eq!(tokens(&queue.next_or_leave().unwrap()), [1]);
        assert_eq!(tokens(&queue.next_or_leave().unwrap()), [1]);
        assert!(queue.next_or_leave().is_none());
    }

    #[test]
    fn a_batch_holds_at_most_max_batch_refreshes() {
        let queue = RefreshQueue::default();
        occupy_every_writer(&queue);
        let total = MAX_BATCH + 3;
        for token in 0..total {
            assert!(queue.push(job(token as u8).0).is_none());
        }
        assert_eq!(queue.next_or_leave().unwrap().len(), MAX_BATCH);
        assert_eq!(queue.next_or_leave().unwrap().len(), 3);
    }

    #[test]
    fn an_abandoned_writer_frees_its_slot() {
        let queue = RefreshQueue::default();
        occupy_every_writer(&queue);
        assert!(queue.push(job(3).0).is_none());
        queue.abandon();
        let restarted = queue.push(job(4).0).expect("the freed slot");
        assert_eq!(tokens(&restarted), [3, 4]);
    }
}
