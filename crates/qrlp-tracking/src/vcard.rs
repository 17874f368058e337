//! The business card as a vCard 3.0 (RFC 2426) that phone contact apps import.
//!
//! Text values escape backslash, comma, semicolon and newline (`\\`, `\,`, `\;`, `\n`);
//! lines end with CRLF and are folded at 75 octets (CRLF and one space), never inside a
//! UTF-8 character.

/// The card's fields. Empty optional fields are left out of the vCard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Card {
    /// The organization's display name (`FN`, `ORG` and `N`).
    pub name: String,
    /// Telephone number (`TEL;TYPE=WORK,VOICE`).
    pub phone: Option<String>,
    /// E-mail address (`EMAIL;TYPE=INTERNET,WORK`).
    pub email: Option<String>,
    /// Web site (`URL`).
    pub website: Option<String>,
    /// Postal address, free text; lines become the street component of `ADR` and the
    /// `LABEL` keeps them as written.
    pub address: Option<String>,
}

/// Escapes a text value (RFC 2426 section 4: `\\`, `\,`, `\;`, `\n`; CR dropped).
///
/// ```
/// assert_eq!(qrlp_tracking::vcard::escape("a,b;c\\d\r\ne"), "a\\,b\\;c\\\\d\\ne");
/// ```
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds one content line at 75 octets and ends it with CRLF.
fn push_folded(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

impl Card {
    /// The vCard text.
    ///
    /// ```
    /// use qrlp_tracking::vcard::Card;
    /// let card = Card { name: "Acme, Inc.".into(), phone: Some("+1 555 0100".into()), ..Card::default() };
    /// let v = card.to_vcard();
    /// assert!(v.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\n"));
    /// assert!(v.contains("\r\nORG:Acme\\, Inc.\r\n"));
    /// assert!(v.ends_with("END:VCARD\r\n"));
    /// ```
    pub fn to_vcard(&self) -> String {
        let mut out = String::with_capacity(256);
        let name = escape(self.name.trim());
        push_folded(&mut out, "BEGIN:VCARD");
        push_folded(&mut out, "VERSION:3.0");
        // N is required in 3.0; for an organization the family-name component holds it.
        push_folded(&mut out, &format!("N:{name};;;;"));
        push_folded(&mut out, &format!("FN:{name}"));
        push_folded(&mut out, &format!("ORG:{name}"));
        let set = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(escape)
        };
        if let Some(phone) = set(&self.phone) {
            push_folded(&mut out, &format!("TEL;TYPE=WORK,VOICE:{phone}"));
        }
        if let Some(email) = set(&self.email) {
            push_folded(&mut out, &format!("EMAIL;TYPE=INTERNET,WORK:{email}"));
        }
        if let Some(url) = set(&self.website) {
            push_folded(&mut out, &format!("URL:{url}"));
        }
        if let Some(address) = set(&self.address) {
            // ADR: post office box; extended; street; locality; region; postal code; country.
            push_folded(&mut out, &format!("ADR;TYPE=WORK:;;{address};;;;"));
            push_folded(&mut out, &format!("LABEL;TYPE=WORK:{address}"));
        }
        push_folded(&mut out, "END:VCARD");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_card() {
        let card = Card {
            name: "Café; Bar, \\ Grill".into(),
            phone: Some("+33 1 23 45 67 89".into()),
            email: Some("hello@example.com".into()),
            website: Some("https://example.com/a,b".into()),
            address: Some("1 Rue de la Paix\n75002 Paris; France".into()),
        };
        let v = card.to_vcard();
        assert!(v.contains("FN:Café\\; Bar\\, \\\\ Grill\r\n"), "{v}");
        assert!(v.contains("URL:https://example.com/a\\,b\r\n"), "{v}");
        assert!(
            v.contains("ADR;TYPE=WORK:;;1 Rue de la Paix\\n75002 Paris\\; France;;;;\r\n"),
            "{v}"
        );
        assert!(!v.contains("\n\n"));
        for line in v.split("\r\n") {
            assert!(line.len() <= 75, "{line}");
        }
    }

    #[test]
    fn long_lines_fold_on_character_boundaries() {
        let card = Card {
            name: "é".repeat(100),
            ..Card::default()
        };
        let v = card.to_vcard();
        let unfolded = v.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("FN:{}\r\n", "é".repeat(100))));
        for line in v.split("\r\n") {
            assert!(line.len() <= 75, "{line}");
        }
    }

    #[test]
    fn empty_fields_are_left_out() {
        let v = Card {
            name: "X".into(),
            phone: Some("  ".into()),
            ..Card::default()
        }
        .to_vcard();
        assert!(!v.contains("TEL"));
        assert_eq!(v.matches("\r\n").count(), 6);
    }
}
