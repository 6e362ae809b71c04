//! `--preload N`: N more accounts, each a member of Jira on the demo site with a grant to
//! the demo app and a token family whose refresh token has rotated once, so the hot paths
//! are measured against a database of realistic size. The families keep their tokens in
//! their rows, as every family started today does; with `--janitor` their tokens have
//! rows of their own instead (as an upgrade finds them), the first one dead, so the janitor
//! has one row per family to remove. Rows are made here and inserted in
//! large transactions by the store crates' bulk loaders.

use std::io::Write;
use std::time::Instant;

use time::OffsetDateTime;
use trilo_core::Core;
use trilo_core::crypto::{random_token, sha256};
use trilo_core::model::{
    Account, AccountStatus, AuthorizationCode, ExtendedProfile, Grant, KeptHead, Membership,
    RefreshToken, Role, TokenFamily,
};
use trilo_store_postgres::preload as pg;
use trilo_store_sqlite::preload as sqlite;

use crate::config::DatabaseUrl;
use crate::demo::DemoInfo;

/// Families per transaction.
const FAMILIES_PER_BATCH: u64 = 10_000;
/// The scopes of every preloaded grant and family.
const SCOPES: [&str; 3] = ["offline_access", "read:me", "read:jira-user"];
/// A well-formed argon2id hash no password is known to match: preloaded accounts never
/// log in, and hashing a million passwords would take hours.
const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cHJlbG9hZGVkYWNjb3VudA$\
                             AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Rows for one transaction.
#[derive(Debug, Default)]
pub struct Rows {
    pub accounts: Vec<Account>,
    pub memberships: Vec<Membership>,
    pub grants: Vec<Grant>,
    pub families: Vec<TokenFamily>,
    pub refresh_tokens: Vec<RefreshToken>,
    pub codes: Vec<AuthorizationCode>,
}

/// The store crate's bulk loader for the benchmark's database.
pub enum Loader {
    Sqlite(sqlite::BulkLoader),
    Postgres(pg::BulkLoader),
}

impl Loader {
    pub async fn open(database: &DatabaseUrl) -> anyhow::Result<Loader> {
        Ok(match database {
            DatabaseUrl::Sqlite(path) => Loader::Sqlite(sqlite::BulkLoader::open(path).await?),
            DatabaseUrl::Postgres(url) => Loader::Postgres(pg::BulkLoader::connect(url).await?),
        })
    }

    /// Inserts `rows` in one transaction.
    pub async fn insert(&mut self, rows: &Rows) -> anyhow::Result<()> {
        // Both store crates take trilo-store-sql's one `Batch`.
        let batch = sqlite::Batch {
            accounts: &rows.accounts,
            memberships: &rows.memberships,
            grants: &rows.grants,
            families: &rows.families,
            refresh_tokens: &rows.refresh_tokens,
            codes: &rows.codes,
        };
        match self {
            Loader::Sqlite(loader) => loader.insert(&batch).await?,
            Loader::Postgres(loader) => loader.insert(&batch).await?,
        }
        Ok(())
    }

    /// Brings the planner's statistics up to date after a large load (PostgreSQL; SQLite
    /// plans these lookups by their indexes alone).
    pub async fn settle(&mut self) -> anyhow::Result<()> {
        if let Loader::Postgres(loader) = self {
            loader.settle().await?;
        }
        Ok(())
    }

    pub async fn count_families(&mut self) -> anyhow::Result<u64> {
        Ok(match self {
            Loader::Sqlite(loader) => loader.count_families().await?,
            Loader::Postgres(loader) => loader.count_families().await?,
        })
    }

    pub async fn close(self) {
        match self {
            Loader::Sqlite(loader) => loader.close().await,
            Loader::Postgres(loader) => loader.close().await,
        }
    }
}

/// What a preload did.
#[derive(Debug)]
pub struct Preloaded {
    /// Families added, counted in the store.
    pub families: u64,
    pub seconds: f64,
}

