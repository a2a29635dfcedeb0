//! Flow 1 (docs/design.md), onboarding: open (or resume) a client's managed account.
//!
//! One wallet per configured network, tagged `client:<id>` (for discovery), and one set of policies
//! per wallet: a `TransactionRecipientWhitelist` policy (empty, so nothing can leave until a
//! destination is approved) and the tier's limit policies, each bound to that one wallet by id
//! (`filters.walletId.in`), so that no tag or wallet metadata change can take a wallet out of its
//! rules (docs/design.md, "Dfns objects per client"), and an address approved on one network is
//! whitelisted only for that network's wallet (an EVM address is valid on every EVM network, but
//! who controls it may differ from one to the next); the mapping in DynamoDB.
//!
//! Policies are recorded by kind and network (`whitelist-ethereumsepolia`, see
//! [`policy_kinds::on_network`]). A client opened before that has one set of policies bound to
//! all its wallets, recorded by bare kind (`whitelist`); it keeps it (onboarding adds no
//! per-network set beside it, which would block everything with its empty whitelist), and
//! [`policy_kinds::whitelist_of`] finds it for every network.
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
    UpdateOutcome,
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
    use std::collections::BTreeMap;

    use domain::Network;

    pub const WHITELIST: &str = "whitelist";
    pub const AMOUNT_LIMIT: &str = "amount-limit";
    pub const AMOUNT_VELOCITY: &str = "amount-velocity";
    pub const COUNT_VELOCITY: &str = "count-velocity";

    /// The recorded kind of the client's policy of `kind` bound to its wallet on `network`:
    /// `whitelist-ethereumsepolia` (the store takes `[a-z0-9-]`, at most 40).
    pub fn on_network(kind: &str, network: Network) -> String {
        format!("{kind}-{}", network.as_str().to_ascii_lowercase())
    }

    /// The id of the whitelist policy that governs the client's wallet on `network`, from its
    /// recorded policies: the network's own, or the one shared by all its wallets of a client
    /// opened before whitelists were per network. `None`: the account is not open.
    pub fn whitelist_of(recorded: &BTreeMap<String, String>, network: Network) -> Option<&str> {
        recorded
            .get(&on_network(WHITELIST, network))
            .or_else(|| recorded.get(WHITELIST))
            .map(String::as_str)
    }

    /// Whether any whitelist policy is recorded (the account's policies exist).
    pub fn has_whitelist(recorded: &BTreeMap<String, String>) -> bool {
        recorded
            .keys()
            .any(|k| k == WHITELIST || k.starts_with("whitelist-"))
    }
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
    /// Dfns policy id by kind and network (`whitelist-ethereumsepolia`,
    /// `amount-limit-ethereumsepolia`, …: one set per wallet; bare `whitelist`, … for a client
    /// opened when one set served all its wallets).
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

/// The policies a client gets for each of its `wallets` (network and id): the whitelist, then one
/// per limit its tier sets, each bound to that wallet alone by `filters.walletId.in`, under its
/// recorded kind ([`policy_kinds::on_network`]).
pub fn client_policy_bodies(
    settings: &PlatformSettings,
    client: &ClientId,
    tier: &Tier,
    wallets: &[(Network, WalletId)],
) -> Vec<(String, PolicyBody)> {
    wallets
        .iter()
        .flat_map(|(network, wallet)| {
            wallet_policy_bodies(settings, client, tier, wallet)
                .into_iter()
                .map(|(kind, mut body)| {
                    let kind = policy_kinds::on_network(kind, *network);
                    body.name = policy_name(client, &kind);
                    (kind, body)
                })
        })
        .collect()
}

