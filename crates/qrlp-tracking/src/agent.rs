//! What a scan's `User-Agent` and `Referer` say, reduced to what analytics keep: a device
//! class, an OS and a browser family (parsed by woothee), whether it is a bot or a link
//! previewer (isbot's list, plus previewers it misses), and the referrer's domain.

use std::fmt;

/// Previewers and scanners the isbot list does not name (lower case, matched as
/// substrings). Messaging apps fetch a link to draw its card; mail security gateways open
/// every link of a message; neither is a person scanning a code.
const EXTRA_PREVIEWERS: &[&str] = &[
    "skypeuripreview",
    "whatsapp/",
    "iframely",
    "embedly",
    "vkshare",
    "bitlybot",
    "ms-office",
    "msoffice",
    "microsoft office",
    "outlook-ios",
    "barracuda",
    "mimecast",
    "proofpoint",
    "google-safety",
    "google-inspectiontool",
    "headlesschrome",
    "phantomjs",
    "slack-imgproxy",
    "linkpreview",
    "link preview",
    "preview/",
];

/// Device class of a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceClass {
    /// Phones.
    Mobile,
    /// Tablets.
    Tablet,
    /// Desktop and laptop computers.
    Desktop,
    /// Game consoles, TVs, other appliances.
    Other,
    /// No user agent, or one that says nothing (or the organization does not keep it).
    Unknown,
}

impl DeviceClass {
    /// The stored and reported name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceClass::Mobile => "mobile",
            DeviceClass::Tablet => "tablet",
            DeviceClass::Desktop => "desktop",
            DeviceClass::Other => "other",
            DeviceClass::Unknown => "unknown",
        }
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's browser, as analytics keep it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Agent {
    /// Phone, tablet, desktop...
    pub device: DeviceClass,
    /// OS family, e.g. `iOS`, `Android`, `Windows 10`; `unknown` when not recognised.
    pub os: String,
    /// Browser family, e.g. `Safari`, `Chrome`; `unknown` when not recognised.
    pub browser: String,
}

impl Agent {
    /// The agent of a scan whose user agent is not known or not kept.
    pub fn unknown() -> Agent {
        Agent {
            device: DeviceClass::Unknown,
            os: "unknown".into(),
            browser: "unknown".into(),
        }
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Visit {
    /// A person's browser: a scan.
    Human(Agent),
    /// A bot or link previewer, by a short name (e.g. `slackbot-linkexpanding`): counted
    /// apart, never a scan.
    Bot(String),
}

/// Classifies user agents. Build it once: it compiles isbot's pattern list.
#[derive(Default)]
pub struct Classifier {
    bots: isbot::Bots,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Classifier")
    }
}

impl Classifier {
    /// Whether `user_agent` is a bot or link previewer.
    pub fn is_bot(&self, user_agent: &str) -> bool {
        if user_agent.is_empty() {
            return false;
        }
        let lower = user_agent.to_ascii_lowercase();
        EXTRA_PREVIEWERS.iter().any(|p| lower.contains(p))
            || self.bots.is_bot(user_agent)
            || woothee::parser::Parser::new()
                .parse(user_agent)
                .is_some_and(|r| r.category == "crawler")
    }

