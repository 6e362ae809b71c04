//! Web origins of browser apps (RFC 6454): what an app registers so that its pages may call
//! the token and revocation endpoints across origins (issue 15), in the form browsers send
//! in the `Origin` header, so the two compare as strings.

/// Why a registered origin was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebOriginError {
    #[error("is not an origin like https://app.example.com")]
    Malformed,
    #[error("must use https (http only on 127.0.0.1, [::1] or localhost)")]
    Insecure,
    #[error("is an origin only: no path, query, fragment or user")]
    NotJustAnOrigin,
}

/// The origin as browsers serialize it: lowercase scheme and host, the port only when it is
/// not the scheme's default, no trailing slash. A trailing `/` is tolerated on input.
pub fn normalize(input: &str) -> Result<String, WebOriginError> {
    let input = input.trim();
    let text = input.strip_suffix('/').unwrap_or(input);
    if text.bytes().any(|b| b <= b' ' || b == 0x7f) || text.contains('*') {
        return Err(WebOriginError::Malformed);
    }
    let url = url::Url::parse(text).map_err(|_| WebOriginError::Malformed)?;
    let host = url.host_str().ok_or(WebOriginError::Malformed)?;
    if !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || text.contains('@')
        || text.contains('?')
        || text.contains('#')
        // `https://a.test/x` parses with path `/x`, caught above; `https://a.test` parses
        // with path `/`, which the text must not spell out beyond the tolerated one.
        || text.trim_start_matches(url.scheme()).trim_start_matches("://").contains('/')
    {
        return Err(WebOriginError::NotJustAnOrigin);
    }
    match url.scheme() {
        "https" => {}
        "http" if matches!(host, "127.0.0.1" | "[::1]" | "localhost") => {}
        "http" => return Err(WebOriginError::Insecure),
        _ => return Err(WebOriginError::Malformed),
    }
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// The origin of a base URL such as the auth host's (`http://127.0.0.1:8080/` →
/// `http://127.0.0.1:8080`): requests from it are same-origin.
pub fn origin_of(base_url: &str) -> Option<String> {
    let url = url::Url::parse(base_url).ok()?;
    Some(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        for (input, origin) in [
            ("https://App.Example.com", "https://app.example.com"),
            ("https://app.example.com/", "https://app.example.com"),
            ("https://app.example.com:443", "https://app.example.com"),
            (
                "https://app.example.com:8443",
                "https://app.example.com:8443",
            ),
            ("http://localhost:3000", "http://localhost:3000"),
            ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
        ] {
            assert_eq!(normalize(input), Ok(origin.to_owned()), "{input}");
        }
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        use WebOriginError::*;
        for (input, error) in [
            ("app.example.com", Malformed),
            ("https://*.example.com", Malformed),
            ("ftp://app.example.com", Malformed),
            ("null", Malformed),
            ("http://app.example.com", Insecure),
            ("https://app.example.com/app", NotJustAnOrigin),
            ("https://app.example.com//", NotJustAnOrigin),
            ("https://app.example.com?x=1", NotJustAnOrigin),
            ("https://user@app.example.com", NotJustAnOrigin),
        ] {
            assert_eq!(normalize(input), Err(error), "{input}");
        }
    }

    #[test]
    fn the_origin_of_a_base_url() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("https://auth.example.com").as_deref(),
            Some("https://auth.example.com")
        );
    }
}
