//! `trilo admin …`: users, sites, products, memberships and apps, each with `--json`.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use trilo_core::Core;
use trilo_core::model::{
    Account, App, ClientType, Distribution, PathAlias, Product, ReviewState, Role, Site,
    UserInstalls,
};
use trilo_core::services::accounts::NewAccount;
use trilo_core::services::admin::{NewApp, NewSite};

use crate::app::build;
use crate::config::{Validated, parse_duration};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Sites and the products they host.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Products and their scope catalogs.
    #[command(subcommand)]
    Product(ProductCommand),
    /// Who may use which product on which site, with which role.
    #[command(subcommand)]
    Membership(MembershipCommand),
    /// OAuth apps (clients).
    #[command(subcommand)]
    App(AppCommand),
    /// API tokens for scripts (HTTP Basic `email:token` at the gateway).
    #[command(subcommand)]
    ApiToken(super::api_token::ApiTokenCommand),
    /// Spaces and projects of a product on a site (for guests and data security policies).
    #[command(subcommand)]
    Container(super::container::ContainerCommand),
    /// The signing keys of access and ID tokens.
    #[command(subcommand)]
    Keys(super::keys::KeysCommand),
    /// Remove expired codes and sessions, dead refresh tokens and old families now (the
    /// server's janitor does this on its own every `janitor.every`).
    Sweep {
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Args, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// The password (or set TRILO_ADMIN_PASSWORD).
        #[arg(long, env = "TRILO_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        out: Output,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Set a password: ends the account's sessions and invalidates its refresh tokens.
    SetPassword {
        #[arg(long)]
        email: String,
        #[arg(long, env = "TRILO_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Create a site.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        url: String,
        #[arg(long)]
        avatar_url: Option<String>,
        /// A fixed cloud id (UUID); generated when absent.
        #[arg(long)]
        cloud_id: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// List sites with their products.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Host a product on a site, with the upstream its API calls go to.
    AddProduct {
        #[arg(long)]
        cloud_id: String,
        #[arg(long)]
        product: String,
        #[arg(long)]
        upstream: String,
        #[command(flatten)]
        out: Output,
    },
    /// Allow or block user installs of OAuth apps on the site.
    SetUserInstalls {
        #[arg(long)]
        cloud_id: String,
        #[arg(value_enum)]
        value: InstallsArg,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InstallsArg {
    Allowed,
    Blocked,
}

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// List products with their scope counts.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Register a product (or replace its catalog) from OpenAPI 3 descriptions.
    Import {
        #[arg(long)]
        key: String,
        #[arg(long)]
        name: String,
        /// An OpenAPI JSON file; repeat for a product of several (v2 and v3, say).
        #[arg(long, value_name = "FILE", required = true)]
        openapi: Vec<std::path::PathBuf>,
        /// Another spelling of the product's paths, FROM=TO prefixes (e.g.
        /// `/rest/=/wiki/rest/`); repeat for more. The gateway rewrites FROM to TO.
        #[arg(long = "path-alias", value_name = "FROM=TO")]
        path_aliases: Vec<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Print the secret the product posts its events to `/internal/events` with.
    EventsSecret {
        #[arg(long)]
        key: String,
        #[command(flatten)]
        out: Output,
    },
}

/// The membership a command names (an account's role for a product on a site): the same
/// three options for setting and removing one.
#[derive(Debug, Args)]
pub struct MembershipOf {
    #[arg(long)]
    email: String,
    #[arg(long)]
    cloud_id: String,
    #[arg(long)]
    product: String,
}

#[derive(Debug, Subcommand)]
pub enum MembershipCommand {
    /// Give an account a role for a product on a site.
    Set {
        #[command(flatten)]
        of: MembershipOf,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        out: Output,
    },
    /// Remove a membership.
    Remove {
        #[command(flatten)]
        of: MembershipOf,
        #[command(flatten)]
        out: Output,
    },
    /// List the memberships of an account or of a site.
    List {
        #[arg(
            long,
            conflicts_with = "cloud_id",
            required_unless_present = "cloud_id"
        )]
        email: Option<String>,
        #[arg(long)]
        cloud_id: Option<String>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Member,
    Guest,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an app; its client secret is printed once.
    Create {
        /// Email of the developer who owns the app.
        #[arg(long)]
        owner_email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// A callback URL (repeat for several).
        #[arg(long = "callback-url", required = true)]
        callback_urls: Vec<String>,
        /// A scope the app may request (repeat for several).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A public client (PKCE, no secret).
        #[arg(long)]
        public: bool,
        /// Only the owner may authorize it (the default for new apps is sharing here, so
        /// the demo works; the console defaults to private).
        #[arg(long)]
        private: bool,
        #[command(flatten)]
        out: Output,
    },
    /// List apps.
    List {
        #[arg(long)]
        owner_email: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Show one app (by app id or client id).
    Show {
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Issue a new client secret; the old one stays valid for the grace period.
    RotateSecret {
        id: String,
        #[arg(long, default_value = "1h")]
        grace: String,
        #[command(flatten)]
        out: Output,
    },
    /// Mark an app reviewed (approved) or not.
    Review {
        id: String,
        #[arg(value_enum)]
        state: ReviewArg,
        #[command(flatten)]
        out: Output,
    },
    /// Delete an app (refused while it is installed on a site).
    Delete {
        id: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReviewArg {
    Approved,
    Unreviewed,
}

pub async fn run(validated: &Validated, command: AdminCommand) -> anyhow::Result<()> {
    // A command is no server: it leaves webhook deliveries to the running instances.
    let mut validated = validated.clone();
    validated.sender = None;
    validated.housekeeping = false;
    let core = build(&validated).await?.core;
    // Every change the command makes is recorded as the command line's, by this user.
    let actor = trilo_core::services::cli_actor(&os_user());
    let (out, value, text) = Core::acting_as(actor, execute(&core, command)).await?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{text}");
    }
    Ok(())
}

/// Who runs the command: the user `sudo` was run by, else the login name.
fn os_user() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

async fn execute(core: &Core, command: AdminCommand) -> anyhow::Result<Printed> {
    Ok(match command {
        AdminCommand::User(c) => user(core, c).await?,
        AdminCommand::Site(c) => site(core, c).await?,
        AdminCommand::Product(c) => product(core, c).await?,
        AdminCommand::Membership(c) => membership(core, c).await?,
        AdminCommand::App(c) => app(core, c).await?,
        AdminCommand::ApiToken(c) => super::api_token::run(core, c).await?,
        AdminCommand::Container(c) => super::container::run(core, c).await?,
        AdminCommand::Keys(c) => super::keys::run(core, c).await?,
        AdminCommand::Sweep { out } => {
            let report = core.sweep_once().await?;
            let by_kind: serde_json::Map<String, Value> =
                trilo_core::services::janitor::SWEEP_KINDS
                    .iter()
                    .map(|k| ((*k).to_owned(), json!(report.removed(k))))
                    .collect();
            let text = trilo_core::services::janitor::SWEEP_KINDS
                .iter()
                .map(|k| format!("{k}: {}", report.removed(k)))
                .collect::<Vec<_>>()
                .join("\n");
            (out, Value::Object(by_kind), text)
        }
    })
}

/// What a command prints: as JSON with `--json`, else as text.
pub(super) type Printed = (Output, Value, String);

async fn user(core: &Core, command: UserCommand) -> anyhow::Result<Printed> {
    Ok(match command {
        UserCommand::Create {
            email,
            name,
            password,
            out,
        } => {
            let a = core
                .create_account(NewAccount {
                    email,
                    name,
                    password,
                    ..NewAccount::default()
                })
                .await?;
            (
                out,
                account_json(&a),
                format!("created account {} <{}>", a.account_id, a.email),
            )
        }
        UserCommand::List { out } => {
            let list = core.accounts().await?;
            let text = list
                .iter()
                .map(|a| format!("{}  {}  {}", a.account_id, a.email, a.name))
                .collect::<Vec<_>>();
            (
                out,
                Value::Array(list.iter().map(account_json).collect()),
                text.join("\n"),
            )
        }
        UserCommand::SetPassword {
            email,
            password,
            out,
        } => {
            let account = core.account_by_email(&email).await?;
            let a = core
                .set_password(&account.account_id, &password, None)
                .await?;
            (
                out,
                account_json(&a),
                format!(
                    "password changed for {}; sessions ended, refresh tokens invalidated",
                    a.email
                ),
            )
        }
    })
}

async fn site(core: &Core, command: SiteCommand) -> anyhow::Result<Printed> {
    Ok(match command {
        SiteCommand::Create {
            name,
            url,
            avatar_url,
            cloud_id,
            out,
        } => {
            let s = core
                .create_site(NewSite {
                    name,
                    url,
                    avatar_url,
                    cloud_id,
                })
                .await?;
            (
                out,
                site_json(&s, &[]),
                format!("created site {} ({})", s.name, s.cloud_id),
            )
        }
        SiteCommand::List { out } => {
            let mut values = Vec::new();
            let mut lines = Vec::new();
            for s in core.sites().await? {
                let products: Vec<String> = core
                    .site_products(&s.cloud_id)
                    .await?
                    .into_iter()
                    .map(|p| p.product_key)
                    .collect();
                lines.push(format!(
                    "{}  {}  {}  products: {}",
                    s.cloud_id,
                    s.name,
                    s.url,
                    products.join(",")
                ));
                values.push(site_json(&s, &products));
            }
            (out, Value::Array(values), lines.join("\n"))
        }
        SiteCommand::AddProduct {
            cloud_id,
            product,
            upstream,
            out,
        } => {
            core.add_product_to_site(&cloud_id, &product, &upstream)
                .await?;
            let v = json!({ "cloud_id": cloud_id, "product": product, "upstream": upstream });
            (out, v, format!("{product} is hosted on {cloud_id}"))
        }
        SiteCommand::SetUserInstalls {
            cloud_id,
            value,
            out,
        } => {
            let v = match value {
                InstallsArg::Allowed => UserInstalls::Allowed,
                InstallsArg::Blocked => UserInstalls::Blocked,
            };
            core.set_user_installs(&cloud_id, v).await?;
            (
                out,
                json!({ "cloud_id": cloud_id, "user_installs": v.as_str() }),
                format!("user installs {} on {cloud_id}", v.as_str()),
            )
        }
    })
}

async fn product(core: &Core, command: ProductCommand) -> anyhow::Result<Printed> {
    Ok(match command {
        ProductCommand::List { out } => {
            let list = core.products().await?;
            let lines: Vec<String> = list
                .iter()
                .map(|p| format!("{}  {}  {} scopes", p.key, p.display_name, p.scopes.len()))
                .collect();
            (
                out,
                Value::Array(list.iter().map(product_json).collect()),
                lines.join("\n"),
            )
        }
        ProductCommand::EventsSecret { key, out } => {
            if core.product(&key).await?.is_none() {
                anyhow::bail!("there is no product {key:?}");
            }
            let secret = core.product_events_secret(&key);
            (
                out,
                json!({ "product": key, "events_secret": secret }),
                secret,
            )
        }
        ProductCommand::Import {
            key,
            name,
            openapi,
            path_aliases,
            out,
        } => {
            let mut docs = Vec::new();
            for file in &openapi {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let doc: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", file.display()))?;
                docs.push(doc);
            }
            let aliases = path_aliases
                .iter()
                .map(|a| PathAlias::parse(a).with_context(|| format!("--path-alias {a}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (p, report) = core.import_product(&key, &name, &docs, aliases).await?;
            let mut value = product_json(&p);
            value["operations"] = json!(report.operations);
            value["app_operations"] = json!(report.app_operations);
            (
                out,
                value,
                format!(
                    "product {} has {} scopes and {} operations ({} open to apps)",
                    p.key,
                    p.scopes.len(),
                    report.operations,
                    report.app_operations
                ),
            )
        }
    })
}

async fn membership(core: &Core, command: MembershipCommand) -> anyhow::Result<Printed> {
    Ok(match command {
        MembershipCommand::Set {
            of:
                MembershipOf {
                    email,
                    cloud_id,
                    product,
                },
            role,
            out,
        } => {
            let account = core.account_by_email(&email).await?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Member => Role::Member,
                RoleArg::Guest => Role::Guest,
            };
            core.set_membership(&account.account_id, &cloud_id, &product, role)
                .await?;
            let v = json!({ "account_id": account.account_id, "cloud_id": cloud_id, "product": product, "role": role.as_str() });
            (
                out,
                v,
                format!("{email} is {} of {product} on {cloud_id}", role.as_str()),
            )
        }
        MembershipCommand::Remove {
            of:
                MembershipOf {
                    email,
                    cloud_id,
                    product,
                },
            out,
        } => {
            let account = core.account_by_email(&email).await?;
            core.remove_membership(&account.account_id, &cloud_id, &product)
                .await?;
            let v = json!({ "account_id": account.account_id, "cloud_id": cloud_id, "product": product, "removed": true });
            (
                out,
                v,
                format!("removed {email} from {product} on {cloud_id}"),
            )
        }
        MembershipCommand::List {
            email,
            cloud_id,
            out,
        } => {
            let list = match (email, cloud_id) {
                (Some(email), _) => {
                    core.memberships_of_account(&core.account_by_email(&email).await?.account_id)
                        .await?
                }
                (None, Some(cloud_id)) => core.memberships_of_site(&cloud_id).await?,
                (None, None) => Vec::new(),
            };
            let values: Vec<Value> = list
                .iter()
                .map(|m| json!({ "account_id": m.account_id, "cloud_id": m.cloud_id, "product": m.product_key, "role": m.role.as_str() }))
                .collect();
            let lines: Vec<String> = list
                .iter()
                .map(|m| {
                    format!(
                        "{}  {}  {}  {}",
                        m.account_id,
                        m.cloud_id,
                        m.product_key,
                        m.role.as_str()
                    )
                })
                .collect();
            (out, Value::Array(values), lines.join("\n"))
        }
    })
}

async fn app(core: &Core, command: AppCommand) -> anyhow::Result<Printed> {
    Ok(match command {
        AppCommand::Create {
            owner_email,
            name,
            description,
            callback_urls,
            scopes,
            public,
            private,
            out,
        } => {
            let owner = core.account_by_email(&owner_email).await?;
            let created = core
                .create_app(NewApp {
                    owner_account_id: owner.account_id,
                    name,
                    description,
                    avatar_url: None,
                    callback_urls,
                    scopes,
                    distribution: if private {
                        Distribution::Private
                    } else {
                        Distribution::Sharing
                    },
                    client_type: if public {
                        ClientType::Public
                    } else {
                        ClientType::Confidential
                    },
                })
                .await?;
            let mut v = app_json(&created.app);
            v["client_secret"] = json!(created.client_secret);
            let secret = created
                .client_secret
                .as_deref()
                .unwrap_or("(public client: no secret)");
            let text = format!(
                "created app {}\n  client_id     {}\n  client_secret {secret}\n  (the secret is shown only now)",
                created.app.name, created.app.client_id
            );
            (out, v, text)
        }
        AppCommand::List { owner_email, out } => {
            let owner = match owner_email {
                Some(e) => Some(core.account_by_email(&e).await?.account_id),
                None => None,
            };
            let list = core.apps_of(owner.as_deref()).await?;
            let lines: Vec<String> = list
                .iter()
                .map(|a| {
                    format!(
                        "{}  {}  {}  {}",
                        a.app_id,
                        a.client_id,
                        a.name,
                        a.distribution.as_str()
                    )
                })
                .collect();
            (
                out,
                Value::Array(list.iter().map(app_json).collect()),
                lines.join("\n"),
            )
        }
        AppCommand::Show { id, out } => {
            let a = core.find_app(&id).await?;
            let text = serde_json::to_string_pretty(&app_json(&a))?;
            (out, app_json(&a), text)
        }
        AppCommand::RotateSecret { id, grace, out } => {
            let grace = parse_duration("--grace", &grace)?;
            let secret = core.rotate_app_secret(&id, grace).await?;
            let v = json!({ "client_secret": secret, "previous_valid_for_seconds": grace.whole_seconds() });
            (
                out,
                v,
                format!(
                    "new client secret: {secret}\n(the previous secret stays valid for {grace})"
                ),
            )
        }
        AppCommand::Review { id, state, out } => {
            let mut a = core.find_app(&id).await?;
            a.review_state = match state {
                ReviewArg::Approved => ReviewState::Approved,
                ReviewArg::Unreviewed => ReviewState::Unreviewed,
            };
            let a = core.update_app(a).await?;
            (
                out,
                app_json(&a),
                format!("app {} is {}", a.name, a.review_state.as_str()),
            )
        }
        AppCommand::Delete { id, out } => {
            let a = core.find_app(&id).await?;
            core.delete_app(&a.app_id).await?;
            (
                out,
                json!({ "app_id": a.app_id, "deleted": true }),
                format!("deleted app {}", a.name),
            )
        }
    })
}

fn account_json(a: &Account) -> Value {
    json!({ "account_id": a.account_id, "email": a.email, "name": a.name, "status": a.status.as_str() })
}

fn site_json(s: &Site, products: &[String]) -> Value {
    json!({ "cloud_id": s.cloud_id, "name": s.name, "url": s.url, "avatar_url": s.avatar_url,
            "user_installs": s.user_installs.as_str(), "products": products })
}

fn product_json(p: &Product) -> Value {
    let aliases: Vec<String> = p.path_aliases.iter().map(ToString::to_string).collect();
    json!({
        "key": p.key, "name": p.display_name, "scopes": p.scopes.len(), "path_aliases": aliases,
    })
}

fn app_json(a: &App) -> Value {
    json!({
        "app_id": a.app_id, "client_id": a.client_id, "name": a.name, "description": a.description,
        "owner_account_id": a.owner_account_id, "callback_urls": a.callback_urls, "scopes": a.scopes,
        "distribution": a.distribution.as_str(), "review_state": a.review_state.as_str(),
        "client_type": a.client_type.as_str(),
    })
}
