//! Apps (OAuth clients) with their ordered callback URLs and scopes, their secrets, and
//! their installations on sites (`AppStore`): rows, SQL and the operations.

use time::OffsetDateTime;
use trilo_core::model::{
    App, AppSecret, ClientType, Distribution, Installation, InstalledBy, ReviewState,
};
use trilo_core::store::StoreError;

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::{hash, ms, opt_ms, opt_time, parse, time};
use crate::events::CountRow;

pub mod sql {
    //! The SQL of apps, their lists, secrets and installations (same text on both backends).

    macro_rules! app_columns {
        () => {
            "a.app_id, a.client_id, a.owner_account_id, a.name, a.description, a.avatar_url, \
             a.distribution, a.review_state, a.client_type, a.created_at, a.updated_at"
        };
    }

    pub const INSERT_APP: &str = "INSERT INTO apps (app_id, client_id, owner_account_id, name, \
         description, avatar_url, distribution, review_state, client_type, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    pub const APP: &str = concat!(
        "SELECT ",
        app_columns!(),
        " FROM apps a WHERE a.app_id = $1"
    );
    pub const APP_BY_CLIENT_ID: &str = concat!(
        "SELECT ",
        app_columns!(),
        " FROM apps a WHERE a.client_id = $1"
    );
    pub const CALLBACK_URLS_OF_APP: &str = "SELECT app_id, url AS item FROM app_callback_urls \
         WHERE app_id = $1 ORDER BY ordinal";
    pub const SCOPES_OF_APP: &str =
        "SELECT app_id, scope AS item FROM app_scopes WHERE app_id = $1 ORDER BY ordinal";
    /// `$1 IS NULL` selects every app; a bound owner selects that owner's.
    pub const LIST_APPS: &str = concat!(
        "SELECT ",
        app_columns!(),
        " FROM apps a WHERE ($1 IS NULL OR a.owner_account_id = $1) \
         ORDER BY a.created_at, a.app_id"
    );
    pub const LIST_CALLBACK_URLS: &str = "SELECT u.app_id, u.url AS item FROM app_callback_urls u \
         JOIN apps a ON a.app_id = u.app_id \
         WHERE ($1 IS NULL OR a.owner_account_id = $1) ORDER BY u.app_id, u.ordinal";
    pub const LIST_SCOPES: &str = "SELECT s.app_id, s.scope AS item FROM app_scopes s \
         JOIN apps a ON a.app_id = s.app_id \
         WHERE ($1 IS NULL OR a.owner_account_id = $1) ORDER BY s.app_id, s.ordinal";
    pub const WEB_ORIGINS_OF_APP: &str = "SELECT app_id, origin AS item FROM app_web_origins \
         WHERE app_id = $1 ORDER BY ordinal";
    pub const LIST_WEB_ORIGINS: &str = "SELECT o.app_id, o.origin AS item \
         FROM app_web_origins o JOIN apps a ON a.app_id = o.app_id \
         WHERE ($1 IS NULL OR a.owner_account_id = $1) ORDER BY o.app_id, o.ordinal";
    pub const INSERT_WEB_ORIGIN: &str =
        "INSERT INTO app_web_origins (app_id, ordinal, origin) VALUES ($1, $2, $3)";
    pub const DELETE_WEB_ORIGINS: &str = "DELETE FROM app_web_origins WHERE app_id = $1";
    /// Whether any app registered the origin (a CORS preflight names no client).
    pub const WEB_ORIGIN_REGISTERED: &str = "SELECT CAST(COUNT(*) AS BIGINT) AS n \
         FROM app_web_origins WHERE origin = $1";
    pub const INSERT_CALLBACK_URL: &str =
        "INSERT INTO app_callback_urls (app_id, ordinal, url) VALUES ($1, $2, $3)";
    pub const INSERT_SCOPE: &str =
        "INSERT INTO app_scopes (app_id, ordinal, scope) VALUES ($1, $2, $3)";
    pub const UPDATE_APP: &str = "UPDATE apps SET name = $1, description = $2, avatar_url = $3, \
         distribution = $4, review_state = $5, updated_at = $6 WHERE app_id = $7";
    pub const DELETE_CALLBACK_URLS: &str = "DELETE FROM app_callback_urls WHERE app_id = $1";
    pub const DELETE_SCOPES: &str = "DELETE FROM app_scopes WHERE app_id = $1";
    /// Everything the app holds goes with it through ON DELETE CASCADE.
    pub const DELETE_APP: &str = "DELETE FROM apps WHERE app_id = $1";

    pub const INSERT_SECRET: &str = "INSERT INTO app_secrets (secret_id, app_id, secret_hash, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
    pub const VALID_SECRETS: &str = "SELECT secret_id, app_id, secret_hash, created_at, \
         expires_at FROM app_secrets \
         WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2) \
         ORDER BY created_at DESC, secret_id DESC";
    pub const EXPIRE_CURRENT_SECRETS: &str = "UPDATE app_secrets SET expires_at = $1 \
         WHERE app_id = $2 AND expires_at IS NULL";

    pub const INSTALL_APP: &str = "INSERT INTO installations (app_id, cloud_id, \
         installed_by_account_id, installed_by, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (app_id, cloud_id) DO NOTHING";
    pub const INSTALLATION: &str = "SELECT app_id, cloud_id, installed_by_account_id, \
         installed_by, created_at FROM installations WHERE app_id = $1 AND cloud_id = $2";
    pub const INSTALLATIONS_OF_APP: &str = "SELECT app_id, cloud_id, installed_by_account_id, \
         installed_by, created_at FROM installations WHERE app_id = $1 \
         ORDER BY created_at, cloud_id";
    pub const INSTALLATIONS_OF_SITE: &str = "SELECT app_id, cloud_id, installed_by_account_id, \
         installed_by, created_at FROM installations WHERE cloud_id = $1 \
         ORDER BY created_at, app_id";
    pub const UNINSTALL_APP: &str = "DELETE FROM installations WHERE app_id = $1 AND cloud_id = $2";
}

