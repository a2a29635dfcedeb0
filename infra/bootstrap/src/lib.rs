//! `bootstrap`: the one-time, idempotent setup of a Dfns organisation for the platform.
//!
//! 1. **The service account cannot approve, unbind or override the rules** (refuse to go on
//!    otherwise, exit status 2, nothing changed): it holds none of [`DANGEROUS_OPERATIONS`]
//!    (`Policies:Approvals:Approve`, untagging or updating wallets, assigning or changing
//!    permissions, managing users or service accounts, delegating keys), and no active policy's
//!    approval group lets service accounts approve or names the service account as an approver.
//! 2. **The compliance policy**: a `Policies:Modify` policy, rule `AlwaysTrigger`, action
//!    `RequestApproval` by the compliance officers, no filter (it governs every policy, itself
//!    included). Found by name when it exists; never changed by a later run (a change would itself
//!    need the officers' approval — do it in the Dfns dashboard).
//! 3. **The webhook** to the deployed URL, and its secret stored as `dfnsWebhookSecret` in the
//!    platform secret (merged into the JSON: other fields are kept). Dfns returns a webhook's secret
//!    only when it is created, so a webhook that exists while the platform secret lacks its secret
//!    is deleted and created again.
//!
//!
//! **Rotating the webhook secret without a gap** ([`rotate_webhook`], then [`promote_webhook`]):
//! Dfns shows a webhook's secret only at creation and signs each webhook's deliveries with its
//! own secret, so a rotation is a second webhook to the same URL whose secret goes into
//! `dfnsWebhookSecretNext` (the receiver accepts deliveries under either); once every container
//! has read that (`SECRET_REFRESH_SECONDS`), the old webhook is deleted and the next secret
//! becomes `dfnsWebhookSecret`.
//!
//! A second run changes nothing. `dry_run` reads everything and changes nothing, saying what it
//! would do. The Dfns credentials come from the platform secret itself.

use std::collections::BTreeSet;

use base64::Engine as _;
use dfns_client::policies::PoliciesQuery;
use dfns_client::webhooks::{CreateWebhook, UpdateWebhook, WebhookStatus};
use dfns_client::{
    ActivityKind, DfnsClient, Policy, PolicyAction, PolicyBody, PolicyStatus, UserId,
    WebhookEventKind,
};
use futures::TryStreamExt as _;
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

