//! Value parsers of the lab's command lines (`loadgen`, `ingest`, `cargo xtask bench*`), so that
//! every program reads seconds, counts and lists the same way; each fits clap's `value_parser`.

use std::time::Duration;

/// A number of seconds, fractions allowed (`0.5`); zero is allowed, negatives are not.
pub fn seconds(text: &str) -> Result<Duration, String> {
    let secs = text
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| !s.is_nan())
        .ok_or_else(|| format!("expected a number of seconds, got `{text}`"))?;
    if secs < 0.0 {
        return Err(format!("must not be negative, got `{text}`"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{text}`: {e}"))
}

/// Like [`seconds`], but zero is refused too.
pub fn positive_seconds(text: &str) -> Result<Duration, String> {
    match seconds(text)? {
        Duration::ZERO => Err(format!("must be positive, got `{text}`")),
        d => Ok(d),
    }
}

/// A whole number of at least 1.
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected a whole number, got `{text}`")),
    }
}

/// A comma-separated list, each entry read by `entry`; blanks around entries are ignored, and
/// the list must hold at least one.
pub fn list<T>(text: &str, entry: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let items: Vec<T> = text
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(entry)
        .collect::<Result<_, _>>()?;
    if items.is_empty() {
        return Err("needs at least one entry".to_owned());
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_fractions_and_refuse_negatives_and_words() {
        assert_eq!(seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(seconds("0"), Ok(Duration::ZERO));
        assert!(seconds("-1").unwrap_err().contains("negative"));
        assert!(seconds("NaN").unwrap_err().contains("number of seconds"));
        assert!(seconds("soon").unwrap_err().contains("number of seconds"));
        assert!(positive_seconds("0").unwrap_err().contains("positive"));
        assert_eq!(positive_seconds("7"), Ok(Duration::from_secs(7)));
    }

    #[test]
    fn counts_start_at_one() {
        assert_eq!(at_least_one("512"), Ok(512));
        assert!(at_least_one("0").unwrap_err().contains("at least 1"));
        assert!(at_least_one("x").unwrap_err().contains("whole number"));
    }

    #[test]
    fn lists_keep_order_skip_blanks_and_need_an_entry() {
        assert_eq!(list("8, 2,", at_least_one), Ok(vec![8, 2]));
        assert!(list("1,x", at_least_one).unwrap_err().contains("`x`"));
        assert!(
            list(" , ", at_least_one)
                .unwrap_err()
                .contains("at least one entry")
        );
    }
}
