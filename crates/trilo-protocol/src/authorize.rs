//! The authorization request (RFC 6749 §4.1.1) validated in the order of DESIGN §3
//! "Authorize", and the decision taken once the user is known.
//!
//! Order matters: until `client_id` and `redirect_uri` are trusted, every problem is shown
//! on an error page and nothing redirects (RFC 6749 §4.1.2.1, security checklist R3).
//! After that, errors go back to the client with `error`, `state` and `iss` (RFC 9207).
//!
//! The OpenID Connect parameters of OIDC Core §3.1.2.1 (`prompt`, `max_age`, `login_hint`,
//! `nonce`) are read here too; they decide when a logged-in user must log in again.

use time::{Duration, OffsetDateTime};

use crate::error::{ErrorCode, OAuthError};
use crate::params::{Params, decode, encode};
use crate::pkce;
use crate::redirect;
use crate::scope::{ScopeSet, is_identity_scope};

/// What validation needs to know about the client named by `client_id`.
#[derive(Clone, Debug)]
pub struct ClientView<'a> {
    pub client_id: &'a str,
    pub callback_urls: &'a [String],
    /// Product scopes the app added; identity scopes are always allowed.
    pub allowed_scopes: &'a ScopeSet,
    /// Public clients have no secret and must use PKCE.
    pub is_public: bool,
}

/// Why the request cannot be trusted enough to redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UntrustedReason {
    MissingClientId,
    UnknownClient,
    RepeatedClientParameter,
    MissingRedirectUri,
    RedirectUriMismatch,
}

impl UntrustedReason {
    /// Text for the error page; never echoes request input.
    pub fn message(self) -> &'static str {
        match self {
            Self::MissingClientId => "The request has no client_id.",
            Self::UnknownClient => "The app that sent you here is not known.",
            Self::RepeatedClientParameter => {
                "The request names its client_id or redirect_uri more than once."
            }
            Self::MissingRedirectUri => {
                "The request has no redirect_uri, and the app has more than one callback URL."
            }
            Self::RedirectUriMismatch => {
                "The redirect_uri is not one of the app's registered callback URLs."
            }
        }
    }
}

/// A failed authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Client or redirect URI is not trusted: show an error page, never redirect.
    Untrusted(UntrustedReason),
    /// The redirect target is trusted: send the error back to the client.
    Redirect(ErrorRedirect),
}

/// An error to deliver to a trusted callback URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: OAuthError,
}

impl ErrorRedirect {
    /// The Location URL: `error`, `error_description`, `state` and `iss` appended.
    pub fn location(&self, issuer: &str) -> String {
        let mut params: Vec<(&str, &str)> = vec![("error", self.error.code.as_str())];
        if let Some(d) = &self.error.description {
            params.push(("error_description", d));
        }
        if let Some(s) = &self.state {
            params.push(("state", s));
        }
        params.push(("iss", issuer));
        append_query(&self.redirect_uri, &params)
    }
}

/// What `prompt` asked for (OIDC Core §3.1.2.1; the reference sends `prompt=consent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Absent, `consent` or `select_account`: show the pages as needed.
    Interactive,
    /// `login` (alone or with others but `none`): log in again even with a session.
    Login,
    /// `none`: never show a page; fail with `login_required` / `consent_required`.
    None,
}

/// A `login_hint` longer than an email address can be is not shown.
pub const MAX_LOGIN_HINT_LEN: usize = 254;

/// A request that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidAuthorize {
    /// The audience asked for: the `aud` of the tokens this authorization leads to.
    pub audience: String,
    pub client_id: String,
    /// Where to send the response: the presented URI (loopback ports may differ from the
    /// registered one), or the single registered one when none was sent.
    pub redirect_uri: String,
    /// The `redirect_uri` exactly as sent, which the token request must repeat (§4.1.3).
    pub redirect_uri_sent: Option<String>,
    pub state: String,
    pub scopes: ScopeSet,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    /// `max_age` in seconds: an older login must be repeated (OIDC Core §3.1.2.1).
    pub max_age: Option<i64>,
    /// What to prefill the login page's email field with.
    pub login_hint: Option<String>,
    pub include_granted_scopes: bool,
    /// `prompt` asked for `consent`: the consent page is shown even when the grant already
    /// holds the scopes (the reference's apps always send it).
    pub consent_prompted: bool,
}

