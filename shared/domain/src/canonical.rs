//! Canonical JSON: one byte sequence per JSON value, so that hashing is reproducible.
//!
//! Object keys sorted by their UTF-8 bytes at every depth, no insignificant whitespace, strings
//! escaped as `serde_json` escapes them, numbers as `serde_json` prints them. (This is the shape
//! of RFC 8785 without its float normalisation; our events carry amounts as strings, not floats.)
//! The order is imposed here rather than relying on `serde_json::Map` being a `BTreeMap`, because
//! any crate in the build enabling serde_json's `preserve_order` feature would silently change it.

use serde_json::Value;

/// The canonical serialisation of `value`.
pub fn to_canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(val, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Null, booleans and numbers have a single serde_json rendering already.
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    // Serialising a &str to JSON cannot fail.
    out.push_str(&serde_json::to_string(s).expect("string serialises"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_at_every_depth_without_whitespace() {
        let value = json!({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "c": "é\n\""}});
        assert_eq!(
            to_canonical_json(&value),
            r#"{"a":{"c":"é\n\"","z":[3,{"x":null,"y":true}]},"b":1}"#
        );
    }

    #[test]
    fn same_value_same_bytes_regardless_of_input_order() {
        let one: Value =
            serde_json::from_str(r#"{ "x": 1, "y": [1, 2], "w": {"b": 0, "a": 0} }"#).unwrap();
        let two: Value = serde_json::from_str(r#"{"w":{"a":0,"b":0},"y":[1,2],"x":1}"#).unwrap();
        assert_eq!(to_canonical_json(&one), to_canonical_json(&two));
    }

    #[test]
    fn sorting_is_by_bytes() {
        let value = json!({"a": 1, "B": 2, "_": 3, "aa": 4});
        assert_eq!(to_canonical_json(&value), r#"{"B":2,"_":3,"a":1,"aa":4}"#);
    }
}
