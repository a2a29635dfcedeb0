//! `bootstrap`: the one-time, idempotent setup of a Dfns organisation for the platform.
//!
//! The platform's Dfns credentials are three Secrets Manager secrets (issue 12, credentials by
//! need; `platform-config` reads them): the **signing secret** (the signing service account's
//! token and key, `DFNS_SIGNING_SECRET_ID`), the **read-only secret** (the token of a second
//! service account that can only read, `DFNS_READ_SECRET_ID`) and the **webhook secret** (the
//! HMAC secret(s) Dfns signs deliveries with, `DFNS_WEBHOOK_SECRET_ID`). Bootstrap acts at Dfns
//! with the signing credential, checks the read-only account, and writes only the webhook secret.
//!
//! 1. **The signing service account cannot approve, unbind or override the rules** (refuse to
//!    go on otherwise, exit status 2, nothing changed): it holds none of
//!    [`DANGEROUS_OPERATIONS`] (`Policies:Approvals:Approve`, untagging or updating wallets,
//!    assigning or changing permissions, managing users or service accounts, delegating keys),
//!    it is not one of the officers, and no active policy's approval group lets service accounts
//!    approve or names the service account as an approver.
//! 2. **The read-only service account can only read** (refuse to go on otherwise, exit status 2,
//!    nothing changed; [`read_only_risks`]): its token, from the read-only secret, is not the
//!    signing service account's (another Dfns user) nor one of the officers', and every
//!    operation it holds is a read (ends in `:Read`; each other one is named). The functions
//!    that only read Dfns hold this token and not the signing one, so a write it could make
//!    would undo the split.
//! 3. **The compliance policy**: a `Policies:Modify` policy, rule `AlwaysTrigger`, action
//!    `RequestApproval` by the compliance officers, no filter (it governs every policy, itself
//!    included). Found by name when it exists; never changed by a later run (a change would itself
//!    need the officers' approval — do it in the Dfns dashboard).
//! 4. **The webhook** to the deployed URL, and its secret stored as `dfnsWebhookSecret` in the
//!    webhook secret (merged into the JSON: other fields are kept). Dfns returns a webhook's
//!    secret only when it is created, so a webhook that exists while the webhook secret lacks its
//!    secret is deleted and created again. Bootstrap refuses (exit status 1, before changing
//!    anything; the rotation phases too) to write it into a secret that holds a Dfns credential
//!    field ([`CREDENTIAL_FIELDS`]): whoever reads the webhook secret (the webhook receiver)
//!    would hold that credential too.
//!
//! **Rotating the webhook secret without a gap** ([`rotate_webhook`], then [`promote_webhook`],
//! both on the webhook secret only): Dfns shows a webhook's secret only at creation and signs
//! each webhook's deliveries with its own secret, so a rotation is a second webhook to the same
//! URL whose secret goes into `dfnsWebhookSecretNext` (the receiver accepts deliveries under
//! either); once every container has read that (`SECRET_REFRESH_SECONDS` after the webhook
//! secret was written), the old webhook is deleted and the next secret becomes
//! `dfnsWebhookSecret`.
//!
//! A second run changes nothing. `dry_run` reads everything and changes nothing, saying what it
//! would do. Bootstrap never writes the signing or the read-only secret.

use std::collections::BTreeSet;

use base64::Engine as _;
use dfns_client::policies::PoliciesQuery;
use dfns_client::webhooks::{CreateWebhook, UpdateWebhook, WebhookStatus};
use dfns_client::{
    ActivityKind, DfnsClient, Policy, PolicyAction, PolicyBody, PolicyStatus, UserId,
    WebhookEventKind,
};
use futures::TryStreamExt as _;
use platform_config::SigningCredential;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

/// The permission that lets a user decide approvals; the service account must never hold it.
pub const APPROVE_PERMISSION: &str = "Policies:Approvals:Approve";

