//! `compliance`: what a compliance officer runs to decide pending Dfns approvals.
//!
//! - [`pending`] lists pending approvals with readable context: the client (from the wallet tag
//!   `client:<id>` or the policy's tag filter), what is asked (destinations added or removed, a
//!   limit changed, or a transfer's destination and amount in USD), and which policy asks.
//! - [`decide`] approves or denies, signed with the **officer's own** Dfns credential.
//! - [`pending_in_context`] and [`show`] put the platform's side beside Dfns' (issue 18):
//!   `platform::compliance::context_of` read from the platform's table (client, request, order or
//!   withdrawal id, who asked and when, the label, the exact change with its network, a transfer's
//!   amount in the asset and in USD, how long it has waited and when it expires); [`show`] adds
//!   the client's recent activity with that destination.
//!
//! [`Officer::new`] refuses service-account credentials (the token says whose it is): the
//! platform's promise is that the service account never approves anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use dfns_client::policies::PolicyRule;
use dfns_client::{
    Activity, Approval, ApprovalId, ApprovalStatus, ApprovalsQuery, ClientConfig, DecisionValue,
    DfnsClient, KeySigner, Policy, PolicyBody, PolicyId, SecretString,
};
use futures::TryStreamExt as _;
use platform::compliance::{ApprovalContext, context_of};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use store::Store;
use time::OffsetDateTime;

/// Wallet tag carrying the client id: `client:<clientId>` (docs/design.md, "Dfns objects per
/// client").
pub const CLIENT_TAG_PREFIX: &str = "client:";

#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    #[error(
        "refusing service-account credentials ({0}): decisions are signed with an officer's own key"
    )]
    ServiceAccount(String),
    #[error("invalid credentials: {0}")]
    Credentials(String),
    #[error("Dfns: {0}")]
    Dfns(#[from] dfns_client::Error),
    #[error("the platform's table: {0}")]
    Platform(String),
}

impl From<platform::PlatformError> for ComplianceError {
    fn from(error: platform::PlatformError) -> Self {
        ComplianceError::Platform(error.to_string())
    }
}

impl From<store::StoreError> for ComplianceError {
    fn from(error: store::StoreError) -> Self {
        ComplianceError::Platform(error.to_string())
    }
}

/// An officer's Dfns credential: bearer token, credential id, private key (PKCS#8 PEM).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfficerCredentials {
    pub token: SecretString,
    #[serde(alias = "credentialId")]
    pub cred_id: SecretString,
    pub private_key_pem: SecretString,
}

impl OfficerCredentials {
    /// From a JSON file `{"token","credId","privateKeyPem"}` (the shape of a Dfns credential
    /// export and of the emulator's `officers[]` entries).
    pub fn from_json(text: &str) -> Result<Self, ComplianceError> {
        serde_json::from_str(text).map_err(|_| {
            ComplianceError::Credentials(
                "credentials file must be JSON with token, credId and privateKeyPem".into(),
            )
        })
    }
}

/// Claims of a Dfns bearer token that say whose it is (`https://custom/app_metadata`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenIdentity {
    pub user_id: Option<String>,
    pub token_kind: Option<String>,
}

/// Reads who a token belongs to, without verifying it (Dfns does; this only tells whose it is).
pub fn token_identity(token: &str) -> TokenIdentity {
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or_default();
    let meta = &claims["https://custom/app_metadata"];
    TokenIdentity {
        user_id: meta["userId"].as_str().map(str::to_owned),
        token_kind: meta["tokenKind"].as_str().map(str::to_owned),
    }
}

/// A Dfns client acting as one compliance officer.
pub struct Officer {
    pub user_id: String,
    pub dfns: DfnsClient,
}