#[derive(sqlx::FromRow)]
pub struct AppRow {
    app_id: String,
    client_id: String,
    owner_account_id: String,
    name: String,
    description: String,
    avatar_url: Option<String>,
    distribution: String,
    review_state: String,
    client_type: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<AppRow> for App {
    type Error = StoreError;

    /// The lists are filled in afterwards from their child tables.
    fn try_from(r: AppRow) -> Result<Self, StoreError> {
        Ok(App {
            app_id: r.app_id,
            client_id: r.client_id,
            owner_account_id: r.owner_account_id,
            name: r.name,
            description: r.description,
            avatar_url: r.avatar_url,
            callback_urls: Vec::new(),
            scopes: Vec::new(),
            web_origins: Vec::new(),
            distribution: parse(&r.distribution, Distribution::parse, "distribution")?,
            review_state: parse(&r.review_state, ReviewState::parse, "review state")?,
            client_type: parse(&r.client_type, ClientType::parse, "client type")?,
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
        })
    }
}

/// One element of an app's ordered list (callback URL or scope).
#[derive(sqlx::FromRow)]
pub struct AppItemRow {
    app_id: String,
    item: String,
}

#[derive(sqlx::FromRow)]
pub struct SecretRow {
    secret_id: String,
    app_id: String,
    secret_hash: Vec<u8>,
    created_at: i64,
    expires_at: Option<i64>,
}

impl TryFrom<SecretRow> for AppSecret {
    type Error = StoreError;

