//! Crash safety of rotation (security checklist H-D1, H-D2): a client keeps rotating its
//! refresh token against a `trilo serve` process that is killed with SIGKILL at random
//! moments and restarted. The client retries whatever got no answer, as a real app would.
//!
//! What must hold:
//! - every refresh token received in a 200 works when presented next: an answered
//!   rotation is never lost (if it were, the retry would get 403);
//! - each 200 is exactly one generation past the previous one: a token is never accepted
//!   twice outside the leeway (a retry inside it gets the same successor back);
//! - afterwards the family is one chain with exactly one live head.

use std::time::{Duration, Instant};

use crate::process::ServerProcess;
use crate::refresh::{claims_of, first_tokens, refresh_params, refresh_token_of};
use crate::rotation_races::assert_one_chain;
use crate::support::{Backend, TestApp};
use crate::token::Answer;

/// Answered rotations the client must complete.
const ROTATIONS: i64 = 300;
/// Kills spread over the run.
const KILLS: usize = 12;
/// The whole test stops by itself after this.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// A small deterministic generator, so a failing run can be replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

async fn rotate_through_kills(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, |_| {}).await else {
        return;
    };
    let mut server = ServerProcess::start(&app).await;
    let first = first_tokens(&app).await;
    let family_id = claims_of(&first.assert_tokens())["family_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed: {seed}");
    let mut random = Lcg(seed);

    let url = format!("{}/oauth/token", server.base);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut token = refresh_token_of(&first);
    let mut generation = 0_i64;
    let mut kills = 0;
    let mut lost_answers = 0;
    let mut committed_unanswered = 0;
    // Kill points: after a random number of answered rotations.
    let every = ROTATIONS as u64 / KILLS as u64;
    let mut next_kill = 1 + random.below(every) as i64;

    while generation < ROTATIONS {
        assert!(
            started.elapsed() < TIME_LIMIT,
            "stopped after {TIME_LIMIT:?} at generation {generation}"
        );
        let params = refresh_params(&app, &token, &[]);
        let request = client.post(&url).form(&params).send();
        let response = if generation == next_kill && kills < KILLS {
            // Kill while this request is in flight, after a random delay of 0–4 ms: before
            // it is read, during the commit, or after the commit but before the answer.
            let delay = Duration::from_micros(random.below(4_000));
            let pending = tokio::spawn(request);
            tokio::time::sleep(delay).await;
            server.kill().await;
            kills += 1;
            next_kill = generation + 1 + random.below(every) as i64;
            let result = pending.await.unwrap();
            server.restart().await;
            result
        } else {
            request.await
        };
        let Ok(response) = response else {
            lost_answers += 1;
            // Committed but unanswered (H-D2): the retry must get the same successor.
            let state = app.stored_refresh_token(&token).await;
            if state.is_some_and(|s| s.token.rotated_at.is_some()) {
                committed_unanswered += 1;
            }
            continue; // no answer: present the same token again
        };
        let answer = Answer::of(response).await;
        assert_eq!(
            answer.status, 200,
            "generation {generation}: a received token stopped working: {answer:?}"
        );
        let next_generation = claims_of(&answer.assert_tokens())["generation"]
            .as_i64()
            .unwrap();
        assert_eq!(
            next_generation,
            generation + 1,
            "each answer is exactly one generation on"
        );
        generation = next_generation;
        token = refresh_token_of(&answer);
    }
    eprintln!(
        "crash test: {kills} kills, {lost_answers} answers lost \
         ({committed_unanswered} after their commit), {ROTATIONS} rotations"
    );
    assert_eq!(kills, KILLS, "the run killed the server as planned");
    server.kill().await;

    let family = app.core.store().family(&family_id).await.unwrap().unwrap();
    assert_one_chain(&app, &family, ROTATIONS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_survives_sigkill_on_sqlite() {
    rotate_through_kills(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_survives_sigkill_on_postgres() {
    rotate_through_kills(Backend::Postgres).await;
}
