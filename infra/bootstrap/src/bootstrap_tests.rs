//! Bootstrap against the Dfns emulator (in process) and moto's Secrets Manager (run through
//! `cargo xtask test`, which exports its endpoint).

use std::time::Duration;

use crate::{
    BootstrapError, Credentials, DEFAULT_POLICY_NAME, FIELD_WEBHOOK_NEXT_ID, FIELD_WEBHOOK_SECRET,
    FIELD_WEBHOOK_SECRET_NEXT, Plan, PlatformSecretStore,
};
use dfns_client::policies::PoliciesQuery;
use dfns_client::webhooks::WebhookVerifier;
use dfns_client::{DfnsClient, PolicyStatus};
use futures::TryStreamExt as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

const WEBHOOK_URL: &str = "https://platform.example/v1/webhooks/dfns";

/// A fresh delivery body (any kind the client parses; `timestampSent` now).
fn delivery() -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    serde_json::to_vec(&json!({
        "id": format!("whe-{}", ulid::Ulid::new().to_string().to_lowercase()),
        "kind": "wallet.offer.received",
        "date": "2026-01-01T00:00:00.000Z",
        "timestampSent": now,
        "data": {}
    }))
    .unwrap()
}

struct Setup {
    emulator: dfns_emulator::RunningEmulator,
    bootstrap: Value,
    secret: PlatformSecretStore,
}

async fn setup() -> Setup {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_some(),
        "no Secrets Manager stand-in: run through `cargo xtask test`"
    );
    let emulator = dfns_emulator::spawn(dfns_emulator::Options::default())
        .await
        .expect("emulator starts");
    let bootstrap = serde_json::to_value(emulator.bootstrap()).unwrap();
    let sa = &bootstrap["serviceAccount"];
    let client = platform_config::aws::secrets_manager_client().await;
    let secret_id = format!("bootstrap-test-{}", ulid::Ulid::new());
    // Before bootstrap (as the README says): the service account's credentials, the placeholder
    // for the webhook secret, and a field
    // the platform does not know, which must survive the merge.
    let initial = json!({
        "dfnsServiceAccountToken": sa["token"],
        "dfnsCredentialId": sa["credId"],
        "dfnsPrivateKeyPem": sa["privateKeyPem"],
        "dfnsWebhookSecret": crate::WEBHOOK_SECRET_PLACEHOLDER,
        "note": "kept",
    });
    client
        .create_secret()
        .name(&secret_id)
        .secret_string(initial.to_string())
        .send()
        .await
        .expect("create the test secret");
    Setup {
        emulator,
        bootstrap,
        secret: PlatformSecretStore { client, secret_id },
    }
}

