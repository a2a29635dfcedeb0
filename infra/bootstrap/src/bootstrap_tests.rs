//! Bootstrap against the Dfns emulator (in process) and moto's Secrets Manager (run through
//! `cargo xtask test`, or `cargo xtask exec -- cargo test -p bootstrap`, which export its
//! endpoint).

use std::time::Duration;

use crate::{
    BootstrapError, DEFAULT_POLICY_NAME, FIELD_WEBHOOK_NEXT_ID, FIELD_WEBHOOK_SECRET,
    FIELD_WEBHOOK_SECRET_NEXT, JsonSecretStore, Plan,
};
use dfns_client::policies::PoliciesQuery;
use dfns_client::webhooks::WebhookVerifier;
use dfns_client::{DfnsClient, PolicyStatus};
use futures::TryStreamExt as _;
use platform_config::{ReadCredential, SigningCredential, WebhookSecrets, secret_json};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};

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
    /// The signing secret: bootstrap reads it, never writes it.
    signing: JsonSecretStore,
    /// The read-only secret: bootstrap reads it (first-time setup), never writes it.
    read_only: JsonSecretStore,
    /// The webhook secret: the one bootstrap writes.
    webhook: JsonSecretStore,
}

/// The three secrets' contents at one moment.
type Secrets = [Map<String, Value>; 3];

async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    what: &str,
    value: &Value,
) -> JsonSecretStore {
    let secret_id = format!("bootstrap-test-{what}-{}", ulid::Ulid::new());
    client
        .create_secret()
        .name(&secret_id)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create the test secret");
    JsonSecretStore {
        client: client.clone(),
        secret_id,
    }
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
    let ro = &bootstrap["readOnlyServiceAccount"];
    let client = platform_config::aws::secrets_manager_client().await;
    // Before bootstrap (as the README says): the signing service account's credentials, the
    // read-only service account's token, and the placeholder for the webhook secret beside a
    // field the platform does not know, which must survive the merge.
    let signing = create_secret(
        &client,
        "signing",
        &secret_json::signing(
            sa["token"].as_str().unwrap(),
            sa["credId"].as_str().unwrap(),
            sa["privateKeyPem"].as_str().unwrap(),
        ),
    )
    .await;
    let read_only = create_secret(
        &client,
        "read",
        &secret_json::read_only(ro["token"].as_str().unwrap()),
    )
    .await;
    let mut webhook_initial = secret_json::webhook(crate::WEBHOOK_SECRET_PLACEHOLDER, None);
    webhook_initial["note"] = "kept".into();
    let webhook = create_secret(&client, "webhook", &webhook_initial).await;
    Setup {
        emulator,
        bootstrap,
        signing,
        read_only,
        webhook,
    }
}

impl Setup {
    fn plan(&self, dry_run: bool) -> Plan {
        Plan {
            officers: vec![self.officer(0), self.officer(1)],
            quorum: 1,
            auto_reject_minutes: None,
            policy_name: DEFAULT_POLICY_NAME.into(),
            webhook_url: WEBHOOK_URL.into(),
            dry_run,
        }
    }