    fn try_from(r: SecretRow) -> Result<Self, StoreError> {
        Ok(AppSecret {
            secret_id: r.secret_id,
            app_id: r.app_id,
            secret_hash: hash(r.secret_hash)?,
            created_at: time(r.created_at)?,
            expires_at: opt_time(r.expires_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct InstallationRow {
    app_id: String,
    cloud_id: String,
    installed_by_account_id: String,
    installed_by: String,
    created_at: i64,
}

impl TryFrom<InstallationRow> for Installation {
    type Error = StoreError;

    fn try_from(r: InstallationRow) -> Result<Self, StoreError> {
        Ok(Installation {
            app_id: r.app_id,
            cloud_id: r.cloud_id,
            installed_by_account_id: r.installed_by_account_id,
            installed_by: parse(&r.installed_by, InstalledBy::parse, "installed_by")?,
            created_at: time(r.created_at)?,
        })
    }
}

fn installations(rows: Vec<InstallationRow>) -> Result<Vec<Installation>, StoreError> {
    rows.into_iter().map(Installation::try_from).collect()
}

/// Builds apps from their rows and the child rows of the same selection.
fn assemble(
    rows: Vec<AppRow>,
    urls: Vec<AppItemRow>,
    scopes: Vec<AppItemRow>,
    origins: Vec<AppItemRow>,
) -> Result<Vec<App>, StoreError> {
    let mut apps = rows
        .into_iter()
        .map(App::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    for u in urls {
        if let Some(app) = apps.iter_mut().find(|a| a.app_id == u.app_id) {
            app.callback_urls.push(u.item);
        }
    }
    for s in scopes {
        if let Some(app) = apps.iter_mut().find(|a| a.app_id == s.app_id) {
            app.scopes.push(s.item);
        }
    }
    for o in origins {
        if let Some(app) = apps.iter_mut().find(|a| a.app_id == o.app_id) {
            app.web_origins.push(o.item);
        }
    }
    Ok(apps)
}

/// Loads one app with its lists (`by`: [`sql::APP`] or [`sql::APP_BY_CLIENT_ID`]).
async fn load_app(c: &mut impl Conn, by: &'static str, key: &str) -> Result<Option<App>, Fail> {
    let row: Option<AppRow> = c.fetch_optional(Stmt::new(by).bind(key)).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let urls: Vec<AppItemRow> = c
        .fetch_all(Stmt::new(sql::CALLBACK_URLS_OF_APP).bind(&row.app_id))
        .await?;
    let scopes: Vec<AppItemRow> = c
        .fetch_all(Stmt::new(sql::SCOPES_OF_APP).bind(&row.app_id))
        .await?;
    let origins: Vec<AppItemRow> = c
        .fetch_all(Stmt::new(sql::WEB_ORIGINS_OF_APP).bind(&row.app_id))
        .await?;
    Ok(assemble(vec![row], urls, scopes, origins)?
        .into_iter()
        .next())
}

/// Writes the app's ordered lists (after deleting the old ones on update).
async fn insert_lists(tx: &mut impl Conn, app: &App) -> Result<(), Fail> {
    for (i, url) in (0_i64..).zip(&app.callback_urls) {
        tx.execute(
            Stmt::new(sql::INSERT_CALLBACK_URL)
                .bind(&app.app_id)
                .bind(i)
                .bind(url),
        )
        .await?;
    }
    for (i, scope) in (0_i64..).zip(&app.scopes) {
        tx.execute(
            Stmt::new(sql::INSERT_SCOPE)
                .bind(&app.app_id)
                .bind(i)
                .bind(scope),
        )
        .await?;
    }
    for (i, origin) in (0_i64..).zip(&app.web_origins) {
        tx.execute(
            Stmt::new(sql::INSERT_WEB_ORIGIN)
                .bind(&app.app_id)
                .bind(i)
                .bind(origin),
        )
        .await?;
    }
    Ok(())
}

async fn insert_secret(tx: &mut impl Conn, s: &AppSecret) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::INSERT_SECRET)
            .bind(&s.secret_id)
            .bind(&s.app_id)
            .bind(s.secret_hash.as_slice())
            .bind(ms(s.created_at))
            .bind(opt_ms(s.expires_at)),
    )
    .await?;
    Ok(())
}

/// Inserts the app with its lists and its first secret, if any.
pub async fn insert_app(
    mut tx: impl Tx,
    app: &App,
    secret: Option<&AppSecret>,
) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::INSERT_APP)
            .bind(&app.app_id)
            .bind(&app.client_id)
            .bind(&app.owner_account_id)
            .bind(&app.name)
            .bind(&app.description)
            .bind(&app.avatar_url)
            .bind(app.distribution.as_str())
            .bind(app.review_state.as_str())
            .bind(app.client_type.as_str())
            .bind(ms(app.created_at))
            .bind(ms(app.updated_at)),
    )
    .await?;
    insert_lists(&mut tx, app).await?;
    if let Some(secret) = secret {
        insert_secret(&mut tx, secret).await?;
    }
    tx.commit().await
}

/// One app by id, read in one snapshot with its lists.
pub async fn app(mut tx: impl Tx, app_id: &str) -> Result<Option<App>, Fail> {
    let app = load_app(&mut tx, sql::APP, app_id).await?;
    tx.commit().await?;
    Ok(app)
}

/// One app by client id, read in one snapshot with its lists.
pub async fn app_by_client_id(mut tx: impl Tx, client_id: &str) -> Result<Option<App>, Fail> {
    let app = load_app(&mut tx, sql::APP_BY_CLIENT_ID, client_id).await?;
    tx.commit().await?;
    Ok(app)
}

/// All apps or one owner's, read in one snapshot with their lists.
pub async fn list_apps(mut tx: impl Tx, owner_account_id: Option<&str>) -> Result<Vec<App>, Fail> {
    let rows: Vec<AppRow> = tx
        .fetch_all(Stmt::new(sql::LIST_APPS).bind(owner_account_id))
        .await?;
    let urls: Vec<AppItemRow> = tx
        .fetch_all(Stmt::new(sql::LIST_CALLBACK_URLS).bind(owner_account_id))
        .await?;
    let scopes: Vec<AppItemRow> = tx
        .fetch_all(Stmt::new(sql::LIST_SCOPES).bind(owner_account_id))
        .await?;
    let origins: Vec<AppItemRow> = tx
        .fetch_all(Stmt::new(sql::LIST_WEB_ORIGINS).bind(owner_account_id))
        .await?;
    tx.commit().await?;
    Ok(assemble(rows, urls, scopes, origins)?)
}

/// Whether any app registered `origin` as a web origin.
pub async fn web_origin_registered(mut c: impl Conn, origin: &str) -> Result<bool, Fail> {
    let row: CountRow = c
        .fetch_one(Stmt::new(sql::WEB_ORIGIN_REGISTERED).bind(origin))
        .await?;
    Ok(row.n() > 0)
}

/// Replaces the mutable fields and the lists; `NotFound` when the app does not exist.
pub async fn update_app(mut tx: impl Tx, app: &App) -> Result<(), Fail> {
    let updated = tx
        .execute(
            Stmt::new(sql::UPDATE_APP)
                .bind(&app.name)
                .bind(&app.description)
                .bind(&app.avatar_url)
                .bind(app.distribution.as_str())
                .bind(app.review_state.as_str())
                .bind(ms(app.updated_at))
                .bind(&app.app_id),
        )
        .await?;
    if updated == 0 {
        return Err(StoreError::NotFound.into());
    }
    tx.execute(Stmt::new(sql::DELETE_CALLBACK_URLS).bind(&app.app_id))
        .await?;
    tx.execute(Stmt::new(sql::DELETE_SCOPES).bind(&app.app_id))
        .await?;
    tx.execute(Stmt::new(sql::DELETE_WEB_ORIGINS).bind(&app.app_id))
        .await?;
    insert_lists(&mut tx, app).await?;
    tx.commit().await
}

pub async fn app_secrets(
    mut c: impl Conn,
    app_id: &str,
    now: OffsetDateTime,
) -> Result<Vec<AppSecret>, Fail> {
    let rows: Vec<SecretRow> = c
        .fetch_all(Stmt::new(sql::VALID_SECRETS).bind(app_id).bind(ms(now)))
        .await?;
    Ok(rows
        .into_iter()
        .map(AppSecret::try_from)
        .collect::<Result<_, _>>()?)
}

/// Gives the current secrets `previous_expires_at` and adds `secret` as the new current one.
pub async fn rotate_app_secret(
    mut tx: impl Tx,
    secret: &AppSecret,
    previous_expires_at: OffsetDateTime,
) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::EXPIRE_CURRENT_SECRETS)
            .bind(ms(previous_expires_at))
            .bind(&secret.app_id),
    )
    .await?;
    insert_secret(&mut tx, secret).await?;
    tx.commit().await
}