/// What every preloaded row hangs off: the demo app, the demo site, the server's token
/// lifetimes and one moment.
#[derive(Clone)]
struct Target {
    app_id: String,
    cloud_id: String,
    now: OffsetDateTime,
    refresh_inactivity: time::Duration,
    refresh_absolute: time::Duration,
    /// Give each family's tokens rows of their own, the first one a row the janitor removes
    /// (`--janitor`); otherwise the families keep their tokens.
    dead_first_tokens: bool,
}

/// Loads `count` accounts with their grants and families, with a progress bar on stderr.
pub async fn families(
    loader: &mut Loader,
    core: &Core,
    info: &DemoInfo,
    count: u64,
    dead_first_tokens: bool,
) -> anyhow::Result<Preloaded> {
    let app = core
        .store()
        .app_by_client_id(&info.apps[0].client_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo app is missing"))?;
    let target = Target {
        app_id: app.app_id,
        cloud_id: info.sites[0].cloud_id.clone(),
        now: core.now(),
        refresh_inactivity: core.settings.refresh_inactivity,
        refresh_absolute: core.settings.refresh_absolute,
        dead_first_tokens,
    };
    let before = loader.count_families().await?;
    let start = Instant::now();
    let make = |from: u64| {
        let target = target.clone();
        let to = (from + FAMILIES_PER_BATCH).min(count);
        // Ids, random tokens and hashes are CPU work: made on a blocking thread while the
        // previous batch is being inserted.
        tokio::task::spawn_blocking(move || rows(&target, from..to))
    };
    let mut next = Some(make(0));
    let mut done = 0;
    while let Some(making) = next.take() {
        let batch = making.await?;
        let size = batch.families.len() as u64;
        if done + size < count {
            next = Some(make(done + size));
        }
        loader.insert(&batch).await?;
        done += size;
        progress_bar(done, count, start);
    }
    eprintln!();
    loader.settle().await?;
    let families = loader.count_families().await? - before;
    let seconds = start.elapsed().as_secs_f64();
    eprintln!("trilo bench: preloaded {families} token families in {seconds:.1} s");
    Ok(Preloaded { families, seconds })
}

fn progress_bar(done: u64, total: u64, start: Instant) {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH / total.max(1)) as usize;
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\rpreloading [{:<width$}] {:>3}% {done}/{total} families, {:.0} s",
        "#".repeat(filled),
        done * 100 / total.max(1),
        start.elapsed().as_secs_f64(),
        width = WIDTH as usize
    );
    let _ = err.flush();
}

