//! The operator console: every site (add one, host a product on one) and the apps awaiting
//! review. Server-rendered, no JavaScript. Only the configured operators get in; anyone
//! else is told there is no such page, as for a site they do not administer.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use trilo_core::CoreError;
use trilo_core::model::{ClientType, ReviewState, UserInstalls};
use trilo_core::services::console::ConsoleError;
use trilo_core::services::operator::Operator;

use super::common::render;
use super::errors::PageError;
use super::extract::{CsrfForm, SignedIn};
use crate::state::AppState;
use crate::views::{
    Chrome, HostProductForm, NewSiteForm, OperatorReviewPage, OperatorSiteItem, OperatorSitesPage,
    ReviewItem,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/operator", get(sites))
        .route("/operator/sites", post(add_site))
        .route("/operator/sites/products", post(host_product))
        .route("/operator/review", get(review))
        .route("/operator/apps/{app_id}/review", post(set_review))
}

const NOT_AN_OPERATOR: &str = "There is no such page.";

fn operator<'a>(state: &'a AppState, me: &'a SignedIn) -> Result<Operator<'a>, PageError> {
    state
        .core
        .operator(&me.account)
        .map_err(|_| PageError::NotFound(NOT_AN_OPERATOR))
}

/// What a refused form shows: its message, beside its field when it names one. Anything
/// but the operator's mistake is a page error.
fn refusal(chrome: Chrome, e: CoreError) -> Result<Chrome, PageError> {
    match e {
        CoreError::InvalidField { field, message } => Ok(chrome.with_field_error(field, message)),
        CoreError::Invalid(message) => Ok(chrome.with_error(message)),
        CoreError::NotFound(_) => Ok(chrome.with_error("That site no longer exists.".into())),
        CoreError::Conflict(_) => Ok(chrome.with_error("That site already exists.".into())),
        other => Err(other.into()),
    }
}

async fn sites(State(state): State<AppState>, me: SignedIn) -> Result<Response, PageError> {
    let chrome = me.chrome("sites");
    sites_page(&state, &me, chrome, SitesForms::default()).await
}

/// The two forms of the sites page as they are shown again: empty, or as typed when the
/// operator's mistake refused them.
#[derive(Default)]
struct SitesForms {
    new_site: NewSiteForm,
    host: HostProductForm,
}

async fn sites_page(
    state: &AppState,
    me: &SignedIn,
    chrome: Chrome,
    forms: SitesForms,
) -> Result<Response, PageError> {
    let operator = operator(state, me)?;
    let sites = operator
        .sites()
        .await?
        .into_iter()
        .map(|o| OperatorSiteItem {
            cloud_id: o.site.cloud_id,
            name: o.site.name,
            url: o.site.url,
            user_installs: match o.site.user_installs {
                UserInstalls::Allowed => "Allowed",
                UserInstalls::Blocked => "Blocked",
            },
            products: o
                .products
                .into_iter()
                .map(|p| (p.product_key, p.upstream_url))
                .collect(),
            admins: o.admins.join(", "),
        })
        .collect();
    let products = state
        .core
        .products()
        .await?
        .into_iter()
        .map(|p| (p.key, p.display_name))
        .collect();
    Ok(render(
        chrome.status(),
        &OperatorSitesPage {
            chrome,
            sites,
            products,
            new_site: forms.new_site,
            host: forms.host,
        },
    ))
}

async fn add_site(
    State(state): State<AppState>,
    me: SignedIn,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let typed = NewSiteForm {
        name: form.get("name").unwrap_or_default().to_owned(),
        url: form.get("url").unwrap_or_default().trim().to_owned(),
    };
    let created = operator(&state, &me)?
        .create_site(&typed.name, &typed.url)
        .await;
    let chrome = me.chrome("sites");
    match created {
        Ok(site) => {
            let chrome = chrome.with_notice(format!(
                "Site {} added. Host its products below, then appoint its admins.",
                site.name
            ));
            let host = HostProductForm {
                cloud_id: site.cloud_id,
                ..HostProductForm::default()
            };
            let forms = SitesForms {
                host,
                ..SitesForms::default()
            };
            sites_page(&state, &me, chrome, forms).await
        }
        Err(e) => {
            let chrome = refusal(chrome, e)?;
            let forms = SitesForms {
                new_site: typed,
                ..SitesForms::default()
            };
            sites_page(&state, &me, chrome, forms).await
        }
    }
}

