//! Credentials written into URLs (`https://user:password@host/`) go where
//! the URL points and nowhere else: not into logs, span attributes, links in
//! incidents or configuration errors. Header values and `*_file` contents
//! are kept out by `config::Secret` and sensitive header values instead.

use std::borrow::Cow;

/// What stands in for the credentials in text shown to people.
const HIDDEN: &str = "***";

/// The URL without user name and password, to show or to link to.
pub fn url(url: &url::Url) -> url::Url {
    let mut shown = url.clone();
    // Only URLs that cannot have credentials (`mailto:`) refuse; they have none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown
}

/// URL text as written, which may not even parse, with everything before
/// its last `@` (after `scheme://`, when there is one) hidden. A text that
/// does not parse has no reliable authority to cut, so this may hide more
/// than the credentials (an `@` in a path), never less.
pub fn url_text(text: &str) -> Cow<'_, str> {
    let Some(at) = text.rfind('@') else {
        return Cow::Borrowed(text);
    };
    let start = text.find("://").map_or(0, |i| i + 3);
    if start > at {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("{}{HIDDEN}{}", &text[..start], &text[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_urls_lose_their_credentials() {
        let parsed = |s: &str| url(&url::Url::parse(s).unwrap()).to_string();
        assert_eq!(
            parsed("http://user:pw@127.0.0.1:8080/health?x=1"),
            "http://127.0.0.1:8080/health?x=1"
        );
        assert_eq!(parsed("https://token@grafana/d/x"), "https://grafana/d/x");
        assert_eq!(parsed("http://grafana:3000/"), "http://grafana:3000/");
    }

    #[test]
    fn text_hides_credentials_even_when_it_does_not_parse() {
        assert_eq!(
            url_text("http://user:pw@127.0.0.1:99999/health"),
            "http://***@127.0.0.1:99999/health"
        );
        assert_eq!(url_text("ftp://u:p@w@host/x"), "ftp://***@host/x");
        // No scheme separator: the whole part before the `@` may be credentials.
        assert_eq!(url_text("grafana:pw@127.0.0.1:3000"), "***@127.0.0.1:3000");
        assert_eq!(
            url_text("http://deployer:pw@/rollback"),
            "http://***@/rollback"
        );
        assert_eq!(url_text("http://host/health"), "http://host/health");
        assert_eq!(url_text("a@://b"), "a@://b");
    }
}