impl Setup {
    fn plan(&self, dry_run: bool) -> Plan {
        Plan {
            officers: vec![
                self.bootstrap["officers"][0]["userId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                self.bootstrap["officers"][1]["userId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ],
            quorum: 1,
            auto_reject_minutes: None,
            policy_name: DEFAULT_POLICY_NAME.into(),
            webhook_url: WEBHOOK_URL.into(),
            dry_run,
        }
    }

    async fn credentials(&self) -> Credentials {
        Credentials::from_secret(&self.secret.read().await.unwrap()).unwrap()
    }

    async fn dfns(&self) -> DfnsClient {
        self.credentials()
            .await
            .client(&self.emulator.base_url())
            .unwrap()
    }

    async fn run(&self, dry_run: bool) -> Result<crate::Report, BootstrapError> {
        let credentials = self.credentials().await;
        let dfns = credentials.client(&self.emulator.base_url()).unwrap();
        crate::run(
            &dfns,
            &self.emulator.base_url(),
            &credentials,
            &self.secret,
            &self.plan(dry_run),
        )
        .await
    }

    async fn compliance_policies(&self) -> Vec<dfns_client::Policy> {
        let all: Vec<dfns_client::Policy> = self
            .dfns()
            .await
            .list_policies(&PoliciesQuery {
                status: Some(PolicyStatus::Active),
                page_size: None,
            })
            .try_collect()
            .await
            .unwrap();
        all.into_iter()
            .filter(|p| p.name == DEFAULT_POLICY_NAME)
            .collect()
    }

    async fn webhooks(&self) -> Vec<dfns_client::webhooks::Webhook> {
        self.dfns()
            .await
            .list_webhooks()
            .try_collect()
            .await
            .unwrap()
    }

    async fn rotate(&self, dry_run: bool) -> Result<crate::Report, BootstrapError> {
        crate::rotate_webhook(&self.dfns().await, &self.secret, WEBHOOK_URL, dry_run).await
    }

    /// Phase 2, as if `SECRET_REFRESH_SECONDS` were `refresh`.
    async fn promote(
        &self,
        refresh: Duration,
        dry_run: bool,
    ) -> Result<crate::Report, BootstrapError> {
        crate::promote_webhook(
            &self.dfns().await,
            &self.secret,
            WEBHOOK_URL,
            refresh,
            dry_run,
        )
        .await
    }

    /// The secret the emulator signs webhook `id`'s deliveries with (Dfns' side of it).
    fn dfns_side_secret(&self, id: &str) -> String {
        let state = self.emulator.app().state.lock().unwrap();
        state.webhooks[id].secret.clone()
    }

    /// The verifier the webhook function builds from the platform secret as it now stands
    /// (`App::webhook_verifier`: every usable secret, current then next).
    async fn platform_verifier(&self) -> WebhookVerifier {
        let text = Value::Object(self.secret.read().await.unwrap()).to_string();
        let parsed =
            platform_config::PlatformSecret::from_json(&text).expect("the functions read it");
        let mut usable = parsed
            .usable_webhook_secrets()
            .into_iter()
            .map(|s| SecretString::from(s.expose_secret()));
        let first = usable.next().expect("a usable webhook secret");
        usable.fold(WebhookVerifier::new(first), WebhookVerifier::also_accepting)
    }

    /// Whether a delivery signed with `webhook_secret` (as the emulator signs a webhook's
    /// deliveries) verifies.
    async fn delivery_verifies(&self, webhook_secret: &str) -> bool {
        let body = delivery();
        let signature = dfns_emulator::webhooks::signature_header_value(webhook_secret, &body);
        self.platform_verifier()
            .await
            .verify(Some(&signature), &body)
            .is_ok()
    }

    async fn grant(&self, operations: &[&str]) {
        let response = reqwest::Client::new()
            .post(format!("{}/emulator/permissions", self.emulator.base_url()))
            .json(&json!({
                "userId": self.bootstrap["serviceAccount"]["userId"],
                "operations": operations,
            }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
}

#[tokio::test]
async fn first_run_creates_policy_and_webhook_and_a_second_run_changes_nothing() {
    let s = setup().await;

    let first = s.run(false).await.expect("first run");
    assert!(first.changes().len() >= 3, "{:#?}", first.steps);
    let policies = s.compliance_policies().await;
    assert_eq!(policies.len(), 1);
    assert_eq!(
        serde_json::to_value(&policies[0].activity_kind).unwrap(),
        "Policies:Modify"
    );
    assert_eq!(
        serde_json::to_value(&policies[0].rule).unwrap()["kind"],
        "AlwaysTrigger"
    );
    let action = serde_json::to_value(&policies[0].action).unwrap();
    assert_eq!(action["kind"], "RequestApproval");
    let officers = &action["approvalGroups"][0]["approvers"]["userId"]["in"];
    assert_eq!(officers.as_array().unwrap().len(), 2);
    let webhooks = s.webhooks().await;
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0].url, "https://platform.example/v1/webhooks/dfns");

    let stored = s.secret.read().await.unwrap();
    let webhook_secret = stored[FIELD_WEBHOOK_SECRET].as_str().unwrap().to_owned();
    assert!(!webhook_secret.is_empty());
    assert_eq!(stored["note"], "kept", "other fields survive the merge");
    assert_eq!(
        stored["dfnsServiceAccountToken"],
        s.bootstrap["serviceAccount"]["token"]
    );

    let second = s.run(false).await.expect("second run");
    assert_eq!(second.changes(), Vec::<&crate::Step>::new());
    assert_eq!(s.compliance_policies().await.len(), 1);
    assert_eq!(s.webhooks().await.len(), 1);
    assert_eq!(
        s.secret.read().await.unwrap()[FIELD_WEBHOOK_SECRET],
        webhook_secret.as_str()
    );
}

#[tokio::test]
async fn a_dry_run_reports_the_changes_and_makes_none() {
    let s = setup().await;
    let report = s.run(true).await.expect("dry run");
    assert!(report.changes().len() >= 3, "{:#?}", report.steps);
    assert!(
        report
            .changes()
            .iter()
            .all(|s| s.what.starts_with("would "))
    );
    assert!(s.compliance_policies().await.is_empty());
    assert!(s.webhooks().await.is_empty());
    assert_eq!(
        s.secret
            .read()
            .await
            .unwrap()
            .get(FIELD_WEBHOOK_SECRET)
            .and_then(Value::as_str),
        Some(crate::WEBHOOK_SECRET_PLACEHOLDER)
    );
}

#[tokio::test]
async fn a_service_account_with_approval_rights_makes_it_refuse_and_change_nothing() {
    let s = setup().await;
    s.grant(&["Policies:Approvals:Approve"]).await;
    let error = s.run(false).await.expect_err("must refuse");
    let BootstrapError::ServiceAccountCanApprove(reasons) = &error else {
        panic!("{error}");
    };
    assert!(
        reasons[0].contains("Policies:Approvals:Approve"),
        "{reasons:?}"
    );
    assert!(s.compliance_policies().await.is_empty());
    assert!(s.webhooks().await.is_empty());
    // A dry run refuses the same way.
    assert!(matches!(
        s.run(true).await,
        Err(BootstrapError::ServiceAccountCanApprove(_))
    ));
}

/// Issue 12, least privilege: a service account holding any operation that can unbind or
/// override the rules (each of [`crate::DANGEROUS_OPERATIONS`] in turn, on an otherwise
/// least-privilege account) makes bootstrap refuse, name the operation, and change nothing.
#[tokio::test]
async fn each_dangerous_permission_makes_it_refuse_name_it_and_change_nothing() {
    for (operation, _) in crate::DANGEROUS_OPERATIONS {
        let s = setup().await;
        s.grant(&[operation]).await;
        for dry_run in [false, true] {
            let error = s.run(dry_run).await.expect_err("must refuse");
            let BootstrapError::ServiceAccountCanApprove(findings) = &error else {
                panic!("{operation}: {error}");
            };
            assert_eq!(findings.len(), 1, "{operation}: {findings:?}");
            assert!(findings[0].contains(operation), "{findings:?}");
        }
        assert!(s.compliance_policies().await.is_empty(), "{operation}");
        assert!(s.webhooks().await.is_empty(), "{operation}");
        assert_eq!(
            s.secret.read().await.unwrap()[FIELD_WEBHOOK_SECRET],
            crate::WEBHOOK_SECRET_PLACEHOLDER,
            "{operation}: the secret is untouched"
        );
    }
}

#[tokio::test]
async fn a_webhook_whose_secret_was_lost_is_recreated_and_its_new_secret_stored() {
    let s = setup().await;
    s.run(false).await.unwrap();
    let before = s.webhooks().await;
    let mut stored = s.secret.read().await.unwrap();
    stored.insert(
        FIELD_WEBHOOK_SECRET.into(),
        crate::WEBHOOK_SECRET_PLACEHOLDER.into(),
    );
    s.secret.write(&stored).await.unwrap();

    let report = s.run(false).await.unwrap();
    assert!(!report.changes().is_empty());
    let after = s.webhooks().await;
    assert_eq!(after.len(), 1);
    assert_ne!(after[0].id, before[0].id);
    assert!(
        s.secret.read().await.unwrap()[FIELD_WEBHOOK_SECRET]
            .as_str()
            .is_some_and(|v| !v.is_empty() && v != crate::WEBHOOK_SECRET_PLACEHOLDER)
    );
}

#[tokio::test]
async fn a_policy_letting_service_accounts_approve_makes_it_refuse() {
    let s = setup().await;
    let officer = s.bootstrap["officers"][0]["userId"].as_str().unwrap();
    let body: dfns_client::PolicyBody = serde_json::from_value(json!({
        "name": "lenient",
        "activityKind": "Wallets:Sign",
        "rule": {"kind": "TransactionAmountLimit", "configuration": {"limit": 1000, "currency": "USD"}},
        "action": {"kind": "RequestApproval", "approvalGroups": [{
            "name": "anyone", "quorum": 1, "approvers": {"userId": {"in": [officer]}},
            "serviceAccountsCanApprove": true
        }]},
    }))
    .unwrap();
    s.dfns().await.create_policy(&body).await.unwrap();
    let error = s.run(false).await.expect_err("must refuse");
    assert!(
        matches!(&error, BootstrapError::ServiceAccountCanApprove(r) if r[0].contains("lets service accounts approve")),
        "{error}"
    );
    assert!(s.compliance_policies().await.is_empty());
}

/// Issue 12, rotation without a gap, phase 1: after `rotate_webhook` both webhooks exist, the
/// secret holds the old one's as current and the new one's as next (with its id), and a delivery
/// of either webhook, signed as Dfns signs it, verifies with the verifier the functions build
/// from that secret. A dry run first changes nothing; a second run changes nothing.
#[tokio::test]
async fn rotation_adds_a_second_webhook_whose_deliveries_verify_beside_the_old_ones() {
    let s = setup().await;
    s.run(false).await.expect("first-time bootstrap");
    let old = s.webhooks().await;
    assert_eq!(old.len(), 1);
    let old_id = old[0].id.as_str().to_owned();
    let old_secret = s.secret.read().await.unwrap()[FIELD_WEBHOOK_SECRET].clone();
    assert_eq!(old_secret, s.dfns_side_secret(&old_id).as_str());

    let dry = s.rotate(true).await.expect("dry run");
    assert_eq!(dry.changes().len(), 2, "{:#?}", dry.steps);
    assert!(dry.changes().iter().all(|c| c.what.starts_with("would ")));
    assert_eq!(s.webhooks().await.len(), 1, "a dry run creates nothing");
    assert!(
        s.secret
            .read()
            .await
            .unwrap()
            .get(FIELD_WEBHOOK_SECRET_NEXT)
            .is_none(),
        "a dry run writes nothing"
    );

    let report = s.rotate(false).await.expect("phase 1");
    assert_eq!(report.changes().len(), 2, "{:#?}", report.steps);
    let webhooks = s.webhooks().await;
    assert_eq!(webhooks.len(), 2, "{webhooks:?}");
    assert!(webhooks.iter().all(|w| w.url == WEBHOOK_URL));
    let new = webhooks
        .iter()
        .find(|w| w.id.as_str() != old_id)
        .expect("a second webhook");
    let new_id = new.id.as_str().to_owned();
    let events: Vec<String> = new.events.iter().map(|e| e.to_string()).collect();
    let wanted: Vec<String> = crate::WEBHOOK_EVENTS
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(events, wanted, "the new webhook gets the platform's events");
    let stored = s.secret.read().await.unwrap();
    assert_eq!(
        stored[FIELD_WEBHOOK_SECRET], old_secret,
        "current unchanged"
    );
    assert_eq!(
        stored[FIELD_WEBHOOK_SECRET_NEXT],
        s.dfns_side_secret(&new_id).as_str(),
        "next = the new webhook's secret"
    );
    assert_eq!(stored[FIELD_WEBHOOK_NEXT_ID], new_id.as_str());
    assert_eq!(stored["note"], "kept", "other fields survive");
    assert!(
        s.delivery_verifies(&s.dfns_side_secret(&old_id)).await,
        "old webhook's delivery"
    );
    assert!(
        s.delivery_verifies(&s.dfns_side_secret(&new_id)).await,
        "new webhook's delivery"
    );
    assert!(
        !s.delivery_verifies("a-secret-no-webhook-has-0123456789abcdef")
            .await,
        "and only theirs"
    );

    // Repeated: nothing to change, same webhooks, same secret; the ordinary run too.
    let again = s.rotate(false).await.expect("phase 1 again");
    assert_eq!(again.changes(), Vec::<&crate::Step>::new());
    assert_eq!(s.webhooks().await.len(), 2);
    assert_eq!(s.secret.read().await.unwrap(), stored);
    let ordinary = s.run(false).await.expect("ordinary run during a rotation");
    assert_eq!(ordinary.changes(), Vec::<&crate::Step>::new());
    assert_eq!(s.webhooks().await.len(), 2);
    assert_eq!(s.secret.read().await.unwrap(), stored);
}

/// Issue 12, rotation without a gap, phase 2: refused (nothing changed) while the functions may
/// not have read the next secret yet; then `promote_webhook` deletes every other webhook to the
/// URL (the old one and an orphan of an interrupted phase 1), the next secret becomes the current
/// one and the next field (and its id) is gone: the new webhook's deliveries verify, the old
/// one's no longer do. A dry run first changes nothing; a second run changes nothing.
#[tokio::test]
async fn promotion_keeps_only_the_new_webhook_and_its_secret() {
    let s = setup().await;
    s.run(false).await.expect("first-time bootstrap");
    let old_id = s.webhooks().await[0].id.as_str().to_owned();
    let old_dfns_secret = s.dfns_side_secret(&old_id);
    s.rotate(false).await.expect("phase 1");
    let rotating = s.secret.read().await.unwrap();
    let new_id = rotating[FIELD_WEBHOOK_NEXT_ID].as_str().unwrap().to_owned();
    let next_secret = rotating[FIELD_WEBHOOK_SECRET_NEXT].clone();
    // An orphan: a phase 1 that created its webhook and stopped before storing the secret.
    let orphan = s
        .dfns()
        .await
        .create_webhook(&dfns_client::webhooks::CreateWebhook {
            url: WEBHOOK_URL.into(),
            events: crate::WEBHOOK_EVENTS.to_vec(),
            status: None,
            description: None,
        })
        .await
        .unwrap();
    assert_eq!(s.webhooks().await.len(), 3);
    assert!(
        s.delivery_verifies(&old_dfns_secret).await,
        "before: old verifies"
    );

    // Too early: a container may still hold only the old secret.
    let early = s
        .promote(Duration::from_secs(3600), false)
        .await
        .expect_err("refused before SECRET_REFRESH_SECONDS");
    assert!(
        early.to_string().contains("SECRET_REFRESH_SECONDS"),
        "{early}"
    );
    assert_eq!(s.webhooks().await.len(), 3, "nothing deleted");
    assert_eq!(s.secret.read().await.unwrap(), rotating, "nothing written");

    let dry = s.promote(Duration::ZERO, true).await.expect("dry run");
    assert_eq!(dry.changes().len(), 3, "{:#?}", dry.steps);
    assert!(dry.changes().iter().all(|c| c.what.starts_with("would ")));
    assert_eq!(s.webhooks().await.len(), 3, "a dry run deletes nothing");
    assert_eq!(
        s.secret.read().await.unwrap(),
        rotating,
        "a dry run writes nothing"
    );

    let report = s.promote(Duration::ZERO, false).await.expect("phase 2");
    assert_eq!(report.changes().len(), 3, "{:#?}", report.steps);
    let left = s.webhooks().await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        left[0].id.as_str(),
        new_id,
        "the new webhook is the one kept"
    );
    assert_ne!(orphan.webhook.id.as_str(), new_id);
    let stored = s.secret.read().await.unwrap();
    assert_eq!(stored[FIELD_WEBHOOK_SECRET], next_secret);
    assert!(
        stored.get(FIELD_WEBHOOK_SECRET_NEXT).is_none(),
        "{:?}",
        stored.keys()
    );
    assert!(
        stored.get(FIELD_WEBHOOK_NEXT_ID).is_none(),
        "{:?}",
        stored.keys()
    );
    assert_eq!(stored["note"], "kept", "other fields survive");
    assert!(
        s.delivery_verifies(&s.dfns_side_secret(&new_id)).await,
        "new webhook's delivery"
    );
    assert!(
        !s.delivery_verifies(&old_dfns_secret).await,
        "a delivery signed with the old secret no longer verifies"
    );

    // Repeated: nothing to change; the ordinary run agrees.
    let again = s
        .promote(Duration::ZERO, false)
        .await
        .expect("phase 2 again");
    assert_eq!(again.changes(), Vec::<&crate::Step>::new());
    assert_eq!(s.webhooks().await.len(), 1);
    assert_eq!(s.secret.read().await.unwrap(), stored);
    let ordinary = s.run(false).await.expect("ordinary run after a rotation");
    assert_eq!(ordinary.changes(), Vec::<&crate::Step>::new());
    assert_eq!(s.secret.read().await.unwrap(), stored);
}

/// A rotation needs the first-time setup: before it, both phases refuse or do nothing, and
/// neither creates a webhook nor writes the secret.
#[tokio::test]
async fn rotation_before_bootstrap_refuses_and_changes_nothing() {
    let s = setup().await;
    let before = s.secret.read().await.unwrap();
    let error = s.rotate(false).await.expect_err("no webhook yet");
    assert!(matches!(error, BootstrapError::Invalid(_)), "{error}");
    let promoted = s
        .promote(Duration::ZERO, false)
        .await
        .expect("nothing to promote");
    assert_eq!(promoted.changes(), Vec::<&crate::Step>::new());
    assert!(s.webhooks().await.is_empty());
    assert_eq!(s.secret.read().await.unwrap(), before);
}
