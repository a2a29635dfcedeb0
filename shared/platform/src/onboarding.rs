//! Flow 1 (docs/design.md), onboarding: open (or resume) a client's managed account.
//!
//! One wallet per configured network, tagged `client:<id>` (for discovery); the client's
//! `TransactionRecipientWhitelist` policy (empty, so nothing can leave until a destination is
//! approved) and the tier's limit policies, all bound to the client's wallets by id
//! (`filters.walletId.in`), so that no tag or wallet metadata change can take a wallet out of its
//! rules (docs/design.md, "Dfns objects per client"); the mapping in DynamoDB.
//!
//! The policies are created only once every wallet is created and mapped (their ids are the
//! filter): a call that finds a wallet step still held by another creates no policy and answers
//! `Opening`.
//!
//! **Concurrency and resumption.** Dfns wallet and policy creation are not idempotent, so each
//! creation is a *step* claimed in DynamoDB with a lease ([`store::onboarding`]): of ten concurrent
//! calls exactly one creates, the others wait for it. A step whose holder died (lease ran out) is
//! claimed again as *resumed*, and the new holder first looks the resource up at Dfns (wallet by
//! `externalId`, policy by name) before creating, so a crash between "created at Dfns" and
//! "recorded here" never duplicates. A wallet is recorded (mapping) before its step is marked
//! done, so "done" implies "mapped".
//!
//! **Losers wait, briefly.** A call that finds a step held by another waits for it (polling, up to
//! [`WAIT_FOR_OTHERS`]) and then answers with the account as it is: `Open` when every step is
//! done, else `Opening` (HTTP 202) — calling again later finishes or shows it.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use dfns_client::common::InList;
use dfns_client::policies::{
    AmountLimit, AmountVelocity, ApprovalGroup, Approvers, CountVelocity, Currency, PoliciesQuery,
};
use dfns_client::{
    ActivityKind, CreateWallet, PolicyAction, PolicyBody, PolicyFilters, PolicyRule, PolicyStatus,
    UserId,
};
use domain::{Actor, ClientId, Network, NetworkAddress, WalletId};
use futures::TryStreamExt;
use serde::Serialize;
use store::onboarding::StepClaim;
use store::{ClientProfile, StoreError, WalletMapping};
use time::OffsetDateTime;

use crate::App;
use crate::audit::{self, actions};
use crate::error::{PlatformError, Result};
use crate::settings::{PlatformSettings, PolicyActionSetting, Tier};

/// How long a step's holder has before others may take it over.
pub const STEP_LEASE: time::Duration = time::Duration::seconds(30);
/// How long a call waits for steps another call holds before answering `Opening`.
pub const WAIT_FOR_OTHERS: Duration = Duration::from_secs(8);

/// Policy kinds, as recorded with [`store::Store::record_client_policy`].
pub mod policy_kinds {
    pub const WHITELIST: &str = "whitelist";
    pub const AMOUNT_LIMIT: &str = "amount-limit";
    pub const AMOUNT_VELOCITY: &str = "amount-velocity";
    pub const COUNT_VELOCITY: &str = "count-velocity";
}

/// Whether every onboarding step is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum AccountStatus {
    /// Every wallet and policy exists.
    Open,
    /// Another call is still creating something; call again to see it finish.
    Opening,
}

/// A client's wallet as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
// `reporting::WalletView` is the other one; distinct names in the OpenAPI document.
#[schemars(rename = "OnboardedWallet")]
pub struct WalletView {
    pub network: Network,
    pub wallet_id: WalletId,
    pub address: String,
}

/// The account after an open call.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountState {
    pub client_id: ClientId,
    pub status: AccountStatus,
    pub tier: String,
    pub wallets: Vec<WalletView>,
    /// Dfns policy id by kind (`whitelist`, `amount-limit`, …).
    pub policies: BTreeMap<String, String>,
}

