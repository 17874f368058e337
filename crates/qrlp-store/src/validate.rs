//! Input rules shared by the store methods: names, emails, scopes, key prefixes.

use crate::error::StoreError;

/// Longest organization, user and key name, in characters.
pub const MAX_NAME_LEN: usize = 200;
/// Longest email address, in characters.
pub const MAX_EMAIL_LEN: usize = 254;
/// Most scopes on one key.
const MAX_SCOPES: usize = 64;
/// Longest scope, in bytes.
const MAX_SCOPE_LEN: usize = 100;

/// A trimmed, non-empty name of at most [`MAX_NAME_LEN`] characters without control characters.
///
/// # Errors
/// `Invalid("<field>: <reason>")`.
pub fn valid_name(field: &str, value: &str) -> Result<String, StoreError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(StoreError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > MAX_NAME_LEN {
        return Err(StoreError::invalid(field, "must be at most 200 characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_owned())
}

/// The case-insensitive form used by the unique indexes.
pub(crate) fn normalize(value: &str) -> String {
    value.trim().to_lowercase()
}

/// A trimmed email: one `@` with a non-empty local part before it and a domain with a dot
/// inside it after it; no whitespace.
///
/// # Errors
/// `Invalid("email: <reason>")`.
pub fn valid_email(value: &str) -> Result<String, StoreError> {
    let v = value.trim();
    let well_formed = v.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return Err(StoreError::invalid("email", "must be an email address"));
    }
    if v.chars().count() > MAX_EMAIL_LEN {
        return Err(StoreError::invalid(
            "email",
            "must be at most 254 characters",
        ));
    }
    Ok(v.to_owned())
}

pub(crate) fn valid_scopes(scopes: &[String]) -> Result<Vec<String>, StoreError> {
    if scopes.len() > MAX_SCOPES {
        return Err(StoreError::invalid("scopes", "too many scopes"));
    }
    scopes
        .iter()
        .map(|s| {
            let s = s.trim();
            if s.is_empty() || s.len() > MAX_SCOPE_LEN || s.chars().any(char::is_whitespace) {
                Err(StoreError::invalid(
                    "scopes",
                    "each scope must be 1-100 characters without spaces",
                ))
            } else {
                Ok(s.to_owned())
            }
        })
        .collect()
}

pub(crate) fn valid_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.is_empty() || prefix.len() > 32 || !prefix.is_ascii() {
        return Err(StoreError::invalid(
            "prefix",
            "must be 1-32 ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_helpers() {
        assert_eq!(
            valid_email(" A.B@Example.COM ").ok().as_deref(),
            Some("A.B@Example.COM")
        );
        assert!(valid_email("a@b.co").is_ok());
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a b@c.de", "a@b@c.de", "a@.b", "a@b.",
        ] {
            assert!(valid_email(bad).is_err(), "{bad}");
        }
        assert_eq!(valid_name("name", "  Acme  ").ok().as_deref(), Some("Acme"));
        assert!(valid_name("name", &"x".repeat(201)).is_err());
        assert!(valid_name("name", "a\nb").is_err());
        assert_eq!(
            crate::audit::cut_user_agent(&"é".repeat(600))
                .chars()
                .count(),
            512
        );
        assert_eq!(normalize(" ÄBC@x.COM "), "äbc@x.com");
    }
}