/// Platform-secret field names (the contract in the brief; `platform-config` reads the same).
pub const FIELD_SERVICE_ACCOUNT_TOKEN: &str = "dfnsServiceAccountToken";
pub const FIELD_CREDENTIAL_ID: &str = "dfnsCredentialId";
pub const FIELD_PRIVATE_KEY_PEM: &str = "dfnsPrivateKeyPem";
pub const FIELD_WEBHOOK_SECRET: &str = "dfnsWebhookSecret";
/// The next webhook's secret during a rotation (the functions accept deliveries under either).
pub const FIELD_WEBHOOK_SECRET_NEXT: &str = "dfnsWebhookSecretNext";
/// Bootstrap's own record, beside [`FIELD_WEBHOOK_SECRET_NEXT`] and written with it in one
/// `PutSecretValue`, of the id of the webhook that secret belongs to: the one webhook to the URL
/// that [`promote_webhook`] keeps. Not a `dfns…` field: the functions never read it (they ignore
/// fields they do not know). In the secret rather than in the webhook's description so that the
/// secret and the id of its webhook cannot disagree.
pub const FIELD_WEBHOOK_NEXT_ID: &str = "bootstrapWebhookNextId";
/// What the README says to put in `dfnsWebhookSecret` before bootstrap (the functions refuse an
/// empty field); bootstrap treats it as "no secret stored".
pub const WEBHOOK_SECRET_PLACEHOLDER: &str = "set-by-bootstrap";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Each finding (a dangerous operation held, a policy group that lets it approve).
    #[error(
        "refusing to continue: the service account can approve, unbind or override the rules ({})",
        .0.join("; ")
    )]
    ServiceAccountCanApprove(Vec<String>),
    #[error("invalid setup: {0}")]
    Invalid(String),
    #[error("Dfns: {0}")]
    Dfns(#[from] dfns_client::Error),
    #[error("Secrets Manager: {0}")]
    Secret(String),
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

/// The platform secret in Secrets Manager, read and written as a JSON object.
pub struct PlatformSecretStore {
    pub client: aws_sdk_secretsmanager::Client,
    pub secret_id: String,
}

impl PlatformSecretStore {
    pub async fn read(&self) -> Result<Map<String, Value>, BootstrapError> {
        Ok(self.read_dated().await?.0)
    }

    /// The secret and when its current version was written (when Secrets Manager says).
    pub async fn read_dated(
        &self,
    ) -> Result<(Map<String, Value>, Option<std::time::SystemTime>), BootstrapError> {
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
        let text = out
            .secret_string()
            .ok_or_else(|| BootstrapError::Secret("the secret has no string value".into()))?;
        let written_at = out
            .created_date()
            .and_then(|d| std::time::SystemTime::try_from(*d).ok());
        // Never quote the text: it holds keys.
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok((map, written_at)),
            _ => Err(BootstrapError::Secret(
                "the platform secret is not a JSON object".into(),
            )),
        }
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

/// The service account's Dfns credentials, from the platform secret.
pub struct Credentials {
    pub token: SecretString,
    pub credential_id: SecretString,
    pub private_key_pem: SecretString,
}

impl Credentials {
    pub fn from_secret(map: &Map<String, Value>) -> Result<Self, BootstrapError> {
        let field = |name: &str| {
            map.get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.trim().is_empty())
                .map(|v| SecretString::from(v.to_owned()))
                .ok_or_else(|| {
                    BootstrapError::Invalid(format!("the platform secret has no `{name}`"))
                })
        };
        Ok(Self {
            token: field(FIELD_SERVICE_ACCOUNT_TOKEN)?,
            credential_id: field(FIELD_CREDENTIAL_ID)?,
            private_key_pem: field(FIELD_PRIVATE_KEY_PEM)?,
        })
    }

    pub fn client(&self, base_url: &str) -> Result<DfnsClient, BootstrapError> {
        let signer = dfns_client::KeySigner::from_pkcs8_pem(
            self.credential_id.expose_secret(),
            &self.private_key_pem,
        )
        .map_err(|e| BootstrapError::Invalid(format!("service account key unusable: {e}")))?;
        Ok(DfnsClient::new(
            dfns_client::ClientConfig::new(self.token.clone(), Some(std::sync::Arc::new(signer)))
                .with_base_url(base_url.to_owned()),
        )?)
    }
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

/// Operations granted to the service account, from `GET /auth/service-accounts/{id}` (a read
/// Dfns allows a service account on itself). Not in `dfns-client` yet, hence plain HTTP here.
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

/// The compliance policy the plan asks for.
pub fn compliance_policy(plan: &Plan) -> PolicyBody {
    PolicyBody::compliance_review(
        plan.policy_name.clone(),
        plan.officers.iter().map(|o| UserId::new(o.as_str())),
        plan.quorum,
        plan.auto_reject_minutes,
    )
}

/// Runs the setup (see the crate docs). `base_url` and the credentials are the service
/// account's; `secret` is the platform secret the credentials came from.
pub async fn run(
    dfns: &DfnsClient,
    base_url: &str,
    credentials: &Credentials,
    secret: &PlatformSecretStore,
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

    // 1. The service account must not be able to approve anything.
    let sa = token_user_id(credentials.token.expose_secret()).ok_or_else(|| {
        BootstrapError::Invalid("the service-account token names no Dfns user".into())
    })?;
    if plan.officers.contains(&sa) {
        return Err(BootstrapError::ServiceAccountCanApprove(vec![format!(
            "the officers include the service account {sa}"
        )]));
    }
    let operations = service_account_operations(base_url, &credentials.token, &sa).await?;
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

    // 2. The compliance policy, found by name.
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

    // 3. The webhook and its secret.
    let mut secret_map = secret.read().await?;
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
                secret.secret_id
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
            secret.write(&secret_map).await?;
            report.changed(format!(
                "stored the webhook secret as {FIELD_WEBHOOK_SECRET} in {} (other fields kept)",
                secret.secret_id
            ));
        }
    }
    Ok(report)
}

/// Whether `value` can be a webhook's HMAC key for the functions (as `platform-config` decides:
/// not the placeholder, at least [`platform_config::MIN_WEBHOOK_SECRET_BYTES`]).
fn usable_webhook_secret(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| {
        let s = s.trim();
        s != WEBHOOK_SECRET_PLACEHOLDER && s.len() >= platform_config::MIN_WEBHOOK_SECRET_BYTES
    })
}

/// Phase 1 of a webhook-secret rotation: a second webhook to `webhook_url` with the platform's
/// events, its secret written as [`FIELD_WEBHOOK_SECRET_NEXT`] and its id as
/// [`FIELD_WEBHOOK_NEXT_ID`] (other fields kept). From then on both webhooks deliver, each signed
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
    secret: &PlatformSecretStore,
    webhook_url: &str,
    dry_run: bool,
) -> Result<Report, BootstrapError> {
    let mut report = Report::default();
    let mut secret_map = secret.read().await?;
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
/// [`FIELD_WEBHOOK_NEXT_ID`] (other fields kept). Deleting first: a run stopped in between is
/// finished by the next one. Nothing to do (no rotation under way): changes nothing.
///
/// Refuses, changing nothing, while the platform secret's current version is younger than
/// `refresh` (`SECRET_REFRESH_SECONDS`): a container that had not re-read it would refuse the new
/// webhook's deliveries until it did.
pub async fn promote_webhook(
    dfns: &DfnsClient,
    secret: &PlatformSecretStore,
    webhook_url: &str,
    refresh: std::time::Duration,
    dry_run: bool,
) -> Result<Report, BootstrapError> {
    let mut report = Report::default();
    let (mut secret_map, written_at) = secret.read_dated().await?;
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
                "the platform secret was written {}s ago; functions re-read it every {}s \
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