/// The `externalId` of the client's wallet on a network (Dfns keeps it; we search by it on resume).
pub fn wallet_external_id(client: &ClientId, network: Network) -> String {
    format!("{}:{network}", client.wallet_tag())
}

/// The name of the client's policy of a kind (unique per client; searched by on resume).
pub fn policy_name(client: &ClientId, kind: &str) -> String {
    format!("{} {kind}", client.wallet_tag())
}

/// The policies a client gets: the whitelist, then one per limit its tier sets, each bound to
/// `wallets` (the client's wallet ids) by `filters.walletId.in`.
pub fn client_policy_bodies(
    settings: &PlatformSettings,
    client: &ClientId,
    tier: &Tier,
    wallets: &[WalletId],
) -> Vec<(&'static str, PolicyBody)> {
    let filters = PolicyFilters {
        wallet_id: Some(InList::new(
            wallets
                .iter()
                .map(|id| dfns_client::WalletId::new(id.as_str())),
        )),
        ..PolicyFilters::default()
    };
    let action = |setting: PolicyActionSetting| match setting {
        PolicyActionSetting::Block => PolicyAction::Block,
        PolicyActionSetting::RequestApproval => PolicyAction::RequestApproval {
            approval_groups: vec![ApprovalGroup {
                name: Some("Compliance".to_owned()),
                quorum: settings.compliance.quorum,
                approvers: Approvers {
                    user_id: Some(InList::new(
                        settings
                            .compliance
                            .approvers
                            .iter()
                            .map(|id| UserId::new(id.clone())),
                    )),
                    other: Default::default(),
                },
                initiator_can_approve: None,
                service_accounts_can_approve: None,
            }],
            auto_reject_timeout: settings.compliance.auto_reject_minutes,
        },
    };
    let body = |kind: &str, rule: PolicyRule, setting| PolicyBody {
        name: policy_name(client, kind),
        activity_kind: ActivityKind::WalletsSign,
        rule,
        action: action(setting),
        filters: Some(filters.clone()),
    };
    let mut bodies = vec![(
        policy_kinds::WHITELIST,
        body(
            policy_kinds::WHITELIST,
            PolicyRule::recipient_whitelist(Vec::new()),
            settings.whitelist_action,
        ),
    )];
    if let Some(limit) = tier.amount_limit_usd {
        bodies.push((
            policy_kinds::AMOUNT_LIMIT,
            body(
                policy_kinds::AMOUNT_LIMIT,
                PolicyRule::TransactionAmountLimit {
                    configuration: AmountLimit {
                        limit,
                        currency: Currency::Usd,
                    },
                },
                settings.limits_action,
            ),
        ));
    }
    if let Some(velocity) = tier.amount_velocity {
        bodies.push((
            policy_kinds::AMOUNT_VELOCITY,
            body(
                policy_kinds::AMOUNT_VELOCITY,
                PolicyRule::TransactionAmountVelocity {
                    configuration: AmountVelocity {
                        limit: velocity.limit_usd,
                        currency: Currency::Usd,
                        timeframe: velocity.timeframe_minutes,
                    },
                },
                settings.limits_action,
            ),
        ));
    }
    if let Some(velocity) = tier.count_velocity {
        bodies.push((
            policy_kinds::COUNT_VELOCITY,
            body(
                policy_kinds::COUNT_VELOCITY,
                PolicyRule::TransactionCountVelocity {
                    configuration: CountVelocity {
                        limit: velocity.limit,
                        timeframe: velocity.timeframe_minutes,
                    },
                },
                settings.limits_action,
            ),
        ));
    }
    bodies
}