    fn officer(&self, i: usize) -> String {
        self.bootstrap["officers"][i]["userId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn read_only_user_id(&self) -> String {
        self.bootstrap["readOnlyServiceAccount"]["userId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn signing_credential(&self) -> SigningCredential {
        self.signing.read_as().await.unwrap()
    }

    async fn dfns(&self) -> DfnsClient {
        crate::signing_client(&self.signing_credential().await, &self.emulator.base_url()).unwrap()
    }

    async fn run(&self, dry_run: bool) -> Result<crate::Report, BootstrapError> {
        self.run_with_webhook_secret(&self.webhook, dry_run).await
    }

    /// A run given `webhook` as the webhook secret.
    async fn run_with_webhook_secret(
        &self,
        webhook: &JsonSecretStore,
        dry_run: bool,
    ) -> Result<crate::Report, BootstrapError> {
        let signing = self.signing_credential().await;
        let dfns = crate::signing_client(&signing, &self.emulator.base_url()).unwrap();
        crate::run(
            &dfns,
            &self.emulator.base_url(),
            &signing,
            &self.read_only,
            webhook,
            &self.plan(dry_run),
        )
        .await
    }

    async fn secrets(&self) -> Secrets {
        [
            self.signing.read().await.unwrap(),
            self.read_only.read().await.unwrap(),
            self.webhook.read().await.unwrap(),
        ]
    }

    /// A refused run changed nothing: no compliance policy, no webhook, the three secrets as
    /// `before`.
    async fn assert_nothing_changed(&self, before: &Secrets, case: &str) {
        assert!(self.compliance_policies().await.is_empty(), "{case}");
        assert!(self.webhooks().await.is_empty(), "{case}");
        assert_eq!(
            &self.secrets().await,
            before,
            "{case}: the secrets are untouched"
        );
        assert_eq!(
            before[2][FIELD_WEBHOOK_SECRET],
            crate::WEBHOOK_SECRET_PLACEHOLDER,
            "{case}"
        );
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
        crate::rotate_webhook(&self.dfns().await, &self.webhook, WEBHOOK_URL, dry_run).await
    }

    /// Phase 2, as if `SECRET_REFRESH_SECONDS` were `refresh`.
    async fn promote(
        &self,
        refresh: Duration,
        dry_run: bool,
    ) -> Result<crate::Report, BootstrapError> {
        crate::promote_webhook(
            &self.dfns().await,
            &self.webhook,
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

    /// The webhook secret as the webhook function parses it.
    async fn functions_webhook_secrets(&self) -> WebhookSecrets {
        let text = Value::Object(self.webhook.read().await.unwrap()).to_string();
        <WebhookSecrets as platform_config::SecretKind>::from_json(&text)
            .expect("the functions read it")
    }

    /// The verifier the webhook function builds from the webhook secret as it now stands
    /// (every usable secret, current then next).
    async fn platform_verifier(&self) -> WebhookVerifier {
        let parsed = self.functions_webhook_secrets().await;
        let mut usable = parsed
            .usable()
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

    /// Grants the signing service account extra operations.
    async fn grant(&self, operations: &[&str]) {
        let user = self.bootstrap["serviceAccount"]["userId"].as_str().unwrap();
        self.grant_to(user, operations).await;
    }

    async fn grant_to(&self, user_id: &str, operations: &[&str]) {
        let response = reqwest::Client::new()
            .post(format!("{}/emulator/permissions", self.emulator.base_url()))
            .json(&json!({
                "userId": user_id,
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
    let before = s.secrets().await;

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

    let stored = s.webhook.read().await.unwrap();
    let webhook_secret = stored[FIELD_WEBHOOK_SECRET].as_str().unwrap().to_owned();
    assert!(!webhook_secret.is_empty());
    assert_eq!(stored["note"], "kept", "other fields survive the merge");
    assert_eq!(
        s.secrets().await[..2],
        before[..2],
        "the signing and read-only secrets are never written"
    );

    let second = s.run(false).await.expect("second run");
    assert_eq!(second.changes(), Vec::<&crate::Step>::new());
    assert_eq!(s.compliance_policies().await.len(), 1);
    assert_eq!(s.webhooks().await.len(), 1);
    assert_eq!(
        s.webhook.read().await.unwrap()[FIELD_WEBHOOK_SECRET],
        webhook_secret.as_str()
    );
}

#[tokio::test]
async fn a_dry_run_reports_the_changes_and_makes_none() {
    let s = setup().await;
    let before = s.secrets().await;
    let report = s.run(true).await.expect("dry run");
    assert!(report.changes().len() >= 3, "{:#?}", report.steps);
    assert!(
        report
            .changes()
            .iter()
            .all(|s| s.what.starts_with("would "))
    );
    s.assert_nothing_changed(&before, "dry run").await;
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
        let before = s.secrets().await;
        for dry_run in [false, true] {
            let error = s.run(dry_run).await.expect_err("must refuse");
            let BootstrapError::ServiceAccountCanApprove(findings) = &error else {
                panic!("{operation}: {error}");
            };
            assert_eq!(findings.len(), 1, "{operation}: {findings:?}");
            assert!(findings[0].contains(operation), "{findings:?}");
            assert!(error.refusal().is_some(), "exit status 2");
        }
        s.assert_nothing_changed(&before, operation).await;
    }
}

/// Issue 12, credentials by need: a clean setup checks the read-only service account (from the
/// read-only secret) before anything changes, and reports that it holds only its four reads.
#[tokio::test]
async fn a_clean_setup_checks_the_read_only_account_and_reports_it() {
    let s = setup().await;
    let ro = s.read_only_user_id();
    for dry_run in [true, false] {
        let report = s.run(dry_run).await.expect("a clean setup passes");
        let checked: Vec<_> = report
            .steps
            .iter()
            .filter(|step| {
                step.what
                    .contains(&format!("read-only service account {ro}"))
            })
            .collect();
        assert_eq!(checked.len(), 1, "{:#?}", report.steps);
        assert!(!checked[0].changed, "a check, not a change");
        assert!(
            checked[0].what.contains("4 operations checked"),
            "{}",
            checked[0].what
        );
        // After the signing account's check, before the first change.
        let position = |what: &str| {
            report
                .steps
                .iter()
                .position(|step| step.what.contains(what))
                .unwrap()
        };
        assert!(position("cannot approve") < position(&format!("service account {ro}")));
        let first_change = report.steps.iter().position(|step| step.changed).unwrap();
        assert!(position(&format!("service account {ro}")) < first_change);
    }
}

/// Issue 12: a read-only service account granted a write (moving funds, changing a policy) makes
/// bootstrap refuse (exit status 2), name the operation, and change nothing: no policy, no
/// webhook, the three secrets as they were. A dry run refuses the same way.
#[tokio::test]
async fn a_read_only_account_granted_a_write_makes_it_refuse_name_it_and_change_nothing() {
    for operation in ["Wallets:Transfers:Create", "Policies:Update"] {
        let s = setup().await;
        s.grant_to(&s.read_only_user_id(), &[operation]).await;
        let before = s.secrets().await;
        for dry_run in [false, true] {
            let error = s.run(dry_run).await.expect_err("must refuse");
            let BootstrapError::ReadOnlyAccountCanWrite(findings) = &error else {
                panic!("{operation}: {error}");
            };
            assert_eq!(findings.len(), 1, "{operation}: {findings:?}");
            assert!(findings[0].contains(operation), "{findings:?}");
            assert!(findings[0].contains(&s.read_only_user_id()), "{findings:?}");
            let (what, _) = error.refusal().expect("exit status 2");
            assert!(what.contains("read-only"), "{what}");
        }
        s.assert_nothing_changed(&before, operation).await;
    }
}

/// Issue 12: the read-only secret must hold a second account's token. Holding the signing service
/// account's token (its bearer token is all a read needs, so everything would "work") or an
/// officer's makes bootstrap refuse (exit status 2) and change nothing.
#[tokio::test]
async fn a_read_only_secret_holding_the_signing_or_an_officers_token_makes_it_refuse() {
    for (case, who) in [("signing", "serviceAccount"), ("officer", "officers")] {
        let s = setup().await;
        let identity = if who == "officers" {
            &s.bootstrap["officers"][0]
        } else {
            &s.bootstrap[who]
        };
        let token = identity["token"].as_str().unwrap();
        let user_id = identity["userId"].as_str().unwrap().to_owned();
        s.read_only
            .write(
                secret_json::read_only(token)
                    .as_object()
                    .expect("an object"),
            )
            .await
            .unwrap();
        let before = s.secrets().await;
        for dry_run in [false, true] {
            let error = s.run(dry_run).await.expect_err("must refuse");
            let BootstrapError::ReadOnlyAccountCanWrite(findings) = &error else {
                panic!("{case}: {error}");
            };
            assert_eq!(findings.len(), 1, "{case}: {findings:?}");
            let expected = if case == "signing" {
                "the signing service account's token"
            } else {
                "the token of officer"
            };
            assert!(findings[0].contains(expected), "{case}: {findings:?}");
            assert!(findings[0].contains(&user_id), "{case}: {findings:?}");
            assert!(error.refusal().is_some(), "exit status 2");
        }
        s.assert_nothing_changed(&before, case).await;
    }
}

/// Issue 12: the functions read what bootstrap leaves: the webhook secret parses as the webhook
/// receiver parses it ([`WebhookSecrets`]), its current secret is the one Dfns signs the
/// webhook's deliveries with, and there is no next one; the signing and read-only secrets still
/// parse as the other functions read them.
#[tokio::test]
async fn the_functions_read_the_secrets_bootstrap_leaves() {
    let s = setup().await;
    s.run(false).await.expect("first-time bootstrap");
    let webhooks = s.webhooks().await;
    assert_eq!(webhooks.len(), 1);
    let parsed = s.functions_webhook_secrets().await;
    assert_eq!(
        parsed.current.expose_secret(),
        s.dfns_side_secret(webhooks[0].id.as_str())
    );
    assert!(parsed.next.is_none());
    assert_eq!(parsed.usable().len(), 1, "a real key, not the placeholder");
    let signing: SigningCredential = s.signing.read_as().await.expect("the signing secret");
    assert_eq!(
        signing.token.expose_secret(),
        s.bootstrap["serviceAccount"]["token"].as_str().unwrap()
    );
    let read: ReadCredential = s.read_only.read_as().await.expect("the read-only secret");
    assert_eq!(
        read.token.expose_secret(),
        s.bootstrap["readOnlyServiceAccount"]["token"]
            .as_str()
            .unwrap()
    );
}

/// Issue 12: the webhook secret's id pointing at a secret that holds a Dfns credential (the
/// signing secret given twice, say) is refused before anything changes, by the setup and by
/// both rotation phases: the webhook receiver reads that secret, and must not hold the key.
#[tokio::test]
async fn a_webhook_secret_holding_a_credential_is_refused_and_nothing_changed() {
    let s = setup().await;
    let before = s.secrets().await;
    let signing_as_webhook = JsonSecretStore {
        client: s.signing.client.clone(),
        secret_id: s.signing.secret_id.clone(),
    };
    for dry_run in [false, true] {
        let error = s
            .run_with_webhook_secret(&signing_as_webhook, dry_run)
            .await
            .expect_err("must refuse");
        assert!(
            matches!(&error, BootstrapError::Invalid(m) if m.contains("dfnsServiceAccountToken")),
            "{error}"
        );
    }
    let dfns = s.dfns().await;
    let rotate = crate::rotate_webhook(&dfns, &signing_as_webhook, WEBHOOK_URL, false)
        .await
        .expect_err("must refuse");
    assert!(rotate.to_string().contains("dfnsPrivateKeyPem"), "{rotate}");
    let promote = crate::promote_webhook(
        &dfns,
        &signing_as_webhook,
        WEBHOOK_URL,
        Duration::ZERO,
        false,
    )
    .await
    .expect_err("must refuse");
    assert!(
        promote.to_string().contains("dfnsCredentialId"),
        "{promote}"
    );
    s.assert_nothing_changed(&before, "webhook secret = signing secret")
        .await;
}

#[tokio::test]
async fn a_webhook_whose_secret_was_lost_is_recreated_and_its_new_secret_stored() {
    let s = setup().await;
    s.run(false).await.unwrap();
    let before = s.webhooks().await;
    let mut stored = s.webhook.read().await.unwrap();
    stored.insert(
        FIELD_WEBHOOK_SECRET.into(),
        crate::WEBHOOK_SECRET_PLACEHOLDER.into(),
    );
    s.webhook.write(&stored).await.unwrap();

    let report = s.run(false).await.unwrap();
    assert!(!report.changes().is_empty());
    let after = s.webhooks().await;
    assert_eq!(after.len(), 1);
    assert_ne!(after[0].id, before[0].id);
    assert!(
        s.webhook.read().await.unwrap()[FIELD_WEBHOOK_SECRET]
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
    let old_secret = s.webhook.read().await.unwrap()[FIELD_WEBHOOK_SECRET].clone();
    assert_eq!(old_secret, s.dfns_side_secret(&old_id).as_str());

    let dry = s.rotate(true).await.expect("dry run");
    assert_eq!(dry.changes().len(), 2, "{:#?}", dry.steps);
    assert!(dry.changes().iter().all(|c| c.what.starts_with("would ")));
    assert_eq!(s.webhooks().await.len(), 1, "a dry run creates nothing");
    assert!(
        s.webhook
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
    let stored = s.webhook.read().await.unwrap();
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
    assert_eq!(s.webhook.read().await.unwrap(), stored);
    let ordinary = s.run(false).await.expect("ordinary run during a rotation");
    assert_eq!(ordinary.changes(), Vec::<&crate::Step>::new());
    assert_eq!(s.webhooks().await.len(), 2);
    assert_eq!(s.webhook.read().await.unwrap(), stored);
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
    let rotating = s.webhook.read().await.unwrap();
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
    assert_eq!(s.webhook.read().await.unwrap(), rotating, "nothing written");

    let dry = s.promote(Duration::ZERO, true).await.expect("dry run");
    assert_eq!(dry.changes().len(), 3, "{:#?}", dry.steps);
    assert!(dry.changes().iter().all(|c| c.what.starts_with("would ")));
    assert_eq!(s.webhooks().await.len(), 3, "a dry run deletes nothing");
    assert_eq!(
        s.webhook.read().await.unwrap(),
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
    let stored = s.webhook.read().await.unwrap();
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
    assert_eq!(s.webhook.read().await.unwrap(), stored);
    let ordinary = s.run(false).await.expect("ordinary run after a rotation");
    assert_eq!(ordinary.changes(), Vec::<&crate::Step>::new());
    assert_eq!(s.webhook.read().await.unwrap(), stored);
}

/// A rotation needs the first-time setup: before it, both phases refuse or do nothing, and
/// neither creates a webhook nor writes the secret.
#[tokio::test]
async fn rotation_before_bootstrap_refuses_and_changes_nothing() {
    let s = setup().await;
    let before = s.webhook.read().await.unwrap();
    let error = s.rotate(false).await.expect_err("no webhook yet");
    assert!(matches!(error, BootstrapError::Invalid(_)), "{error}");
    let promoted = s
        .promote(Duration::ZERO, false)
        .await
        .expect("nothing to promote");
    assert_eq!(promoted.changes(), Vec::<&crate::Step>::new());
    assert!(s.webhooks().await.is_empty());
    assert_eq!(s.webhook.read().await.unwrap(), before);
}