/// One wallet's policies by bare kind.
fn wallet_policy_bodies(
    settings: &PlatformSettings,
    client: &ClientId,
    tier: &Tier,
    wallet: &WalletId,
) -> Vec<(&'static str, PolicyBody)> {
    let filters = PolicyFilters {
        wallet_id: Some(InList::new([dfns_client::WalletId::new(wallet.as_str())])),
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
    let wallets: Vec<(Network, WalletId)> = store
        .list_wallets(client)
        .await?
        .into_iter()
        .map(|m| (m.address.network(), m.wallet_id))
        .collect();
    let recorded = store.client_policies(client).await?;
    // A client opened with one set of policies for all its wallets keeps it (module docs).
    let shared_set = recorded.contains_key(policy_kinds::WHITELIST);
    let bodies = if shared_set {
        Vec::new()
    } else {
        client_policy_bodies(app.settings(), client, &tier, &wallets)
    };
    for (kind, body) in bodies {
        if recorded.contains_key(&kind) {
            continue;
        }
        let kind = kind.as_str();
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
    kind: &str,
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
    // The account view's copy (it reads Dfns for a policy it has none of).
    if recorded == policy.id.as_str() {
        crate::reporting::read_model::keep_policy_snapshot(
            app.store(),
            client,
            &policy,
            time::OffsetDateTime::now_utc(),
        )
        .await?;
    }
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

/// Where a client's move from one shared set of policies to one set per wallet stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum PolicyMigration {
    /// The client has one set per wallet (or no account): nothing to do.
    NotNeeded,
    /// A destination change is at Dfns or with compliance: its approved change would land in the
    /// shared whitelist only, so the migration waits for it (run again later).
    Busy { request_id: String },
    /// Every wallet has its own policies; the shared ones are archived once compliance approves
    /// (until then both apply: each transfer must pass both, so nothing is looser meanwhile).
    ArchivePending { approvals: Vec<String> },
    /// The shared set is archived and forgotten: one set per wallet only.
    Done,
}

/// Audit action of a client's move to one set of policies per wallet.
pub const POLICIES_MIGRATED: &str = "policy.migrated_to_per_wallet";

/// Moves a client opened with one set of policies for all its wallets (before whitelists were
/// per network) to one set per wallet, each whitelist holding only the addresses approved for
/// that wallet's network; then asks Dfns to archive the shared set (held for compliance under the
/// org's `Policies:Modify` policy) and, once it is archived, forgets it. Safe to run again at any
/// point: each step is an onboarding step (created once, resumed after a crash), the archive is
/// asked once per policy, and a later run finishes what an earlier one started.
pub async fn migrate_to_per_wallet_policies(
    app: &App,
    client: &ClientId,
    request_id: &str,
) -> Result<PolicyMigration> {
    let store = app.store();
    let recorded = store.client_policies(client).await?;
    let Some(shared_whitelist) = recorded.get(policy_kinds::WHITELIST).cloned() else {
        return Ok(PolicyMigration::NotNeeded);
    };
    let requests = store.list_destination_requests(client).await?;
    if let Some(busy) = requests.iter().find(|r| {
        matches!(
            r.state,
            domain::DestinationRequestState::Submitted
                | domain::DestinationRequestState::PendingApproval
        )
    }) {
        return Ok(PolicyMigration::Busy {
            request_id: busy.id.to_string(),
        });
    }
    let dfns = app.dfns().await?;
    let shared = dfns
        .get_policy(&dfns_client::PolicyId::new(shared_whitelist.as_str()))
        .await?;
    let shared_addresses: Vec<String> = match &shared.rule {
        PolicyRule::TransactionRecipientWhitelist { configuration } => {
            configuration.addresses.clone()
        }
        _ => Vec::new(),
    };

    // Each wallet's own set: its whitelist holds what is approved for its network and is in the
    // shared whitelist now (never more than the client has today).
    let (_, tier) = app.settings().tier_of(client.as_str());
    let wallets: Vec<(Network, WalletId)> = store
        .list_wallets(client)
        .await?
        .into_iter()
        .map(|m| (m.address.network(), m.wallet_id))
        .collect();
    let approved_on = |network: Network| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for request in requests
            .iter()
            .filter(|r| r.destination.network() == network)
        {
            let address = request.destination.address().canonical();
            if out.contains(&address) || !shared_addresses.contains(&address) {
                continue;
            }
            if matches!(
                crate::withdrawals::destination_status(&requests, &request.destination),
                crate::withdrawals::DestinationStatus::Approved { .. }
            ) {
                out.push(address);
            }
        }
        out
    };
    let owner = format!("migrate-{}", ulid::Ulid::new());
    let deadline = Instant::now() + WAIT_FOR_OTHERS;
    let mut created = Vec::new();
    for (kind, mut body) in client_policy_bodies(app.settings(), client, &tier, &wallets) {
        if let Some(network) = wallets
            .iter()
            .map(|(n, _)| *n)
            .find(|n| kind == policy_kinds::on_network(policy_kinds::WHITELIST, *n))
        {
            body.rule = PolicyRule::recipient_whitelist(approved_on(network));
        }
        if recorded.contains_key(&kind) {
            continue;
        }
        let step = format!("policy:{kind}");
        let id = run_step(app, client, &step, &owner, deadline, |resumed| {
            create_policy(app, client, &kind, body.clone(), resumed, request_id)
        })
        .await?
        .ok_or_else(|| {
            PlatformError::Conflict("another call is creating the policies; try again".into())
        })?;
        created.push(id);
    }

    // The shared set: archive (compliance decides), then forget once Dfns says it is archived.
    let shared_kinds = [
        policy_kinds::WHITELIST,
        policy_kinds::AMOUNT_LIMIT,
        policy_kinds::AMOUNT_VELOCITY,
        policy_kinds::COUNT_VELOCITY,
    ];
    let mut approvals = Vec::new();
    let mut remaining = 0;
    for kind in shared_kinds {
        let Some(policy_id) = recorded.get(kind) else {
            continue;
        };
        let id = dfns_client::PolicyId::new(policy_id.as_str());
        let policy = dfns.get_policy(&id).await?;
        if policy.status == PolicyStatus::Archived {
            store.forget_client_policy(client, kind, policy_id).await?;
            continue;
        }
        remaining += 1;
        let step = format!("migrate:archive:{kind}");
        let asked = run_step(app, client, &step, &owner, deadline, |_| async {
            Ok(match dfns.archive_policy(&id).await? {
                UpdateOutcome::Applied(_) => "archived".to_owned(),
                UpdateOutcome::Pending(change) => change
                    .approval_id
                    .clone()
                    .map(|a| a.as_str().to_owned())
                    .unwrap_or_else(|| change.id.as_str().to_owned()),
            })
        })
        .await?;
        match asked.as_deref() {
            // Archived at once (no `Policies:Modify` policy): forget it now.
            Some("archived") => {
                store.forget_client_policy(client, kind, policy_id).await?;
                remaining -= 1;
            }
            Some(approval) => approvals.push(approval.to_owned()),
            None => {}
        }
    }
    audit::record_once(
        app,
        client,
        &format!(
            "policy-migration:{client}:{}",
            if remaining == 0 { "done" } else { "asked" }
        ),
        Actor::System {
            id: "policy-migration".into(),
        },
        POLICIES_MIGRATED,
        request_id,
        serde_json::json!({
            "sharedWhitelist": shared_whitelist,
            "created": created,
            "archiveApprovals": approvals,
            "done": remaining == 0,
        }),
    )
    .await?;
    crate::reporting::read_model::refresh_client_policies(app, client).await?;
    Ok(if remaining == 0 {
        PolicyMigration::Done
    } else {
        PolicyMigration::ArchivePending { approvals }
    })
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
        // Approvals that never expire: the bodies below carry no `autoRejectTimeout`.
        settings.compliance.auto_reject_minutes = None;
        settings
    }

    fn wallets(ids: &[(Network, &str)]) -> Vec<(Network, WalletId)> {
        ids.iter()
            .map(|(network, id)| (*network, WalletId::parse(id).unwrap()))
            .collect()
    }

    #[test]
    fn each_wallet_gets_its_own_empty_whitelist_bound_to_it_alone() {
        let client = ClientId::parse("alice").unwrap();
        let bodies = client_policy_bodies(
            &settings(PolicyActionSetting::Block),
            &client,
            &Tier::default(),
            &wallets(&[
                (Network::EthereumSepolia, "wa-alice-00000-0000000000000001"),
                (Network::BaseSepolia, "wa-alice-00000-0000000000000002"),
                (Network::SolanaDevnet, "wa-alice-00000-0000000000000003"),
            ]),
        );
        let kinds: Vec<&str> = bodies.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "whitelist-ethereumsepolia",
                "whitelist-basesepolia",
                "whitelist-solanadevnet"
            ]
        );
        assert_eq!(
            serde_json::to_value(&bodies[1].1).unwrap(),
            json!({
                "name": "client:alice whitelist-basesepolia",
                "activityKind": "Wallets:Sign",
                "rule": {"kind": "TransactionRecipientWhitelist", "configuration": {"addresses": []}},
                "action": {"kind": "Block"},
                "filters": {"walletId": {"in": ["wa-alice-00000-0000000000000002"]}}
            })
        );
        for (i, (_, body)) in bodies.iter().enumerate() {
            let filter = serde_json::to_value(&body.filters).unwrap();
            assert_eq!(
                filter["walletId"]["in"],
                json!([format!("wa-alice-00000-000000000000000{}", i + 1)])
            );
        }
    }

    #[test]
    fn a_networks_whitelist_is_its_own_or_the_shared_one_of_an_older_client() {
        let own: BTreeMap<String, String> = [
            ("whitelist-ethereumsepolia".to_owned(), "plc-eth".to_owned()),
            ("whitelist-basesepolia".to_owned(), "plc-base".to_owned()),
            (
                "amount-limit-basesepolia".to_owned(),
                "plc-limit".to_owned(),
            ),
        ]
        .into();
        assert_eq!(
            policy_kinds::whitelist_of(&own, Network::EthereumSepolia),
            Some("plc-eth")
        );
        assert_eq!(
            policy_kinds::whitelist_of(&own, Network::BaseSepolia),
            Some("plc-base")
        );
        // No wallet there: no whitelist (never another network's).
        assert_eq!(policy_kinds::whitelist_of(&own, Network::Ethereum), None);
        assert!(policy_kinds::has_whitelist(&own));
        let shared: BTreeMap<String, String> =
            [("whitelist".to_owned(), "plc-shared".to_owned())].into();
        assert_eq!(
            policy_kinds::whitelist_of(&shared, Network::BaseSepolia),
            Some("plc-shared")
        );
        assert!(policy_kinds::has_whitelist(&shared));
        assert!(!policy_kinds::has_whitelist(&BTreeMap::new()));
        // Every kind on every network fits the store's kind rule ([a-z0-9-], at most 40).
        for network in Network::ALL {
            for kind in [
                policy_kinds::WHITELIST,
                policy_kinds::AMOUNT_LIMIT,
                policy_kinds::AMOUNT_VELOCITY,
                policy_kinds::COUNT_VELOCITY,
            ] {
                let recorded = policy_kinds::on_network(kind, network);
                assert!(recorded.len() <= 40, "{recorded}");
                assert!(
                    recorded
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                    "{recorded}"
                );
            }
        }
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
            &wallets(&[(Network::EthereumSepolia, "wa-bob00-00000-0000000000000001")]),
        );
        let wire: Vec<serde_json::Value> = bodies
            .iter()
            .map(|(_, b)| serde_json::to_value(b).unwrap())
            .collect();
        assert_eq!(
            bodies.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            [
                "whitelist-ethereumsepolia",
                "amount-limit-ethereumsepolia",
                "amount-velocity-ethereumsepolia",
                "count-velocity-ethereumsepolia"
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
