//! The demo: sample products, two sites, two users with memberships and one app, on a
//! fresh database; what was created is printed and written to `demo.json` so scripts and
//! tests can drive it.

use serde::Serialize;
use trilo_core::Core;
use trilo_core::model::{ClientType, Container, Distribution, Role};
use trilo_core::services::accounts::NewAccount;
use trilo_core::services::admin::{NewApp, NewSite};
use trilo_sample_products::ALL;

/// What `demo.json` holds.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct DemoInfo {
    pub auth_url: String,
    pub api_url: String,
    pub audience: String,
    pub users: Vec<DemoUser>,
    pub apps: Vec<DemoApp>,
    pub sites: Vec<DemoSite>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct DemoUser {
    pub email: String,
    pub password: String,
    pub account_id: String,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct DemoApp {
    pub client_id: String,
    pub client_secret: String,
    pub callback_url: String,
    pub scopes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct DemoSite {
    pub cloud_id: String,
    pub name: String,
    pub products: Vec<String>,
}

/// The demo app's scopes: identity, offline access and a few of each product's.
pub const DEMO_APP_SCOPES: [&str; 7] = [
    "offline_access",
    "read:me",
    "read:jira-work",
    "write:jira-work",
    "read:jira-user",
    "read:confluence-content.all",
    "read:confluence-space.summary",
];

/// Registers the sample products with their catalogs (scopes and operations).
pub async fn register_sample_products(core: &Core) -> anyhow::Result<()> {
    for sample in ALL {
        let docs = sample
            .descriptions()
            .map_err(|e| anyhow::anyhow!("the descriptions of {}: {e}", sample.key))?;
        core.import_product(
            sample.key,
            sample.display_name,
            &docs,
            sample.path_aliases(),
        )
        .await?;
    }
    Ok(())
}

/// Seeds the demo data. `upstream_base` is where the sample products would be served
/// (the gateway forwards there in a later release). `callback_url` is the demo app's.
/// The demo user who also runs the demo trilo: the operator console is hers.
pub const DEMO_OPERATOR: &str = "alice@example.com";

pub async fn seed(
    core: &Core,
    upstream_base: &str,
    callback_url: &str,
) -> anyhow::Result<DemoInfo> {
    register_sample_products(core).await?;
    let users = [
        (DEMO_OPERATOR, "Alice Admin", "alice-demo-password"),
        ("bob@example.com", "Bob Builder", "bob-demo-password"),
    ];
    let mut accounts = Vec::new();
    for (email, name, password) in users {
        let account = core
            .create_account(NewAccount {
                email: email.into(),
                name: name.into(),
                password: password.into(),
                ..NewAccount::default()
            })
            .await?;
        accounts.push(DemoUser {
            email: email.into(),
            password: password.into(),
            account_id: account.account_id,
        });
    }
    let site_specs = [
        (
            "Acme",
            "https://acme.example.com",
            vec!["jira", "confluence"],
        ),
        ("Globex", "https://globex.example.com", vec!["jira"]),
    ];
    let mut sites = Vec::new();
    // accessible-resources always carries an avatar in the reference; trilo serves one.
    let avatar = format!(
        "{}/assets/site-avatar.svg",
        core.settings.auth_url.trim_end_matches('/')
    );
    for (name, url, products) in site_specs {
        let site = core
            .create_site(NewSite {
                name: name.into(),
                url: url.into(),
                avatar_url: Some(avatar.clone()),
                cloud_id: None,
            })
            .await?;
        for product in &products {
            let upstream = format!("{}/{product}", upstream_base.trim_end_matches('/'));
            core.add_product_to_site(&site.cloud_id, product, &upstream)
                .await?;
            // The projects and spaces the sample upstreams hold, for guests and policies.
            let seeded = ALL
                .iter()
                .filter(|sample| sample.key == *product)
                .flat_map(|sample| sample.seeded_containers());
            for c in seeded {
                core.put_container(Container {
                    cloud_id: site.cloud_id.clone(),
                    product_key: (*product).to_owned(),
                    key: c.key.to_owned(),
                    container_id: c.id.to_string(),
                    name: c.name.to_owned(),
                })
                .await?;
            }
        }
        sites.push(DemoSite {
            cloud_id: site.cloud_id,
            name: name.into(),
            products: products.iter().map(|p| (*p).to_owned()).collect(),
        });
    }
    // Alice administers both products on Acme and is a member on Globex; Bob is a member
    // of Jira on Acme only.
    let (alice, bob) = (&accounts[0].account_id, &accounts[1].account_id);
    core.set_membership(alice, &sites[0].cloud_id, "jira", Role::Admin)
        .await?;
    core.set_membership(alice, &sites[0].cloud_id, "confluence", Role::Admin)
        .await?;
    core.set_membership(alice, &sites[1].cloud_id, "jira", Role::Member)
        .await?;
    core.set_membership(bob, &sites[0].cloud_id, "jira", Role::Member)
        .await?;

    let created = core
        .create_app(NewApp {
            owner_account_id: alice.clone(),
            name: "Demo Integration".into(),
            description: "A sample app registered by the demo.".into(),
            avatar_url: None,
            callback_urls: vec![callback_url.to_owned()],
            scopes: DEMO_APP_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            distribution: Distribution::Sharing,
            client_type: ClientType::Confidential,
        })
        .await?;
    let apps = vec![DemoApp {
        client_id: created.app.client_id.clone(),
        client_secret: created.client_secret.clone().unwrap_or_default(),
        callback_url: callback_url.to_owned(),
        scopes: created.app.scopes.clone(),
    }];
    let s = &core.settings;
    Ok(DemoInfo {
        auth_url: s.auth_url.clone(),
        api_url: s.api_url.clone(),
        audience: s.audience.clone(),
        users: accounts,
        apps,
        sites,
    })
}

/// Serves the sample products' upstreams under `/sample` (the upstream base [`seed`] gives
/// the demo sites), trusting the server's own signing keys; the sample Jira posts its
/// events to the server's `/internal/events`.
pub fn with_sample_products(router: axum::Router, core: &Core) -> anyhow::Result<axum::Router> {
    let events_url = format!(
        "{}/internal/events",
        core.settings.api_url.trim_end_matches('/')
    );
    let jira = trilo_sample_products::JIRA.key;
    let keys = core.keys.clone();
    let config = trilo_sample_products::UpstreamConfig::from_jwks_json(
        core.settings.auth_url.clone(),
        &core.keys.jwks(),
    )?
    .with_key_source(std::sync::Arc::new(move || keys.jwks()))
    .with_links_base(core.settings.api_url.clone())
    .with_events(
        jira,
        trilo_sample_products::EventSink::new(events_url, core.product_events_secret(jira)),
    );
    Ok(router.nest("/sample", trilo_sample_products::router(config)))
}

/// Adds `/demo/callback`, the demo app's callback: it shows the code and the curl command
/// that exchanges it, so the flow can be walked through by hand.
pub fn with_callback_page(router: axum::Router) -> axum::Router {
    router.route("/demo/callback", axum::routing::get(demo_callback))
}

async fn demo_callback(uri: axum::http::Uri) -> axum::response::Response {
    use crate::http::common::{query_params, render};
    let params = query_params(&uri).unwrap_or_default();
    let page = crate::views::DemoCallbackPage {
        code: params.get("code").unwrap_or_default().to_owned(),
        state: params.get("state").unwrap_or_default().to_owned(),
        error: params.get("error").map(str::to_owned),
        error_description: params
            .get("error_description")
            .unwrap_or_default()
            .to_owned(),
    };
    render(axum::http::StatusCode::OK, &page)
}