impl Officer {
    /// Builds the officer's client. Refuses a service-account token (by its kind, or because its
    /// user id is `service_account_user_id`, the platform's service account).
    pub fn new(
        base_url: &str,
        credentials: &OfficerCredentials,
        service_account_user_id: Option<&str>,
    ) -> Result<Self, ComplianceError> {
        let identity = token_identity(credentials.token.expose_secret());
        let user_id = identity
            .user_id
            .clone()
            .ok_or_else(|| ComplianceError::Credentials("the token names no Dfns user".into()))?;
        if identity.token_kind.as_deref() == Some("ServiceAccount") {
            return Err(ComplianceError::ServiceAccount(format!(
                "{user_id} is a service-account token"
            )));
        }
        if service_account_user_id.is_some_and(|sa| sa == user_id) {
            return Err(ComplianceError::ServiceAccount(format!(
                "{user_id} is the platform's service account"
            )));
        }
        let signer = KeySigner::from_pkcs8_pem(
            credentials.cred_id.expose_secret(),
            &credentials.private_key_pem,
        )
        .map_err(|e| ComplianceError::Credentials(format!("private key unusable: {e}")))?;
        let dfns = DfnsClient::new(
            ClientConfig::new(credentials.token.clone(), Some(Arc::new(signer)))
                .with_base_url(base_url.to_owned()),
        )?;
        Ok(Self { user_id, dfns })
    }
}

/// A pending approval, described for a person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingView {
    pub approval_id: ApprovalId,
    /// `Policies:Modify`, `Wallets:Sign`, …
    pub activity: String,
    pub client: Option<String>,
    /// What is asked, in words.
    pub summary: Vec<String>,
    /// The policies that asked for the approval: `name (id): reason`.
    pub policies: Vec<String>,
    pub initiator: String,
    pub expires: Option<String>,
}

impl std::fmt::Display for PendingView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}  {}  client: {}",
            self.approval_id,
            self.activity,
            self.client.as_deref().unwrap_or("(unknown)")
        )?;
        for line in &self.summary {
            writeln!(f, "    {line}")?;
        }
        for policy in &self.policies {
            writeln!(f, "    policy: {policy}")?;
        }
        write!(f, "    requested by {}", self.initiator)?;
        if let Some(expires) = &self.expires {
            write!(f, "; expires {expires}")?;
        }
        Ok(())
    }
}

fn client_from_tags<'a>(tags: impl IntoIterator<Item = &'a String>) -> Option<String> {
    tags.into_iter()
        .find_map(|t| t.strip_prefix(CLIENT_TAG_PREFIX))
        .map(str::to_owned)
}

/// The client a policy belongs to: from a `client:<id>` tag filter, else from the name the
/// platform gives its client policies, `client:<id> <kind>` (they bind the client's wallets by
/// id, `filters.walletId.in`, so their filter does not name the client).
fn client_of_policy(body: &PolicyBody) -> Option<String> {
    body.filters
        .as_ref()
        .and_then(|f| f.wallet_tags.as_ref())
        .and_then(|t| {
            t.has_all
                .iter()
                .chain(t.has_any.iter())
                .flatten()
                .find_map(|tag| tag.strip_prefix(CLIENT_TAG_PREFIX))
                .map(str::to_owned)
        })
        .or_else(|| {
            body.name
                .strip_prefix(CLIENT_TAG_PREFIX)
                .and_then(|rest| rest.rsplit_once(' '))
                .map(|(client, _kind)| client.to_owned())
                .filter(|client| !client.is_empty())
        })
}

fn whitelist(rule: &PolicyRule) -> Option<Vec<String>> {
    match rule {
        PolicyRule::TransactionRecipientWhitelist { configuration } => {
            Some(configuration.addresses.clone())
        }
        _ => None,
    }
}

