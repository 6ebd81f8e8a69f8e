//! Tests of the traffic module: the OpenMetrics conformance suite, the text
//! format as Prometheus reads it, selectors, and property tests (`fuzz`).

mod fuzz;
mod openmetrics;
mod selector;
mod suite;
mod text;