/// The rows of preloaded users `range`: account, membership, grant, family, and the
/// family's two refresh tokens (generation 0 rotated a day ago, generation 1 the head).
fn rows(target: &Target, range: std::ops::Range<u64>) -> Rows {
    let size = (range.end - range.start) as usize;
    let mut rows = Rows {
        accounts: Vec::with_capacity(size),
        memberships: Vec::with_capacity(size),
        grants: Vec::with_capacity(size),
        families: Vec::with_capacity(size),
        refresh_tokens: Vec::with_capacity(2 * size),
        codes: Vec::new(),
    };
    let scopes: Vec<String> = SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let joined = target.now - time::Duration::days(30);
    let rotated = target.now - time::Duration::days(1);
    for n in range {
        let account_id = uuid::Uuid::now_v7().to_string();
        let grant_id = uuid::Uuid::now_v7().to_string();
        let family_id = uuid::Uuid::now_v7().to_string();
        rows.accounts.push(Account {
            account_id: account_id.clone(),
            email: format!("preload-{n}@bench.example"),
            name: format!("Preloaded User {n}"),
            nickname: format!("preload-{n}"),
            picture: None,
            zoneinfo: "UTC".into(),
            locale: "en-US".into(),
            extended_profile: ExtendedProfile::default(),
            status: AccountStatus::Active,
            password_hash: PASSWORD_HASH.into(),
            credential_generation: 0,
            created_at: joined,
        });
        rows.memberships.push(Membership {
            account_id: account_id.clone(),
            cloud_id: target.cloud_id.clone(),
            product_key: "jira".into(),
            role: Role::Member,
            created_at: joined,
        });
        rows.grants.push(Grant {
            grant_id: grant_id.clone(),
            app_id: target.app_id.clone(),
            account_id: account_id.clone(),
            scopes: scopes.clone(),
            cloud_ids: vec![target.cloud_id.clone()],
            created_at: joined,
            updated_at: joined,
            revoked_at: None,
        });
        let mut family = TokenFamily {
            family_id: family_id.clone(),
            grant_id,
            app_id: target.app_id.clone(),
            account_id,
            scopes: scopes.clone(),
            credential_generation: 0,
            created_at: joined,
            absolute_expires_at: joined + target.refresh_absolute,
            head_generation: 1,
            revoked_at: None,
            revoke_reason: None,
            audience: None,
            kept_head: Some(KeptHead {
                issued_at: rotated,
                inactivity_expires_at: rotated + target.refresh_inactivity,
                previous_issued_at: Some(joined),
            }),
        };
        if target.dead_first_tokens {
            // Tokens with rows, the first one out of inactivity time (as if the head had
            // been rotated since): the row is dead, and the janitor removes it.
            family.kept_head = None;
            rows.refresh_tokens.push(RefreshToken {
                token_hash: sha256(&random_token()),
                family_id: family_id.clone(),
                generation: 0,
                issued_at: joined,
                inactivity_expires_at: target.now - time::Duration::days(1),
                rotated_at: Some(rotated),
            });
            rows.refresh_tokens.push(RefreshToken {
                token_hash: sha256(&random_token()),
                family_id,
                generation: 1,
                issued_at: rotated,
                inactivity_expires_at: rotated + target.refresh_inactivity,
                rotated_at: None,
            });
        }
        rows.families.push(family);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dead_first_tokens: bool) -> Target {
        Target {
            app_id: "app".into(),
            cloud_id: "cloud".into(),
            now: OffsetDateTime::UNIX_EPOCH + time::Duration::days(400),
            refresh_inactivity: time::Duration::days(90),
            refresh_absolute: time::Duration::days(365),
            dead_first_tokens,
        }
    }

    #[test]
    fn each_family_keeps_a_head_rotated_once() {
        let target = target(false);
        let rows = rows(&target, 5..8);
        assert_eq!(rows.accounts.len(), 3);
        assert_eq!(rows.accounts[0].email, "preload-5@bench.example");
        assert!(
            rows.refresh_tokens.is_empty(),
            "the families keep their tokens"
        );
        let family = &rows.families[1];
        assert_eq!(family.head_generation, 1);
        let Some(head) = family.kept_head else {
            panic!("a kept head");
        };
        assert!(head.inactivity_expires_at > target.now, "the head is live");
        assert_eq!(family.kept_rotation_time(0), Some(head.issued_at));
        assert_eq!(rows.grants[1].grant_id, family.grant_id);
        assert_eq!(rows.grants[1].account_id, rows.accounts[1].account_id);
    }

    #[test]
    fn for_the_janitor_each_family_has_a_dead_token_row_and_a_head_row() {
        let target = target(true);
        let rows = rows(&target, 5..8);
        assert_eq!(rows.refresh_tokens.len(), 6);
        let family = &rows.families[1];
        assert_eq!(family.kept_head, None);
        let chain: Vec<_> = rows
            .refresh_tokens
            .iter()
            .filter(|t| t.family_id == family.family_id)
            .collect();
        assert_eq!(chain.len(), 2);
        assert!(chain[0].rotated_at.is_some() && chain[1].rotated_at.is_none());
        assert!(chain[0].inactivity_expires_at < target.now, "dead");
        assert_eq!(chain[1].generation, family.head_generation);
    }
}
