//! Settings from environment variables.

use std::time::Duration;

use url::Url;

pub const TABLE_NAME: &str = "TABLE_NAME";
/// Name or ARN of the signing credential's secret; set only for functions that change things at
/// Dfns.
pub const DFNS_SIGNING_SECRET_ID: &str = "DFNS_SIGNING_SECRET_ID";
/// Name or ARN of the read-only credential's secret.
pub const DFNS_READ_SECRET_ID: &str = "DFNS_READ_SECRET_ID";
/// Name or ARN of the webhook secret; set only for the webhook receiver.
pub const DFNS_WEBHOOK_SECRET_ID: &str = "DFNS_WEBHOOK_SECRET_ID";
pub const DFNS_BASE_URL: &str = "DFNS_BASE_URL";
pub const SECRET_REFRESH_SECONDS: &str = "SECRET_REFRESH_SECONDS";

pub const DEFAULT_DFNS_BASE_URL: &str = "https://api.dfns.io";
pub const DEFAULT_SECRET_REFRESH: Duration = Duration::from_secs(300);

/// A setting is missing or unusable. Names the variable, never echoes a value that might be
/// sensitive beyond what is needed to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is not set")]
    Missing { name: &'static str },
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where each of the platform's secrets is, for those this process was given. A function holds
/// only what its template entry passes it (and IAM lets it read only those).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretIds {
    pub signing: Option<String>,
    pub read_only: Option<String>,
    pub webhook: Option<String>,
}

/// The process's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// DynamoDB table name.
    pub table_name: String,
    /// The secrets this process may read.
    pub secret_ids: SecretIds,
    /// Dfns API base URL (the emulator locally).
    pub dfns_base_url: Url,
    /// How long a fetched secret is used before it is read again.
    pub secret_refresh: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds settings from any variable source (tests pass a map instead of mutating the
    /// process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |name| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name| non_empty(name).ok_or(ConfigError::Missing { name });
        // Set but blank is a deploy mistake, not "this function holds no such secret".
        let secret_id = |name: &'static str| match lookup(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Err(ConfigError::Invalid {
                name,
                reason: "set but empty (unset it if this function does not hold that secret)"
                    .into(),
            }),
            Some(v) => Ok(Some(v.trim().to_owned())),
        };

        let dfns_base_url = match non_empty(DFNS_BASE_URL) {
            None => Url::parse(DEFAULT_DFNS_BASE_URL).expect("default URL parses"),
            Some(raw) => dfns_base_url(raw.trim())?,
        };
        let secret_refresh = match non_empty(SECRET_REFRESH_SECONDS) {
            None => DEFAULT_SECRET_REFRESH,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(secs @ 1..=86_400) => Duration::from_secs(secs),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: SECRET_REFRESH_SECONDS,
                        reason: "must be a whole number of seconds from 1 to 86400".into(),
                    });
                }
            },
        };
        Ok(Self {
            table_name: required(TABLE_NAME)?.trim().to_owned(),
            secret_ids: SecretIds {
                signing: secret_id(DFNS_SIGNING_SECRET_ID)?,
                read_only: secret_id(DFNS_READ_SECRET_ID)?,
                webhook: secret_id(DFNS_WEBHOOK_SECRET_ID)?,
            },
            dfns_base_url,
            secret_refresh,
        })
    }
}

/// The Dfns URL: https, except on the loopback interface (the emulator), so a typo in a deployed
/// stack cannot send bearer tokens and signed requests in clear text.
fn dfns_base_url(raw: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: DFNS_BASE_URL,
        reason: reason.into(),
    };
    let url = Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    let loopback = match url.host() {
        None => return Err(invalid("must be an https URL with a host")),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(invalid(
            "must be https (http only on the loopback interface, for the emulator)",
        )),
        _ => Err(invalid("must be an https URL with a host")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_optional_settings_are_absent() {
        let s = settings(&[("TABLE_NAME", "t")]).unwrap();
        assert_eq!(s.table_name, "t");
        assert_eq!(
            s.secret_ids,
            SecretIds::default(),
            "holds no secret unless given"
        );
        assert_eq!(s.dfns_base_url.as_str(), "https://api.dfns.io/");
        assert_eq!(s.secret_refresh, Duration::from_secs(300));
    }

    #[test]
    fn explicit_values_are_used() {
        let s = settings(&[
            ("TABLE_NAME", "t"),
            (
                "DFNS_SIGNING_SECRET_ID",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:signing-AbCdEf",
            ),
            ("DFNS_READ_SECRET_ID", "read"),
            ("DFNS_WEBHOOK_SECRET_ID", " webhook "),
            ("DFNS_BASE_URL", "http://127.0.0.1:4100"),
            ("SECRET_REFRESH_SECONDS", "30"),
        ])
        .unwrap();
        assert_eq!(s.dfns_base_url.as_str(), "http://127.0.0.1:4100/");
        assert_eq!(s.secret_refresh, Duration::from_secs(30));
        assert!(
            s.secret_ids
                .signing
                .as_deref()
                .unwrap()
                .starts_with("arn:aws:secretsmanager:")
        );
        assert_eq!(s.secret_ids.read_only.as_deref(), Some("read"));
        assert_eq!(s.secret_ids.webhook.as_deref(), Some("webhook"));
    }

    #[test]
    fn dfns_must_be_reached_over_https_except_on_loopback() {
        for ok in [
            "https://api.dfns.io",
            "https://api.uae.dfns.io/",
            "http://127.0.0.1:4100",
            "http://localhost:4100",
            "http://[::1]:4100",
        ] {
            assert!(
                settings(&[("TABLE_NAME", "t"), ("DFNS_BASE_URL", ok)]).is_ok(),
                "{ok}"
            );
        }
        for refused in [
            "http://api.dfns.io",
            "http://10.0.0.5:4100",
            "http://localhost.attacker.example",
            "ftp://example.com",
            "not a url",
        ] {
            assert!(
                matches!(
                    settings(&[("TABLE_NAME", "t"), ("DFNS_BASE_URL", refused)]),
                    Err(ConfigError::Invalid {
                        name: DFNS_BASE_URL,
                        ..
                    })
                ),
                "{refused}"
            );
        }
    }

    #[test]
    fn missing_and_invalid_settings_are_named() {
        assert_eq!(
            settings(&[("DFNS_SIGNING_SECRET_ID", "p")]),
            Err(ConfigError::Missing { name: TABLE_NAME })
        );
        let base = [("TABLE_NAME", "t")];
        for (name, value) in [
            (DFNS_SIGNING_SECRET_ID, " "),
            (DFNS_READ_SECRET_ID, ""),
            (DFNS_WEBHOOK_SECRET_ID, "  "),
            (DFNS_BASE_URL, "ftp://example.com"),
            (SECRET_REFRESH_SECONDS, "0"),
            (SECRET_REFRESH_SECONDS, "-5"),
            (SECRET_REFRESH_SECONDS, "1.5"),
            (SECRET_REFRESH_SECONDS, "86401"),
        ] {
            let mut vars = base.to_vec();
            vars.push((name, value));
            assert!(
                matches!(settings(&vars), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}={value}"
            );
        }
    }
}
