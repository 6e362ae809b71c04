//! The schema's migrations, kept once for both databases (`migrations/` of this crate).
//!
//! Most migrations read the same in SQLite and PostgreSQL. A few differ only in how bytes
//! are spelled (`BYTEA`/`BLOB`, `octet_length`/`length`): their file holds PostgreSQL's
//! text and SQLite's is derived by replacing those words. Where a change is done differently
//! (a table rebuilt on SQLite, BRIN indexes on PostgreSQL) each database has its own file
//! (`NNNN_name.postgres.sql`, `NNNN_name.sqlite.sql`).
//!
//! Deployed databases hold each applied migration's checksum (SHA-384 of its text), and
//! sqlx refuses to start when a text changes. So a text, once released, never changes:
//! `released_texts_are_unchanged` pins every one, as each database sees it.

use std::borrow::Cow;
use std::sync::LazyLock;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

/// The database a migration is rendered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// How a migration's text is found for each dialect.
enum Text {
    /// The same text for both.
    Shared(&'static str),
    /// PostgreSQL's text; SQLite's is the same with each `(from, to)` replaced.
    Respelled(&'static str, &'static [(&'static str, &'static str)]),
    /// Each database's own text.
    Own {
        postgres: &'static str,
        sqlite: &'static str,
    },
}

/// One migration: its file name's stem (`NNNN_words`, the version and description sqlx
/// records) and its text.
struct Step {
    name: &'static str,
    text: Text,
}

/// The text of `migrations/<stem><ending>`.
macro_rules! file {
    ($stem:literal, $ending:literal) => {
        include_str!(concat!("../migrations/", $stem, $ending))
    };
}

/// A migration that reads the same on both databases.
macro_rules! shared {
    ($stem:literal) => {
        Step::new($stem, Text::Shared(file!($stem, ".sql")))
    };
}

/// A migration in PostgreSQL's words that SQLite reads with `$words` replaced.
macro_rules! respelled {
    ($stem:literal, $words:expr) => {
        Step::new($stem, Text::Respelled(file!($stem, ".sql"), $words))
    };
}

/// A migration each database has its own file for.
macro_rules! own {
    ($stem:literal) => {
        Step::new(
            $stem,
            Text::Own {
                postgres: file!($stem, ".postgres.sql"),
                sqlite: file!($stem, ".sqlite.sql"),
            },
        )
    };
}

/// SQLite's words for bytes in the migrations that keep their columns aligned.
const SQLITE_BYTES_ALIGNED: &[(&str, &str)] = &[("BYTEA ", "BLOB  "), ("octet_length(", "length(")];
/// The first migration also says which dialect it is in.
const INIT_WORDS: &[(&str, &str)] = &[
    (
        "PostgreSQL dialect (the SQLite",
        "SQLite dialect (the PostgreSQL",
    ),
    SQLITE_BYTES_ALIGNED[0],
    SQLITE_BYTES_ALIGNED[1],
];
/// SQLite's word for bytes in the migrations written without realigning.
const SQLITE_BYTES: &[(&str, &str)] = &[("BYTEA", "BLOB")];

/// Every migration, in order. A new one goes at the end, with the next version.
const STEPS: &[Step] = &[
    respelled!("0001_init", INIT_WORDS),
    respelled!("0002_refresh_tokens", SQLITE_BYTES_ALIGNED),
    respelled!("0003_api_tokens", SQLITE_BYTES_ALIGNED),
    shared!("0004_product_operations"),
    shared!("0005_containers_and_policies"),
    shared!("0006_webhooks"),
    shared!("0007_code_auth_time"),
    shared!("0008_product_path_aliases"),
    shared!("0009_token_audience"),
    own!("0010_code_without_site"),
    shared!("0011_app_web_origins"),
    shared!("0012_key_rotation"),
    own!("0013_janitor_indexes"),
    respelled!("0014_failure_counters", SQLITE_BYTES),
    respelled!("0015_password_resets", SQLITE_BYTES),
    own!("0016_family_owner_keys"),
    own!("0017_family_keys"),
    own!("0018_refresh_tokens_by_key"),
    own!("0019_tokens_follow_their_family"),
    shared!("0020_tokens_in_their_family"),
];

impl Step {
    const fn new(name: &'static str, text: Text) -> Self {
        let step = Step { name, text };
        step.version();
        step
    }

    /// The version, from the name's leading digits (a name without them fails to compile:
    /// `STEPS` is built at compile time).
    const fn version(&self) -> i64 {
        let digits = self.name.as_bytes();
        let mut version = 0;
        let mut at = 0;
        while at < digits.len() && digits[at].is_ascii_digit() {
            version = version * 10 + (digits[at] - b'0') as i64;
            at += 1;
        }
        assert!(
            at > 0 && at < digits.len() && digits[at] == b'_',
            "NNNN_words"
        );
        version
    }

    /// The description sqlx records, as its `migrate!` derives it from a file name.
    fn description(&self) -> String {
        let words = self.name.split_once('_').map_or("", |(_, words)| words);
        words.replace('_', " ")
    }