async fn host_product(
    State(state): State<AppState>,
    me: SignedIn,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let typed = HostProductForm {
        cloud_id: form.get("cloud_id").unwrap_or_default().to_owned(),
        product: form.get("product").unwrap_or_default().to_owned(),
        upstream: form.get("upstream").unwrap_or_default().trim().to_owned(),
    };
    let hosted = operator(&state, &me)?
        .host_product(&typed.cloud_id, &typed.product, &typed.upstream)
        .await;
    let chrome = me.chrome("sites");
    match hosted {
        Ok(()) => {
            let chrome = chrome.with_notice(format!(
                "The site's {} calls now go to {}.",
                typed.product, typed.upstream
            ));
            sites_page(&state, &me, chrome, SitesForms::default()).await
        }
        Err(e) => {
            let chrome = refusal(chrome, e)?;
            let forms = SitesForms {
                host: typed,
                ..SitesForms::default()
            };
            sites_page(&state, &me, chrome, forms).await
        }
    }
}

async fn review(State(state): State<AppState>, me: SignedIn) -> Result<Response, PageError> {
    let chrome = me.chrome("review");
    review_page(&state, &me, chrome).await
}

async fn review_page(
    state: &AppState,
    me: &SignedIn,
    chrome: Chrome,
) -> Result<Response, PageError> {
    let operator = operator(state, me)?;
    let apps = operator
        .apps_to_review()
        .await?
        .into_iter()
        .map(|a| ReviewItem {
            callback_hosts: callback_hosts(&a.app.callback_urls),
            scopes: a.app.scopes.len(),
            approved: a.app.review_state == ReviewState::Approved,
            client_type: match a.app.client_type {
                ClientType::Confidential => "Server app",
                ClientType::Public => "Public client (PKCE)",
            },
            created: a.app.created_at.date().to_string(),
            app_id: a.app.app_id,
            name: a.app.name,
            owner_email: a.owner_email,
            own: a.own,
        })
        .collect();
    Ok(render(
        chrome.status(),
        &OperatorReviewPage { chrome, apps },
    ))
}

/// The hosts an app sends users back to, each once: what a reviewer checks first.
fn callback_hosts(urls: &[String]) -> String {
    let mut hosts: Vec<String> = Vec::new();
    for url in urls.iter().filter_map(|u| url::Url::parse(u).ok()) {
        if let Some(host) = url
            .host_str()
            .filter(|h| !hosts.iter().any(|known| known == h))
        {
            hosts.push(host.to_owned());
        }
    }
    hosts.join(", ")
}

async fn set_review(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    me: SignedIn,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let review_state = match form.get("state") {
        Some("approved") => ReviewState::Approved,
        Some("unreviewed") => ReviewState::Unreviewed,
        _ => return Err(PageError::BadRequest("Choose approved or unreviewed.")),
    };
    let reviewed = operator(&state, &me)?.review(&app_id, review_state).await;
    let chrome = me.chrome("review");
    let chrome = match reviewed {
        Ok(app) if review_state == ReviewState::Approved => {
            chrome.with_notice(format!("{} is approved.", app.name))
        }
        Ok(app) => chrome.with_notice(format!("{} awaits review again.", app.name)),
        Err(ConsoleError::OwnApp) => {
            chrome.with_error("Nobody reviews their own app: ask another operator.".into())
        }
        Err(ConsoleError::NotFound) => chrome.with_error("That app no longer exists.".into()),
        Err(e) => return Err(e.into()),
    };
    review_page(&state, &me, chrome).await
}