/// Opens the client's account, or resumes a half-finished opening.
pub async fn open_account(app: &App, client: &ClientId, request_id: &str) -> Result<AccountState> {
    let store = app.store();
    let (tier_name, tier) = app.settings().tier_of(client.as_str());
    let tier_name = tier_name.to_owned();
    let profile = ClientProfile {
        client_id: client.clone(),
        created_at: OffsetDateTime::now_utc(),
        tier: Some(tier_name.clone()),
    };
    match store.create_client_profile(&profile).await {
        Ok(()) => {
            audit::record(
                app,
                client,
                Actor::Client { id: client.clone() },
                actions::ACCOUNT_OPENED,
                request_id,
                serde_json::json!({ "tier": tier_name }),
            )
            .await?;
        }
        Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }

    // This call's identity as a step holder.
    let owner = format!("open-{}", ulid::Ulid::new());
    let deadline = Instant::now() + WAIT_FOR_OTHERS;
    let mut complete = true;

    let mapped: Vec<Network> = store
        .list_wallets(client)
        .await?
        .into_iter()
        .map(|m| m.address.network())
        .collect();
    for &network in &app.settings().networks {
        if mapped.contains(&network) {
            continue;
        }
        let step = format!("wallet:{network}");
        let created = run_step(app, client, &step, &owner, deadline, |resumed| {
            create_wallet(app, client, network, resumed, request_id)
        })
        .await?;
        complete &= created.is_some();
    }

    if !complete {
        // A wallet is still being created by another call: the policies bind the wallets by id,
        // so they wait until every wallet exists (the caller answers `Opening`).
        return account_state(app, client, tier_name, false).await;
    }
    let wallet_ids: Vec<WalletId> = store
        .list_wallets(client)
        .await?
        .into_iter()
        .map(|m| m.wallet_id)
        .collect();
    let recorded = store.client_policies(client).await?;
    for (kind, body) in client_policy_bodies(app.settings(), client, &tier, &wallet_ids) {
        if recorded.contains_key(kind) {
            continue;
        }
        let step = format!("policy:{kind}");
        let created = run_step(app, client, &step, &owner, deadline, |resumed| {
            create_policy(app, client, kind, body.clone(), resumed, request_id)
        })
        .await?;
        complete &= created.is_some();
    }

    account_state(app, client, tier_name, complete).await
}

/// The account as stored now.
async fn account_state(
    app: &App,
    client: &ClientId,
    tier: String,
    complete: bool,
) -> Result<AccountState> {
    let wallets = app
        .store()
        .list_wallets(client)
        .await?
        .into_iter()
        .map(|m| WalletView {
            network: m.address.network(),
            address: m.address.address().canonical(),
            wallet_id: m.wallet_id,
        })
        .collect();
    Ok(AccountState {
        client_id: client.clone(),
        status: if complete {
            AccountStatus::Open
        } else {
            AccountStatus::Opening
        },
        tier,
        wallets,
        policies: app.store().client_policies(client).await?,
    })
}

/// Claims `step` and runs `create` (told whether an earlier holder may have created already), or
/// waits for the holder until `deadline`. `Ok(None)`: still held by another when time ran out.
async fn run_step<F, Fut>(
    app: &App,
    client: &ClientId,
    step: &str,
    owner: &str,
    deadline: Instant,
    create: F,
) -> Result<Option<String>>
where
    F: Fn(bool) -> Fut,
    Fut: Future<Output = Result<String>>,
{
    let store = app.store();
    let mut pause = Duration::from_millis(50);
    loop {
        let claim = store
            .claim_onboarding_step(client, step, owner, OffsetDateTime::now_utc(), STEP_LEASE)
            .await?;
        match claim {
            StepClaim::Done { resource_id } => return Ok(Some(resource_id)),
            StepClaim::Claimed { resumed } => {
                let resource_id = match create(resumed).await {
                    Ok(id) => id,
                    Err(error) => {
                        // Let the next caller retry now rather than after the lease.
                        if let Err(release) =
                            store.release_onboarding_step(client, step, owner).await
                        {
                            tracing::warn!(%release, step, "onboarding step not released");
                        }
                        return Err(error);
                    }
                };
                store
                    .complete_onboarding_step(
                        client,
                        step,
                        owner,
                        &resource_id,
                        OffsetDateTime::now_utc(),
                    )
                    .await?;
                return Ok(Some(resource_id));
            }
            StepClaim::Busy { .. } => {
                if Instant::now() + pause > deadline {
                    return Ok(None);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(400));
            }
        }
    }
}

