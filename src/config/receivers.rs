//! The receivers' sections (`page`: PagerDuty, Alertmanager, Slack, the
//! notification webhook; `annotate.grafana`), each checked with its path.

use serde_json::Value;

use super::error::{self, Problems};
use super::raw::{
    self, RawAlertmanager, RawGrafana, RawNotifyWebhook, RawPage, RawPagerDuty, RawSlack,
};
use super::types::{
    Alertmanager, Grafana, NotifyWebhook, Page, PagerDuty, Secret, SecretUrl, Slack,
};
use super::units::{self, Zero};
use super::validate::DEFAULT_WEBHOOK_TIMEOUT;
use super::{targets, values};
use std::time::Duration;

const DEFAULT_PAGERDUTY_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Prometheus re-sends firing alerts every minute; so does backstop.
const DEFAULT_RESEND: Duration = Duration::from_secs(60);

pub(super) fn grafana(p: &mut Problems, g: &RawGrafana) -> Option<Grafana> {
    let path = "annotate.grafana";
    raw::check_unknown(p, path, g);
    let url_path = error::key(path, "url");
    let url =
        values::required(p, &url_path, &g.url).and_then(|v| values::http_url(p, &url_path, v));
    let token = match &g.token_file {
        None => Some(None),
        Some(v) => values::secret_file(p, &error::key(path, "token_file"), v).map(Some),
    };
    let max = per_minute(p, path, &g.max_per_minute, 30);
    Some(Grafana {
        url: url?,
        token: token?,
        max_per_minute: max?,
    })
}

/// `max_per_minute` of a receiver: at least 1.
fn per_minute(p: &mut Problems, section: &str, v: &Option<Value>, default: u32) -> Option<u32> {
    match v {
        None => Some(default),
        Some(v) => units::whole(p, &error::key(section, "max_per_minute"), v, 1, 10_000)
            .map(|n| u32::try_from(n).unwrap_or(10_000)),
    }
}

pub(super) fn page(p: &mut Problems, raw: &Option<RawPage>) -> Option<Page> {
    let Some(page) = raw else {
        return Some(Page::default());
    };
    raw::check_unknown(p, "page", page);
    // Both are checked before either can fail, so all problems are reported.
    let pagerduty = page.pagerduty.as_ref().map(|pd| pagerduty(p, pd));
    let alertmanager = page.alertmanager.as_ref().map(|am| alertmanager(p, am));
    let slack = page.slack.as_ref().map(|s| slack(p, s));
    let webhook = page.webhook.as_ref().map(|w| notify_webhook(p, w));
    Some(Page {
        alertmanager: alertmanager.map_or(Some(None), |a| a.map(Some))?,
        pagerduty: pagerduty.map_or(Some(None), |d| d.map(Some))?,
        slack: slack.map_or(Some(None), |s| s.map(Some))?,
        webhook: webhook.map_or(Some(None), |w| w.map(Some))?,
    })
}

fn slack(p: &mut Problems, raw: &RawSlack) -> Option<Slack> {
    let path = "page.slack";
    raw::check_unknown(p, path, raw);
    let url = secret_url(
        p,
        path,
        ("webhook_url_file", &raw.webhook_url_file),
        ("webhook_url", &raw.webhook_url),
    );
    let max = per_minute(p, path, &raw.max_per_minute, 20);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &raw.timeout,
        DEFAULT_WEBHOOK_TIMEOUT,
        Zero::Forbidden,
    );
    Some(Slack {
        url: url?,
        max_per_minute: max?,
        timeout: timeout?,
    })
}

fn notify_webhook(p: &mut Problems, raw: &RawNotifyWebhook) -> Option<NotifyWebhook> {
    let path = "page.webhook";
    raw::check_unknown(p, path, raw);
    let url = secret_url(p, path, ("url_file", &raw.url_file), ("url", &raw.url));
    let headers = targets::headers(p, path, &raw.headers, &raw.header_files);
    let max = per_minute(p, path, &raw.max_per_minute, 30);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &raw.timeout,
        DEFAULT_WEBHOOK_TIMEOUT,
        Zero::Forbidden,
    );
    Some(NotifyWebhook {
        url: url?,
        headers: headers?,
        max_per_minute: max?,
        timeout: timeout?,
    })
}

