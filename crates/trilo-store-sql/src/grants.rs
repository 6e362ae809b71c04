//! Grants, authorization codes and token families (`GrantStore`): rows, SQL and the
//! operations (consent, single-use code redemption and revocation, each one transaction).

use time::OffsetDateTime;
use trilo_core::model::{
    AccessTokenStanding, AuthorizationCode, ConsentRecord, Grant, GrantChange, KeptHead, NewCode,
    NewFamily, NewRefreshToken, Redeemed, RefreshToken, RefreshTokenKey, RefreshTokenState,
    Rotation, TokenFamily, TokenHash, TokenKeeping,
};
use trilo_core::store::StoreError;

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::{dedup, hash, join_scopes, ms, opt_ms, opt_time, split_scopes, time};

pub mod sql {
    //! The SQL of grants, codes and token families, the same text on SQLite and PostgreSQL.

    macro_rules! grant_columns {
        () => {
            "grant_id, app_id, account_id, scopes, created_at, updated_at, revoked_at"
        };
    }

    macro_rules! code_columns {
        () => {
            "code_hash, app_id, account_id, grant_id, cloud_id, scopes, redirect_uri, \
             code_challenge, nonce, auth_time, created_at, expires_at, used_at, family_id, \
             audience"
        };
    }

    macro_rules! family_columns {
        () => {
            "family_id, grant_id, app_id, account_id, scopes, credential_generation, \
             created_at, absolute_expires_at, head_generation, revoked_at, revoke_reason, \
             audience, head_issued_at, head_expires_at, previous_issued_at"
        };
    }

    macro_rules! refresh_columns {
        () => {
            "token_hash, family_id, generation, issued_at, inactivity_expires_at, rotated_at"
        };
    }

    pub const GRANT: &str = concat!(
        "SELECT ",
        grant_columns!(),
        " FROM grants WHERE grant_id = $1"
    );
    pub const SITES_OF_GRANT: &str =
        "SELECT grant_id, cloud_id FROM grant_sites WHERE grant_id = $1 ORDER BY ordinal";
    /// The live grant of app `$1` and account `$2`, without a row lock.
    pub const LIVE_GRANT: &str = "SELECT grant_id, scopes FROM grants \
         WHERE app_id = $1 AND account_id = $2 AND revoked_at IS NULL";
    pub const GRANTS_OF_ACCOUNT: &str = concat!(
        "SELECT ",
        grant_columns!(),
        " FROM grants WHERE account_id = $1 ORDER BY created_at DESC, grant_id DESC"
    );
    pub const SITES_OF_GRANTS_OF_ACCOUNT: &str = "SELECT s.grant_id, s.cloud_id \
         FROM grant_sites s JOIN grants g ON g.grant_id = s.grant_id \
         WHERE g.account_id = $1 ORDER BY s.grant_id, s.ordinal";
    pub const SET_GRANT_SCOPES: &str =
        "UPDATE grants SET scopes = $1, updated_at = $2 WHERE grant_id = $3";
    pub const INSERT_GRANT: &str = "INSERT INTO grants (grant_id, app_id, account_id, scopes, \
         created_at, updated_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $5, NULL)";
    /// The site joins the grant's sites once, after those already there.
    pub const ADD_GRANT_SITE: &str = "INSERT INTO grant_sites (grant_id, ordinal, cloud_id) \
         SELECT $1, COALESCE(MAX(ordinal) + 1, 0), $2 FROM grant_sites WHERE grant_id = $1 \
         ON CONFLICT (grant_id, cloud_id) DO NOTHING";
    pub const INSTALL_BY_CONSENT: &str = "INSERT INTO installations (app_id, cloud_id, \
         installed_by_account_id, installed_by, created_at) \
         VALUES ($1, $2, $3, 'user_consent', $4) ON CONFLICT (app_id, cloud_id) DO NOTHING";
    pub const REVOKE_GRANT: &str =
        "UPDATE grants SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL";

    pub const INSERT_CODE: &str = "INSERT INTO codes (code_hash, app_id, account_id, grant_id, \
         cloud_id, scopes, redirect_uri, code_challenge, nonce, created_at, expires_at, \
         used_at, family_id, auth_time, audience) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12, $13)";
    /// A code's columns (`CodeRow`), for a statement that reads a code its own way.
    pub const CODE_COLUMNS: &str = code_columns!();
    pub const CODE: &str = concat!(
        "SELECT ",
        code_columns!(),
        " FROM codes WHERE code_hash = $1"
    );
    /// The compare-and-set of a redemption: only an unused code is marked, so one caller
    /// wins.
    pub const MARK_CODE_USED: &str = "UPDATE codes SET used_at = $1, family_id = $2 \
         WHERE code_hash = $3 AND used_at IS NULL";

