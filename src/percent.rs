//! Percentages the way the configuration takes them and people read them:
//! `99.9%`, `5%`, `0.1%`; never a fraction (`0.999`) and never `5.00%`.

/// A configured fraction (0.999) as written in the configuration: `99.9%`,
/// with the decimals it needs (up to six) and no trailing zeros.
pub fn configured(fraction: f64) -> String {
    format!("{}%", trimmed(fraction * 100.0, 6))
}

/// A measured fraction to two decimals at most: `8.03%`, `12%`; a share
/// that is not zero never shows as `0%`.
pub fn measured(fraction: f64) -> String {
    let pct = fraction * 100.0;
    if pct > 0.0 && pct < 0.005 {
        return "<0.01%".to_owned();
    }
    format!("{}%", trimmed(pct, 2))
}

fn trimmed(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_the_configuration_writes_them() {
        assert_eq!(configured(0.999), "99.9%");
        assert_eq!(configured(0.05), "5%");
        assert_eq!(configured(0.001), "0.1%");
        assert_eq!(configured(0.99995), "99.995%");
        assert_eq!(configured(1.0), "100%");
        assert_eq!(measured(0.080_312), "8.03%");
        assert_eq!(measured(0.12), "12%");
        assert_eq!(measured(0.0), "0%");
        assert_eq!(measured(0.000_01), "<0.01%");
        assert_eq!(measured(1.0), "100%");
    }
}