    fn text_for(&self, dialect: Dialect) -> Cow<'static, str> {
        match (&self.text, dialect) {
            (Text::Shared(text), _) | (Text::Respelled(text, _), Dialect::Postgres) => {
                Cow::Borrowed(*text)
            }
            (Text::Respelled(text, words), Dialect::Sqlite) => {
                Cow::Owned(words.iter().fold((*text).to_owned(), |text, (from, to)| {
                    text.replace(from, to)
                }))
            }
            (Text::Own { postgres, .. }, Dialect::Postgres) => Cow::Borrowed(*postgres),
            (Text::Own { sqlite, .. }, Dialect::Sqlite) => Cow::Borrowed(*sqlite),
        }
    }
}

/// The migrator for one database: every migration, rendered for it.
pub fn migrator(dialect: Dialect) -> Migrator {
    let migrations = STEPS
        .iter()
        .map(|step| {
            let sql = match step.text_for(dialect) {
                Cow::Borrowed(text) => text.into_sql_str(),
                Cow::Owned(text) => AssertSqlSafe(text).into_sql_str(),
            };
            Migration::new(
                step.version(),
                Cow::Owned(step.description()),
                MigrationType::Simple,
                sql,
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// PostgreSQL's migrator, built once.
pub static POSTGRES: LazyLock<Migrator> = LazyLock::new(|| migrator(Dialect::Postgres));
/// SQLite's migrator, built once.
pub static SQLITE: LazyLock<Migrator> = LazyLock::new(|| migrator(Dialect::Sqlite));

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 8 bytes (hex) of each released migration's checksum, as deployed databases
    /// hold them: `(version, PostgreSQL, SQLite)`. Never edit a row; add one per migration.
    const RELEASED: &[(i64, &str, &str)] = &[
        (1, "c82ea1f9ad8cfa26", "b0edc72ed5cd3543"),
        (2, "a57d8453b2fcdc45", "c59d3739edf566d1"),
        (3, "5f580555b10ee3f0", "0b839cd83fc3a148"),
        (4, "ead5f8fbb4d34b67", "ead5f8fbb4d34b67"),
        (5, "99f19f17b935b4cd", "99f19f17b935b4cd"),
        (6, "6fb70866e162dc86", "6fb70866e162dc86"),
        (7, "28e0a7cf797adc98", "28e0a7cf797adc98"),
        (8, "4043c93a93fc39c0", "4043c93a93fc39c0"),
        (9, "a39db83158500aa2", "a39db83158500aa2"),
        (10, "dc6920946fef8046", "ad10669c046401ba"),
        (11, "440011f636233341", "440011f636233341"),
        (12, "293ae5d54d3724f8", "293ae5d54d3724f8"),
        (13, "66257935f8aad125", "ac867d789fdc1f81"),
        (14, "2de8949920ad5dda", "47939e013e8eec75"),
        (15, "64fffdcabdc115b6", "a53facfd3cc38107"),
        (16, "6c2ca4c570930214", "bde75024cedb95d3"),
        (17, "ce5e125a1ba67867", "106b51841aeab7af"),
        (18, "36c04f328148061e", "ce17358ddcf1d1d5"),
        (19, "e3eaf192d1c500ca", "a0417065c702afba"),
        (20, "0c52712c099bb2a3", "0c52712c099bb2a3"),
    ];

    fn checksum_prefixes(dialect: Dialect) -> Vec<(i64, String)> {
        migrator(dialect)
            .iter()
            .map(|m| {
                let hex = m.checksum[..8].iter().map(|b| format!("{b:02x}")).collect();
                (m.version, hex)
            })
            .collect()
    }

    #[test]
    fn released_texts_are_unchanged() {
        let postgres = checksum_prefixes(Dialect::Postgres);
        let sqlite = checksum_prefixes(Dialect::Sqlite);
        for (index, &(version, postgres_sum, sqlite_sum)) in RELEASED.iter().enumerate() {
            assert_eq!(
                postgres[index],
                (version, postgres_sum.to_owned()),
                "PostgreSQL"
            );
            assert_eq!(sqlite[index], (version, sqlite_sum.to_owned()), "SQLite");
        }
        let unlisted: Vec<String> = postgres
            .iter()
            .zip(&sqlite)
            .skip(RELEASED.len())
            .map(|((version, pg), (_, lite))| format!("({version}, \"{pg}\", \"{lite}\"),"))
            .collect();
        assert!(
            unlisted.is_empty(),
            "add to RELEASED:\n{}",
            unlisted.join("\n")
        );
    }

    #[test]
    fn versions_count_up_from_one() {
        let versions: Vec<i64> = STEPS.iter().map(Step::version).collect();
        let expected: Vec<i64> = (1..=STEPS.len() as i64).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn descriptions_are_the_file_names_words() {
        let migrator = migrator(Dialect::Sqlite);
        let first: Vec<&str> = migrator.iter().take(2).map(|m| &*m.description).collect();
        assert_eq!(first, ["init", "refresh tokens"]);
    }

    #[test]
    fn every_respelling_changes_the_text() {
        // A word that no longer occurs would leave SQLite with PostgreSQL's spelling.
        for step in STEPS {
            if let Text::Respelled(text, words) = step.text {
                for (from, _) in words {
                    assert!(text.contains(from), "{}: no {from:?}", step.name);
                }
            }
        }
    }
}