impl ValidAuthorize {
    /// Only identity scopes are asked for (`openid profile email read:me`,
    /// `offline_access`): "log in with", which needs no site.
    pub fn identity_only(&self) -> bool {
        self.scopes.iter().all(is_identity_scope)
    }

    /// An error for this request's callback.
    pub fn error(&self, error: OAuthError) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            state: Some(self.state.clone()),
            error,
        }
    }

    /// Whether a user who logged in at `auth_time` must log in again first: `prompt=login`,
    /// `max_age=0` (the same, OIDC Core §3.1.2.1), a login more than `max_age` seconds old,
    /// or `max_age` with a login time that is not known.
    pub fn needs_fresh_login(
        &self,
        auth_time: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> bool {
        if self.prompt == Prompt::Login {
            return true;
        }
        match (self.max_age, auth_time) {
            (None, _) => false,
            (Some(_), None) | (Some(0), _) => true,
            (Some(max_age), Some(at)) => now - at > Duration::seconds(max_age),
        }
    }

    /// The success Location: `code`, `state`, `iss` (RFC 6749 §4.1.2, RFC 9207).
    pub fn code_location(&self, code: &str, issuer: &str) -> String {
        append_query(
            &self.redirect_uri,
            &[("code", code), ("state", &self.state), ("iss", issuer)],
        )
    }
}

/// Parameters that may appear once at most; a repeat is `invalid_request` (H-P1).
const SINGLE_VALUED: [&str; 12] = [
    "response_type",
    "scope",
    "state",
    "audience",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "nonce",
    "response_mode",
    "include_granted_scopes",
    "login_hint",
    "max_age",
];

