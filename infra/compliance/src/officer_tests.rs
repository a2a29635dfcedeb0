//! The compliance tool against the Dfns emulator: an officer sees a pending destination change
//! with its client and address, approves it with their own key, and the change is applied; a
//! held transfer reads with its client and USD amount; service-account credentials are refused.

use std::sync::Arc;

use crate::{ComplianceError, Officer, OfficerCredentials};
use dfns_client::policies::{ApprovalGroup, Approvers, PolicyFilters, WalletTagsFilter};
use dfns_client::{
    ActivityKind, Amount, ApprovalStatus, ClientConfig, CreateWallet, DecisionValue, DfnsClient,
    ExternalId, KeySigner, Network, PolicyAction, PolicyBody, PolicyRule, SecretString,
    TransferAsset, TransferOutcome, UpdateOutcome, UserId, common::InList,
};
use serde_json::{Value, json};

const ADDRESS: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";

struct Emu {
    running: dfns_emulator::RunningEmulator,
    bootstrap: Value,
}

async fn emulator() -> Emu {
    let running = dfns_emulator::spawn(dfns_emulator::Options::default())
        .await
        .expect("emulator starts");
    let bootstrap = serde_json::to_value(running.bootstrap()).unwrap();
    Emu { running, bootstrap }
}

impl Emu {
    fn service_account(&self) -> DfnsClient {
        let sa = &self.bootstrap["serviceAccount"];
        let signer = KeySigner::from_pkcs8_pem(
            sa["credId"].as_str().unwrap(),
            &SecretString::from(sa["privateKeyPem"].as_str().unwrap().to_owned()),
        )
        .unwrap();
        DfnsClient::new(
            ClientConfig::new(
                SecretString::from(sa["token"].as_str().unwrap().to_owned()),
                Some(Arc::new(signer)),
            )
            .with_base_url(self.running.base_url()),
        )
        .unwrap()
    }

    fn credentials(&self, identity: &Value) -> OfficerCredentials {
        OfficerCredentials::from_json(&identity.to_string()).expect("credentials parse")
    }

    fn officer(&self, i: usize) -> Officer {
        Officer::new(
            &self.running.base_url(),
            &self.credentials(&self.bootstrap["officers"][i]),
            self.bootstrap["serviceAccount"]["userId"].as_str(),
        )
        .expect("an officer's credentials are accepted")
    }

