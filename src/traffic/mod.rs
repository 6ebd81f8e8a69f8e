//! Real traffic, first layer: reading an app's own `/metrics`. This module
//! owns the exposition parsers (OpenMetrics 1.0 strictly, Prometheus text
//! 0.0.4 as Prometheus reads it) and the PromQL selectors that pick the
//! request, error and latency series out of a scrape, and the counting
//! (`count`: per-series state, what each scrape adds for the windows) and
//! `histogram_quantile` that turn them into SLIs.
//!
//! ```
//! use backstop::traffic::{Format, Selector, parse};
//!
//! let body = b"# TYPE http_requests_total counter\n\
//!              http_requests_total{code=\"200\"} 1027\n\
//!              http_requests_total{code=\"503\"} 3\n";
//! let scrape = parse(body, Format::Text).unwrap();
//! let errors = Selector::parse(r#"http_requests_total{code=~"5.."}"#).unwrap();
//! let sum: f64 = scrape.select(&errors).map(|s| s.value).sum();
//! assert_eq!(sum, 3.0);
//! ```

mod count;
mod exposition;
mod lex;
mod openmetrics;
mod quantile;
mod selector;
mod text;

#[cfg(test)]
mod tests;

pub use count::{Counter, Deltas, MAX_SERIES, TooManySeries};
pub use exposition::{
    ErrorKind, Exposition, Family, Format, Label, MetricType, ParseError, Role, Sample, parse,
};
pub use quantile::histogram_quantile;
pub use selector::{MatchOp, Matcher, Selector, SelectorError};
