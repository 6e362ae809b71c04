//! What a password must be (issue 16): long enough, not the account's email or its local
//! part, and not one of the common passwords shipped in `common_passwords.txt`. Changing a
//! password to the one in use is refused where the current one is known
//! (`AccountService::change_password`).

/// Passwords shorter than this (in characters) are refused.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longer ones (in bytes) are refused: argon2 would still hash them, but no one types them.
pub const MAX_PASSWORD_BYTES: usize = 1024;

const COMMON: &str = include_str!("common_passwords.txt");

/// Why `password` may not be used by the account with `email`, in words for the user.
pub fn problem(password: &str, email: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_BYTES {
        return Some(format!(
            "password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_BYTES} characters"
        ));
    }
    let lowered = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lowered == email || (!local.is_empty() && lowered == local) {
        return Some("password must not be your email address".to_owned());
    }
    if is_common(&lowered) {
        return Some("password is too common; choose one that is harder to guess".to_owned());
    }
    None
}

fn is_common(lowered: &str) -> bool {
    COMMON
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|common| common == lowered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        let email = "Alice.Example@example.com";
        for (password, reason) in [
            ("short", "8 to 1024"),
            ("alice.example@example.com", "email"),
            ("ALICE.EXAMPLE", "email"),
            ("Password123", "too common"),
            ("qwertyuiop", "too common"),
        ] {
            let found = problem(password, email).unwrap_or_default();
            assert!(found.contains(reason), "{password}: {found:?}");
        }
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(problem(&long, email).is_some());
        assert_eq!(problem("correct horse battery staple", email), None);
        assert_eq!(problem("alice-demo-password", email), None);
    }

    #[test]
    fn the_list_is_of_lowercase_passwords_long_enough_to_matter() {
        for line in COMMON
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            assert_eq!(line, line.to_lowercase(), "{line}");
            assert!(line.chars().count() >= MIN_PASSWORD_LEN, "{line}");
        }
    }
}
