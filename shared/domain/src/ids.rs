//! Identifiers: ours (ULIDs) and the ones other systems hand us (JWT subjects, Dfns ids).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} contains a character that is not allowed at position {position}")]
    InvalidCharacter { kind: &'static str, position: usize },
    #[error("{kind} must start with `{prefix}`")]
    MissingPrefix {
        kind: &'static str,
        prefix: &'static str,
    },
    #[error("{kind} is not a valid ULID")]
    NotUlid { kind: &'static str },
}

/// Implements `Display`, `FromStr`, `AsRef<str>` and string serde for a newtype over `String`
/// whose only constructor is `parse`.
macro_rules! string_id {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// The platform's client: the `sub` of the verified identity token.
///
/// Cognito subjects are UUIDs, Auth0 ones look like `auth0|5f7c…` or `google-oauth2|1234`. We accept
/// 1..=128 characters from `[A-Za-z0-9._:@|+-]`: enough for every OIDC provider we target, and free
/// of `#` (our DynamoDB key separator), `,` (Dfns tag lists) and whitespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        const KIND: &str = "client id";
        if raw.is_empty() {
            return Err(IdError::Empty { kind: KIND });
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(IdError::TooLong {
                kind: KIND,
                max: Self::MAX_LEN,
            });
        }
        if let Some(position) = raw
            .chars()
            .position(|c| !(c.is_ascii_alphanumeric() || "._:@|+-".contains(c)))
        {
            return Err(IdError::InvalidCharacter {
                kind: KIND,
                position,
            });
        }
        Ok(Self(raw.to_owned()))
    }

    /// The Dfns wallet tag that binds this client's wallets to its policies.
    pub fn wallet_tag(&self) -> String {
        format!("client:{}", self.0)
    }
}
string_id!(ClientId);

/// A Dfns wallet id: `wa-` followed by lowercase base36 groups separated by dashes
/// (e.g. `wa-5pfuu-9euek-h0odgb6snva8ph3k`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalletId(String);

impl WalletId {
    pub const PREFIX: &'static str = "wa-";
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        const KIND: &str = "wallet id";
        if raw.is_empty() {
            return Err(IdError::Empty { kind: KIND });
        }
        if raw.len() > Self::MAX_LEN {
            return Err(IdError::TooLong {
                kind: KIND,
                max: Self::MAX_LEN,
            });
        }
        let Some(rest) = raw.strip_prefix(Self::PREFIX) else {
            return Err(IdError::MissingPrefix {
                kind: KIND,
                prefix: Self::PREFIX,
            });
        };
        let valid_groups = !rest.is_empty()
            && rest.split('-').all(|group| {
                !group.is_empty()
                    && group
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !valid_groups {
            let position = Self::PREFIX.len()
                + rest
                    .char_indices()
                    .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                    .map(|(i, _)| i)
                    .unwrap_or(0);
            return Err(IdError::InvalidCharacter {
                kind: KIND,
                position,
            });
        }
        Ok(Self(raw.to_owned()))
    }
}
string_id!(WalletId);

/// Implements a ULID-backed identifier: time-ordered, so sort keys built from it list oldest first.
macro_rules! ulid_id {
    ($name:ident, $kind:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(ulid::Ulid);

        impl $name {
            /// A fresh id (time-ordered, random low bits).
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(ulid::Ulid::new())
            }

            pub fn from_ulid(ulid: ulid::Ulid) -> Self {
                Self(ulid)
            }

            pub fn parse(raw: &str) -> Result<Self, IdError> {
                if raw.is_empty() {
                    return Err(IdError::Empty { kind: $kind });
                }
                ulid::Ulid::from_string(raw)
                    .map(Self)
                    .map_err(|_| IdError::NotUlid { kind: $kind })
            }

            pub fn ulid(&self) -> ulid::Ulid {
                self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

ulid_id!(DestinationRequestId, "destination request id");
ulid_id!(OrderId, "order id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_from_common_providers_parse() {
        for sub in [
            "3f1c2b9e-8d7a-4c1b-9e2f-0a1b2c3d4e5f",
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "google-oauth2|103547991597142817347",
            "alice",
        ] {
            assert_eq!(ClientId::parse(sub).unwrap().as_str(), sub);
        }
    }

    #[test]
    fn client_id_rejects_empty_long_and_separator_characters() {
        assert_eq!(
            ClientId::parse(""),
            Err(IdError::Empty { kind: "client id" })
        );
        assert!(matches!(
            ClientId::parse(&"a".repeat(129)),
            Err(IdError::TooLong { .. })
        ));
        assert!(ClientId::parse(&"a".repeat(128)).is_ok());
        for bad in ["a#b", "a b", "a,b", "a/b", "é"] {
            assert!(
                matches!(ClientId::parse(bad), Err(IdError::InvalidCharacter { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn client_id_wallet_tag() {
        assert_eq!(ClientId::parse("c-42").unwrap().wallet_tag(), "client:c-42");
    }

    #[test]
    fn wallet_id_shape() {
        assert!(WalletId::parse("wa-5pfuu-9euek-h0odgb6snva8ph3k").is_ok());
        assert!(matches!(
            WalletId::parse("xfr-5pfuu-9euek-h0odgb6snva8ph3k"),
            Err(IdError::MissingPrefix { .. })
        ));
        for bad in ["wa-", "wa-ABC", "wa-abc--def", "wa-abc-", "wa-ab c"] {
            assert!(
                matches!(WalletId::parse(bad), Err(IdError::InvalidCharacter { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn ulid_ids_round_trip_through_json() {
        let id = OrderId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<OrderId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<OrderId>("\"not-a-ulid\"").is_err());
    }

    #[test]
    fn ids_deserialize_through_parse() {
        assert!(serde_json::from_str::<ClientId>("\"a b\"").is_err());
        assert_eq!(
            serde_json::from_str::<ClientId>("\"alice\"")
                .unwrap()
                .as_str(),
            "alice"
        );
    }
}
