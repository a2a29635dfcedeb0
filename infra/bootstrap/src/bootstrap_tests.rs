//! Bootstrap against the Dfns emulator (in process) and moto's Secrets Manager (run through
//! `cargo xtask test`, which exports its endpoint).

use crate::{
    BootstrapError, Credentials, DEFAULT_POLICY_NAME, FIELD_WEBHOOK_SECRET, Plan,
    PlatformSecretStore,
};
use dfns_client::policies::PoliciesQuery;
use dfns_client::{DfnsClient, PolicyStatus};
use futures::TryStreamExt as _;
use serde_json::{Value, json};

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
            webhook_url: "https://platform.example/v1/webhooks/dfns".into(),
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
