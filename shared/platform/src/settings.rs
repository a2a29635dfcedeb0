//! The platform's deployment settings, on top of `platform-config`'s (table, secrets, Dfns URL).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PLATFORM_NETWORKS` | `EthereumSepolia` | comma-separated Dfns networks; one wallet per client on each |
//! | `WHITELIST_ACTION` | `Block` | `Block` or `RequestApproval`: what the client's whitelist does to a transfer to an unlisted address |
//! | `LIMITS_ACTION` | `WHITELIST_ACTION` | the same for the tier's limit policies |
//! | `COMPLIANCE_APPROVERS` | none | comma-separated Dfns user ids of the compliance officers (needed by `RequestApproval`) |
//! | `COMPLIANCE_QUORUM` | `1` | decisions needed |
//! | `COMPLIANCE_AUTO_REJECT_MINUTES` | `4320` (72 hours) | an approval not decided within this many minutes expires (Dfns auto-rejects it; the client is notified like any decision); `0`: never |
//! | `LIMIT_TIERS` | built in (`standard`, `unlimited`) | JSON `{"<tier>": {"amountLimitUsd"?, "amountVelocity"?: {"limitUsd","timeframeMinutes"}, "countVelocity"?: {"limit","timeframeMinutes"}}}` |
//! | `DEFAULT_TIER` | `standard` | tier of a client not named in `CLIENT_TIERS` |
//! | `CLIENT_TIERS` | none | JSON `{"<clientId>": "<tier>"}` |
//! | `EVENT_BUS_NAME` | `default` | EventBridge bus for client notifications |
//! | `WEBHOOK_TOLERANCE_SECONDS` | `300` | how old (or how far ahead) a webhook's `timestampSent` may be |
//! | `RECONCILE_SUBMITTED_AFTER_SECONDS` | `60` | a request left `Submitted` this long is re-driven by the reconciler |
//! | `DFNS_REQUESTS_PER_MINUTE` | `1000` | this container's share of the org's Dfns rate limit (0 = no client-side limit); a signed call costs 3 |
//! | `DFNS_BURST` | `50` | requests allowed at once before the rate applies |
//! | `MAX_OPEN_DESTINATION_REQUESTS` | `10` | destination requests a client may have open (`CoolingOff`, `Queued`, `Submitted`, `PendingApproval`) at once; beyond it `POST /v1/destination-requests` answers 429 |
//! | `CLIENT_MUTATIONS_PER_MINUTE` | `60` | mutating calls (signup, destination requests, trading authorizations) one client may make per clock minute (0 = no limit); beyond it 429 until the minute ends |
//! | `QUEUED_REQUEST_TTL` | `7d` | how long a destination request may stay `Queued`; the reconciler then cancels it (reason "expired") and tells the client. A number and a unit: `s`, `m`, `h` or `d` |
//! | `RECONCILE_TIME_BUDGET_SECONDS` | `180` | a reconciler run starts no new client after this long (the Lambda timeout is 240 s); the next run resumes with the next client |
//! | `DESTINATION_COOLING_OFF` | `24h` | how long a client's destination `add` waits (`CoolingOff`, vetoable by the client) before it goes to Dfns for compliance; `0` turns it off. A number and a unit (`s`, `m`, `h`, `d`), or `0`. Removals never wait |
//! | `EXCHANGE_COOLING_OFF` | `0` | the same for an exchange's deposit address added through a trading authorization |
//! | `FOUR_EYES_USD` | none (off) | a desk order worth more than this many US dollars (or whose value cannot be determined) needs a second operator's confirmation (`POST /v1/operator/orders/{id}/confirm`) before it is due |

use std::collections::BTreeMap;
use std::time::Duration;

use domain::Network;
use platform_config::{ConfigError, Settings};
use serde::{Deserialize, Serialize};

/// What a triggered client policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyActionSetting {
    Block,
    RequestApproval,
}

impl PolicyActionSetting {
    fn parse(name: &'static str, raw: &str) -> Result<Self, ConfigError> {
        match raw {
            "Block" => Ok(Self::Block),
            "RequestApproval" => Ok(Self::RequestApproval),
            _ => Err(ConfigError::Invalid {
                name,
                reason: "must be Block or RequestApproval".into(),
            }),
        }
    }
}