    /// A family issued under a revoked grant is born revoked (security checklist H-C3: no
    /// live tokens after a revocation has committed). `$4` is its first token's inactivity
    /// end when the family keeps its tokens (`TokenKeeping::Family`), else NULL.
    pub const INSERT_FAMILY_OF_CODE: &str = concat!(
        "INSERT INTO token_families (family_id, grant_id, app_id, account_id, scopes, \
         credential_generation, created_at, absolute_expires_at, revoked_at, \
         revoke_reason, audience, head_issued_at, head_expires_at) \
         SELECT $1, c.grant_id, c.app_id, c.account_id, c.scopes, \
         a.credential_generation, $2, $3, \
         CASE WHEN g.revoked_at IS NULL THEN NULL ELSE $2 END, \
         CASE WHEN g.revoked_at IS NULL THEN NULL ELSE 'grant_revoked' END, c.audience, \
         CASE WHEN $4 IS NULL THEN NULL ELSE $2 END, $4 \
         FROM codes c JOIN accounts a ON a.account_id = c.account_id \
         JOIN grants g ON g.grant_id = c.grant_id \
         WHERE c.code_hash = $5 RETURNING ",
        family_columns!()
    );
    /// A family's columns (`FamilyRow`), for a statement that returns a family its own way.
    pub const FAMILY_COLUMNS: &str = family_columns!();
    pub const FAMILY: &str = concat!(
        "SELECT ",
        family_columns!(),
        " FROM token_families WHERE family_id = $1"
    );

