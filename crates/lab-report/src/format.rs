//! Text for the reports: SVG escaping, bar colours, grouped digits and dates.

use std::time::{SystemTime, UNIX_EPOCH};

/// Escapes text for SVG (XML), in element content and in attribute values alike: the five
/// characters XML reserves.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The colour a chart gives series `key`, from `palette`; a dark grey for a key it lacks.
pub fn colour(palette: &[(&str, &'static str)], key: &str) -> &'static str {
    palette
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("#333333", |(_, c)| c)
}

/// `1234567.8` as `1,234,568`; negative values show as `0`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `YYYY-MM-DD` of the day `days` after 1970-01-01 (proleptic Gregorian calendar).
pub fn civil_date(days: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm, with eras of 400 years.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Today's date, `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    civil_date(secs / 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_handles_all_five_xml_characters_and_escapes_ampersands_once() {
        assert_eq!(
            escape(r#"a<b>&"c" 'd'"#),
            "a&lt;b&gt;&amp;&quot;c&quot; &apos;d&apos;"
        );
        assert_eq!(escape("&lt;"), "&amp;lt;", "existing entities are text too");
        assert_eq!(
            escape("leader/followers, 2 threads (ours)"),
            "leader/followers, 2 threads (ours)"
        );
    }

    #[test]
    fn colours_come_from_the_palette_with_a_fallback() {
        let palette = [("reactor", "#d62728"), ("tokio", "#1f77b4")];
        assert_eq!(colour(&palette, "tokio"), "#1f77b4");
        assert_eq!(colour(&palette, "nginx"), "#333333");
    }

    #[test]
    fn thousands_groups_digits_and_rounds() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(-5.0), "0");
    }

    #[test]
    fn civil_dates_across_leap_years_and_centuries() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(11_017), "2000-03-01");
        assert_eq!(civil_date(20_454), "2026-01-01");
        assert_eq!(today().len(), 10);
    }
}