/// Returns whether the app existed.
pub async fn delete_app(mut tx: impl Tx, app_id: &str) -> Result<bool, Fail> {
    let deleted = tx.execute(Stmt::new(sql::DELETE_APP).bind(app_id)).await?;
    tx.commit().await?;
    Ok(deleted > 0)
}

/// Installs unless installed already; returns the installation in force.
pub async fn install_app(mut tx: impl Tx, inst: &Installation) -> Result<Installation, Fail> {
    tx.execute(
        Stmt::new(sql::INSTALL_APP)
            .bind(&inst.app_id)
            .bind(&inst.cloud_id)
            .bind(&inst.installed_by_account_id)
            .bind(inst.installed_by.as_str())
            .bind(ms(inst.created_at)),
    )
    .await?;
    let row: InstallationRow = tx
        .fetch_one(
            Stmt::new(sql::INSTALLATION)
                .bind(&inst.app_id)
                .bind(&inst.cloud_id),
        )
        .await?;
    tx.commit().await?;
    Ok(Installation::try_from(row)?)
}

pub async fn installations_of_app(
    mut c: impl Conn,
    app_id: &str,
) -> Result<Vec<Installation>, Fail> {
    let rows: Vec<InstallationRow> = c
        .fetch_all(Stmt::new(sql::INSTALLATIONS_OF_APP).bind(app_id))
        .await?;
    Ok(installations(rows)?)
}

pub async fn installations_of_site(
    mut c: impl Conn,
    cloud_id: &str,
) -> Result<Vec<Installation>, Fail> {
    let rows: Vec<InstallationRow> = c
        .fetch_all(Stmt::new(sql::INSTALLATIONS_OF_SITE).bind(cloud_id))
        .await?;
    Ok(installations(rows)?)
}

/// Returns whether the app was installed on the site.
pub async fn uninstall_app(mut tx: impl Tx, app_id: &str, cloud_id: &str) -> Result<bool, Fail> {
    let deleted = tx
        .execute(Stmt::new(sql::UNINSTALL_APP).bind(app_id).bind(cloud_id))
        .await?;
    tx.commit().await?;
    Ok(deleted > 0)
}