    pub const INSERT_REFRESH_TOKEN: &str = concat!(
        "INSERT INTO refresh_tokens (",
        refresh_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, NULL)"
    );
    /// A family's columns (`FamilyRow`) from `token_families f` in a join.
    macro_rules! joined_family_columns {
        () => {
            "f.family_id, f.grant_id, f.app_id, f.account_id, f.scopes, \
             f.credential_generation, f.created_at, f.absolute_expires_at, f.head_generation, \
             f.revoked_at, f.revoke_reason, f.audience, f.head_issued_at, f.head_expires_at, \
             f.previous_issued_at"
        };
    }

    /// The account's credential generation while it is active, from `accounts a`: the one
    /// statement of the rule "an account that is not active has no live tokens".
    macro_rules! active_account_generation {
        () => {
            "CASE WHEN a.status = 'active' THEN a.credential_generation ELSE NULL END \
             AS account_generation"
        };
    }

    /// A family's state (`KeptStateRow`): its columns and the grant and account facts the
    /// rotation decision needs, over `token_families f` and `kept_state_joins!`.
    macro_rules! kept_state_columns {
        () => {
            concat!(
                joined_family_columns!(),
                ", CAST(CASE WHEN g.revoked_at IS NULL THEN 1 ELSE 0 END AS BIGINT) \
                 AS grant_live, g.scopes AS grant_scopes, ",
                active_account_generation!()
            )
        };
    }

    macro_rules! kept_state_joins {
        () => {
            "JOIN grants g ON g.grant_id = f.grant_id \
             JOIN accounts a ON a.account_id = f.account_id"
        };
    }

    /// A refresh token's state (`RefreshStateRow`): its columns and its family's state,
    /// over `refresh_tokens t` and `refresh_state_joins!`.
    macro_rules! refresh_state_columns {
        () => {
            concat!(
                "t.token_hash, t.generation, t.issued_at, t.inactivity_expires_at, \
                 t.rotated_at, ",
                kept_state_columns!()
            )
        };
    }

    macro_rules! refresh_state_joins {
        () => {
            concat!(
                "JOIN token_families f ON f.family_id = t.family_id ",
                kept_state_joins!()
            )
        };
    }

    /// For a query that picks its tokens its own way.
    pub const REFRESH_STATE_COLUMNS: &str = refresh_state_columns!();
    pub const REFRESH_STATE_JOINS: &str = refresh_state_joins!();
    /// The token, its family, whether the grant is live and the active account's
    /// credential generation, in one statement.
    pub const REFRESH_TOKEN_STATE: &str = concat!(
        "SELECT ",
        refresh_state_columns!(),
        " FROM refresh_tokens t ",
        refresh_state_joins!(),
        " WHERE t.family_id = $1 AND t.generation = $2 AND t.token_hash = $3"
    );
    /// The family of a token it keeps (`TokenKeeping::Family`), with the grant and account
    /// facts of `REFRESH_TOKEN_STATE` (`KeptStateRow`); the token itself is the family's
    /// to say (`TokenFamily::kept_token`). Only a family that keeps its tokens answers.
    pub const KEPT_TOKEN_STATE: &str = concat!(
        "SELECT ",
        kept_state_columns!(),
        " FROM token_families f ",
        kept_state_joins!(),
        " WHERE f.family_id = $1 AND f.head_expires_at IS NOT NULL"
    );
    /// For a query that picks its families its own way (PostgreSQL's batched refresh).
    pub const KEPT_STATE_COLUMNS: &str = kept_state_columns!();
    pub const KEPT_STATE_JOINS: &str = kept_state_joins!();
    /// Where a token stored before tokens carried their key (migration 0018) is: only those
    /// rows have a `legacy_hash`, and only they are in its index.
    pub const LEGACY_REFRESH_TOKEN: &str = "SELECT family_id, generation, token_hash \
         FROM refresh_tokens WHERE legacy_hash = $1";
    macro_rules! access_standing_columns {
        () => {
            concat!(
                joined_family_columns!(),
                ", CASE WHEN g.revoked_at IS NULL THEN g.scopes ELSE NULL END AS grant_scopes, ",
                active_account_generation!()
            )
        };
    }
    macro_rules! access_standing_from {
        () => {
            concat!("FROM token_families f ", kept_state_joins!())
        };
    }
    /// An access token's standing (`AccessStandingRow`): its family, its grant's scopes
    /// while the grant is live (not revoked) and the active account's
    /// credential generation, in one statement.
    pub const ACCESS_TOKEN_STANDING: &str = concat!(
        "SELECT ",
        access_standing_columns!(),
        " ",
        access_standing_from!(),
        " WHERE f.family_id = $1"
    );
    /// For a query that picks its families its own way (PostgreSQL's batched read).
    pub const ACCESS_STANDING_COLUMNS: &str = access_standing_columns!();
    pub const ACCESS_STANDING_FROM: &str = access_standing_from!();
    pub const REFRESH_TOKEN_OF_GENERATION: &str = concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_tokens WHERE family_id = $1 AND generation = $2"
    );
    /// The compare-and-set of a rotation: only a live family whose head is still the
    /// parent moves on, so of racing rotations exactly one wins.
    pub const ADVANCE_HEAD: &str = "UPDATE token_families SET head_generation = $1 \
         WHERE family_id = $2 AND head_generation = $3 AND revoked_at IS NULL";
    /// The compare-and-set of a rotation of a kept token: as `ADVANCE_HEAD`, and the head's
    /// times move with it (`KeptHead`). Only a family that keeps its tokens moves.
    pub const ADVANCE_KEPT_HEAD: &str = "UPDATE token_families SET head_generation = $1, \
         previous_issued_at = head_issued_at, head_issued_at = $2, head_expires_at = $3 \
         WHERE family_id = $4 AND head_generation = $5 AND revoked_at IS NULL \
         AND head_expires_at IS NOT NULL";
    pub const MARK_ROTATED: &str = "UPDATE refresh_tokens SET rotated_at = $1 \
         WHERE token_hash = $2 AND family_id = $3 AND generation = $4 AND rotated_at IS NULL";
    pub const REVOKE_FAMILY: &str = "UPDATE token_families SET revoked_at = $1, \
         revoke_reason = $2 WHERE family_id = $3 AND revoked_at IS NULL";
    pub const REVOKE_FAMILIES_OF_GRANT: &str = "UPDATE token_families SET revoked_at = $1, \
         revoke_reason = $2 WHERE grant_id = $3 AND revoked_at IS NULL";
}

/// The statements that keep concurrent consents and redemptions in order against a
/// revocation. They differ per backend: SQLite runs one writer at a time and needs no row
/// locks ([`GrantLocks::NONE`]); PostgreSQL at READ COMMITTED takes them.
#[derive(Debug, Clone, Copy)]
pub struct GrantLocks {
    /// Selects `grant_id, scopes` of the live grant of app `$1` and account `$2`.
    pub live_grant: &'static str,
    /// Runs (with the code hash as `$1`) after a code is marked used and before its
    /// family is issued.
    pub before_family: Option<&'static str>,
}

impl GrantLocks {
    /// No row locks: for a backend whose write transactions never overlap.
    pub const NONE: GrantLocks = GrantLocks {
        live_grant: sql::LIVE_GRANT,
        before_family: None,
    };
}