async fn create_wallet(
    app: &App,
    client: &ClientId,
    network: Network,
    resumed: bool,
    request_id: &str,
) -> Result<String> {
    let dfns = app.dfns().await?;
    let external_id = wallet_external_id(client, network);
    let existing = if resumed {
        find_wallet_by_external_id(&dfns, &external_id).await?
    } else {
        None
    };
    let found = existing.is_some();
    let wallet = match existing {
        Some(wallet) => wallet,
        None => {
            let mut body = CreateWallet::new(dfns_client::Network::from(network.as_str()));
            body.name = Some(format!("{} {network}", client.wallet_tag()));
            body.external_id = Some(external_id);
            body.tags = vec![client.wallet_tag()];
            dfns.create_wallet(&body).await?
        }
    };
    let address = wallet.address.as_deref().ok_or_else(|| {
        PlatformError::Internal(format!("Dfns wallet {} has no address", wallet.id))
    })?;
    let address = NetworkAddress::parse(network, address).map_err(|e| {
        PlatformError::Internal(format!("Dfns wallet {} address unusable: {e}", wallet.id))
    })?;
    let wallet_id = WalletId::parse(wallet.id.as_str())
        .map_err(|e| PlatformError::Internal(format!("Dfns wallet id unusable: {e}")))?;
    app.store()
        .attach_wallet(&WalletMapping {
            client_id: client.clone(),
            wallet_id: wallet_id.clone(),
            address: address.clone(),
            created_at: OffsetDateTime::now_utc(),
        })
        .await?;
    audit::record(
        app,
        client,
        Actor::Client { id: client.clone() },
        actions::WALLET_CREATED,
        request_id,
        serde_json::json!({
            "walletId": wallet_id,
            "network": network,
            "address": address.address().canonical(),
            "foundOnResume": found,
        }),
    )
    .await?;
    // A deposit that reached the wallet before this mapping was kept: attach it now. A failure
    // here does not undo the opening; the reconciler's sweep retries recent ones.
    if let Err(error) = crate::webhook::attach_kept(app, &wallet_id, request_id).await {
        tracing::warn!(%error, wallet = %wallet_id, "kept deposits not attached yet");
    }
    Ok(wallet_id.to_string())
}

async fn find_wallet_by_external_id(
    dfns: &dfns_client::DfnsClient,
    external_id: &str,
) -> Result<Option<dfns_client::Wallet>> {
    // Dfns cannot filter by externalId: read the list (only on resume, which is rare).
    let mut wallets = dfns.list_wallets(&Default::default());
    while let Some(wallet) = wallets.try_next().await? {
        if wallet.external_id.as_deref() == Some(external_id) {
            return Ok(Some(wallet));
        }
    }
    Ok(None)
}