/// Operations the signing service account must not hold, each with what it would let the
/// account do to the rules (docs/dfns.md §9). Names as in the official SDK's permission types
/// (`@dfns/sdk` `generated/permissions/types.d.ts`), legacy names included.
pub const DANGEROUS_OPERATIONS: &[(&str, &str)] = &[
    (
        APPROVE_PERMISSION,
        "approve what the rules hold for an officer",
    ),
    (
        "Wallets:Tags:Delete",
        "untag wallets, taking them out of tag-filtered policies",
    ),
    (
        "Wallets:Update",
        "change wallet metadata (name, externalId) the platform identifies wallets by",
    ),
    (
        "Keys:Delegate",
        "delegate a wallet's key, which bypasses every policy",
    ),
    ("Permissions:Create", "create permissions"),
    ("Permissions:Update", "change permissions"),
    ("Permissions:Modify", "change permissions"),
    ("Permissions:Archive", "archive permissions"),
    ("Permissions:Assign", "assign permissions (to itself)"),
    (
        "Permissions:Revoke",
        "revoke permissions (from the officers)",
    ),
    (
        "PermissionAssignments:Create",
        "assign permissions (to itself)",
    ),
    (
        "PermissionAssignments:Revoke",
        "revoke permissions (from the officers)",
    ),
    ("Auth:Users:Create", "create users (approvers)"),
    ("Auth:Users:Update", "change users"),
    ("Auth:Users:Activate", "activate users"),
    ("Auth:Users:Deactivate", "deactivate users (the officers)"),
    ("Auth:Users:Delete", "delete users (the officers)"),
    ("Auth:Users:Delegate", "act as delegated users"),
    ("Auth:ServiceAccounts:Create", "create service accounts"),
    ("Auth:ServiceAccounts:Update", "change service accounts"),
    ("Auth:ServiceAccounts:Activate", "activate service accounts"),
    (
        "Auth:ServiceAccounts:Deactivate",
        "deactivate service accounts",
    ),
    ("Auth:ServiceAccounts:Delete", "delete service accounts"),
];
/// Name of the organisation's compliance policy (how a later run finds it).
pub const DEFAULT_POLICY_NAME: &str = "Compliance approval of every policy change";
/// The webhook events the platform acts on (docs/dfns.md §7.2, ★).
pub const WEBHOOK_EVENTS: &[WebhookEventKind] = &[
    WebhookEventKind::TransferRequested,
    WebhookEventKind::TransferBroadcasted,
    WebhookEventKind::TransferConfirmed,
    WebhookEventKind::TransferFailed,
    WebhookEventKind::TransferRejected,
    WebhookEventKind::PolicyTriggered,
    WebhookEventKind::ApprovalPending,
    WebhookEventKind::ApprovalResolved,
    WebhookEventKind::BlockchainEventDetected,
];
const WEBHOOK_DESCRIPTION: &str = "managed-accounts platform (bootstrap)";

// The secrets' field names, as `platform-config` reads them (re-exported for deploy checks).
pub use platform_config::{
    FIELD_CREDENTIAL_ID, FIELD_PRIVATE_KEY_PEM, FIELD_READ_ONLY_TOKEN, FIELD_SERVICE_ACCOUNT_TOKEN,
    FIELD_WEBHOOK_SECRET, FIELD_WEBHOOK_SECRET_NEXT, WEBHOOK_SECRET_PLACEHOLDER,
};
/// Fields of the signing and read-only secrets: never in the webhook secret.
pub const CREDENTIAL_FIELDS: &[&str] = &[
    FIELD_SERVICE_ACCOUNT_TOKEN,
    FIELD_CREDENTIAL_ID,
    FIELD_PRIVATE_KEY_PEM,
    FIELD_READ_ONLY_TOKEN,
];
/// Bootstrap's own record in the webhook secret, beside [`FIELD_WEBHOOK_SECRET_NEXT`] and
/// written with it in one `PutSecretValue`, of the id of the webhook that secret belongs to: the
/// one webhook to the URL that [`promote_webhook`] keeps. Not a `dfns…` field: the functions
/// never read it (they ignore fields they do not know). In the secret rather than in the
/// webhook's description so that the secret and the id of its webhook cannot disagree.
pub const FIELD_WEBHOOK_NEXT_ID: &str = "bootstrapWebhookNextId";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Each finding (a dangerous operation held, a policy group that lets it approve).
    #[error(
        "refusing to continue: the service account can approve, unbind or override the rules ({})",
        .0.join("; ")
    )]
    ServiceAccountCanApprove(Vec<String>),
    /// Each finding (an operation that is not a read, the signing account's or an officer's
    /// token in the read-only secret).
    #[error(
        "refusing to continue: the read-only service account is not read-only ({})",
        .0.join("; ")
    )]
    ReadOnlyAccountCanWrite(Vec<String>),
    #[error("invalid setup: {0}")]
    Invalid(String),
    #[error("Dfns: {0}")]
    Dfns(#[from] dfns_client::Error),
    #[error("Secrets Manager: {0}")]
    Secret(String),
}

impl BootstrapError {
    /// For a refusal by one of the least-privilege checks (exit status 2, nothing changed): what
    /// was refused and each finding. `None` for any other failure.
    pub fn refusal(&self) -> Option<(&'static str, &[String])> {
        match self {
            Self::ServiceAccountCanApprove(findings) => Some((
                "the service account can approve, unbind or override the rules",
                findings,
            )),
            Self::ReadOnlyAccountCanWrite(findings) => {
                Some(("the read-only service account is not read-only", findings))
            }
            _ => None,
        }
    }
}

/// What the organisation should look like.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Dfns user ids of the compliance officers.
    pub officers: Vec<String>,
    pub quorum: u32,
    pub auto_reject_minutes: Option<u32>,
    pub policy_name: String,
    /// The deployed webhook endpoint (the stack's `WebhookUrl` output).
    pub webhook_url: String,
    pub dry_run: bool,
}

/// One thing a run did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub changed: bool,
    pub what: String,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub steps: Vec<Step>,
}

impl Report {
    fn ok(&mut self, what: impl Into<String>) {
        self.steps.push(Step {
            changed: false,
            what: what.into(),
        });
    }