    /// A scan's visitor: bot (with a short name) or a person's agent.
    ///
    /// ```
    /// use qrlp_tracking::agent::{Classifier, DeviceClass, Visit};
    /// let c = Classifier::default();
    /// let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    /// let Visit::Human(a) = c.classify(iphone) else { panic!() };
    /// assert_eq!((a.device, a.os.as_str(), a.browser.as_str()), (DeviceClass::Mobile, "iPhone", "Safari"));
    /// assert!(matches!(c.classify("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"), Visit::Bot(_)));
    /// ```
    pub fn classify(&self, user_agent: &str) -> Visit {
        if self.is_bot(user_agent) {
            return Visit::Bot(bot_name(user_agent));
        }
        if user_agent.trim().is_empty() {
            return Visit::Human(Agent::unknown());
        }
        let Some(r) = woothee::parser::Parser::new().parse(user_agent) else {
            return Visit::Human(Agent::unknown());
        };
        let known = |s: &str| {
            if s.is_empty() || s == woothee::woothee::VALUE_UNKNOWN {
                "unknown".to_string()
            } else {
                s.chars().take(40).collect()
            }
        };
        let lower = user_agent.to_ascii_lowercase();
        let device = match r.category {
            "pc" => DeviceClass::Desktop,
            "smartphone" if r.os == "iPad" => DeviceClass::Tablet,
            "smartphone" if r.os == "Android" && !lower.contains("mobile") => DeviceClass::Tablet,
            "smartphone" | "mobilephone" => DeviceClass::Mobile,
            "appliance" | "misc" => DeviceClass::Other,
            _ => DeviceClass::Unknown,
        };
        Visit::Human(Agent {
            device,
            os: known(r.os),
            browser: known(r.name),
        })
    }
}

/// A short name for a bot: its first product token, lower case, at most 40 characters of
/// `[a-z0-9._-]` (never the whole user agent).
fn bot_name(user_agent: &str) -> String {
    let lower = user_agent.to_ascii_lowercase();
    // "Mozilla/5.0 (compatible; Discordbot/2.0; ...)": the name is inside the comment.
    let source = if lower.starts_with("mozilla/") {
        lower
            .split(['(', ')', ';', ' '])
            .find(|t| t.contains("bot") || t.contains("crawl") || t.contains("spider"))
            .unwrap_or(&lower)
    } else {
        &lower
    };
    let name: String = source
        .split(['/', ' ', ';', '(', ')'])
        .find(|t| !t.is_empty())
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(40)
        .collect();
    if name.is_empty() {
        "bot".into()
    } else {
        name
    }
}

/// The host of a `Referer` header, lower case, without `www.` and port; `None` for anything
/// that is not an http(s) URL with a host.
///
/// ```
/// use qrlp_tracking::agent::referrer_domain;
/// assert_eq!(referrer_domain("https://www.Google.com/search?q=x").as_deref(), Some("google.com"));
/// assert_eq!(referrer_domain("android-app://com.x/"), None);
/// ```
pub fn referrer_domain(referer: &str) -> Option<String> {
    let lower = referer.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        return v6
            .split(']')
            .next()
            .filter(|h| !h.is_empty())
            .map(|h| format!("[{h}]"));
    } else {
        host_port.split(':').next()?
    };
    let host = host.strip_prefix("www.").unwrap_or(host);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const PREVIEWERS: &[&str] = &[
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Slackbot 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        "WhatsApp/2.23.20.0 A",
        "WhatsApp/2.2403.2 i",
        "Twitterbot/1.0",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discord.com)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Mozilla/5.0 (compatible; Applebot/0.1; +http://www.apple.com/go/applebot)",
        "Pinterestbot/1.0 (+http://www.pinterest.com/bot.html)",
        "redditbot/1.0",
        "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
        "Iframely/1.3.1 (+https://iframely.com/docs/about)",
        "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))",
    ];

    #[test]
    fn previewers_and_bots_are_bots() {
        let c = Classifier::default();
        for ua in PREVIEWERS {
            match c.classify(ua) {
                Visit::Bot(name) => assert!(!name.is_empty() && name.len() <= 40, "{ua}: {name}"),
                Visit::Human(a) => panic!("{ua} taken for a person: {a:?}"),
            }
        }
    }

    #[test]
    fn people_are_people() {
        let c = Classifier::default();
        let cases = [
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36", DeviceClass::Mobile, "Android", "Chrome"),
            ("Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1", DeviceClass::Tablet, "iPad", "Safari"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", DeviceClass::Desktop, "Windows 10", "Chrome"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0", DeviceClass::Desktop, "Mac OSX", "Firefox"),
        ];
        for (ua, device, os, browser) in cases {
            let Visit::Human(a) = c.classify(ua) else {
                panic!("{ua} taken for a bot")
            };
            assert_eq!(
                (a.device, a.os.as_str(), a.browser.as_str()),
                (device, os, browser),
                "{ua}"
            );
        }
        assert_eq!(c.classify(""), Visit::Human(Agent::unknown()));
    }

    #[test]
    fn referrers() {
        for (input, want) in [
            ("https://www.example.com/a", Some("example.com")),
            (
                "http://user:pw@Sub.Example.org:8080/x",
                Some("sub.example.org"),
            ),
            ("https://[2001:db8::1]/x", Some("[2001:db8::1]")),
            ("ftp://example.com", None),
            ("https://", None),
            ("https://exa mple.com", None),
            ("", None),
        ] {
            assert_eq!(referrer_domain(input).as_deref(), want, "{input}");
        }
    }
}