/// The compliance officers' approval group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceGroup {
    /// Dfns user ids.
    pub approvers: Vec<String>,
    pub quorum: u32,
    pub auto_reject_minutes: Option<u32>,
}

/// USD over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmountVelocity {
    pub limit_usd: u64,
    pub timeframe_minutes: u32,
}

/// Transfers over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CountVelocity {
    pub limit: u64,
    pub timeframe_minutes: u32,
}

/// The limits of one tier; each absent limit means no policy of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_limit_usd: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_velocity: Option<AmountVelocity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_velocity: Option<CountVelocity>,
}

pub const PLATFORM_NETWORKS: &str = "PLATFORM_NETWORKS";

/// The networks `PLATFORM_NETWORKS` names (the default when it names none or one that does not
/// parse: the settings refuse such a value at startup anyway). For the OpenAPI document.
pub fn offered_networks_from_env() -> Vec<Network> {
    let mut networks = Vec::new();
    for raw in std::env::var(PLATFORM_NETWORKS)
        .unwrap_or_default()
        .split(',')
    {
        if let Ok(network) = Network::parse(raw.trim())
            && !networks.contains(&network)
        {
            networks.push(network);
        }
    }
    if networks.is_empty() {
        networks.push(Network::EthereumSepolia);
    }
    networks
}
pub const WHITELIST_ACTION: &str = "WHITELIST_ACTION";
pub const LIMITS_ACTION: &str = "LIMITS_ACTION";
pub const COMPLIANCE_APPROVERS: &str = "COMPLIANCE_APPROVERS";
pub const COMPLIANCE_QUORUM: &str = "COMPLIANCE_QUORUM";
pub const COMPLIANCE_AUTO_REJECT_MINUTES: &str = "COMPLIANCE_AUTO_REJECT_MINUTES";
pub const LIMIT_TIERS: &str = "LIMIT_TIERS";
pub const DEFAULT_TIER: &str = "DEFAULT_TIER";
pub const CLIENT_TIERS: &str = "CLIENT_TIERS";
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
pub const WEBHOOK_TOLERANCE_SECONDS: &str = "WEBHOOK_TOLERANCE_SECONDS";
pub const RECONCILE_SUBMITTED_AFTER_SECONDS: &str = "RECONCILE_SUBMITTED_AFTER_SECONDS";
pub const DFNS_REQUESTS_PER_MINUTE: &str = "DFNS_REQUESTS_PER_MINUTE";
pub const DFNS_BURST: &str = "DFNS_BURST";
pub const MAX_OPEN_DESTINATION_REQUESTS: &str = "MAX_OPEN_DESTINATION_REQUESTS";
pub const CLIENT_MUTATIONS_PER_MINUTE: &str = "CLIENT_MUTATIONS_PER_MINUTE";
pub const QUEUED_REQUEST_TTL: &str = "QUEUED_REQUEST_TTL";
pub const RECONCILE_TIME_BUDGET_SECONDS: &str = "RECONCILE_TIME_BUDGET_SECONDS";
pub const DESTINATION_COOLING_OFF: &str = "DESTINATION_COOLING_OFF";
pub const EXCHANGE_COOLING_OFF: &str = "EXCHANGE_COOLING_OFF";
pub const FOUR_EYES_USD: &str = "FOUR_EYES_USD";

/// Minutes before an undecided approval expires, unless `COMPLIANCE_AUTO_REJECT_MINUTES` says
/// otherwise: 72 hours, so a forgotten decision never blocks a client's queue for good.
pub const DEFAULT_AUTO_REJECT_MINUTES: u32 = 72 * 60;

/// The product's cooling-off of a client's new destination.
pub const DEFAULT_DESTINATION_COOLING_OFF: Duration = Duration::from_secs(24 * 3600);