/// What a policy change asks, in words: destinations added and removed for a whitelist, the
/// old and new rule otherwise, or an archive.
pub fn describe_policy_change(
    current: Option<&PolicyBody>,
    proposed: &PolicyBody,
    archive: bool,
) -> Vec<String> {
    if archive {
        return vec![format!("archive policy {:?}", proposed.name)];
    }
    let before = current.and_then(|c| whitelist(&c.rule));
    let after = whitelist(&proposed.rule);
    if let Some(after) = after {
        let before = before.unwrap_or_default();
        let mut lines: Vec<String> = after
            .iter()
            .filter(|a| !before.contains(a))
            .map(|a| format!("add destination {a}"))
            .collect();
        lines.extend(
            before
                .iter()
                .filter(|b| !after.contains(b))
                .map(|b| format!("remove destination {b}")),
        );
        if lines.is_empty() {
            lines.push("whitelist unchanged (other settings of the policy change)".into());
        }
        return lines;
    }
    let rule = |r: &PolicyRule| serde_json::to_string(r).unwrap_or_default();
    let mut lines = Vec::new();
    match current {
        Some(current) if current.rule != proposed.rule => {
            lines.push(format!(
                "rule {} -> {}",
                rule(&current.rule),
                rule(&proposed.rule)
            ));
        }
        Some(current) if current.action != proposed.action => {
            lines.push("action (approvers, quorum or kind) changes".into());
        }
        Some(_) => lines.push(format!("update policy {:?}", proposed.name)),
        None => lines.push(format!(
            "policy {:?}: {}",
            proposed.name,
            rule(&proposed.rule)
        )),
    }
    lines
}

/// Lists pending approvals with their context (reads the policies and wallets they name).
pub async fn pending(dfns: &DfnsClient) -> Result<Vec<PendingView>, ComplianceError> {
    let approvals = pending_approvals(dfns).await?;
    let mut policies = BTreeMap::new();
    let mut views = Vec::new();
    for approval in &approvals {
        views.push(describe(dfns, &mut policies, approval).await);
    }
    Ok(views)
}

async fn pending_approvals(dfns: &DfnsClient) -> Result<Vec<Approval>, ComplianceError> {
    Ok(dfns
        .list_approvals(&ApprovalsQuery {
            status: Some(ApprovalStatus::Pending),
            ..Default::default()
        })
        .try_collect()
        .await?)
}

/// One approval as Dfns shows it, in words (reads the policies and wallet it names).
async fn describe(
    dfns: &DfnsClient,
    policies: &mut BTreeMap<PolicyId, Option<Policy>>,
    approval: &Approval,
) -> PendingView {
    {
        let mut summary = Vec::new();
        let mut client = None;
        let activity;
        match &approval.activity {
            Activity::PoliciesModify { change_request } => {
                activity = "Policies:Modify".to_owned();
                let target = PolicyId::new(change_request.entity_id.as_str());
                let current = policy(dfns, policies, &target).await;
                let proposed = change_request.proposed_policy().ok();
                let archive =
                    change_request.proposed_status() == Some(dfns_client::PolicyStatus::Archived);
                client = proposed
                    .as_ref()
                    .and_then(client_of_policy)
                    .or_else(|| current.as_ref().and_then(|p| client_of_policy(&p.body())));
                match &proposed {
                    Some(proposed) => summary.extend(describe_policy_change(
                        current.as_ref().map(|p| p.body()).as_ref(),
                        proposed,
                        archive,
                    )),
                    None => summary.push(format!("change to policy {target} (unreadable body)")),
                }
                if let Some(current) = &current {
                    summary.push(format!("target policy: {} ({})", current.name, current.id));
                }
            }
            Activity::WalletsSign {
                transfer_request: Some(transfer),
                ..
            } => {
                activity = "Wallets:Sign (transfer)".to_owned();
                if let Ok(wallet) = dfns.get_wallet(&transfer.wallet_id).await {
                    client = client_from_tags(&wallet.tags);
                }
                let body = serde_json::to_value(&transfer.request_body).unwrap_or_default();
                let metadata = serde_json::to_value(&transfer.metadata).unwrap_or_default();
                let amount = body["amount"].as_str().unwrap_or("?");
                let asset = metadata["asset"]["symbol"]
                    .as_str()
                    .or(body["kind"].as_str())
                    .unwrap_or("asset");
                let usd = approval.policy_evaluations.iter().find_map(|e| {
                    let amount = e.context.as_ref()?.get("transactionAmount")?;
                    Some(format!(
                        "{} {}",
                        amount.get("currency")?.as_str()?,
                        amount.get("value")?.as_str()?
                    ))
                });
                summary.push(format!(
                    "transfer {} {asset} (smallest units){} from wallet {} to {}",
                    amount,
                    usd.map(|u| format!(" = {u}")).unwrap_or_default(),
                    transfer.wallet_id,
                    body["to"].as_str().unwrap_or("?"),
                ));
            }
            other => {
                activity = serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v["kind"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "other".into());
                summary.push("see the Dfns dashboard for this activity".into());
            }
        }
        let mut asking = Vec::new();
        for evaluation in approval.policy_evaluations.iter().filter(|e| e.triggered) {
            let name = policy(dfns, policies, &evaluation.policy_id)
                .await
                .map(|p| p.name)
                .unwrap_or_else(|| "(unreadable)".into());
            let reason = evaluation.reason.clone().unwrap_or_default();
            asking.push(format!("{name} ({}): {reason}", evaluation.policy_id));
        }
        PendingView {
            approval_id: approval.id.clone(),
            activity,
            client,
            summary,
            policies: asking,
            initiator: approval.initiator_id.to_string(),
            expires: approval.expiration_date.map(|d| d.to_string()),
        }
    }
}

