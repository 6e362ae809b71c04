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

struct Step {
    version: i64,
    description: &'static str,
    text: Text,
}

/// SQLite's words for bytes in the migrations that keep their columns aligned.
const SQLITE_BYTES_ALIGNED: &[(&str, &str)] = &[("BYTEA ", "BLOB  "), ("octet_length(", "length(")];
/// SQLite's word for bytes in the migrations written without realigning.
const SQLITE_BYTES: &[(&str, &str)] = &[("BYTEA", "BLOB")];

macro_rules! file {
    ($name:literal) => {
        include_str!(concat!("../migrations/", $name))
    };
}

/// Every migration, in order. A new one goes at the end, with the next version.
const STEPS: &[Step] = &[
    Step {
        version: 1,
        description: "init",
        text: Text::Respelled(
            file!("0001_init.sql"),
            &[
                (
                    "PostgreSQL dialect (the SQLite",
                    "SQLite dialect (the PostgreSQL",
                ),
                SQLITE_BYTES_ALIGNED[0],
                SQLITE_BYTES_ALIGNED[1],
            ],
        ),
    },
    Step {
        version: 2,
        description: "refresh tokens",
        text: Text::Respelled(file!("0002_refresh_tokens.sql"), SQLITE_BYTES_ALIGNED),
    },
    Step {
        version: 3,
        description: "api tokens",
        text: Text::Respelled(file!("0003_api_tokens.sql"), SQLITE_BYTES_ALIGNED),
    },
    Step {
        version: 4,
        description: "product operations",
        text: Text::Shared(file!("0004_product_operations.sql")),
    },
    Step {
        version: 5,
        description: "containers and policies",
        text: Text::Shared(file!("0005_containers_and_policies.sql")),
    },
    Step {
        version: 6,
        description: "webhooks",
        text: Text::Shared(file!("0006_webhooks.sql")),
    },
    Step {
        version: 7,
        description: "code auth time",
        text: Text::Shared(file!("0007_code_auth_time.sql")),
    },
    Step {
        version: 8,
        description: "product path aliases",
        text: Text::Shared(file!("0008_product_path_aliases.sql")),
    },
    Step {
        version: 9,
        description: "token audience",
        text: Text::Shared(file!("0009_token_audience.sql")),
    },
    Step {
        version: 10,
        description: "code without site",
        text: Text::Own {
            postgres: file!("0010_code_without_site.postgres.sql"),
            sqlite: file!("0010_code_without_site.sqlite.sql"),
        },
    },
    Step {
        version: 11,
        description: "app web origins",
        text: Text::Shared(file!("0011_app_web_origins.sql")),
    },
    Step {
        version: 12,
        description: "key rotation",
        text: Text::Shared(file!("0012_key_rotation.sql")),
    },
    Step {
        version: 13,
        description: "janitor indexes",
        text: Text::Own {
            postgres: file!("0013_janitor_indexes.postgres.sql"),
            sqlite: file!("0013_janitor_indexes.sqlite.sql"),
        },
    },
    Step {
        version: 14,
        description: "failure counters",
        text: Text::Respelled(file!("0014_failure_counters.sql"), SQLITE_BYTES),
    },
    Step {
        version: 15,
        description: "password resets",
        text: Text::Respelled(file!("0015_password_resets.sql"), SQLITE_BYTES),
    },
];

impl Step {
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
                step.version,
                Cow::Borrowed(step.description),
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
        let versions: Vec<i64> = STEPS.iter().map(|step| step.version).collect();
        let expected: Vec<i64> = (1..=STEPS.len() as i64).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn every_respelling_changes_the_text() {
        // A word that no longer occurs would leave SQLite with PostgreSQL's spelling.
        for step in STEPS {
            if let Text::Respelled(text, words) = step.text {
                for (from, _) in words {
                    assert!(
                        text.contains(from),
                        "migration {}: no {from:?}",
                        step.version
                    );
                }
            }
        }
    }
}