/// Parses a duration written as a whole number and a unit (`45s`, `30m`, `12h`, `7d`), from one
/// second to 365 days.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| "needs a unit: s, m, h or d (e.g. `7d`)".to_owned())?;
    let (digits, unit) = raw.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| "must start with a whole number (e.g. `7d`)".to_owned())?;
    let unit_seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit `{other}`: use s, m, h or d")),
    };
    let seconds = number.saturating_mul(unit_seconds);
    if !(1..=365 * 86_400).contains(&seconds) {
        return Err("must be from 1s to 365d".to_owned());
    }
    Ok(Duration::from_secs(seconds))
}

/// A cooling-off: `0` (off; also `0s`, `0m`, …) or a duration as [`parse_duration`] reads it.
pub fn parse_cooling_off(raw: &str) -> Result<Duration, String> {
    let digits = raw.trim().trim_end_matches(['s', 'm', 'h', 'd']);
    if !digits.is_empty() && digits.bytes().all(|b| b == b'0') {
        return Ok(Duration::ZERO);
    }
    parse_duration(raw).map_err(|reason| format!("{reason}, or 0 to turn it off"))
}

/// Everything the use cases need to know about the deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformSettings {
    /// Table, secret id, Dfns base URL, secret refresh.
    pub base: Settings,
    pub networks: Vec<Network>,
    pub whitelist_action: PolicyActionSetting,
    pub limits_action: PolicyActionSetting,
    pub compliance: ComplianceGroup,
    pub tiers: BTreeMap<String, Tier>,
    pub default_tier: String,
    pub client_tiers: BTreeMap<String, String>,
    pub event_bus_name: String,
    pub webhook_tolerance: Duration,
    pub reconcile_submitted_after: Duration,
    /// Client-side token bucket for Dfns calls; `None` = no client-side limit.
    pub dfns_rate_limit: Option<dfns_client::RateLimit>,
    /// Destination requests one client may have open (not final) at once.
    pub max_open_destination_requests: u32,
    /// Mutating calls one client may make per clock minute; `None` = no limit.
    pub client_mutations_per_minute: Option<u32>,
    /// How long a destination request may stay `Queued` before the reconciler expires it.
    pub queued_request_ttl: Duration,
    /// After this long a reconciler run starts no new client.
    pub reconcile_time_budget: Duration,
    /// How long a client's new destination waits, vetoable, before it goes to Dfns (`ZERO`: no
    /// wait).
    pub destination_cooling_off: Duration,
    /// The same for an exchange's deposit address added by a trading authorization.
    pub exchange_cooling_off: Duration,
    /// A desk order worth more than this many US dollars, or whose value cannot be determined,
    /// waits for a second operator's confirmation before it is due (`None`: no such check).
    pub four_eyes_usd: Option<u64>,
}

/// The built-in tier table: a conservative `standard` and an `unlimited` one.
pub fn default_tiers() -> BTreeMap<String, Tier> {
    BTreeMap::from([
        (
            "standard".to_owned(),
            Tier {
                amount_limit_usd: Some(10_000),
                amount_velocity: Some(AmountVelocity {
                    limit_usd: 50_000,
                    timeframe_minutes: 1440,
                }),
                count_velocity: Some(CountVelocity {
                    limit: 20,
                    timeframe_minutes: 60,
                }),
            },
        ),
        ("unlimited".to_owned(), Tier::default()),
    ])
}