/// Validates an authorization request. `client` is the app named by `client_id`, looked up
/// by the caller (`None` when unknown). `audiences` are the API audiences of this platform
/// (its own and the aliases it accepts).
pub fn validate(
    params: &Params,
    client: Option<&ClientView<'_>>,
    audiences: &[String],
) -> Result<ValidAuthorize, AuthorizeError> {
    use AuthorizeError::Untrusted;

    if params.is_repeated("client_id") || params.is_repeated("redirect_uri") {
        return Err(Untrusted(UntrustedReason::RepeatedClientParameter));
    }
    if params.get("client_id").is_none() {
        return Err(Untrusted(UntrustedReason::MissingClientId));
    }
    let Some(client) = client else {
        return Err(Untrusted(UntrustedReason::UnknownClient));
    };
    let redirect_uri_sent = params.get("redirect_uri").map(str::to_owned);
    let redirect_uri = match &redirect_uri_sent {
        Some(sent) => match redirect::find_match(client.callback_urls, sent) {
            Some(_) => sent.clone(),
            None => return Err(Untrusted(UntrustedReason::RedirectUriMismatch)),
        },
        None => match client.callback_urls {
            [only] => only.clone(),
            [] => return Err(Untrusted(UntrustedReason::RedirectUriMismatch)),
            _ => return Err(Untrusted(UntrustedReason::MissingRedirectUri)),
        },
    };

    // Trusted from here on: errors redirect.
    let state = if params.is_repeated("state") {
        None
    } else {
        params.get("state")
    };
    let fail = |error: OAuthError| {
        AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            state: state.map(str::to_owned),
            error,
        })
    };

    if let Some(name) = params.first_repeated(&SINGLE_VALUED) {
        return Err(fail(OAuthError::invalid_request(repeated_message(name))));
    }
    // DESIGN §3's order: audience, response_type, state, scope, PKCE.
    let Some(audience) = params
        .get("audience")
        .filter(|asked| audiences.iter().any(|a| a == asked))
    else {
        return Err(fail(OAuthError::invalid_request(
            "audience is missing or is not this platform's API audience.",
        )));
    };
    match params.get("response_type") {
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required.",
            )));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "Only response_type=code is supported.",
            )));
        }
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return Err(fail(OAuthError::invalid_request(
            "Only response_mode=query is supported.",
        )));
    }
    let Some(state) = state else {
        return Err(fail(OAuthError::invalid_request("state is required.")));
    };
    let scopes = match params.get("scope").map(ScopeSet::parse) {
        None => return Err(fail(OAuthError::invalid_scope("scope is required."))),
        Some(Err(_)) => return Err(fail(OAuthError::invalid_scope("scope is malformed."))),
        Some(Ok(s)) => s,
    };
    if scopes
        .iter()
        .any(|s| !is_identity_scope(s) && !client.allowed_scopes.contains(s))
    {
        return Err(fail(OAuthError::invalid_scope(
            "scope includes a scope that this app has not added.",
        )));
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) if client.is_public => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge is required for public clients.",
            )));
        }
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method was sent without code_challenge.",
            )));
        }
        (Some(_), method) if method != Some("S256") => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method must be S256.",
            )));
        }
        (Some(challenge), _) if !pkce::is_valid_s256_challenge(challenge) => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge is malformed.",
            )));
        }
        (Some(challenge), _) => Some(challenge.to_owned()),
    };
    let prompt = match parse_prompt(params.get("prompt")) {
        Ok(prompt) => prompt,
        Err(message) => return Err(fail(OAuthError::invalid_request(message))),
    };
    let max_age = match params.get("max_age") {
        None => None,
        // Digits only; a number too large for i64 seconds never forces a login.
        Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => Some(v.parse().unwrap_or(i64::MAX)),
        Some(_) => {
            return Err(fail(OAuthError::invalid_request(
                "max_age must be a whole number of seconds.",
            )));
        }
    };
    if params.get("nonce").is_some_and(|n| n.len() > 512) {
        return Err(fail(OAuthError::invalid_request("nonce is too long.")));
    }
    if state.len() > 4096 {
        return Err(fail(OAuthError::invalid_request("state is too long.")));
    }

    Ok(ValidAuthorize {
        audience: audience.to_owned(),
        client_id: client.client_id.to_owned(),
        redirect_uri: redirect_uri.clone(),
        redirect_uri_sent,
        state: state.to_owned(),
        scopes,
        code_challenge,
        nonce: params.get("nonce").map(str::to_owned),
        prompt,
        max_age,
        login_hint: params
            .get("login_hint")
            .filter(|h| h.len() <= MAX_LOGIN_HINT_LEN)
            .map(str::to_owned),
        include_granted_scopes: params.get("include_granted_scopes") == Some("true"),
        consent_prompted: prompt_values(params.get("prompt")).contains(&"consent"),
    })
}

fn repeated_message(name: &str) -> String {
    format!("{name} was sent more than once.")
}

fn prompt_values(value: Option<&str>) -> Vec<&str> {
    value
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect()
}

/// `prompt` is a space-delimited list (OIDC Core §3.1.2.1): `none` must stand alone;
/// `login` wins over `consent` and `select_account`, which the consent page always does;
/// unknown values are ignored.
fn parse_prompt(value: Option<&str>) -> Result<Prompt, &'static str> {
    let values = prompt_values(value);
    if values.contains(&"none") {
        return match values.len() {
            1 => Ok(Prompt::None),
            _ => Err("prompt=none cannot be combined with other values."),
        };
    }
    if values.contains(&"login") {
        return Ok(Prompt::Login);
    }
    Ok(Prompt::Interactive)
}

/// The authorization request to come back to from the login page: the same query without
/// what asks for a fresh login (`prompt`'s `login` and `max_age`), so the new session is
/// not sent to log in once more. Every other pair is kept byte for byte.
pub fn query_after_login(raw_query: &str) -> String {
    let mut kept: Vec<String> = Vec::new();
    for pair in raw_query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match decode(name.as_bytes()).as_deref() {
            Ok("max_age") => {}
            Ok("prompt") => {
                let Ok(value) = decode(value.as_bytes()) else {
                    kept.push(pair.to_owned());
                    continue;
                };
                let values: Vec<&str> = value.split(' ').filter(|v| !v.is_empty()).collect();
                let rest: Vec<&str> = values.iter().copied().filter(|v| *v != "login").collect();
                if rest.len() == values.len() {
                    kept.push(pair.to_owned());
                } else if !rest.is_empty() {
                    kept.push(format!("{name}={}", encode(&rest.join(" "))));
                }
            }
            _ => kept.push(pair.to_owned()),
        }
    }
    kept.join("&")
}