/// A URL that is a credential, from a file or from the text itself (one
/// of the two); a bad one is described, never shown.
fn secret_url(
    p: &mut Problems,
    section: &str,
    (file_key, file): (&str, &Option<Value>),
    (text_key, text): (&str, &Option<Value>),
) -> Option<SecretUrl> {
    let (at, value) = match (file, text) {
        (Some(f), None) => {
            let at = error::key(section, file_key);
            let secret = values::secret_file(p, &at, f)?;
            (at, secret.expose().to_string())
        }
        (None, Some(v)) => {
            let at = error::key(section, text_key);
            let value = values::secret_text(p, &at, v)?.trim().to_string();
            (at, value)
        }
        (Some(_), Some(_)) => {
            p.add(section, format!("give {file_key} or {text_key}, not both"));
            return None;
        }
        (None, None) => {
            p.add(section, format!("needs {file_key} (or {text_key})"));
            return None;
        }
    };
    match url::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Some(SecretUrl::new(url))
        }
        Ok(url) => {
            p.add(
                &at,
                format!(
                    "must be an http or https URL with a host, not {} (the URL is not shown: it is a secret)",
                    url.scheme()
                ),
            );
            None
        }
        Err(e) => {
            p.add(
                &at,
                format!("is not an absolute URL: {e} (the URL is not shown: it is a secret)"),
            );
            None
        }
    }
}

fn pagerduty(p: &mut Problems, pd: &RawPagerDuty) -> Option<PagerDuty> {
    let path = "page.pagerduty";
    raw::check_unknown(p, path, pd);
    let key = match (&pd.routing_key_file, &pd.routing_key) {
        (Some(file), None) => values::secret_file(p, &error::key(path, "routing_key_file"), file),
        (None, Some(v)) => {
            let at = error::key(path, "routing_key");
            values::secret_text(p, &at, v).and_then(|k| {
                if k.trim().is_empty() {
                    p.add(&at, "must not be empty");
                    None
                } else {
                    Some(Secret::new(k.trim()))
                }
            })
        }
        (Some(_), Some(_)) => {
            p.add(path, "give routing_key_file or routing_key, not both");
            None
        }
        (None, None) => {
            p.add(path, "needs routing_key_file (or routing_key)");
            None
        }
    };
    let url_path = error::key(path, "url");
    let url = match &pd.url {
        Some(v) => values::http_url(p, &url_path, v),
        None => Some(url::Url::parse(DEFAULT_PAGERDUTY_URL).expect("a valid constant URL")),
    };
    let max = per_minute(p, path, &pd.max_per_minute, 60);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &pd.timeout,
        DEFAULT_PAGERDUTY_TIMEOUT,
        Zero::Forbidden,
    );
    Some(PagerDuty {
        routing_key: key?,
        url: url?,
        max_per_minute: max?,
        timeout: timeout?,
    })
}

fn alertmanager(p: &mut Problems, am: &RawAlertmanager) -> Option<Alertmanager> {
    let path = "page.alertmanager";
    raw::check_unknown(p, path, am);
    let url_path = error::key(path, "url");
    let urls = values::required(p, &url_path, &am.url).and_then(|v| {
        let mut urls = Vec::new();
        let mut ok = true;
        for (item_path, item) in values::list_or_one(&url_path, v) {
            match values::http_url(p, &item_path, item) {
                Some(u) => urls.push(u),
                None => ok = false,
            }
        }
        if ok && urls.is_empty() {
            p.add(&url_path, "needs at least one URL");
            ok = false;
        }
        ok.then_some(urls)
    });
    let resend = units::duration_or(
        p,
        &error::key(path, "resend_interval"),
        &am.resend_interval,
        DEFAULT_RESEND,
        Zero::Forbidden,
    );
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &am.timeout,
        DEFAULT_WEBHOOK_TIMEOUT,
        Zero::Forbidden,
    );
    let max = per_minute(p, path, &am.max_per_minute, 30);
    Some(Alertmanager {
        urls: urls?,
        resend: resend?,
        timeout: timeout?,
        max_per_minute: max?,
    })
}