#[derive(sqlx::FromRow)]
pub struct GrantRow {
    grant_id: String,
    app_id: String,
    account_id: String,
    scopes: String,
    created_at: i64,
    updated_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;

    /// `cloud_ids` is filled in afterwards from `grant_sites`.
    fn try_from(r: GrantRow) -> Result<Self, StoreError> {
        Ok(Grant {
            grant_id: r.grant_id,
            app_id: r.app_id,
            account_id: r.account_id,
            scopes: split_scopes(&r.scopes),
            cloud_ids: Vec::new(),
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
            revoked_at: opt_time(r.revoked_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct GrantSiteRow {
    grant_id: String,
    cloud_id: String,
}

/// The live grant of an app and account, with the scopes it holds.
#[derive(sqlx::FromRow)]
pub struct LiveGrantRow {
    grant_id: String,
    scopes: String,
}

#[derive(sqlx::FromRow)]
pub struct CodeRow {
    pub code_hash: Vec<u8>,
    pub app_id: String,
    pub account_id: String,
    pub grant_id: String,
    pub cloud_id: Option<String>,
    pub scopes: String,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub family_id: Option<String>,
    pub audience: Option<String>,
}

impl TryFrom<CodeRow> for AuthorizationCode {
    type Error = StoreError;

    fn try_from(r: CodeRow) -> Result<Self, StoreError> {
        Ok(AuthorizationCode {
            code_hash: hash(r.code_hash)?,
            app_id: r.app_id,
            account_id: r.account_id,
            grant_id: r.grant_id,
            cloud_id: r.cloud_id,
            scopes: split_scopes(&r.scopes),
            redirect_uri: r.redirect_uri,
            code_challenge: r.code_challenge,
            nonce: r.nonce,
            auth_time: opt_time(r.auth_time)?,
            created_at: time(r.created_at)?,
            expires_at: time(r.expires_at)?,
            used_at: opt_time(r.used_at)?,
            family_id: r.family_id,
            audience: r.audience,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct FamilyRow {
    pub family_id: String,
    pub grant_id: String,
    pub app_id: String,
    pub account_id: String,
    pub scopes: String,
    pub credential_generation: i64,
    pub created_at: i64,
    pub absolute_expires_at: i64,
    pub head_generation: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    pub audience: Option<String>,
    pub head_issued_at: Option<i64>,
    pub head_expires_at: Option<i64>,
    pub previous_issued_at: Option<i64>,
}

impl TryFrom<FamilyRow> for TokenFamily {
    type Error = StoreError;

    fn try_from(r: FamilyRow) -> Result<Self, StoreError> {
        Ok(TokenFamily {
            family_id: r.family_id,
            grant_id: r.grant_id,
            app_id: r.app_id,
            account_id: r.account_id,
            scopes: split_scopes(&r.scopes),
            credential_generation: r.credential_generation,
            created_at: time(r.created_at)?,
            absolute_expires_at: time(r.absolute_expires_at)?,
            head_generation: r.head_generation,
            revoked_at: opt_time(r.revoked_at)?,
            revoke_reason: r.revoke_reason,
            audience: r.audience,
            kept_head: kept_head(r.head_issued_at, r.head_expires_at, r.previous_issued_at)?,
        })
    }
}

/// The head a family keeps its tokens by: set exactly when `head_expires_at` is.
fn kept_head(
    issued_at: Option<i64>,
    expires_at: Option<i64>,
    previous_issued_at: Option<i64>,
) -> Result<Option<KeptHead>, StoreError> {
    let Some(expires_at) = expires_at else {
        return Ok(None);
    };
    let issued_at = issued_at.ok_or_else(|| {
        StoreError::Corrupt("a family keeps its tokens but not its head's issue".to_owned())
    })?;
    Ok(Some(KeptHead {
        issued_at: time(issued_at)?,
        inactivity_expires_at: time(expires_at)?,
        previous_issued_at: opt_time(previous_issued_at)?,
    }))
}

/// A family that keeps its tokens, with the grant and account facts
/// (`sql::KEPT_TOKEN_STATE`).
#[derive(sqlx::FromRow)]
pub struct KeptStateRow {
    #[sqlx(flatten)]
    pub family: FamilyRow,
    pub grant_live: i64,
    pub grant_scopes: String,
    pub account_generation: Option<i64>,
}

impl KeptStateRow {
    /// The state of the kept token at `key`; `None` when the family never issued it.
    pub fn state(self, key: &RefreshTokenKey) -> Result<Option<RefreshTokenState>, StoreError> {
        Ok(RefreshTokenState::of_kept_token(
            key,
            TokenFamily::try_from(self.family)?,
            self.grant_live != 0,
            split_scopes(&self.grant_scopes),
            self.account_generation,
        ))
    }
}

/// A refresh token with its family (`REFRESH_TOKEN_STATE`): the token's own columns,
/// the family's as [`FamilyRow`] reads them, and the grant and account facts.
#[derive(sqlx::FromRow)]
pub struct RefreshStateRow {
    pub token_hash: Vec<u8>,
    pub generation: i64,
    pub issued_at: i64,
    pub inactivity_expires_at: i64,
    pub rotated_at: Option<i64>,
    /// The columns after the token's, as `refresh_state_columns!` appends them.
    #[sqlx(flatten)]
    pub family_state: KeptStateRow,
}

impl TryFrom<RefreshStateRow> for RefreshTokenState {
    type Error = StoreError;

    fn try_from(r: RefreshStateRow) -> Result<Self, StoreError> {
        let facts = r.family_state;
        let family = TokenFamily::try_from(facts.family)?;
        Ok(RefreshTokenState {
            token: RefreshToken {
                token_hash: hash(r.token_hash)?,
                family_id: family.family_id.clone(),
                generation: r.generation,
                issued_at: time(r.issued_at)?,
                inactivity_expires_at: time(r.inactivity_expires_at)?,
                rotated_at: opt_time(r.rotated_at)?,
            },
            family,
            grant_live: facts.grant_live != 0,
            grant_scopes: split_scopes(&facts.grant_scopes),
            account_credential_generation: facts.account_generation,
        })
    }
}

/// A family with its grant and account facts (`ACCESS_TOKEN_STANDING`).
#[derive(sqlx::FromRow)]
pub struct AccessStandingRow {
    #[sqlx(flatten)]
    pub family: FamilyRow,
    pub grant_scopes: Option<String>,
    pub account_generation: Option<i64>,
}

impl TryFrom<AccessStandingRow> for AccessTokenStanding {
    type Error = StoreError;

    fn try_from(r: AccessStandingRow) -> Result<Self, StoreError> {
        Ok(AccessTokenStanding {
            family: TokenFamily::try_from(r.family)?,
            grant_scopes: r.grant_scopes.as_deref().map(split_scopes),
            account_credential_generation: r.account_generation,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RefreshRow {
    token_hash: Vec<u8>,
    family_id: String,
    generation: i64,
    issued_at: i64,
    inactivity_expires_at: i64,
    rotated_at: Option<i64>,
}

impl TryFrom<RefreshRow> for RefreshToken {
    type Error = StoreError;

    fn try_from(r: RefreshRow) -> Result<Self, StoreError> {
        Ok(RefreshToken {
            token_hash: hash(r.token_hash)?,
            family_id: r.family_id,
            generation: r.generation,
            issued_at: time(r.issued_at)?,
            inactivity_expires_at: time(r.inactivity_expires_at)?,
            rotated_at: opt_time(r.rotated_at)?,
        })
    }
}

/// A legacy token's key (`sql::LEGACY_REFRESH_TOKEN`).
#[derive(sqlx::FromRow)]
pub struct LegacyKeyRow {
    family_id: String,
    generation: i64,
    token_hash: Vec<u8>,
}

impl TryFrom<LegacyKeyRow> for RefreshTokenKey {
    type Error = StoreError;

    fn try_from(r: LegacyKeyRow) -> Result<Self, StoreError> {
        Ok(RefreshTokenKey {
            family_id: r.family_id,
            generation: r.generation,
            token_hash: hash(r.token_hash)?,
            kept: TokenKeeping::Row,
        })
    }
}

/// Builds grants from their rows and the site rows of the same selection (in order).
fn assemble(rows: Vec<GrantRow>, sites: Vec<GrantSiteRow>) -> Result<Vec<Grant>, StoreError> {
    let mut grants = rows
        .into_iter()
        .map(Grant::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    for s in sites {
        if let Some(g) = grants.iter_mut().find(|g| g.grant_id == s.grant_id) {
            g.cloud_ids.push(s.cloud_id);
        }
    }
    Ok(grants)
}

async fn load_grant(c: &mut impl Conn, grant_id: &str) -> Result<Option<Grant>, Fail> {
    let row: Option<GrantRow> = c
        .fetch_optional(Stmt::new(sql::GRANT).bind(grant_id))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let sites: Vec<GrantSiteRow> = c
        .fetch_all(Stmt::new(sql::SITES_OF_GRANT).bind(grant_id))
        .await?;
    Ok(assemble(vec![row], sites)?.into_iter().next())
}

async fn load_code(
    c: &mut impl Conn,
    code_hash: &TokenHash,
) -> Result<Option<AuthorizationCode>, Fail> {
    let row: Option<CodeRow> = c
        .fetch_optional(Stmt::new(sql::CODE).bind(code_hash.as_slice()))
        .await?;
    Ok(row.map(AuthorizationCode::try_from).transpose()?)
}

/// A grant an authorization without consent counted on no longer holds its scopes.
fn grant_changed() -> StoreError {
    StoreError::Conflict {
        constraint: "grants.scopes".to_owned(),
    }
}

/// One authorization (`ConsentRecord`): creates the live grant (`new_grant_id`) or
/// changes it as `consent.change` says, adds the picked site to it and installs the app
/// there if need be, and inserts the code.
pub async fn accept_consent(
    mut tx: impl Tx,
    locks: GrantLocks,
    consent: &ConsentRecord,
    new_grant_id: &str,
    code: &NewCode,
) -> Result<Grant, Fail> {
    let at = ms(consent.at);
    let requested = dedup(consent.scopes.iter().cloned());
    let live: Option<LiveGrantRow> = tx
        .fetch_optional(
            Stmt::new(locks.live_grant)
                .bind(&consent.app_id)
                .bind(&consent.account_id),
        )
        .await?;
    let grant_id = match (live, consent.change) {
        (Some(live), GrantChange::Keep) => {
            let granted = split_scopes(&live.scopes);
            if !requested.iter().all(|s| granted.contains(s)) {
                return Err(grant_changed().into());
            }
            live.grant_id
        }
        (None, GrantChange::Keep) => return Err(grant_changed().into()),
        (Some(live), change) => {
            let scopes = match change {
                GrantChange::Add => dedup(
                    split_scopes(&live.scopes)
                        .into_iter()
                        .chain(requested.clone()),
                ),
                _ => requested.clone(),
            };
            tx.execute(
                Stmt::new(sql::SET_GRANT_SCOPES)
                    .bind(join_scopes(&scopes)?)
                    .bind(at)
                    .bind(&live.grant_id),
            )
            .await?;
            live.grant_id
        }
        (None, _) => {
            tx.execute(
                Stmt::new(sql::INSERT_GRANT)
                    .bind(new_grant_id)
                    .bind(&consent.app_id)
                    .bind(&consent.account_id)
                    .bind(join_scopes(&requested)?)
                    .bind(at),
            )
            .await?;
            new_grant_id.to_owned()
        }
    };
    if let Some(cloud_id) = &consent.cloud_id {
        tx.execute(
            Stmt::new(sql::ADD_GRANT_SITE)
                .bind(&grant_id)
                .bind(cloud_id),
        )
        .await?;
        tx.execute(
            Stmt::new(sql::INSTALL_BY_CONSENT)
                .bind(&consent.app_id)
                .bind(cloud_id)
                .bind(&consent.account_id)
                .bind(at),
        )
        .await?;
    }
    let Some(grant) = load_grant(&mut tx, &grant_id).await? else {
        return Err(StoreError::NotFound.into());
    };
    // A consent's code carries what the grant now holds (with include_granted_scopes, the
    // earlier scopes too); one issued without a consent carries what was asked for.
    let code_scopes = match consent.change {
        GrantChange::Keep => &requested,
        GrantChange::Replace | GrantChange::Add => &grant.scopes,
    };
    tx.execute(
        Stmt::new(sql::INSERT_CODE)
            .bind(code.code_hash.as_slice())
            .bind(&consent.app_id)
            .bind(&consent.account_id)
            .bind(&grant_id)
            .bind(&consent.cloud_id)
            .bind(join_scopes(code_scopes)?)
            .bind(&code.redirect_uri)
            .bind(&code.code_challenge)
            .bind(&code.nonce)
            .bind(at)
            .bind(ms(code.expires_at))
            .bind(opt_ms(code.auth_time))
            .bind(&code.audience),
    )
    .await?;
    tx.commit().await?;
    Ok(grant)
}

/// One grant with its sites, read in one snapshot.
pub async fn grant(mut tx: impl Tx, grant_id: &str) -> Result<Option<Grant>, Fail> {
    let grant = load_grant(&mut tx, grant_id).await?;
    tx.commit().await?;
    Ok(grant)
}

/// The live grant of the app and account with its sites, read in one snapshot.
pub async fn live_grant(
    mut tx: impl Tx,
    app_id: &str,
    account_id: &str,
) -> Result<Option<Grant>, Fail> {
    let live: Option<LiveGrantRow> = tx
        .fetch_optional(Stmt::new(sql::LIVE_GRANT).bind(app_id).bind(account_id))
        .await?;
    let grant = match live {
        Some(live) => load_grant(&mut tx, &live.grant_id).await?,
        None => None,
    };
    tx.commit().await?;
    Ok(grant)
}

/// Live and revoked grants of the account with their sites, newest first, in one snapshot.
pub async fn grants_of_account(mut tx: impl Tx, account_id: &str) -> Result<Vec<Grant>, Fail> {
    let rows: Vec<GrantRow> = tx
        .fetch_all(Stmt::new(sql::GRANTS_OF_ACCOUNT).bind(account_id))
        .await?;
    let sites: Vec<GrantSiteRow> = tx
        .fetch_all(Stmt::new(sql::SITES_OF_GRANTS_OF_ACCOUNT).bind(account_id))
        .await?;
    tx.commit().await?;
    Ok(assemble(rows, sites)?)
}

/// Revokes the grant and its live families; returns whether a live grant was revoked.
pub async fn revoke_grant(
    mut tx: impl Tx,
    grant_id: &str,
    now: OffsetDateTime,
) -> Result<bool, Fail> {
    let revoked = tx
        .execute(Stmt::new(sql::REVOKE_GRANT).bind(ms(now)).bind(grant_id))
        .await?;
    tx.execute(
        Stmt::new(sql::REVOKE_FAMILIES_OF_GRANT)
            .bind(ms(now))
            .bind("grant_revoked")
            .bind(grant_id),
    )
    .await?;
    tx.commit().await?;
    Ok(revoked > 0)
}

pub async fn code(
    mut c: impl Conn,
    code_hash: &TokenHash,
) -> Result<Option<AuthorizationCode>, Fail> {
    load_code(&mut c, code_hash).await
}

/// Marks the code used and issues its family: exactly one concurrent caller gets `First`.
pub async fn redeem_code(
    mut tx: impl Tx,
    locks: GrantLocks,
    code_hash: &TokenHash,
    family: &NewFamily,
    now: OffsetDateTime,
) -> Result<Redeemed, Fail> {
    let marked = tx
        .execute(
            Stmt::new(sql::MARK_CODE_USED)
                .bind(ms(now))
                .bind(&family.family_id)
                .bind(code_hash.as_slice()),
        )
        .await?;
    if marked == 0 {
        let code = load_code(&mut tx, code_hash).await?;
        tx.commit().await?;
        return Ok(match code {
            Some(code) => Redeemed::AlreadyUsed(code),
            None => Redeemed::NotFound,
        });
    }
    if let Some(lock) = locks.before_family {
        tx.execute(Stmt::new(lock).bind(code_hash.as_slice()))
            .await?;
    }
    let row: FamilyRow = tx
        .fetch_one(
            Stmt::new(sql::INSERT_FAMILY_OF_CODE)
                .bind(&family.family_id)
                .bind(ms(now))
                .bind(ms(family.absolute_expires_at))
                .bind(family.kept_head_expiry().map(ms))
                .bind(code_hash.as_slice()),
        )
        .await?;
    if let Some(first) = family.stored_first_token() {
        insert_refresh_token(&mut tx, first, &family.family_id, 0, now).await?;
    }
    if let Some(event) = &family.issued
        && row.revoked_at.is_none()
    {
        crate::audit::insert_event(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(Redeemed::First(TokenFamily::try_from(row)?))
}

pub async fn family(mut c: impl Conn, family_id: &str) -> Result<Option<TokenFamily>, Fail> {
    let row: Option<FamilyRow> = c
        .fetch_optional(Stmt::new(sql::FAMILY).bind(family_id))
        .await?;
    Ok(row.map(TokenFamily::try_from).transpose()?)
}

/// The family with its grant's live scopes and its account's generation: the access-token
/// check's one read.
pub async fn access_token_standing(
    mut c: impl Conn,
    family_id: &str,
) -> Result<Option<AccessTokenStanding>, Fail> {
    let row: Option<AccessStandingRow> = c
        .fetch_optional(Stmt::new(sql::ACCESS_TOKEN_STANDING).bind(family_id))
        .await?;
    Ok(row.map(AccessTokenStanding::try_from).transpose()?)
}

/// Returns whether a live family was revoked.
pub async fn revoke_family(
    mut tx: impl Tx,
    family_id: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, Fail> {
    let revoked = tx
        .execute(
            Stmt::new(sql::REVOKE_FAMILY)
                .bind(ms(now))
                .bind(reason)
                .bind(family_id),
        )
        .await?;
    tx.commit().await?;
    Ok(revoked > 0)
}

async fn insert_refresh_token(
    c: &mut impl Conn,
    token: &NewRefreshToken,
    family_id: &str,
    generation: i64,
    issued_at: OffsetDateTime,
) -> Result<(), Fail> {
    c.execute(
        Stmt::new(sql::INSERT_REFRESH_TOKEN)
            .bind(token.token_hash.as_slice())
            .bind(family_id)
            .bind(generation)
            .bind(ms(issued_at))
            .bind(ms(token.inactivity_expires_at)),
    )
    .await?;
    Ok(())
}

/// The refresh token at `key` with its family, grant liveness and account generation: for
/// a token with a row, when its hash matches; for one its family keeps, as the family says
/// (`TokenFamily::kept_token`).
pub async fn refresh_token(
    mut c: impl Conn,
    key: &RefreshTokenKey,
) -> Result<Option<RefreshTokenState>, Fail> {
    if key.kept == TokenKeeping::Family {
        let row: Option<KeptStateRow> = c
            .fetch_optional(Stmt::new(sql::KEPT_TOKEN_STATE).bind(&key.family_id))
            .await?;
        return Ok(row.map(|row| row.state(key)).transpose()?.flatten());
    }
    let row: Option<RefreshStateRow> = c
        .fetch_optional(
            Stmt::new(sql::REFRESH_TOKEN_STATE)
                .bind(&key.family_id)
                .bind(key.generation)
                .bind(key.token_hash.as_slice()),
        )
        .await?;
    Ok(row.map(RefreshTokenState::try_from).transpose()?)
}

/// The key of a token stored before tokens carried their key, by its hash.
pub async fn legacy_refresh_token(
    mut c: impl Conn,
    token_hash: &TokenHash,
) -> Result<Option<RefreshTokenKey>, Fail> {
    let row: Option<LegacyKeyRow> = c
        .fetch_optional(Stmt::new(sql::LEGACY_REFRESH_TOKEN).bind(token_hash.as_slice()))
        .await?;
    Ok(row.map(RefreshTokenKey::try_from).transpose()?)
}

pub async fn refresh_token_of_generation(
    mut c: impl Conn,
    family_id: &str,
    generation: i64,
) -> Result<Option<RefreshToken>, Fail> {
    let row: Option<RefreshRow> = c
        .fetch_optional(
            Stmt::new(sql::REFRESH_TOKEN_OF_GENERATION)
                .bind(family_id)
                .bind(generation),
        )
        .await?;
    Ok(row.map(RefreshToken::try_from).transpose()?)
}

/// One rotation: the compare-and-set on the family head, with the head's times for a
/// token the family keeps, or the parent marked rotated and the child inserted for one
/// with rows. Returns `false`, changing nothing, when the compare-and-set lost.
pub async fn rotate_refresh_token(mut tx: impl Tx, rotation: &Rotation) -> Result<bool, Fail> {
    let child_generation = rotation.parent_generation + 1;
    if rotation.child.kept == TokenKeeping::Family {
        let advanced = tx
            .execute(
                Stmt::new(sql::ADVANCE_KEPT_HEAD)
                    .bind(child_generation)
                    .bind(ms(rotation.at))
                    .bind(ms(rotation.child.inactivity_expires_at))
                    .bind(&rotation.family_id)
                    .bind(rotation.parent_generation),
            )
            .await?;
        tx.commit().await?;
        return Ok(advanced == 1);
    }
    let advanced = tx
        .execute(
            Stmt::new(sql::ADVANCE_HEAD)
                .bind(child_generation)
                .bind(&rotation.family_id)
                .bind(rotation.parent_generation),
        )
        .await?;
    if advanced == 0 {
        // Dropping the transaction rolls back (nothing was changed).
        return Ok(false);
    }
    let marked = tx
        .execute(
            Stmt::new(sql::MARK_ROTATED)
                .bind(ms(rotation.at))
                .bind(rotation.parent_hash.as_slice())
                .bind(&rotation.family_id)
                .bind(rotation.parent_generation),
        )
        .await?;
    if marked != 1 {
        // The head generation moved without its token: refuse rather than fork the chain.
        return Err(StoreError::Corrupt(
            "the family head has no unrotated token of its generation".to_owned(),
        )
        .into());
    }
    insert_refresh_token(
        &mut tx,
        &rotation.child,
        &rotation.family_id,
        child_generation,
        rotation.at,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