/// An approval as Dfns shows it beside what the platform knows of it (`platform`: `None` when
/// it decides nothing of the platform's, e.g. an organisation-wide policy change).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InContext {
    pub dfns: PendingView,
    pub platform: Option<ApprovalContext>,
}

impl std::fmt::Display for InContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.dfns)?;
        match &self.platform {
            Some(context) => write!(f, "\n{}", PlatformLines(context)),
            None => write!(
                f,
                "\n    platform: (no request, order or withdrawal of the platform's)"
            ),
        }
    }
}

/// The platform's context, as lines under an approval.
struct PlatformLines<'a>(&'a ApprovalContext);

impl std::fmt::Display for PlatformLines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.0;
        writeln!(
            f,
            "    platform: client {}  {} {} ({})",
            c.client_id,
            c.subject.replace('_', " "),
            c.subject_id,
            c.state
        )?;
        writeln!(
            f,
            "    asked by {} {} at {}",
            c.requested_by.kind, c.requested_by.id, c.requested_at
        )?;
        if let Some(label) = &c.label {
            writeln!(f, "    label: {label}")?;
        }
        if let Some(change) = &c.change {
            writeln!(
                f,
                "    change: {} {} on {}",
                change.action, change.address, change.network
            )?;
        }
        if let Some(t) = &c.transfer {
            let symbol = t.symbol.as_deref().unwrap_or(&t.asset);
            let decimals = t
                .decimals
                .map(|d| format!(", {d} decimals"))
                .unwrap_or_default();
            let usd = t
                .usd
                .as_deref()
                .map(|u| format!(" = USD {u}"))
                .unwrap_or_else(|| " (USD value unknown)".into());
            writeln!(
                f,
                "    transfer: {} {symbol} (smallest units{decimals}){usd} on {} to {}{}",
                t.amount,
                t.network,
                t.to.as_deref().unwrap_or("?"),
                t.destination_label
                    .as_deref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default()
            )?;
        }
        let waited = c.waited_seconds;
        write!(
            f,
            "    waited {}h{:02}m; expires {}",
            waited / 3600,
            (waited % 3600) / 60,
            c.expires_at.as_deref().unwrap_or("never")
        )?;
        for d in &c.decisions {
            write!(
                f,
                "\n    decision: {} {} at {}{}",
                d.officer,
                d.decision,
                d.at,
                d.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

/// The pending approvals, each with the platform's context read from `store` (the platform's
/// table) at `now`.
pub async fn pending_in_context(
    dfns: &DfnsClient,
    store: &Store,
    now: OffsetDateTime,
) -> Result<Vec<InContext>, ComplianceError> {
    let approvals = pending_approvals(dfns).await?;
    let mut policies = BTreeMap::new();
    let mut listed = Vec::new();
    for approval in &approvals {
        listed.push(InContext {
            dfns: describe(dfns, &mut policies, approval).await,
            platform: context_of(store, approval, now).await?,
        });
    }
    Ok(listed)
}

/// One event of the client's with the approval's destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityLine {
    /// RFC 3339.
    pub at: String,
    /// `destination_request`, `withdrawal` or `order`.
    pub kind: &'static str,
    pub id: String,
    pub state: String,
    /// What it was, in words.
    pub what: String,
}

impl std::fmt::Display for ActivityLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {} {} ({}): {}",
            self.at,
            self.kind.replace('_', " "),
            self.id,
            self.state,
            self.what
        )
    }
}

