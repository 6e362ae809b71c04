//! Redirect URI matching (RFC 6749 §3.1.2, OAuth 2.0 Security BCP §4.1.3).
//!
//! Registered and presented URIs are compared as raw strings: no parsing, normalising or
//! re-serialising first, because every known redirect bypass came from doing that
//! (security checklist §0.1, §4.2). The only exception is RFC 8252 §7.3: for
//! `http://127.0.0.1` and `http://[::1]` the port may differ.

/// Whether `presented` matches the registered callback URL `registered`.
pub fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    loopback_port_variant(registered, presented)
}

/// Finds the registered URL that `presented` matches, if any.
pub fn find_match<'a>(registered: &'a [String], presented: &str) -> Option<&'a str> {
    registered
        .iter()
        .map(String::as_str)
        .find(|r| matches(r, presented))
}

fn loopback_port_variant(registered: &str, presented: &str) -> bool {
    for host in ["http://127.0.0.1", "http://[::1]"] {
        let (Some(reg_rest), Some(pre_rest)) =
            (registered.strip_prefix(host), presented.strip_prefix(host))
        else {
            continue;
        };
        return strip_port(reg_rest) == strip_port(pre_rest)
            && strip_port(reg_rest).is_some_and(|path| path.is_empty() || path.starts_with('/'));
    }
    false
}

/// `":8080/cb"` → `Some("/cb")`, `"/cb"` → `Some("/cb")`. A port that is not a real TCP
/// port spelled one way (1–65535, no leading zero) → `None`: `:0`, `:65536` and
/// `:00080` are refused, not read as some other port.
fn strip_port(rest: &str) -> Option<&str> {
    match rest.strip_prefix(':') {
        None => Some(rest),
        Some(after) => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let port = &after[..digits];
            let valid = !port.is_empty()
                && !port.starts_with('0')
                && port.parse::<u16>().is_ok_and(|p| p != 0);
            valid.then(|| &after[digits..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTERED: &str = "https://app.test/cb";

    #[test]
    fn exact_string_matches() {
        assert!(matches(REGISTERED, REGISTERED));
    }

    /// Security checklist R1: each variant is refused.
    #[test]
    fn variants_of_the_registered_uri_are_refused() {
        for v in [
            "https://app.test/cb/",
            "https://APP.test/cb",
            "HTTPS://app.test/cb",
            "https://app.test/cb?x=1",
            "https://app.test/cb#f",
            "https://app.test/cb/../cb",
            "https://app.test/CB",
            "https://app.test%2Fcb",
            "https://app.test/cb@evil.test",
            "https://app.test.evil.test/cb",
            "http://app.test/cb",
            "https://app.test:443/cb",
            "https://app.test/cb/..;/admin",
            "https://app.test%40evil.test/cb",
            "https://app.test./cb",
        ] {
            assert!(!matches(REGISTERED, v), "{v}");
        }
    }

    /// Security checklist R2: only the port of a loopback URI may vary.
    #[test]
    fn loopback_port_may_vary() {
        let reg = "http://127.0.0.1/cb";
        assert!(matches(reg, "http://127.0.0.1:53123/cb"));
        assert!(!matches(reg, "http://127.0.0.1:53123/cb?x=1"));
        assert!(!matches(reg, "http://localhost:53123/cb"));
        assert!(!matches(reg, "http://127.0.0.1:/cb"));
        // Not a port, or not spelled one way (issue 16).
        for bad in [":0", ":65536", ":00080", ":080", ":99999"] {
            assert!(!matches(reg, &format!("http://127.0.0.1{bad}/cb")), "{bad}");
        }
        assert!(matches(reg, "http://127.0.0.1:65535/cb"));
        assert!(matches(reg, "http://127.0.0.1:1/cb"));
        assert!(!matches(reg, "http://127.0.0.1:53123@evil.test/cb"));
        assert!(!matches(reg, "http://127.0.0.1.evil.test/cb"));
        assert!(matches("http://[::1]:8080/cb", "http://[::1]:9090/cb"));
        assert!(!matches(
            "https://127.0.0.1/cb",
            "https://127.0.0.1:8443/cb"
        ));
    }

    #[test]
    fn find_match_picks_the_registered_string() {
        let regs = vec![
            "https://a.test/cb".to_owned(),
            "http://127.0.0.1/cb".to_owned(),
        ];
        assert_eq!(
            find_match(&regs, "http://127.0.0.1:9/cb"),
            Some("http://127.0.0.1/cb")
        );
        assert_eq!(find_match(&regs, "https://a.test/cb2"), None);
    }
}

/// Why a callback URL cannot be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("the callback URL is not an absolute URL")]
    NotAbsolute,
    #[error("the callback URL must not have a fragment")]
    Fragment,
    #[error("the callback URL must not contain user information")]
    UserInfo,
    #[error(
        "the callback URL must use https (http is allowed only for 127.0.0.1, [::1] and localhost)"
    )]
    InsecureScheme,
    #[error("the callback URL uses a forbidden scheme")]
    ForbiddenScheme,
    #[error("the callback URL is too long or contains spaces or control characters")]
    Malformed,
}

/// Registration-time checks (security checklist R5, OAuth 2.1 §2.3.1): absolute, no
/// fragment, no userinfo, https except loopback, or a private-use scheme (`com.example:/cb`,
/// RFC 8252 §7.1); never `javascript:`, `data:` or wildcards.
pub fn validate_registration(uri: &str) -> Result<(), RegistrationError> {
    if uri.len() > 2000 || uri.bytes().any(|b| b <= b' ' || b == 0x7f) || uri.contains('*') {
        return Err(RegistrationError::Malformed);
    }
    let url = url::Url::parse(uri).map_err(|_| RegistrationError::NotAbsolute)?;
    if uri.contains('#') {
        return Err(RegistrationError::Fragment);
    }
    if !url.username().is_empty() || url.password().is_some() || uri.contains('@') {
        return Err(RegistrationError::UserInfo);
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host_str() {
            Some("127.0.0.1" | "[::1]" | "localhost") => Ok(()),
            _ => Err(RegistrationError::InsecureScheme),
        },
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws" | "wss" => {
            Err(RegistrationError::ForbiddenScheme)
        }
        // Private-use URI schemes are reverse domain names (RFC 8252 §7.1).
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(RegistrationError::ForbiddenScheme),
    }
}

#[cfg(test)]
mod registration_tests {
    use super::*;

    #[test]
    fn good_callbacks_register() {
        for ok in [
            "https://app.test/cb",
            "https://app.test/cb?tenant=1",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost:3000/callback",
            "com.example.app:/oauth",
        ] {
            assert_eq!(validate_registration(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn bad_callbacks_are_refused() {
        for bad in [
            "/relative",
            "https://app.test/cb#frag",
            "https://user:pw@app.test/cb",
            "https://app.test/cb@evil.test",
            "http://app.test/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://*.app.test/cb",
            "https://app.test/c b",
            "https://app.test/\ncb",
            "myapp:/cb",
        ] {
            assert!(validate_registration(bad).is_err(), "{bad}");
        }
    }
}