    fn changed(&mut self, what: impl Into<String>) {
        self.steps.push(Step {
            changed: true,
            what: what.into(),
        });
    }

    /// Steps that changed something (or would, in a dry run).
    pub fn changes(&self) -> Vec<&Step> {
        self.steps.iter().filter(|s| s.changed).collect()
    }
}

/// One of the platform's secrets in Secrets Manager, read and written as a JSON object (bootstrap
/// writes only the webhook secret).
pub struct JsonSecretStore {
    pub client: aws_sdk_secretsmanager::Client,
    pub secret_id: String,
}

impl JsonSecretStore {
    pub async fn read(&self) -> Result<Map<String, Value>, BootstrapError> {
        Ok(self.read_dated().await?.0)
    }

    /// The secret's text and when its current version was written (when Secrets Manager says).
    async fn read_text(&self) -> Result<(String, Option<std::time::SystemTime>), BootstrapError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                BootstrapError::Secret(format!(
                    "reading {}: {}",
                    self.secret_id,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                ))
            })?;
        let text = out.secret_string().ok_or_else(|| {
            BootstrapError::Secret(format!("{} has no string value", self.secret_id))
        })?;
        let written_at = out
            .created_date()
            .and_then(|d| std::time::SystemTime::try_from(*d).ok());
        Ok((text.to_owned(), written_at))
    }

    /// The secret and when its current version was written (when Secrets Manager says).
    pub async fn read_dated(
        &self,
    ) -> Result<(Map<String, Value>, Option<std::time::SystemTime>), BootstrapError> {
        let (text, written_at) = self.read_text().await?;
        // Never quote the text: it holds keys.
        match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Ok((map, written_at)),
            _ => Err(BootstrapError::Secret(format!(
                "{} is not a JSON object",
                self.secret_id
            ))),
        }
    }

    /// The secret parsed as the functions parse it ([`platform_config::SigningCredential`],
    /// [`platform_config::ReadCredential`], …). Errors name the secret and the field, never a
    /// value.
    pub async fn read_as<T: platform_config::SecretKind>(&self) -> Result<T, BootstrapError> {
        let (text, _) = self.read_text().await?;
        T::from_json(&text).map_err(|e| BootstrapError::Secret(format!("{}: {e}", self.secret_id)))
    }

    pub async fn write(&self, map: &Map<String, Value>) -> Result<(), BootstrapError> {
        let text = Value::Object(map.clone()).to_string();
        self.client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(text)
            .send()
            .await
            .map_err(|e| {
                BootstrapError::Secret(format!(
                    "writing {}: {}",
                    self.secret_id,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }
}

/// A Dfns client acting as the signing service account (its token and key, from the signing
/// secret).
pub fn signing_client(
    credential: &SigningCredential,
    base_url: &str,
) -> Result<DfnsClient, BootstrapError> {
    let signer = dfns_client::KeySigner::from_pkcs8_pem(
        credential.credential_id.expose_secret(),
        &credential.private_key_pem,
    )
    .map_err(|e| BootstrapError::Invalid(format!("service account key unusable: {e}")))?;
    Ok(DfnsClient::new(
        dfns_client::ClientConfig::new(credential.token.clone(), Some(std::sync::Arc::new(signer)))
            .with_base_url(base_url.to_owned()),
    )?)
}

/// The webhook secret, refused (nothing changed) when it holds a field of the signing or
/// read-only secret: the webhook receiver reads it, and must not hold those.
async fn read_webhook_secret(
    secret: &JsonSecretStore,
) -> Result<(Map<String, Value>, Option<std::time::SystemTime>), BootstrapError> {
    let (map, written_at) = secret.read_dated().await?;
    let credentials: Vec<&str> = CREDENTIAL_FIELDS
        .iter()
        .copied()
        .filter(|f| map.contains_key(*f))
        .collect();
    if !credentials.is_empty() {
        return Err(BootstrapError::Invalid(format!(
            "{} holds {}: it is not the webhook secret (the webhook receiver reads it, and must \
             not hold Dfns credentials); give the webhook secret's id",
            secret.secret_id,
            credentials.join(", ")
        )));
    }
    Ok((map, written_at))
}

/// The Dfns user id a bearer token was issued to (claim `https://custom/app_metadata.userId`).
/// Read without verifying the signature: Dfns verifies it; this only tells whose token it is.
pub fn token_user_id(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("https://custom/app_metadata")?
        .get("userId")?
        .as_str()
        .map(str::to_owned)
}

/// Operations granted to a service account, from `GET /auth/service-accounts/{id}` with its own
/// `token` (a read Dfns allows a service account on itself). Not in `dfns-client` yet, hence
/// plain HTTP here.
pub async fn service_account_operations(
    base_url: &str,
    token: &SecretString,
    user_id: &str,
) -> Result<BTreeSet<String>, BootstrapError> {
    let url = format!(
        "{}/auth/service-accounts/{}",
        base_url.trim_end_matches('/'),
        user_id
    );
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .map_err(|e| BootstrapError::Invalid(format!("reading the service account: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(BootstrapError::Invalid(format!(
            "reading the service account {user_id}: HTTP {status}"
        )));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| BootstrapError::Invalid(format!("service account record: {e}")))?;
    let mut operations = BTreeSet::new();
    let mut add_list = |list: Option<&Value>| {
        for op in list.and_then(Value::as_array).into_iter().flatten() {
            if let Some(op) = op.as_str() {
                operations.insert(op.to_owned());
            }
        }
    };
    let info = &body["userInfo"];
    add_list(info.get("permissions"));
    let assignments = info
        .get("permissionAssignments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            body.get("accessTokens")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|t| t.get("permissionAssignments").and_then(Value::as_array))
                .flatten(),
        );
    for assignment in assignments {
        add_list(assignment.get("operations"));
    }
    Ok(operations)
}

/// Why the service account could approve something, unbind a wallet from its rules or override
/// them, from its operations ([`DANGEROUS_OPERATIONS`]) and the active policies. Empty = it
/// cannot.
pub fn approval_risks(
    service_account: &str,
    operations: &BTreeSet<String>,
    policies: &[Policy],
) -> Vec<String> {
    let mut risks = Vec::new();
    for (operation, why) in DANGEROUS_OPERATIONS {
        if operations.contains(*operation) {
            risks.push(format!(
                "service account {service_account} holds {operation}: it could {why}"
            ));
        }
    }
    for policy in policies {
        let PolicyAction::RequestApproval {
            approval_groups, ..
        } = &policy.action
        else {
            continue;
        };
        for group in approval_groups {
            let name = group.name.as_deref().unwrap_or("(unnamed)");
            if group.service_accounts_can_approve == Some(true) {
                risks.push(format!(
                    "policy {} ({}) group {name} lets service accounts approve",
                    policy.id, policy.name
                ));
            }
            let named = group
                .approvers
                .user_id
                .as_ref()
                .is_some_and(|l| l.values.iter().any(|u| u.as_str() == service_account));
            if named {
                risks.push(format!(
                    "policy {} ({}) group {name} names the service account as an approver",
                    policy.id, policy.name
                ));
            }
        }
    }
    risks
}

/// Why the read-only service account (`read_only`, holding `operations`) is not read-only, given
/// the signing service account (`signing`) and the officers. Empty = it can only read.
///
/// An operation is a read when its name ends in `:Read` (`Wallets:Read`,
/// `Policies:Approvals:Read`, …); each other one is a finding. The account must also be another
/// Dfns user than the signing service account and than every officer (the read-only secret must
/// not carry their tokens).
pub fn read_only_risks(
    read_only: &str,
    signing: &str,
    officers: &[String],
    operations: &BTreeSet<String>,
) -> Vec<String> {
    let mut risks = Vec::new();
    if read_only == signing {
        risks.push(format!(
            "the read-only secret holds the signing service account's token ({signing}): it \
             must be a second service account's"
        ));
    }
    if officers.iter().any(|o| o == read_only) {
        risks.push(format!(
            "the read-only secret holds the token of officer {read_only}: it must be a second \
             service account's"
        ));
    }
    for operation in operations.iter().filter(|o| !is_read(o)) {
        risks.push(format!(
            "read-only service account {read_only} holds {operation}, which is not a read"
        ));
    }
    risks
}

/// Whether a Dfns operation only reads (its name ends in `:Read`).
fn is_read(operation: &str) -> bool {
    operation.ends_with(":Read")
}

/// The compliance policy the plan asks for.
pub fn compliance_policy(plan: &Plan) -> PolicyBody {
    PolicyBody::compliance_review(
        plan.policy_name.clone(),
        plan.officers.iter().map(|o| UserId::new(o.as_str())),
        plan.quorum,
        plan.auto_reject_minutes,
    )
}

/// Runs the setup (see the crate docs). `base_url` and `signing` are the signing service
/// account's (`dfns` acts as it); `read_only` is the read-only secret (only read, for step 2);
/// `webhook_secret` is the webhook secret (read, and written in step 4).
pub async fn run(
    dfns: &DfnsClient,
    base_url: &str,
    signing: &SigningCredential,
    read_only: &JsonSecretStore,
    webhook_secret: &JsonSecretStore,
    plan: &Plan,
) -> Result<Report, BootstrapError> {
    let mut report = Report::default();
    if plan.officers.is_empty() {
        return Err(BootstrapError::Invalid(
            "no compliance officers given (their Dfns user ids)".into(),
        ));
    }
    if plan.quorum == 0 || plan.quorum as usize > plan.officers.len() {
        return Err(BootstrapError::Invalid(format!(
            "quorum {} with {} officer(s)",
            plan.quorum,
            plan.officers.len()
        )));
    }
    let url = reqwest::Url::parse(&plan.webhook_url)
        .map_err(|e| BootstrapError::Invalid(format!("webhook URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(BootstrapError::Invalid(
            "webhook URL must be http(s)".into(),
        ));
    }
    // Read (and checked) before anything changes.
    let read_credential: platform_config::ReadCredential = read_only.read_as().await?;
    let (mut secret_map, _) = read_webhook_secret(webhook_secret).await?;

    // 1. The signing service account must not be able to approve anything.
    let sa = token_user_id(signing.token.expose_secret()).ok_or_else(|| {
        BootstrapError::Invalid("the service-account token names no Dfns user".into())
    })?;
    if plan.officers.contains(&sa) {
        return Err(BootstrapError::ServiceAccountCanApprove(vec![format!(
            "the officers include the service account {sa}"
        )]));
    }
    let operations = service_account_operations(base_url, &signing.token, &sa).await?;
    let policies: Vec<Policy> = dfns
        .list_policies(&PoliciesQuery {
            status: Some(PolicyStatus::Active),
            page_size: None,
        })
        .try_collect()
        .await?;
    let risks = approval_risks(&sa, &operations, &policies);
    if !risks.is_empty() {
        return Err(BootstrapError::ServiceAccountCanApprove(risks));
    }
    report.ok(format!(
        "service account {sa} cannot approve, unbind or override the rules ({} operations, {} \
         active policies checked)",
        operations.len(),
        policies.len()
    ));

    // 2. The read-only service account must only read. Whose token it is first: the signing
    // account's or an officer's is refused as such (an officer's account is no service account
    // to read the operations of).
    let ro = token_user_id(read_credential.token.expose_secret()).ok_or_else(|| {
        BootstrapError::Invalid(format!(
            "the read-only token ({}) names no Dfns user",
            read_only.secret_id
        ))
    })?;
    let risks = read_only_risks(&ro, &sa, &plan.officers, &BTreeSet::new());
    if !risks.is_empty() {
        return Err(BootstrapError::ReadOnlyAccountCanWrite(risks));
    }
    let read_operations = service_account_operations(base_url, &read_credential.token, &ro).await?;
    let risks = read_only_risks(&ro, &sa, &plan.officers, &read_operations);
    if !risks.is_empty() {
        return Err(BootstrapError::ReadOnlyAccountCanWrite(risks));
    }
    report.ok(format!(
        "read-only service account {ro} can only read ({} operations checked, all reads); it is \
         neither the signing service account nor an officer",
        read_operations.len()
    ));

    // 3. The compliance policy, found by name.
    let wanted = compliance_policy(plan);
    match policies.iter().find(|p| p.name == plan.policy_name) {
        Some(existing) => {
            let mut current = existing.body();
            current.name = wanted.name.clone();
            if current == wanted {
                report.ok(format!("compliance policy {} exists", existing.id));
            } else {
                // Not changed here: the change itself would wait for the officers.
                report.ok(format!(
                    "compliance policy {} exists but differs from this plan (officers, quorum or \
                     rule); left as is — change it in Dfns with the officers' approval",
                    existing.id
                ));
            }
            if existing.activity_kind != ActivityKind::PoliciesModify {
                return Err(BootstrapError::Invalid(format!(
                    "policy {} is named {:?} but is not a Policies:Modify policy",
                    existing.id, plan.policy_name
                )));
            }
        }
        None if plan.dry_run => report.changed(format!(
            "would create the compliance policy {:?} (Policies:Modify, AlwaysTrigger, \
             RequestApproval by {} officer(s), quorum {})",
            plan.policy_name,
            plan.officers.len(),
            plan.quorum
        )),
        None => {
            let created = dfns.create_policy(&wanted).await?;
            report.changed(format!("created the compliance policy {}", created.id));
        }
    }

    // 4. The webhook and its secret.
    let stored_secret = secret_map
        .get(FIELD_WEBHOOK_SECRET)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.trim().is_empty() && s.trim() != WEBHOOK_SECRET_PLACEHOLDER);
    let webhooks: Vec<_> = dfns.list_webhooks().try_collect().await?;
    let existing = webhooks.iter().find(|w| w.url == plan.webhook_url);
    let wanted_events: BTreeSet<String> = WEBHOOK_EVENTS.iter().map(|e| e.to_string()).collect();
    match existing {
        Some(webhook) if stored_secret => {
            let events: BTreeSet<String> = webhook.events.iter().map(|e| e.to_string()).collect();
            let enabled = webhook.status == WebhookStatus::Enabled;
            let all_events = events.contains("*") || wanted_events.is_subset(&events);
            if enabled && all_events {
                report.ok(format!(
                    "webhook {} to {} exists; its secret is stored",
                    webhook.id, webhook.url
                ));
            } else if plan.dry_run {
                report.changed(format!(
                    "would enable webhook {} and subscribe it to the platform's events",
                    webhook.id
                ));
            } else {
                dfns.update_webhook(
                    &webhook.id,
                    &UpdateWebhook {
                        events: Some(WEBHOOK_EVENTS.to_vec()),
                        status: Some(WebhookStatus::Enabled),
                        ..Default::default()
                    },
                )
                .await?;
                report.changed(format!(
                    "enabled webhook {} and subscribed it to the platform's events",
                    webhook.id
                ));
            }
        }
        _ if plan.dry_run => {
            if let Some(webhook) = existing {
                report.changed(format!(
                    "would delete webhook {} (its secret is not stored) and create it again",
                    webhook.id
                ));
            } else {
                report.changed(format!("would create a webhook to {}", plan.webhook_url));
            }
            report.changed(format!(
                "would store the webhook secret as {FIELD_WEBHOOK_SECRET} in {}",
                webhook_secret.secret_id
            ));
        }
        _ => {
            if let Some(webhook) = existing {
                dfns.delete_webhook(&webhook.id).await?;
                report.changed(format!(
                    "deleted webhook {} (its secret was not stored)",
                    webhook.id
                ));
            }
            let created = dfns
                .create_webhook(&CreateWebhook {
                    url: plan.webhook_url.clone(),
                    events: WEBHOOK_EVENTS.to_vec(),
                    status: Some(WebhookStatus::Enabled),
                    description: Some(WEBHOOK_DESCRIPTION.into()),
                })
                .await?;
            report.changed(format!(
                "created webhook {} to {}",
                created.webhook.id, created.webhook.url
            ));
            secret_map.insert(
                FIELD_WEBHOOK_SECRET.to_owned(),
                Value::String(created.secret.expose_secret().to_owned()),
            );
            webhook_secret.write(&secret_map).await?;
            report.changed(format!(
                "stored the webhook secret as {FIELD_WEBHOOK_SECRET} in {} (other fields kept)",
                webhook_secret.secret_id
            ));
        }
    }
    Ok(report)
}

/// Whether `value` can be a webhook's HMAC key for the functions (as `platform-config` decides:
/// [`platform_config::webhook_secret_is_usable`]).
fn usable_webhook_secret(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .filter(|s| platform_config::webhook_secret_is_usable(s))
}

/// Phase 1 of a webhook-secret rotation: a second webhook to `webhook_url` with the platform's
/// events, its secret written as [`FIELD_WEBHOOK_SECRET_NEXT`] and its id as
/// [`FIELD_WEBHOOK_NEXT_ID`] in the webhook secret `secret` (other fields kept). From then on both webhooks deliver, each signed
/// with its own secret; the functions accept either once they have re-read the secret (within
/// `SECRET_REFRESH_SECONDS`), and apply an event delivered twice once.
///
/// Needs the first-time setup done ([`run`]: a webhook to the URL and its secret stored). A
/// second run while the rotation is under way changes nothing. If the webhook recorded as the
/// next one no longer exists, a new one is created and its secret replaces the next one. If a
/// run stops between creating the webhook and writing the secret, that webhook's secret is lost:
/// the next run creates another, and [`promote_webhook`] deletes the orphan with the old one.
pub async fn rotate_webhook(
    dfns: &DfnsClient,
    secret: &JsonSecretStore,
    webhook_url: &str,
    dry_run: bool,
) -> Result<Report, BootstrapError> {
    let mut report = Report::default();
    let (mut secret_map, _) = read_webhook_secret(secret).await?;
    let webhooks: Vec<_> = dfns.list_webhooks().try_collect().await?;
    let to_url: Vec<_> = webhooks.iter().filter(|w| w.url == webhook_url).collect();
    if usable_webhook_secret(secret_map.get(FIELD_WEBHOOK_SECRET)).is_none() || to_url.is_empty() {
        return Err(BootstrapError::Invalid(format!(
            "no webhook to {webhook_url} with its secret stored as {FIELD_WEBHOOK_SECRET}: run \
             bootstrap without --rotate-webhook first (Deploy, step 4)"
        )));
    }
    let next_secret = secret_map.get(FIELD_WEBHOOK_SECRET_NEXT);
    let next_id = secret_map
        .get(FIELD_WEBHOOK_NEXT_ID)
        .and_then(Value::as_str);
    match (next_secret, next_id) {
        (Some(_), None) => {
            return Err(BootstrapError::Invalid(format!(
                "{FIELD_WEBHOOK_SECRET_NEXT} is set but bootstrap did not record which webhook it \
                 belongs to (a rotation by hand?): finish that rotation by hand, or remove \
                 {FIELD_WEBHOOK_SECRET_NEXT} and run again"
            )));
        }
        (Some(_), Some(id)) if to_url.iter().any(|w| w.id.as_str() == id) => {
            usable_webhook_secret(next_secret).ok_or_else(|| {
                BootstrapError::Invalid(format!(
                    "{FIELD_WEBHOOK_SECRET_NEXT} is not a usable webhook secret (placeholder or \
                     too short): remove it and run again"
                ))
            })?;
            report.ok(format!(
                "rotation under way: webhook {id} to {webhook_url} holds the next secret \
                 ({FIELD_WEBHOOK_SECRET_NEXT}); run --promote-webhook once SECRET_REFRESH_SECONDS \
                 have passed since it was stored"
            ));
            return Ok(report);
        }
        (Some(_), Some(id)) => report.ok(format!(
            "webhook {id}, recorded as holding {FIELD_WEBHOOK_SECRET_NEXT}, no longer exists: a \
             new one replaces it"
        )),
        (None, _) => {}
    }
    if dry_run {
        report.changed(format!(
            "would create a second webhook to {webhook_url} (the platform's events)"
        ));
        report.changed(format!(
            "would store its secret as {FIELD_WEBHOOK_SECRET_NEXT} (and its id) in {} (other \
             fields kept)",
            secret.secret_id
        ));
        return Ok(report);
    }
    let created = dfns
        .create_webhook(&CreateWebhook {
            url: webhook_url.to_owned(),
            events: WEBHOOK_EVENTS.to_vec(),
            status: Some(WebhookStatus::Enabled),
            description: Some(WEBHOOK_DESCRIPTION.into()),
        })
        .await?;
    report.changed(format!(
        "created webhook {} to {} (the next one)",
        created.webhook.id, created.webhook.url
    ));
    secret_map.insert(
        FIELD_WEBHOOK_SECRET_NEXT.to_owned(),
        Value::String(created.secret.expose_secret().to_owned()),
    );
    secret_map.insert(
        FIELD_WEBHOOK_NEXT_ID.to_owned(),
        Value::String(created.webhook.id.as_str().to_owned()),
    );
    secret.write(&secret_map).await?;
    report.changed(format!(
        "stored its secret as {FIELD_WEBHOOK_SECRET_NEXT} in {} (other fields kept)",
        secret.secret_id
    ));
    Ok(report)
}

/// Phase 2 of a webhook-secret rotation, once every container has read the next secret: deletes
/// every other webhook to `webhook_url` (the old one, and any orphan of an interrupted phase 1),
/// then moves [`FIELD_WEBHOOK_SECRET_NEXT`] into [`FIELD_WEBHOOK_SECRET`] and removes it and
/// [`FIELD_WEBHOOK_NEXT_ID`] in the webhook secret `secret` (other fields kept). Deleting first: a run stopped in between is
/// finished by the next one. Nothing to do (no rotation under way): changes nothing.
///
/// Refuses, changing nothing, while the webhook secret's current version is younger than
/// `refresh` (`SECRET_REFRESH_SECONDS`): a container that had not re-read it would refuse the new
/// webhook's deliveries until it did.
pub async fn promote_webhook(
    dfns: &DfnsClient,
    secret: &JsonSecretStore,
    webhook_url: &str,
    refresh: std::time::Duration,
    dry_run: bool,
) -> Result<Report, BootstrapError> {
    let mut report = Report::default();
    let (mut secret_map, written_at) = read_webhook_secret(secret).await?;
    let Some(next_value) = secret_map.get(FIELD_WEBHOOK_SECRET_NEXT) else {
        report.ok(format!(
            "no webhook rotation under way ({FIELD_WEBHOOK_SECRET_NEXT} is not set)"
        ));
        return Ok(report);
    };
    let next_value = usable_webhook_secret(Some(next_value))
        .ok_or_else(|| {
            BootstrapError::Invalid(format!(
                "{FIELD_WEBHOOK_SECRET_NEXT} is not a usable webhook secret (placeholder or too \
                 short): nothing promoted"
            ))
        })?
        .to_owned();
    let next_id = secret_map
        .get(FIELD_WEBHOOK_NEXT_ID)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            BootstrapError::Invalid(format!(
                "{FIELD_WEBHOOK_SECRET_NEXT} is set but bootstrap did not record which webhook it \
                 belongs to (a rotation by hand?): nothing promoted; finish that rotation by hand"
            ))
        })?
        .to_owned();
    let webhooks: Vec<_> = dfns.list_webhooks().try_collect().await?;
    let to_url: Vec<_> = webhooks.iter().filter(|w| w.url == webhook_url).collect();
    if !to_url.iter().any(|w| w.id.as_str() == next_id) {
        return Err(BootstrapError::Invalid(format!(
            "webhook {next_id}, whose secret is {FIELD_WEBHOOK_SECRET_NEXT}, is not a webhook to \
             {webhook_url} (deleted?): nothing promoted; run --rotate-webhook again"
        )));
    }
    if let Some(written_at) = written_at {
        let age = std::time::SystemTime::now()
            .duration_since(written_at)
            .unwrap_or_default();
        if age < refresh {
            return Err(BootstrapError::Invalid(format!(
                "the webhook secret was written {}s ago; functions re-read it every {}s \
                 (SECRET_REFRESH_SECONDS): nothing promoted; run again in {}s",
                age.as_secs(),
                refresh.as_secs(),
                (refresh - age).as_secs().max(1)
            )));
        }
    }
    for old in to_url.iter().filter(|w| w.id.as_str() != next_id) {
        if dry_run {
            report.changed(format!(
                "would delete the old webhook {} to {}",
                old.id, old.url
            ));
        } else {
            dfns.delete_webhook(&old.id).await?;
            report.changed(format!("deleted the old webhook {} to {}", old.id, old.url));
        }
    }
    if dry_run {
        report.changed(format!(
            "would move {FIELD_WEBHOOK_SECRET_NEXT} (webhook {next_id}) into \
             {FIELD_WEBHOOK_SECRET} in {} (other fields kept)",
            secret.secret_id
        ));
        return Ok(report);
    }
    secret_map.insert(FIELD_WEBHOOK_SECRET.to_owned(), Value::String(next_value));
    secret_map.remove(FIELD_WEBHOOK_SECRET_NEXT);
    secret_map.remove(FIELD_WEBHOOK_NEXT_ID);
    secret.write(&secret_map).await?;
    report.changed(format!(
        "moved {FIELD_WEBHOOK_SECRET_NEXT} (webhook {next_id}) into {FIELD_WEBHOOK_SECRET} in {} \
         (other fields kept)",
        secret.secret_id
    ));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfns_client::common::InList;
    use dfns_client::policies::{ApprovalGroup, Approvers};

    fn policy(groups: Vec<ApprovalGroup>) -> Policy {
        serde_json::from_value(serde_json::json!({
            "id": "plc-1", "name": "p", "status": "Active", "activityKind": "Wallets:Sign",
            "rule": {"kind": "AlwaysTrigger"},
            "action": {"kind": "RequestApproval", "approvalGroups": groups},
        }))
        .unwrap()
    }

    fn group(approvers: &[&str], service_accounts: Option<bool>) -> ApprovalGroup {
        ApprovalGroup {
            name: Some("g".into()),
            quorum: 1,
            approvers: Approvers {
                user_id: Some(InList::new(approvers.iter().map(|a| UserId::new(*a)))),
                ..Default::default()
            },
            initiator_can_approve: None,
            service_accounts_can_approve: service_accounts,
        }
    }

    #[test]
    fn each_way_a_service_account_could_approve_is_found() {
        let none = BTreeSet::new();
        let safe = policy(vec![group(&["us-officer"], Some(false))]);
        assert!(approval_risks("us-sa", &none, std::slice::from_ref(&safe)).is_empty());

        let approve: BTreeSet<String> = [APPROVE_PERMISSION.to_owned()].into();
        assert_eq!(
            approval_risks("us-sa", &approve, std::slice::from_ref(&safe)).len(),
            1
        );
        for (operation, _) in DANGEROUS_OPERATIONS {
            let held: BTreeSet<String> = ["Wallets:Read".to_owned(), operation.to_string()].into();
            let risks = approval_risks("us-sa", &held, std::slice::from_ref(&safe));
            assert_eq!(risks.len(), 1, "{operation}: {risks:?}");
            assert!(risks[0].contains(operation), "{risks:?}");
        }
        let flag = policy(vec![group(&["us-officer"], Some(true))]);
        assert_eq!(approval_risks("us-sa", &none, &[flag]).len(), 1);
        let named = policy(vec![group(&["us-sa"], None)]);
        assert_eq!(approval_risks("us-sa", &none, &[named]).len(), 1);
    }

    #[test]
    fn the_read_only_account_may_hold_reads_only_and_be_nobody_else() {
        let officers = vec!["us-officer".to_owned()];
        let reads: BTreeSet<String> = [
            "Wallets:Read",
            "Wallets:Transfers:Read",
            "Policies:Read",
            "Policies:Approvals:Read",
        ]
        .map(str::to_owned)
        .into();
        assert!(read_only_risks("us-ro", "us-sa", &officers, &reads).is_empty());

        for write in [
            "Wallets:Transfers:Create",
            "Policies:Update",
            "Auth:Action:Sign",
            "Wallets:ReadSignature",
            APPROVE_PERMISSION,
        ] {
            let mut held = reads.clone();
            held.insert(write.to_owned());
            let risks = read_only_risks("us-ro", "us-sa", &officers, &held);
            assert_eq!(risks.len(), 1, "{write}: {risks:?}");
            assert!(risks[0].contains(write), "{risks:?}");
        }
        let same = read_only_risks("us-sa", "us-sa", &officers, &reads);
        assert_eq!(same.len(), 1, "{same:?}");
        assert!(same[0].contains("signing service account"), "{same:?}");
        let officer = read_only_risks("us-officer", "us-sa", &officers, &reads);
        assert_eq!(officer.len(), 1, "{officer:?}");
        assert!(officer[0].contains("officer us-officer"), "{officer:?}");
    }

    #[test]
    fn the_token_names_its_user() {
        let claims = serde_json::json!({"https://custom/app_metadata": {"userId": "us-42"}});
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(
            token_user_id(&format!("e30.{payload}.sig")).as_deref(),
            Some("us-42")
        );
        assert_eq!(token_user_id("not-a-jwt"), None);
    }
}

// Tests of the crate as its callers use it, against the stand-ins and the Dfns emulator.
// Kept in the library rather than tests/: an integration test would make cargo link the binary
// too (~45 MB of CI disk each) for nothing.
#[cfg(test)]
mod bootstrap_tests;