    fn officer_id(&self, i: usize) -> String {
        self.bootstrap["officers"][i]["userId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) {
        let response = reqwest::Client::new()
            .request(
                method,
                format!("{}/emulator/{path}", self.running.base_url()),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
}

fn approval_by(officer: &str) -> PolicyAction {
    PolicyAction::RequestApproval {
        approval_groups: vec![ApprovalGroup {
            name: Some("Compliance".into()),
            quorum: 1,
            approvers: Approvers {
                user_id: Some(InList::new([UserId::new(officer)])),
                ..Default::default()
            },
            initiator_can_approve: None,
            service_accounts_can_approve: None,
        }],
        auto_reject_timeout: None,
    }
}

fn client_filter(client: &str) -> Option<PolicyFilters> {
    Some(PolicyFilters {
        wallet_tags: Some(WalletTagsFilter {
            has_all: Some(vec![format!("client:{client}")]),
            has_any: None,
        }),
        ..Default::default()
    })
}

#[tokio::test]
async fn an_officer_approves_a_pending_destination_change_end_to_end() {
    let emu = emulator().await;
    let sa = emu.service_account();
    let whitelist = PolicyBody {
        name: "client c-42 whitelist".into(),
        activity_kind: ActivityKind::WalletsSign,
        rule: PolicyRule::recipient_whitelist(Vec::<String>::new()),
        action: PolicyAction::Block,
        filters: client_filter("c-42"),
    };
    let policy = sa.create_policy(&whitelist).await.unwrap();
    sa.create_policy(&PolicyBody {
        name: "compliance approves policy changes".into(),
        activity_kind: ActivityKind::PoliciesModify,
        rule: PolicyRule::always_trigger(),
        action: approval_by(&emu.officer_id(0)),
        filters: None,
    })
    .await
    .unwrap();

    // The platform (service account) asks for the new destination: held for approval.
    let updated = PolicyBody {
        rule: PolicyRule::recipient_whitelist([ADDRESS.to_owned()]),
        ..whitelist.clone()
    };
    let UpdateOutcome::Pending(change) = sa.update_policy(&policy.id, &updated).await.unwrap()
    else {
        panic!("the change must wait for compliance");
    };

    // The officer's listing says whose, what and which policy.
    let officer = emu.officer(0);
    let views = crate::pending(&officer.dfns).await.unwrap();
    assert_eq!(views.len(), 1, "{views:#?}");
    let view = &views[0];
    assert_eq!(Some(&view.approval_id), change.approval_id.as_ref());
    assert_eq!(view.activity, "Policies:Modify");
    assert_eq!(view.client.as_deref(), Some("c-42"));
    assert!(
        view.summary.contains(&format!("add destination {ADDRESS}")),
        "{view}"
    );
    assert!(
        view.policies
            .iter()
            .any(|p| p.starts_with("compliance approves policy changes")),
        "{view}"
    );
    assert!(view.to_string().contains("client: c-42"));

    // Approve with the officer's own key: the change is applied.
    let decided = crate::decide(&officer, &view.approval_id, DecisionValue::Approved, None)
        .await
        .unwrap();
    assert_eq!(decided.status, ApprovalStatus::Approved);
    assert_eq!(decided.decisions[0].user_id.as_str(), emu.officer_id(0));
    let now = sa.get_policy(&policy.id).await.unwrap();
    assert_eq!(
        now.rule,
        PolicyRule::recipient_whitelist([ADDRESS.to_owned()])
    );
    assert!(now.pending_change_request.is_none());
    assert!(crate::pending(&officer.dfns).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_denied_change_leaves_the_whitelist_as_it_was() {
    let emu = emulator().await;
    let sa = emu.service_account();
    let whitelist = PolicyBody {
        name: "client c-7 whitelist".into(),
        activity_kind: ActivityKind::WalletsSign,
        rule: PolicyRule::recipient_whitelist([ADDRESS.to_owned()]),
        action: PolicyAction::Block,
        filters: client_filter("c-7"),
    };
    let policy = sa.create_policy(&whitelist).await.unwrap();
    sa.create_policy(&PolicyBody {
        name: "governance".into(),
        activity_kind: ActivityKind::PoliciesModify,
        rule: PolicyRule::always_trigger(),
        action: approval_by(&emu.officer_id(1)),
        filters: None,
    })
    .await
    .unwrap();
    let removal = PolicyBody {
        rule: PolicyRule::recipient_whitelist(Vec::<String>::new()),
        ..whitelist.clone()
    };
    let UpdateOutcome::Pending(_) = sa.update_policy(&policy.id, &removal).await.unwrap() else {
        panic!("held");
    };
    let officer = emu.officer(1);
    let view = crate::pending(&officer.dfns).await.unwrap().remove(0);
    assert_eq!(view.summary[0], format!("remove destination {ADDRESS}"));
    let decided = crate::decide(
        &officer,
        &view.approval_id,
        DecisionValue::Denied,
        Some("not requested by the client"),
    )
    .await
    .unwrap();
    assert_eq!(decided.status, ApprovalStatus::Denied);
    assert_eq!(
        sa.get_policy(&policy.id).await.unwrap().rule,
        whitelist.rule
    );
}

#[tokio::test]
async fn a_held_transfer_reads_with_its_client_destination_and_usd_amount() {
    let emu = emulator().await;
    let sa = emu.service_account();
    let mut body = CreateWallet::new(Network::EthereumSepolia);
    body.tags = vec!["client:c-9".into()];
    let wallet = sa.create_wallet(&body).await.unwrap();
    emu.control(
        reqwest::Method::POST,
        "deposits",
        json!({"walletId": wallet.id, "kind": "Native", "amount": "5000000000000000000"}),
    )
    .await;
    emu.control(
        reqwest::Method::PUT,
        "prices",
        json!({"prices": {"ETH": "3000.00"}}),
    )
    .await;
    sa.create_policy(&PolicyBody {
        name: "client c-9 per-transfer limit".into(),
        activity_kind: ActivityKind::WalletsSign,
        rule: PolicyRule::amount_limit_usd(1_000),
        action: approval_by(&emu.officer_id(0)),
        filters: client_filter("c-9"),
    })
    .await
    .unwrap();
    let outcome = sa
        .transfer(
            &wallet.id,
            ExternalId::new("order-1"),
            TransferAsset::Native {
                to: ADDRESS.into(),
                amount: Amount::from(1_000_000_000_000_000_000u128),
                memo: None,
                priority: None,
            },
        )
        .await
        .unwrap();
    assert!(matches!(outcome, TransferOutcome::Accepted(_)));

    let view = crate::pending(&emu.officer(0).dfns)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(view.client.as_deref(), Some("c-9"));
    let text = view.summary.join(" ");
    assert!(text.contains(ADDRESS), "{view}");
    assert!(text.contains("1000000000000000000"), "{view}");
    assert!(text.contains("USD 3000"), "{view}");
    assert!(
        view.policies[0].starts_with("client c-9 per-transfer limit"),
        "{view}"
    );
}

#[test]
fn service_account_credentials_are_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(emulator());
    let sa = emu.credentials(&emu.bootstrap["serviceAccount"]);
    let refused = Officer::new(&emu.running.base_url(), &sa, None);
    assert!(matches!(refused, Err(ComplianceError::ServiceAccount(_))));
    // Known by its user id even if the token did not say what kind it is.
    let officer = emu.credentials(&emu.bootstrap["officers"][0]);
    let refused = Officer::new(&emu.running.base_url(), &officer, Some(&emu.officer_id(0)));
    assert!(matches!(refused, Err(ComplianceError::ServiceAccount(_))));
}