async fn create_policy(
    app: &App,
    client: &ClientId,
    kind: &'static str,
    body: PolicyBody,
    resumed: bool,
    request_id: &str,
) -> Result<String> {
    let dfns = app.dfns().await?;
    let mut existing = None;
    if resumed {
        let mut policies = dfns.list_policies(&PoliciesQuery {
            status: Some(PolicyStatus::Active),
            page_size: None,
        });
        while let Some(policy) = policies.try_next().await? {
            if policy.name == body.name {
                existing = Some(policy);
                break;
            }
        }
    }
    let found = existing.is_some();
    let policy = match existing {
        Some(policy) => policy,
        None => dfns.create_policy(&body).await?,
    };
    let recorded = app
        .store()
        .record_client_policy(client, kind, policy.id.as_str())
        .await?;
    audit::record(
        app,
        client,
        Actor::Client { id: client.clone() },
        actions::POLICY_CREATED,
        request_id,
        serde_json::json!({
            "kind": kind,
            "policyId": recorded,
            "rule": body.rule,
            "action": body.action,
            "foundOnResume": found,
        }),
    )
    .await?;
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::settings::{AmountVelocity, CountVelocity};

    fn settings(action: PolicyActionSetting) -> PlatformSettings {
        let base = platform_config::Settings::from_lookup(|name| match name {
            "TABLE_NAME" => Some("x".into()),
            _ => None,
        })
        .unwrap();
        let mut settings = PlatformSettings::with_base(base, |_| None).unwrap();
        settings.whitelist_action = action;
        settings.limits_action = action;
        settings.compliance.approvers = vec!["us-officer-1".into(), "us-officer-2".into()];
        settings
    }

    fn wallets(ids: &[&str]) -> Vec<WalletId> {
        ids.iter().map(|id| WalletId::parse(id).unwrap()).collect()
    }

    #[test]
    fn the_whitelist_starts_empty_and_binds_the_clients_wallets_by_id() {
        let client = ClientId::parse("alice").unwrap();
        let bodies = client_policy_bodies(
            &settings(PolicyActionSetting::Block),
            &client,
            &Tier::default(),
            &wallets(&[
                "wa-alice-00000-0000000000000001",
                "wa-alice-00000-0000000000000002",
            ]),
        );
        assert_eq!(bodies.len(), 1);
        let (kind, body) = &bodies[0];
        assert_eq!(*kind, policy_kinds::WHITELIST);
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({
                "name": "client:alice whitelist",
                "activityKind": "Wallets:Sign",
                "rule": {"kind": "TransactionRecipientWhitelist", "configuration": {"addresses": []}},
                "action": {"kind": "Block"},
                "filters": {"walletId": {"in": [
                    "wa-alice-00000-0000000000000001", "wa-alice-00000-0000000000000002"
                ]}}
            })
        );
    }

    #[test]
    fn limits_come_from_the_tier_and_request_approval_names_the_officers() {
        let client = ClientId::parse("bob").unwrap();
        let tier = Tier {
            amount_limit_usd: Some(5000),
            amount_velocity: Some(AmountVelocity {
                limit_usd: 20000,
                timeframe_minutes: 1440,
            }),
            count_velocity: Some(CountVelocity {
                limit: 3,
                timeframe_minutes: 60,
            }),
        };
        let bodies = client_policy_bodies(
            &settings(PolicyActionSetting::RequestApproval),
            &client,
            &tier,
            &wallets(&["wa-bob00-00000-0000000000000001"]),
        );
        let wire: Vec<serde_json::Value> = bodies
            .iter()
            .map(|(_, b)| serde_json::to_value(b).unwrap())
            .collect();
        assert_eq!(
            bodies.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [
                "whitelist",
                "amount-limit",
                "amount-velocity",
                "count-velocity"
            ]
        );
        assert_eq!(
            wire[1]["rule"],
            json!({"kind": "TransactionAmountLimit", "configuration": {"limit": 5000, "currency": "USD"}})
        );
        assert_eq!(
            wire[2]["rule"]["configuration"],
            json!({"limit": 20000, "currency": "USD", "timeframe": 1440})
        );
        assert_eq!(
            wire[3]["rule"]["configuration"],
            json!({"limit": 3, "timeframe": 60})
        );
        for body in &wire {
            assert_eq!(
                body["filters"],
                json!({"walletId": {"in": ["wa-bob00-00000-0000000000000001"]}})
            );
            assert_eq!(
                body["action"],
                json!({"kind": "RequestApproval", "approvalGroups": [{
                    "name": "Compliance", "quorum": 1,
                    "approvers": {"userId": {"in": ["us-officer-1", "us-officer-2"]}}
                }]})
            );
        }
    }

    #[test]
    fn external_ids_and_names_are_per_client_and_network() {
        let client = ClientId::parse("auth0|42").unwrap();
        assert_eq!(
            wallet_external_id(&client, Network::BaseSepolia),
            "client:auth0|42:BaseSepolia"
        );
        assert_eq!(
            policy_name(&client, "whitelist"),
            "client:auth0|42 whitelist"
        );
    }
}
