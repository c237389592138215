//! How values look on the pages: ages, times, counts, JSON, state badges, query strings.

use buzzer_types::{JobState, RawValue};
use jiff::Timestamp;
use maud::{Markup, html};

/// A duration in milliseconds as its two largest units: `850ms`, `42s`, `4m 12s`, `3h 5m`,
/// `2d 4h`.
pub(crate) fn age_ms(ms: u64) -> String {
    let s = ms / 1000;
    let two = |big: u64, unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit} {small}{small_unit}")
        }
    };
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{s}s"),
        60..3600 => two(s / 60, "m", s % 60, "s"),
        3600..86400 => two(s / 3600, "h", s % 3600 / 60, "m"),
        _ => two(s / 86400, "d", s % 86400 / 3600, "h"),
    }
}

/// The age of the oldest waiting job; a dash when nothing waits.
pub(crate) fn waiting_age(ms: u64) -> String {
    if ms == 0 { "—".into() } else { age_ms(ms) }
}

/// `3m 4s ago` or `in 12s`.
pub(crate) fn relative(at: Timestamp, now: Timestamp) -> String {
    let diff = now.as_millisecond() - at.as_millisecond();
    if diff >= 0 {
        format!("{} ago", age_ms(diff as u64))
    } else {
        format!("in {}", age_ms(diff.unsigned_abs()))
    }
}

/// A `<time>` showing the relative time, with the exact one on hover.
pub(crate) fn time(at: Timestamp, now: Timestamp) -> Markup {
    let exact = at.strftime("%Y-%m-%d %H:%M:%S%.3f UTC").to_string();
    html! {
        time datetime=(at) title=(exact) { (relative(at, now)) }
    }
}

/// `12,345`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// JSON indented for reading; text that does not parse is shown as it is.
pub(crate) fn pretty_json(raw: &RawValue) -> String {
    serde_json::from_str::<serde_json::Value>(raw.get())
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.get().to_owned())
}

pub(crate) fn pretty_value(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

pub(crate) fn state_badge(state: JobState) -> Markup {
    html! { span class={ "badge state-" (state) } { (state) } }
}

/// `?a=1&b=x%20y` from the pairs whose value is set; empty when none is.
pub(crate) fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if let Some(v) = v {
            serializer.append_pair(k, v);
            any = true;
        }
    }
    if any {
        format!("?{}", serializer.finish())
    } else {
        String::new()
    }
}

/// The page of a queue, optionally filtered.
pub(crate) fn queue_url(queue: &str, state: Option<JobState>, tag: Option<&str>) -> String {
    format!(
        "/dashboard/queues/{queue}{}",
        query([("state", state.map(JobState::as_str)), ("tag", tag)])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_use_two_units() {
        assert_eq!(age_ms(850), "850ms");
        assert_eq!(age_ms(42_000), "42s");
        assert_eq!(age_ms(252_000), "4m 12s");
        assert_eq!(age_ms(3 * 3_600_000 + 300_000), "3h 5m");
        assert_eq!(age_ms(2 * 86_400_000 + 4 * 3_600_000), "2d 4h");
        assert_eq!(age_ms(3_600_000), "1h");
        assert_eq!(waiting_age(0), "—");
    }

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn queries_encode_values() {
        assert_eq!(query([("a", None)]), "");
        assert_eq!(
            query([("state", Some("dead")), ("tag", Some("a b&c"))]),
            "?state=dead&tag=a+b%26c"
        );
        assert_eq!(queue_url("q", None, None), "/dashboard/queues/q");
    }
}