/// Who may authorize the app (DESIGN §3: a private app only by its owner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience<'a> {
    Anyone,
    OnlyOwner(&'a str),
}

/// Who is logged in and since when, as the decision needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Login<'a> {
    pub account_id: &'a str,
    /// When they logged in (the session's start); `None` when not known, which satisfies
    /// neither `prompt=login` nor `max_age`.
    pub auth_time: Option<OffsetDateTime>,
}

/// What the account's live grant for the app holds, as the decision needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted<'a> {
    pub scopes: &'a ScopeSet,
    /// The grant names at least one site (a "log in with" grant names none).
    pub has_site: bool,
}

impl Granted<'_> {
    /// The grant already holds everything `req` asks for: its scopes, and a site when it
    /// asks for product scopes.
    pub fn covers(&self, req: &ValidAuthorize) -> bool {
        req.scopes.is_subset_of(self.scopes) && (self.has_site || req.identity_only())
    }
}

/// The next step once the request is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeDecision {
    /// Send the user to the login page (its email field filled with `login_hint`), then
    /// back.
    LoginRequired { login_hint: Option<String> },
    /// Show the consent page.
    ConsentRequired,
    /// The grant already holds the request and no consent was asked for: issue the code
    /// without a page, leaving the grant as it is.
    AlreadyGranted,
    /// Redirect the error to the client.
    Fail(ErrorRedirect),
}

/// Decides what happens with a valid request for a user who is logged in (`Some`) or not,
/// given what the user's live grant for the app holds (`granted`). A repeated consent is
/// skipped when the grant already holds the request, unless `prompt=consent` asks for the
/// page (the reference's apps always do); `prompt=none` succeeds only then and is
/// `consent_required` otherwise (OIDC Core §3.1.2.6).
///
/// A login that `prompt=login` or `max_age` does not accept is repeated before anything
/// else (the user may come back as someone else); with `prompt=none` it is
/// `login_required` (OIDC Core §3.1.2.6).
pub fn decide(
    req: &ValidAuthorize,
    login: Option<Login<'_>>,
    who: Audience<'_>,
    granted: Option<Granted<'_>>,
    now: OffsetDateTime,
) -> AuthorizeDecision {
    let log_in = |reason: &'static str| match req.prompt {
        Prompt::None => {
            AuthorizeDecision::Fail(req.error(OAuthError::new(ErrorCode::LoginRequired, reason)))
        }
        Prompt::Interactive | Prompt::Login => AuthorizeDecision::LoginRequired {
            login_hint: req.login_hint.clone(),
        },
    };
    let Some(user) = login else {
        return log_in("The user is not logged in.");
    };
    if req.needs_fresh_login(user.auth_time, now) {
        return log_in("The user's login is older than max_age allows.");
    }
    if let Audience::OnlyOwner(owner) = who
        && owner != user.account_id
    {
        return AuthorizeDecision::Fail(req.error(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "This app is private: only its developer can authorize it.",
        )));
    }
    if granted.is_some_and(|g| g.covers(req)) && !req.consent_prompted {
        return AuthorizeDecision::AlreadyGranted;
    }
    match req.prompt {
        Prompt::None => AuthorizeDecision::Fail(req.error(OAuthError::new(
            ErrorCode::ConsentRequired,
            "The user must consent on the consent screen.",
        ))),
        Prompt::Interactive | Prompt::Login => AuthorizeDecision::ConsentRequired,
    }
}