impl PlatformSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let base = Settings::from_lookup(&lookup)?;
        Self::with_base(base, lookup)
    }

    /// The platform part read through `lookup`, over already-built base settings.
    pub fn with_base(
        base: Settings,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let list = |name: &str| -> Vec<String> {
            get(name)
                .map(|raw| {
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let number = |name: &'static str, min: u64, max: u64| -> Result<Option<u64>, ConfigError> {
            match get(name) {
                None => Ok(None),
                Some(raw) => match raw.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(ConfigError::Invalid {
                        name,
                        reason: format!("must be a whole number from {min} to {max}"),
                    }),
                },
            }
        };

        let cooling_off = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
            get(name)
                .map(|raw| {
                    parse_cooling_off(&raw).map_err(|reason| ConfigError::Invalid { name, reason })
                })
                .transpose()
        };

        let mut networks = Vec::new();
        for raw in list(PLATFORM_NETWORKS) {
            let network = Network::parse(&raw).map_err(|e| ConfigError::Invalid {
                name: PLATFORM_NETWORKS,
                reason: e.to_string(),
            })?;
            if !networks.contains(&network) {
                networks.push(network);
            }
        }
        if networks.is_empty() {
            networks.push(Network::EthereumSepolia);
        }

        let whitelist_action = match get(WHITELIST_ACTION) {
            Some(raw) => PolicyActionSetting::parse(WHITELIST_ACTION, &raw)?,
            None => PolicyActionSetting::Block,
        };
        let limits_action = match get(LIMITS_ACTION) {
            Some(raw) => PolicyActionSetting::parse(LIMITS_ACTION, &raw)?,
            None => whitelist_action,
        };
        let compliance = ComplianceGroup {
            approvers: list(COMPLIANCE_APPROVERS),
            quorum: number(COMPLIANCE_QUORUM, 1, 100)?.unwrap_or(1) as u32,
            auto_reject_minutes: match number(COMPLIANCE_AUTO_REJECT_MINUTES, 0, 43_200)? {
                None => Some(DEFAULT_AUTO_REJECT_MINUTES),
                Some(0) => None,
                Some(n) => Some(n as u32),
            },
        };
        let needs_approvers =
            [whitelist_action, limits_action].contains(&PolicyActionSetting::RequestApproval);
        if needs_approvers && (compliance.approvers.len() as u32) < compliance.quorum {
            return Err(ConfigError::Invalid {
                name: COMPLIANCE_APPROVERS,
                reason: "RequestApproval needs at least COMPLIANCE_QUORUM approvers".into(),
            });
        }

        let tiers = match get(LIMIT_TIERS) {
            None => default_tiers(),
            Some(raw) => serde_json::from_str::<BTreeMap<String, Tier>>(&raw).map_err(|e| {
                ConfigError::Invalid {
                    name: LIMIT_TIERS,
                    reason: e.to_string(),
                }
            })?,
        };
        let default_tier = get(DEFAULT_TIER).unwrap_or_else(|| "standard".to_owned());
        if !tiers.contains_key(&default_tier) {
            return Err(ConfigError::Invalid {
                name: DEFAULT_TIER,
                reason: format!("tier `{default_tier}` is not in the tier table"),
            });
        }
        let client_tiers = match get(CLIENT_TIERS) {
            None => BTreeMap::new(),
            Some(raw) => serde_json::from_str::<BTreeMap<String, String>>(&raw).map_err(|e| {
                ConfigError::Invalid {
                    name: CLIENT_TIERS,
                    reason: e.to_string(),
                }
            })?,
        };
        if let Some((client, tier)) = client_tiers.iter().find(|(_, t)| !tiers.contains_key(*t)) {
            return Err(ConfigError::Invalid {
                name: CLIENT_TIERS,
                reason: format!("client `{client}` has unknown tier `{tier}`"),
            });
        }

        Ok(Self {
            base,
            networks,
            whitelist_action,
            limits_action,
            compliance,
            tiers,
            default_tier,
            client_tiers,
            event_bus_name: get(EVENT_BUS_NAME).unwrap_or_else(|| "default".to_owned()),
            webhook_tolerance: Duration::from_secs(
                number(WEBHOOK_TOLERANCE_SECONDS, 1, 3600)?.unwrap_or(300),
            ),
            reconcile_submitted_after: Duration::from_secs(
                number(RECONCILE_SUBMITTED_AFTER_SECONDS, 0, 86_400)?.unwrap_or(60),
            ),
            dfns_rate_limit: match number(DFNS_REQUESTS_PER_MINUTE, 0, 1_000_000)?.unwrap_or(1000) {
                0 => None,
                per_minute => Some(dfns_client::RateLimit {
                    requests_per_minute: per_minute as u32,
                    burst: number(DFNS_BURST, 1, 10_000)?.unwrap_or(50) as u32,
                }),
            },
            max_open_destination_requests: number(MAX_OPEN_DESTINATION_REQUESTS, 1, 1000)?
                .unwrap_or(10) as u32,
            client_mutations_per_minute: match number(CLIENT_MUTATIONS_PER_MINUTE, 0, 100_000)?
                .unwrap_or(60)
            {
                0 => None,
                per_minute => Some(per_minute as u32),
            },
            queued_request_ttl: match get(QUEUED_REQUEST_TTL) {
                None => Duration::from_secs(7 * 86_400),
                Some(raw) => parse_duration(&raw).map_err(|reason| ConfigError::Invalid {
                    name: QUEUED_REQUEST_TTL,
                    reason,
                })?,
            },
            reconcile_time_budget: Duration::from_secs(
                number(RECONCILE_TIME_BUDGET_SECONDS, 0, 900)?.unwrap_or(180),
            ),
            destination_cooling_off: cooling_off(DESTINATION_COOLING_OFF)?
                .unwrap_or(DEFAULT_DESTINATION_COOLING_OFF),
            exchange_cooling_off: cooling_off(EXCHANGE_COOLING_OFF)?.unwrap_or(Duration::ZERO),
            four_eyes_usd: number(FOUR_EYES_USD, 0, u64::MAX)?,
        })
    }

    /// The tier name and limits of a client.
    pub fn tier_of(&self, client: &str) -> (&str, Tier) {
        let name = self
            .client_tiers
            .get(client)
            .map(String::as_str)
            .unwrap_or(&self.default_tier);
        // Both maps were checked against the table when the settings were built.
        (name, self.tiers.get(name).copied().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<PlatformSettings, ConfigError> {
        let mut map: HashMap<String, String> =
            HashMap::from([("TABLE_NAME".to_owned(), "t".to_owned())]);
        map.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        PlatformSettings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.networks, vec![Network::EthereumSepolia]);
        assert_eq!(s.whitelist_action, PolicyActionSetting::Block);
        assert_eq!(s.limits_action, PolicyActionSetting::Block);
        assert_eq!(s.event_bus_name, "default");
        // Approvals expire after 72 hours unless told otherwise; 0 = never.
        assert_eq!(s.compliance.auto_reject_minutes, Some(4320));
        assert_eq!(
            settings(&[(COMPLIANCE_AUTO_REJECT_MINUTES, "0")])
                .unwrap()
                .compliance
                .auto_reject_minutes,
            None
        );
        assert_eq!(
            settings(&[(COMPLIANCE_AUTO_REJECT_MINUTES, "90")])
                .unwrap()
                .compliance
                .auto_reject_minutes,
            Some(90)
        );
        assert_eq!(
            s.dfns_rate_limit,
            Some(dfns_client::RateLimit {
                requests_per_minute: 1000,
                burst: 50
            })
        );
        assert_eq!(
            settings(&[(DFNS_REQUESTS_PER_MINUTE, "0")])
                .unwrap()
                .dfns_rate_limit,
            None
        );
        let (name, tier) = s.tier_of("anyone");
        assert_eq!(name, "standard");
        assert_eq!(tier.amount_limit_usd, Some(10_000));
        assert_eq!(s.max_open_destination_requests, 10);
        assert_eq!(s.client_mutations_per_minute, Some(60));
        assert_eq!(s.queued_request_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(s.reconcile_time_budget, Duration::from_secs(180));
        assert_eq!(s.destination_cooling_off, Duration::from_secs(24 * 3600));
        assert_eq!(s.exchange_cooling_off, Duration::ZERO);
        assert_eq!(s.four_eyes_usd, None);
    }

    #[test]
    fn four_eyes() {
        let s = settings(&[(FOUR_EYES_USD, "25000")]).unwrap();
        assert_eq!(s.four_eyes_usd, Some(25_000));
        assert!(matches!(
            settings(&[(FOUR_EYES_USD, "ten thousand")]),
            Err(ConfigError::Invalid {
                name: FOUR_EYES_USD,
                ..
            })
        ));
    }

    #[test]
    fn cooling_off() {
        let s = settings(&[
            (DESTINATION_COOLING_OFF, "30s"),
            (EXCHANGE_COOLING_OFF, "2h"),
        ])
        .unwrap();
        assert_eq!(s.destination_cooling_off, Duration::from_secs(30));
        assert_eq!(s.exchange_cooling_off, Duration::from_secs(7200));
        for off in ["0", "0s", "00h", " 0d "] {
            let s = settings(&[(DESTINATION_COOLING_OFF, off)]).unwrap();
            assert_eq!(s.destination_cooling_off, Duration::ZERO, "{off}");
        }
        for bad in ["24", "a day", "-1h", "1w", "366d"] {
            match settings(&[(DESTINATION_COOLING_OFF, bad)]) {
                Err(ConfigError::Invalid { name, .. }) => {
                    assert_eq!(name, DESTINATION_COOLING_OFF, "{bad}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        match settings(&[(EXCHANGE_COOLING_OFF, "soon")]) {
            Err(ConfigError::Invalid { name, .. }) => assert_eq!(name, EXCHANGE_COOLING_OFF),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn abuse_limits() {
        let s = settings(&[
            (MAX_OPEN_DESTINATION_REQUESTS, "3"),
            (CLIENT_MUTATIONS_PER_MINUTE, "0"),
            (QUEUED_REQUEST_TTL, "36h"),
            (RECONCILE_TIME_BUDGET_SECONDS, "120"),
        ])
        .unwrap();
        assert_eq!(s.max_open_destination_requests, 3);
        assert_eq!(s.client_mutations_per_minute, None);
        assert_eq!(s.queued_request_ttl, Duration::from_secs(36 * 3600));
        assert_eq!(s.reconcile_time_budget, Duration::from_secs(120));
        for (raw, seconds) in [("45s", 45), ("30m", 1800), ("12h", 43_200), ("7d", 604_800)] {
            assert_eq!(
                parse_duration(raw),
                Ok(Duration::from_secs(seconds)),
                "{raw}"
            );
        }
        for bad in ["7", "d", "7w", "0s", "-1d", "366d", "1.5d", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn explicit_values() {
        let s = settings(&[
            (
                PLATFORM_NETWORKS,
                "EthereumSepolia, BaseSepolia,EthereumSepolia",
            ),
            (WHITELIST_ACTION, "RequestApproval"),
            (COMPLIANCE_APPROVERS, "us-1, us-2"),
            (COMPLIANCE_QUORUM, "2"),
            (LIMIT_TIERS, r#"{"gold":{"amountLimitUsd":5},"basic":{}}"#),
            (DEFAULT_TIER, "basic"),
            (CLIENT_TIERS, r#"{"alice":"gold"}"#),
        ])
        .unwrap();
        assert_eq!(
            s.networks,
            vec![Network::EthereumSepolia, Network::BaseSepolia]
        );
        assert_eq!(s.limits_action, PolicyActionSetting::RequestApproval);
        assert_eq!(s.compliance.approvers, vec!["us-1", "us-2"]);
        assert_eq!(
            s.tier_of("alice"),
            (
                "gold",
                Tier {
                    amount_limit_usd: Some(5),
                    ..Tier::default()
                }
            )
        );
        assert_eq!(s.tier_of("bob"), ("basic", Tier::default()));
    }

    #[test]
    fn invalid_values_are_named() {
        for (name, vars) in [
            (PLATFORM_NETWORKS, vec![(PLATFORM_NETWORKS, "Tron")]),
            (WHITELIST_ACTION, vec![(WHITELIST_ACTION, "Allow")]),
            (
                COMPLIANCE_APPROVERS,
                vec![(WHITELIST_ACTION, "RequestApproval")],
            ),
            (
                LIMIT_TIERS,
                vec![(LIMIT_TIERS, r#"{"x":{"amountLimit":1}}"#)],
            ),
            (DEFAULT_TIER, vec![(DEFAULT_TIER, "platinum")]),
            (CLIENT_TIERS, vec![(CLIENT_TIERS, r#"{"a":"platinum"}"#)]),
            (COMPLIANCE_QUORUM, vec![(COMPLIANCE_QUORUM, "0")]),
            (
                MAX_OPEN_DESTINATION_REQUESTS,
                vec![(MAX_OPEN_DESTINATION_REQUESTS, "0")],
            ),
            (QUEUED_REQUEST_TTL, vec![(QUEUED_REQUEST_TTL, "a week")]),
            (
                RECONCILE_TIME_BUDGET_SECONDS,
                vec![(RECONCILE_TIME_BUDGET_SECONDS, "1000")],
            ),
        ] {
            match settings(&vars) {
                Err(ConfigError::Invalid { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
