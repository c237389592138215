//! Subscription filters: a JSON object of payload field → expected value.
//!
//! An event is delivered when **every** entry matches: the payload has the field and its value
//! equals the expected one. A key with dots reaches into nested objects (`"customer.tier"`
//! is `payload.customer.tier`); a missing field, or a path through something that is not an
//! object, does not match. Equality is JSON equality, except that numbers compare by value
//! (`1` equals `1.0`). An empty filter matches everything.
//!
//! ```
//! use buzzer_types::filter_matches;
//! use serde_json::json;
//!
//! let filter = json!({"status": "paid", "customer.tier": "gold"});
//! let filter = filter.as_object().unwrap();
//! assert!(filter_matches(filter, &json!({"status": "paid", "customer": {"tier": "gold"}})));
//! assert!(!filter_matches(filter, &json!({"status": "paid", "customer": {"tier": "free"}})));
//! assert!(!filter_matches(filter, &json!({"status": "paid"})));
//! ```

use serde_json::{Map, Value};

use crate::Invalid;

/// The most entries one filter may hold.
pub const FILTER_MAX_ENTRIES: usize = 32;

/// Whether `payload` has every field of `filter` with the expected value.
pub fn filter_matches(filter: &Map<String, Value>, payload: &Value) -> bool {
    filter
        .iter()
        .all(|(path, expected)| lookup(payload, path).is_some_and(|v| json_eq(v, expected)))
}

fn lookup<'a>(payload: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(payload, |value, key| value.as_object()?.get(key))
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Checks a filter's shape: at most [`FILTER_MAX_ENTRIES`] entries, each key a dotted path
/// of non-empty names. `field` is where the filter sits in the request (`filter`).
pub fn validate_filter(field: &str, filter: &Map<String, Value>) -> Result<(), Invalid> {
    if filter.len() > FILTER_MAX_ENTRIES {
        return Err(Invalid::new(
            field,
            format!("at most {FILTER_MAX_ENTRIES} entries"),
        ));
    }
    for key in filter.keys() {
        if key.split('.').any(str::is_empty) {
            return Err(Invalid::new(
                format!("{field}.{key}"),
                "must be a field name or a dotted path of field names",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(filter: Value, payload: Value) -> bool {
        filter_matches(filter.as_object().unwrap(), &payload)
    }

    #[test]
    fn every_entry_must_match() {
        let payload = json!({"kind": "order", "total": 30, "customer": {"tier": "gold", "geo": {"cc": "NL"}}});
        assert!(matches(json!({}), payload.clone()));
        assert!(matches(json!({"kind": "order"}), payload.clone()));
        assert!(matches(
            json!({"kind": "order", "customer.geo.cc": "NL"}),
            payload.clone()
        ));
        assert!(!matches(
            json!({"kind": "order", "customer.geo.cc": "DE"}),
            payload.clone()
        ));
        assert!(!matches(json!({"missing": null}), payload.clone()));
        assert!(!matches(json!({"kind.x": "order"}), payload.clone()));
        assert!(matches(json!({"total": 30.0}), payload.clone()));
        assert!(!matches(json!({"total": "30"}), payload.clone()));
        assert!(matches(
            json!({"customer.geo": {"cc": "NL"}}),
            payload.clone()
        ));
        assert!(!matches(json!({"kind": "order"}), json!([1, 2])));
    }

    #[test]
    fn shapes() {
        let ok = json!({"a.b": 1, "c": [1]});
        assert!(validate_filter("filter", ok.as_object().unwrap()).is_ok());
        let bad = json!({"a..b": 1});
        assert_eq!(
            validate_filter("filter", bad.as_object().unwrap())
                .unwrap_err()
                .field,
            "filter.a..b"
        );
        let mut big = Map::new();
        for i in 0..=FILTER_MAX_ENTRIES {
            big.insert(format!("k{i}"), json!(i));
        }
        assert!(validate_filter("filter", &big).is_err());
    }
}