/// Appends query parameters to a registered URI, keeping any query it already has.
pub fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::from(uri);
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (name, value) in params {
        out.push(sep);
        out.push_str(name);
        out.push('=');
        out.push_str(&encode(value));
        sep = '&';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUD: &str = "api.trilo.test";

    fn scopes() -> ScopeSet {
        ScopeSet::from_tokens(["read:jira-work", "write:jira-work"])
    }

    fn callbacks() -> Vec<String> {
        vec!["https://app.test/cb".to_owned()]
    }

    fn valid_query() -> String {
        "client_id=abc&redirect_uri=https%3A%2F%2Fapp.test%2Fcb&response_type=code&state=xyz\
         &audience=api.trilo.test&scope=read%3Ajira-work%20offline_access&prompt=consent"
            .to_owned()
    }

    fn run(query: &str, is_public: bool) -> Result<ValidAuthorize, AuthorizeError> {
        let params = Params::parse(query.as_bytes()).unwrap_or_default();
        let (cbs, sc) = (callbacks(), scopes());
        let client = ClientView {
            client_id: "abc",
            callback_urls: &cbs,
            allowed_scopes: &sc,
            is_public,
        };
        let client = (params.get("client_id") == Some("abc")).then_some(client);
        validate(
            &params,
            client.as_ref(),
            &[AUD.to_owned(), "api.atlassian.com".to_owned()],
        )
    }

    /// The code a decision fails with; `None` when it does not fail.
    fn failure_code(d: AuthorizeDecision) -> Option<ErrorCode> {
        match d {
            AuthorizeDecision::Fail(e) => Some(e.error.code),
            _ => None,
        }
    }

    fn redirect_code(r: Result<ValidAuthorize, AuthorizeError>) -> Option<ErrorCode> {
        match r {
            Err(AuthorizeError::Redirect(e)) => Some(e.error.code),
            _ => None,
        }
    }

    #[test]
    fn valid_request_passes() {
        let v = run(&valid_query(), false);
        let Ok(v) = v else {
            panic!("expected valid: {v:?}")
        };
        assert_eq!(v.state, "xyz");
        assert_eq!(v.scopes.to_string(), "read:jira-work offline_access");
        assert_eq!(v.redirect_uri_sent.as_deref(), Some("https://app.test/cb"));
    }

    #[test]
    fn client_and_redirect_problems_never_redirect() {
        let cases = [
            (
                valid_query().replace("client_id=abc", "client_id=nope"),
                UntrustedReason::UnknownClient,
            ),
            (
                valid_query().replace("client_id=abc&", ""),
                UntrustedReason::MissingClientId,
            ),
            (
                valid_query().replace("%2Fcb", "%2Fcb%2F"),
                UntrustedReason::RedirectUriMismatch,
            ),
            (
                format!("{}&client_id=abc", valid_query()),
                UntrustedReason::RepeatedClientParameter,
            ),
            // The unknown client wins over every later problem, even a bad response_type.
            (
                valid_query()
                    .replace("client_id=abc", "client_id=nope")
                    .replace("=code", "=token"),
                UntrustedReason::UnknownClient,
            ),
        ];
        for (q, reason) in cases {
            assert_eq!(
                run(&q, false),
                Err(AuthorizeError::Untrusted(reason)),
                "{q}"
            );
        }
    }

    /// DESIGN §3 checks audience, then response_type, then state, then scope, then PKCE:
    /// with several problems the first in that order is reported.
    #[test]
    fn redirect_errors_follow_the_documented_order() {
        let description = |r: Result<ValidAuthorize, AuthorizeError>| match r {
            Err(AuthorizeError::Redirect(e)) => e.error.description.unwrap_or_default(),
            other => panic!("expected a redirect error, got {other:?}"),
        };
        let bad_audience = valid_query().replace("api.trilo.test", "evil");
        let everything_wrong = bad_audience
            .replace("=code", "=token")
            .replace("state=xyz&", "")
            .replace("read%3Ajira-work", "admin%3Aall");
        assert!(description(run(&everything_wrong, true)).starts_with("audience"));
        let no_audience_problem = everything_wrong.replace("evil", "api.trilo.test");
        assert_eq!(
            redirect_code(run(&no_audience_problem, true)),
            Some(ErrorCode::UnsupportedResponseType)
        );
        let then_state = no_audience_problem.replace("=token", "=code");
        assert!(description(run(&then_state, true)).starts_with("state"));
        let then_scope = format!("{then_state}&state=xyz");
        assert_eq!(
            redirect_code(run(&then_scope, true)),
            Some(ErrorCode::InvalidScope)
        );
        let then_pkce = then_scope.replace("admin%3Aall", "read%3Ajira-work");
        assert!(description(run(&then_pkce, true)).starts_with("code_challenge"));
    }

    #[test]
    fn redirect_uri_may_be_omitted_with_one_callback() {
        let q = valid_query().replace("redirect_uri=https%3A%2F%2Fapp.test%2Fcb&", "");
        let Ok(v) = run(&q, false) else {
            panic!("expected valid")
        };
        assert_eq!(v.redirect_uri, "https://app.test/cb");
        assert_eq!(v.redirect_uri_sent, None);
    }

    #[test]
    fn trusted_errors_redirect_with_their_codes() {
        let q = valid_query();
        let (request, scope) = (ErrorCode::InvalidRequest, ErrorCode::InvalidScope);
        let response_type = ErrorCode::UnsupportedResponseType;
        let any_challenge = "a".repeat(43);
        let cases = [
            (q.replace("&state=xyz", ""), request),
            (
                q.replace("response_type=code", "response_type=token"),
                response_type,
            ),
            (q.replace("response_type=code&", ""), request),
            (
                q.replace("response_type=code", "response_type=CODE"),
                response_type,
            ),
            (
                q.replace("offline_access", "manage:jira-configuration"),
                scope,
            ),
            (q.replace("read%3Ajira-work", "READ%3Ajira-work"), scope),
            (
                q.replace("&scope=read%3Ajira-work%20offline_access", ""),
                scope,
            ),
            (q.replace("api.trilo.test", "api.other.test"), request),
            (q.replace("&audience=api.trilo.test", ""), request),
            (format!("{q}&scope=read%3Ajira-work"), request),
            (
                format!("{q}&code_challenge_method=plain&code_challenge={any_challenge}"),
                request,
            ),
            (
                format!("{q}&code_challenge=short&code_challenge_method=S256"),
                request,
            ),
            (format!("{q}&code_challenge={any_challenge}"), request),
            (format!("{q}&response_mode=fragment"), request),
        ];
        for (query, code) in cases {
            assert_eq!(redirect_code(run(&query, false)), Some(code), "{query}");
        }
    }

    #[test]
    fn public_clients_need_pkce() {
        assert_eq!(
            redirect_code(run(&valid_query(), true)),
            Some(ErrorCode::InvalidRequest)
        );
        let q = format!(
            "{}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            valid_query()
        );
        assert!(run(&q, true).is_ok());
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        assert!(run(&format!("{}&extra=foobar", valid_query()), false).is_ok());
    }

    #[test]
    fn missing_state_error_has_no_state() {
        let Err(AuthorizeError::Redirect(e)) = run(&valid_query().replace("&state=xyz", ""), false)
        else {
            panic!("expected redirect")
        };
        assert_eq!(e.state, None);
        let loc = e.location("https://auth.test");
        assert!(
            loc.starts_with("https://app.test/cb?error=invalid_request&"),
            "{loc}"
        );
        assert!(loc.ends_with("&iss=https%3A%2F%2Fauth.test"), "{loc}");
        assert!(!loc.contains("state="));
    }

    #[test]
    fn state_round_trips_byte_for_byte() {
        let state = "a%b+c&d#e é ✓ ".repeat(60);
        let q = valid_query().replace("state=xyz", &format!("state={}", encode(&state)));
        let Ok(v) = run(&q, false) else {
            panic!("expected valid")
        };
        let loc = v.code_location("CODE", "https://auth.test");
        let query = loc.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let back = Params::parse(query.as_bytes()).unwrap_or_default();
        assert_eq!(back.get("state"), Some(state.as_str()));
        assert_eq!(back.get("code"), Some("CODE"));
        assert_eq!(back.get("iss"), Some("https://auth.test"));
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2024-06-01 12:00 UTC);

    fn logged_in(account_id: &str, seconds_ago: i64) -> Option<Login<'_>> {
        Some(Login {
            account_id,
            auth_time: Some(NOW - Duration::seconds(seconds_ago)),
        })
    }

    fn with(extra: &str) -> ValidAuthorize {
        let q = format!("{}{extra}", valid_query().replace("&prompt=consent", ""));
        match run(&q, false) {
            Ok(v) => v,
            Err(e) => panic!("expected valid: {q}: {e:?}"),
        }
    }

    fn login_required() -> AuthorizeDecision {
        AuthorizeDecision::LoginRequired { login_hint: None }
    }

    #[test]
    fn decisions() {
        let Ok(v) = run(&valid_query(), false) else {
            panic!()
        };
        assert_eq!(
            decide(&v, None, Audience::Anyone, None, NOW),
            login_required()
        );
        assert_eq!(
            decide(&v, logged_in("u1", 3600), Audience::Anyone, None, NOW),
            AuthorizeDecision::ConsentRequired
        );
        assert_eq!(
            decide(&v, logged_in("u1", 0), Audience::OnlyOwner("u1"), None, NOW),
            AuthorizeDecision::ConsentRequired
        );
        assert_eq!(
            failure_code(decide(
                &v,
                logged_in("u2", 0),
                Audience::OnlyOwner("u1"),
                None,
                NOW
            )),
            Some(ErrorCode::UnauthorizedClient)
        );

        let none = with("&prompt=none");
        let AuthorizeDecision::Fail(e) = decide(&none, None, Audience::Anyone, None, NOW) else {
            panic!()
        };
        assert_eq!(e.error.code, ErrorCode::LoginRequired);
        assert_eq!(e.state.as_deref(), Some("xyz"));
        assert_eq!(
            failure_code(decide(
                &none,
                logged_in("u1", 0),
                Audience::Anyone,
                None,
                NOW
            )),
            Some(ErrorCode::ConsentRequired)
        );
    }

    /// A grant that already holds the request skips the consent page unless
    /// `prompt=consent` asks for it; `prompt=none` then succeeds. A grant without a site
    /// covers only identity scopes.
    #[test]
    fn a_covering_grant_skips_the_repeated_consent() {
        let held = ScopeSet::from_tokens(["read:jira-work", "write:jira-work", "openid"]);
        let with_site = Granted {
            scopes: &held,
            has_site: true,
        };
        let no_site = Granted {
            scopes: &held,
            has_site: false,
        };
        let narrower = ScopeSet::from_tokens(["read:jira-work"]);
        let wider = ScopeSet::from_tokens(["read:jira-work", "manage:jira-configuration"]);
        let decision = |extra: &str, scopes: &ScopeSet, granted: Granted<'_>| {
            let mut req = with(extra);
            req.scopes = scopes.clone();
            decide(
                &req,
                logged_in("u1", 0),
                Audience::Anyone,
                Some(granted),
                NOW,
            )
        };
        let skipped = AuthorizeDecision::AlreadyGranted;
        let consent = AuthorizeDecision::ConsentRequired;
        assert_eq!(decision("", &narrower, with_site), skipped);
        assert_eq!(decision("&prompt=none", &held, with_site), skipped);
        assert_eq!(decision("&prompt=consent", &narrower, with_site), consent);
        assert_eq!(
            decision("&prompt=select_account%20consent", &held, with_site),
            consent
        );
        assert_eq!(decision("", &wider, with_site), consent);
        assert_eq!(decision("", &narrower, no_site), consent);
        let openid = ScopeSet::from_tokens(["openid"]);
        assert_eq!(decision("", &openid, no_site), skipped);
        let AuthorizeDecision::Fail(e) = decision("&prompt=none", &wider, with_site) else {
            panic!()
        };
        assert_eq!(e.error.code, ErrorCode::ConsentRequired);
        // A login that must be repeated still comes first.
        let mut req = with("&prompt=login");
        req.scopes = narrower.clone();
        let decided = decide(
            &req,
            logged_in("u1", 0),
            Audience::Anyone,
            Some(with_site),
            NOW,
        );
        assert_eq!(decided, login_required());
    }

    /// OIDC Core §3.1.2.1: `prompt=login` and `max_age` make a logged-in user log in again.
    #[test]
    fn fresh_login_decisions() {
        let consent = AuthorizeDecision::ConsentRequired;
        // (extra parameters, seconds since the login, decision)
        let cases = [
            ("&prompt=login", 0, login_required()),
            ("&prompt=login%20consent", 5, login_required()),
            ("&prompt=consent%20select_account", 5, consent.clone()),
            ("&max_age=60", 60, consent.clone()),
            ("&max_age=60", 61, login_required()),
            ("&max_age=0", 0, login_required()),
            (
                "&max_age=99999999999999999999999",
                1_000_000_000,
                consent.clone(),
            ),
            (
                "&max_age=3600&login_hint=a%40b.test",
                3601,
                AuthorizeDecision::LoginRequired {
                    login_hint: Some("a@b.test".into()),
                },
            ),
        ];
        for (extra, ago, expected) in cases {
            let req = with(extra);
            assert_eq!(
                decide(&req, logged_in("u1", ago), Audience::Anyone, None, NOW),
                expected,
                "{extra} {ago}s"
            );
        }
        // An unknown login time satisfies no max_age.
        let unknown = Some(Login {
            account_id: "u1",
            auth_time: None,
        });
        assert_eq!(
            decide(&with("&max_age=600"), unknown, Audience::Anyone, None, NOW),
            login_required()
        );
        assert_eq!(
            decide(&with(""), unknown, Audience::Anyone, None, NOW),
            consent
        );
        // The fresh login comes before the private-app check: the user may change.
        assert_eq!(
            decide(
                &with("&prompt=login"),
                logged_in("u2", 0),
                Audience::OnlyOwner("u1"),
                None,
                NOW
            ),
            login_required()
        );
        // prompt=none cannot show the login page.
        let old = with("&prompt=none&max_age=10");
        assert_eq!(
            failure_code(decide(
                &old,
                logged_in("u1", 11),
                Audience::Anyone,
                None,
                NOW
            )),
            Some(ErrorCode::LoginRequired)
        );
    }

    #[test]
    fn oidc_parameters_are_validated() {
        for extra in [
            "&prompt=none%20login",
            "&prompt=consent%20none",
            "&max_age=-1",
            "&max_age=1.5",
            "&max_age=%2B5",
            "&max_age=1&max_age=2",
            "&login_hint=a&login_hint=b",
        ] {
            let q = format!("{}{extra}", valid_query().replace("&prompt=consent", ""));
            assert_eq!(
                redirect_code(run(&q, false)),
                Some(ErrorCode::InvalidRequest),
                "{extra}"
            );
        }
        let v = with("&nonce=n-0S6&login_hint=alice%40example.test&max_age=300&prompt=login");
        assert_eq!(v.nonce.as_deref(), Some("n-0S6"));
        assert_eq!(v.login_hint.as_deref(), Some("alice@example.test"));
        assert_eq!(v.max_age, Some(300));
        assert_eq!(v.prompt, Prompt::Login);
        let long = with(&format!(
            "&login_hint={}",
            "a".repeat(MAX_LOGIN_HINT_LEN + 1)
        ));
        assert_eq!(long.login_hint, None, "an overlong hint is not shown");
        assert_eq!(with("&prompt=unknown").prompt, Prompt::Interactive);
    }

    #[test]
    fn query_after_login_drops_only_what_forced_the_login() {
        for (query, expected) in [
            ("a=1&prompt=consent&b=%20", "a=1&prompt=consent&b=%20"),
            ("a=1&prompt=login&b=2", "a=1&b=2"),
            ("prompt=login+consent&x=y", "prompt=consent&x=y"),
            ("prompt=consent%20login", "prompt=consent"),
            ("%70rompt=login&max_age=0&state=s", "state=s"),
            ("max_age=60&nonce=n&&state=a%26b", "nonce=n&&state=a%26b"),
            ("prompt=%zz", "prompt=%zz"),
            ("", ""),
        ] {
            assert_eq!(query_after_login(query), expected, "{query}");
        }
    }

    #[test]
    fn append_query_keeps_existing_query() {
        assert_eq!(
            append_query("https://a.test/cb?x=1", &[("code", "c")]),
            "https://a.test/cb?x=1&code=c"
        );
    }
}
