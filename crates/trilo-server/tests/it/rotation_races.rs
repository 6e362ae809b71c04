//! Racing refreshes across instances (DESIGN §3, security checklist F10, H-C2): three
//! `trilo serve` processes on one database; in every round 16 clients present the same
//! refresh token at once, spread over the three. Every one must get 200 and the same new
//! refresh token, and the family must end with one chain and exactly one live head.

use trilo_core::model::TokenFamily;
use trilo_core::refresh_token::kept_refresh_token;

use crate::process::ServerProcess;
use crate::refresh::{claims_of, first_tokens, refresh_params, refresh_token_of};
use crate::support::{Backend, Fetch, TestApp};
use crate::token::Answer;

const ROUNDS: usize = 200;
const CLIENTS: usize = 16;
const INSTANCES: usize = 3;

async fn race_across_three_processes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, |_| {}).await else {
        return;
    };
    let mut servers = Vec::new();
    for _ in 0..INSTANCES {
        servers.push(ServerProcess::start(&app).await);
    }
    let first = first_tokens(&app).await;
    let family_id = claims_of(&first.assert_tokens())["family_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut token = refresh_token_of(&first);
    let client = reqwest::Client::new();

    for round in 0..ROUNDS {
        let params = refresh_params(&app, &token, &[]);
        let requests: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let url = format!("{}/oauth/token", servers[i % INSTANCES].base);
                let req = client.post(url).form(&params);
                tokio::spawn(async move { Answer::of(req.fetch().await).await })
            })
            .collect();
        let mut successors = Vec::new();
        for request in requests {
            let answer = request.await.unwrap();
            assert_eq!(answer.status, 200, "round {round}: {answer:?}");
            successors.push(refresh_token_of(&answer));
        }
        successors.dedup();
        assert_eq!(successors.len(), 1, "round {round}: one successor for all");
        assert_ne!(successors[0], token, "round {round}: the token rotated");
        token = successors.remove(0);
    }

    let family = app.core.store().family(&family_id).await.unwrap().unwrap();
    assert_one_chain(&app, &family, ROUNDS as i64).await;
}

/// The family, which keeps its tokens, moved its head to `head`: generations 0..head were
/// each issued and rotated, the head alone is live, and nothing lies beyond it.
pub async fn assert_one_chain(app: &TestApp, family: &TokenFamily, head: i64) {
    assert!(family.revoked_at.is_none(), "{family:?}");
    assert_eq!(family.head_generation, head);
    assert!(family.kept_head.is_some(), "{family:?}");
    for generation in 0..=head {
        let token = kept_refresh_token(&app.core.kept_tokens, &family.family_id, generation);
        let state = app
            .stored_refresh_token(&token)
            .await
            .unwrap_or_else(|| panic!("generation {generation} is missing"));
        assert_eq!(
            state.token.rotated_at.is_none(),
            generation == head,
            "only the head is live (generation {generation})"
        );
    }
    let beyond = kept_refresh_token(&app.core.kept_tokens, &family.family_id, head + 1);
    assert!(
        app.stored_refresh_token(&beyond).await.is_none(),
        "nothing beyond the head"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_refreshes_converge_across_three_processes_on_sqlite() {
    race_across_three_processes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_refreshes_converge_across_three_processes_on_postgres() {
    race_across_three_processes(Backend::Postgres).await;
}