/// One approval in full: [`InContext`] and the client's recent activity with its destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    #[serde(flatten)]
    pub approval: InContext,
    /// Newest first, at most [`RECENT_ACTIVITY`].
    pub recent_activity: Vec<ActivityLine>,
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.approval)?;
        if self.approval.platform.is_some() {
            write!(f, "\n    recent activity with this destination:")?;
            if self.recent_activity.is_empty() {
                write!(f, "\n      none")?;
            }
            for line in &self.recent_activity {
                write!(f, "\n      {line}")?;
            }
        }
        Ok(())
    }
}

/// How many of the client's events with the destination [`show`] lists.
pub const RECENT_ACTIVITY: usize = 20;

/// Approval `id` (pending or not) in full: Dfns' side, the platform's context, and the client's
/// recent activity with that destination (its requests naming the address on that network, its
/// withdrawals to it, the desk's orders to the same exchange).
pub async fn show(
    dfns: &DfnsClient,
    store: &Store,
    id: &ApprovalId,
    now: OffsetDateTime,
) -> Result<Shown, ComplianceError> {
    let approval = dfns.get_approval(id).await?;
    let mut policies = BTreeMap::new();
    let view = describe(dfns, &mut policies, &approval).await;
    let context = context_of(store, &approval, now).await?;
    let recent_activity = match &context {
        Some(context) => recent_activity(store, context).await?,
        None => Vec::new(),
    };
    Ok(Shown {
        approval: InContext {
            dfns: view,
            platform: context,
        },
        recent_activity,
    })
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn recent_activity(
    store: &Store,
    context: &ApprovalContext,
) -> Result<Vec<ActivityLine>, ComplianceError> {
    let client = domain::ClientId::parse(&context.client_id)
        .map_err(|e| ComplianceError::Platform(format!("client id: {e}")))?;
    // The destination: a change's address, or a transfer's recipient; both on one network.
    let (network, address) = match (&context.change, &context.transfer) {
        (Some(change), _) => (change.network.clone(), Some(change.address.clone())),
        (None, Some(transfer)) => (transfer.network.clone(), transfer.to.clone()),
        (None, None) => return Ok(Vec::new()),
    };
    let same_address = |network_of: &str, to: &str| {
        network_of == network
            && address
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(to))
    };
    let exchange = (context.subject == "order")
        .then(|| context.label.clone())
        .flatten();
    let mut lines: Vec<(OffsetDateTime, ActivityLine)> = Vec::new();
    for request in store.list_destination_requests(&client).await? {
        if !same_address(
            &request.destination.network().to_string(),
            &request.destination.address().canonical(),
        ) {
            continue;
        }
        let action = match request.action {
            domain::DestinationAction::Add => "add",
            domain::DestinationAction::Remove => "remove",
        };
        lines.push((
            request.created_at,
            ActivityLine {
                at: rfc3339(request.created_at),
                kind: "destination_request",
                id: request.id.to_string(),
                state: request.state.to_string(),
                what: format!(
                    "{action} {} on {} labelled {:?}{}",
                    request.destination.address().canonical(),
                    request.destination.network(),
                    request.label,
                    request
                        .reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
            },
        ));
    }
    let (withdrawals, _) = store
        .list_withdrawals_for_client(&client, None, 100)
        .await?;
    let orders = store.list_orders_for_client(&client).await?;
    for order in withdrawals.into_iter().chain(orders) {
        let matches = match order.kind {
            store::OrderKind::Withdrawal => order
                .to
                .as_deref()
                .is_some_and(|to| same_address(&order.network.to_string(), to)),
            store::OrderKind::Exchange => {
                exchange.as_deref() == Some(order.exchange.as_str())
                    && order.network.to_string() == network
            }
        };
        if !matches {
            continue;
        }
        let (kind, whom) = match order.kind {
            store::OrderKind::Withdrawal => ("withdrawal", format!("client {}", order.client_id)),
            store::OrderKind::Exchange => ("order", format!("desk {}", order.created_by)),
        };
        lines.push((
            order.created_at,
            ActivityLine {
                at: rfc3339(order.created_at),
                kind,
                id: order.id.to_string(),
                state: order.state.to_string(),
                what: format!(
                    "{} {} (smallest units) on {} by {whom}{}",
                    order.amount,
                    order.asset,
                    order.network,
                    order
                        .reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
            },
        ));
    }
    lines.sort_by_key(|line| std::cmp::Reverse(line.0));
    Ok(lines
        .into_iter()
        .take(RECENT_ACTIVITY)
        .map(|(_, line)| line)
        .collect())
}

async fn policy(
    dfns: &DfnsClient,
    cache: &mut BTreeMap<PolicyId, Option<Policy>>,
    id: &PolicyId,
) -> Option<Policy> {
    if !cache.contains_key(id) {
        cache.insert(id.clone(), dfns.get_policy(id).await.ok());
    }
    cache.get(id).cloned().flatten()
}

/// Approves or denies one approval as `officer`. Returns the approval as Dfns now has it.
pub async fn decide(
    officer: &Officer,
    approval_id: &ApprovalId,
    value: DecisionValue,
    reason: Option<&str>,
) -> Result<Approval, ComplianceError> {
    Ok(officer
        .dfns
        .decide_approval(approval_id, value, reason)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whitelist_body(addresses: &[&str]) -> PolicyBody {
        serde_json::from_value(serde_json::json!({
            "name": "client 7 whitelist",
            "activityKind": "Wallets:Sign",
            "rule": {"kind": "TransactionRecipientWhitelist", "configuration": {"addresses": addresses}},
            "action": {"kind": "Block"},
            "filters": {"walletTags": {"hasAll": ["client:7"]}},
        }))
        .unwrap()
    }

    #[test]
    fn a_whitelist_change_reads_as_destinations_added_and_removed() {
        let before = whitelist_body(&["0xaa", "0xbb"]);
        let after = whitelist_body(&["0xbb", "0xcc"]);
        assert_eq!(
            describe_policy_change(Some(&before), &after, false),
            vec!["add destination 0xcc", "remove destination 0xaa"]
        );
        assert_eq!(client_of_policy(&after).as_deref(), Some("7"));
        assert_eq!(
            describe_policy_change(Some(&before), &before, true),
            vec!["archive policy \"client 7 whitelist\""]
        );
    }

    #[test]
    fn a_policy_bound_by_wallet_id_names_its_client_by_its_name() {
        let body: PolicyBody = serde_json::from_value(serde_json::json!({
            "name": "client:auth0|42 whitelist",
            "activityKind": "Wallets:Sign",
            "rule": {"kind": "TransactionRecipientWhitelist", "configuration": {"addresses": []}},
            "action": {"kind": "Block"},
            "filters": {"walletId": {"in": ["wa-1"]}},
        }))
        .unwrap();
        assert_eq!(client_of_policy(&body).as_deref(), Some("auth0|42"));
    }

    #[test]
    fn a_token_says_whose_it_is() {
        let claims = serde_json::json!({"https://custom/app_metadata": {"userId": "us-1", "tokenKind": "ServiceAccount"}});
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        let identity = token_identity(&format!("e30.{payload}.x"));
        assert_eq!(identity.user_id.as_deref(), Some("us-1"));
        assert_eq!(identity.token_kind.as_deref(), Some("ServiceAccount"));
        assert_eq!(token_identity("garbage"), TokenIdentity::default());
    }
}

// Tests of the crate as its callers use it, against the stand-ins and the Dfns emulator.
// Kept in the library rather than tests/: an integration test would make cargo link the binary
// too (~45 MB of CI disk each) for nothing.
#[cfg(test)]
mod officer_tests;

// The platform's context beside Dfns' (`pending_in_context`, `show`), against the emulator and
// the platform's table on the stand-ins.
#[cfg(test)]
mod context_tests;
