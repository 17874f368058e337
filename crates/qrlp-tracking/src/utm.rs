//! UTM parameters appended to a target URL at redirect time.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters left as they are in a query value: unreserved ones (RFC 3986).
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The five UTM parameters; `None` or empty ones are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Utm {
    /// `utm_source`.
    pub source: Option<String>,
    /// `utm_medium`.
    pub medium: Option<String>,
    /// `utm_campaign`.
    pub campaign: Option<String>,
    /// `utm_term`.
    pub term: Option<String>,
    /// `utm_content`.
    pub content: Option<String>,
}

impl Utm {
    /// `(name, value)` of the parameters that are set, in the conventional order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("utm_source", &self.source),
            ("utm_medium", &self.medium),
            ("utm_campaign", &self.campaign),
            ("utm_term", &self.term),
            ("utm_content", &self.content),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
    }
}

/// `target` with the UTM parameters of `utm` added to its query. A parameter the target
/// already carries is left as the target has it (the owner wrote it on purpose). A fragment
/// stays last.
///
/// ```
/// use qrlp_tracking::utm::{append, Utm};
/// let utm = Utm { source: Some("qr".into()), campaign: Some("spring sale".into()), ..Utm::default() };
/// assert_eq!(append("https://x.org/a", &utm), "https://x.org/a?utm_source=qr&utm_campaign=spring%20sale");
/// assert_eq!(append("https://x.org/a?b=1#f", &utm), "https://x.org/a?b=1&utm_source=qr&utm_campaign=spring%20sale#f");
/// ```
pub fn append(target: &str, utm: &Utm) -> String {
    let (base, fragment) = match target.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (target, None),
    };
    let existing: Vec<&str> = base
        .split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .map(|p| p.split('=').next().unwrap_or(""))
                .collect()
        })
        .unwrap_or_default();
    let mut out = String::with_capacity(target.len() + 64);
    out.push_str(base);
    let mut sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    for (k, v) in utm.pairs() {
        if existing.contains(&k) {
            continue;
        }
        out.push_str(sep);
        out.push_str(k);
        out.push('=');
        out.extend(utf8_percent_encode(v, VALUE));
        sep = "&";
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        let all = Utm {
            source: Some("newsletter".into()),
            medium: Some("print".into()),
            campaign: Some("a&b=c".into()),
            term: Some("".into()),
            content: Some("é".into()),
        };
        assert_eq!(
            append("https://x.org", &all),
            "https://x.org?utm_source=newsletter&utm_medium=print&utm_campaign=a%26b%3Dc&utm_content=%C3%A9"
        );
        assert_eq!(append("https://x.org/?", &all).matches('?').count(), 1);
        assert_eq!(
            append("https://x.org/?utm_source=own", &all),
            "https://x.org/?utm_source=own&utm_medium=print&utm_campaign=a%26b%3Dc&utm_content=%C3%A9"
        );
        assert_eq!(
            append("https://x.org/p", &Utm::default()),
            "https://x.org/p"
        );
    }
}
