//! The reading routes' query parameters, as typed values that refuse exactly what their JSON
//! Schema (in the OpenAPI document) refuses: a value the document allows always parses, and one it
//! does not is a 400.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

use super::activity::{Cursor, InvalidCursor};
use super::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// `limit`: a page size from 1 to [`MAX_PAGE_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(usize);

impl PageLimit {
    pub fn get(limit: Option<PageLimit>) -> usize {
        limit.map_or(DEFAULT_PAGE_SIZE, |l| l.0)
    }
}

impl TryFrom<u32> for PageLimit {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        let n = n as usize;
        if (1..=MAX_PAGE_SIZE).contains(&n) {
            Ok(PageLimit(n))
        } else {
            Err(format!(
                "limit must be a whole number from 1 to {MAX_PAGE_SIZE}"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for PageLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        // Digits only: `+5` or ` 5` are not the integers the document promises.
        let n = Some(text.as_ref())
            .filter(|t| !t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
            .unwrap_or(0);
        PageLimit::try_from(n).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for PageLimit {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "PageLimit".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_PAGE_SIZE,
            "default": DEFAULT_PAGE_SIZE,
            "description": "page size"
        })
    }
}

/// The activity cursor: a previous page's `nextCursor` (lowercase hex of `<nanos>|<row id>`,
/// printable ASCII).
pub const ACTIVITY_CURSOR_PATTERN: &str = "^(3[0-9]){1,20}7c([2-6][0-9a-f]|7[0-9a-e]){1,200}$";

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Cursor::decode(&text).map_err(|InvalidCursor| serde::de::Error::custom("invalid cursor"))
    }
}

impl JsonSchema for Cursor {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ActivityCursor".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": ACTIVITY_CURSOR_PATTERN,
            "description": "the previous page's nextCursor"
        })
    }
}

/// The audit cursor: the last sequence number served, 1 to 19 decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor(pub u64);

impl AuditCursor {
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(AuditCursor)
    }
}

impl<'de> Deserialize<'de> for AuditCursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        AuditCursor::parse(&text).ok_or_else(|| serde::de::Error::custom("invalid cursor"))
    }
}

impl JsonSchema for AuditCursor {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "AuditCursor".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]{1,19}$",
            "description": "the previous page's nextCursor"
        })
    }
}

/// The notifications cursor: a notification id (a ULID, in its canonical upper case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationCursor(pub String);

/// Crockford base32 as ULIDs write it: upper case, no I, L, O or U; the first character at most 7.
pub const ULID_PATTERN: &str = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$";

/// Whether `text` is a ULID as [`ULID_PATTERN`] writes it.
pub fn is_canonical_ulid(text: &str) -> bool {
    let crockford = |b: &u8| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(b));
    let bytes = text.as_bytes();
    bytes.len() == 26 && (b'0'..=b'7').contains(&bytes[0]) && bytes.iter().all(crockford)
}

impl NotificationCursor {
    pub fn parse(text: &str) -> Option<Self> {
        is_canonical_ulid(text).then(|| NotificationCursor(text.to_owned()))
    }
}

impl<'de> Deserialize<'de> for NotificationCursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        NotificationCursor::parse(&text).ok_or_else(|| serde::de::Error::custom("invalid cursor"))
    }
}

impl JsonSchema for NotificationCursor {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "NotificationCursor".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": ULID_PATTERN,
            "description": "the previous page's nextCursor"
        })
    }
}

/// `GET /v1/audit` and `GET /v1/notifications`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery<C> {
    /// Page size (default 50).
    pub limit: Option<PageLimit>,
    /// The previous page's `nextCursor`.
    pub cursor: Option<C>,
}

/// `GET /v1/activity`'s export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A page of JSON (default).
    #[default]
    Json,
    /// RFC 4180 CSV: everything unless `limit` or `cursor` pages it.
    Csv,
}

/// `GET /v1/activity`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    /// Page size (default 50).
    pub limit: Option<PageLimit>,
    /// The previous page's `nextCursor`.
    pub cursor: Option<Cursor>,
    /// `json` (default) or `csv`.
    pub format: Option<Format>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_numbers_from_1_to_the_maximum() {
        let parse = |t: &str| serde_json::from_value::<PageLimit>(serde_json::json!(t));
        assert_eq!(parse("1").unwrap(), PageLimit(1));
        assert_eq!(parse("200").unwrap(), PageLimit(200));
        for bad in ["", "0", "201", "+5", " 5", "5.0", "abc", "0001"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn audit_cursors_are_1_to_19_digits() {
        assert_eq!(AuditCursor::parse("42"), Some(AuditCursor(42)));
        assert_eq!(
            AuditCursor::parse("9999999999999999999"),
            Some(AuditCursor(9_999_999_999_999_999_999))
        );
        for bad in ["", "+42", "x", "00000000000000000001"] {
            assert_eq!(AuditCursor::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn notification_cursors_are_canonical_ulids() {
        let id = ulid::Ulid::new().to_string();
        assert!(NotificationCursor::parse(&id).is_some());
        assert!(
            NotificationCursor::parse(&id.to_lowercase()).is_none(),
            "lower case is another cursor"
        );
        assert!(
            NotificationCursor::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ").is_none(),
            "overflows 128 bits"
        );
        assert!(NotificationCursor::parse("0123456789ABCDEFGHJKMNPQRI").is_none());
    }
}
