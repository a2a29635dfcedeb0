//! Settings from environment variables.

use std::time::Duration;

use url::Url;

pub const TABLE_NAME: &str = "TABLE_NAME";
pub const PLATFORM_SECRET_ID: &str = "PLATFORM_SECRET_ID";
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

/// The process's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// DynamoDB table name.
    pub table_name: String,
    /// Secrets Manager secret name or ARN of the platform secret.
    pub platform_secret_id: String,
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

        let dfns_base_url = match non_empty(DFNS_BASE_URL) {
            None => Url::parse(DEFAULT_DFNS_BASE_URL).expect("default URL parses"),
            Some(raw) => {
                let url = Url::parse(raw.trim()).map_err(|e| ConfigError::Invalid {
                    name: DFNS_BASE_URL,
                    reason: e.to_string(),
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(ConfigError::Invalid {
                        name: DFNS_BASE_URL,
                        reason: "must be an http(s) URL with a host".into(),
                    });
                }
                url
            }
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
            platform_secret_id: required(PLATFORM_SECRET_ID)?.trim().to_owned(),
            dfns_base_url,
            secret_refresh,
        })
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
        let s = settings(&[("TABLE_NAME", "t"), ("PLATFORM_SECRET_ID", "platform")]).unwrap();
        assert_eq!(s.table_name, "t");
        assert_eq!(s.platform_secret_id, "platform");
        assert_eq!(s.dfns_base_url.as_str(), "https://api.dfns.io/");
        assert_eq!(s.secret_refresh, Duration::from_secs(300));
    }

    #[test]
    fn explicit_values_are_used() {
        let s = settings(&[
            ("TABLE_NAME", "t"),
            (
                "PLATFORM_SECRET_ID",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:platform-AbCdEf",
            ),
            ("DFNS_BASE_URL", "http://127.0.0.1:4100"),
            ("SECRET_REFRESH_SECONDS", "30"),
        ])
        .unwrap();
        assert_eq!(s.dfns_base_url.as_str(), "http://127.0.0.1:4100/");
        assert_eq!(s.secret_refresh, Duration::from_secs(30));
        assert!(s.platform_secret_id.starts_with("arn:aws:secretsmanager:"));
    }

    #[test]
    fn missing_and_invalid_settings_are_named() {
        assert_eq!(
            settings(&[("PLATFORM_SECRET_ID", "p")]),
            Err(ConfigError::Missing { name: TABLE_NAME })
        );
        assert_eq!(
            settings(&[("TABLE_NAME", "t"), ("PLATFORM_SECRET_ID", " ")]),
            Err(ConfigError::Missing {
                name: PLATFORM_SECRET_ID
            })
        );
        let base = [("TABLE_NAME", "t"), ("PLATFORM_SECRET_ID", "p")];
        for (name, value) in [
            (DFNS_BASE_URL, "not a url"),
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
