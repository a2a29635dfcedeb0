//! `compliance`: what a compliance officer runs to decide pending Dfns approvals.
//!
//! - [`pending`] lists pending approvals with readable context: the client (from the wallet tag
//!   `client:<id>` or the policy's tag filter), what is asked (destinations added or removed, a
//!   limit changed, or a transfer's destination and amount in USD), and which policy asks.
//! - [`decide`] approves or denies, signed with the **officer's own** Dfns credential.
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
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    let approvals: Vec<Approval> = dfns
        .list_approvals(&ApprovalsQuery {
            status: Some(ApprovalStatus::Pending),
            ..Default::default()
        })
        .try_collect()
        .await?;
    let mut policies: BTreeMap<PolicyId, Option<Policy>> = BTreeMap::new();
    let mut views = Vec::new();
    for approval in approvals {
        let mut summary = Vec::new();
        let mut client = None;
        let activity;
        match &approval.activity {
            Activity::PoliciesModify { change_request } => {
                activity = "Policies:Modify".to_owned();
                let target = PolicyId::new(change_request.entity_id.as_str());
                let current = policy(dfns, &mut policies, &target).await;
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
            let name = policy(dfns, &mut policies, &evaluation.policy_id)
                .await
                .map(|p| p.name)
                .unwrap_or_else(|| "(unreadable)".into());
            let reason = evaluation.reason.clone().unwrap_or_default();
            asking.push(format!("{name} ({}): {reason}", evaluation.policy_id));
        }
        views.push(PendingView {
            approval_id: approval.id.clone(),
            activity,
            client,
            summary,
            policies: asking,
            initiator: approval.initiator_id.to_string(),
            expires: approval.expiration_date.map(|d| d.to_string()),
        });
    }
    Ok(views)
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
