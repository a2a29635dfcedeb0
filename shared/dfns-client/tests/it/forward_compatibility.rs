//! Responses with enum values and fields this crate does not know still parse, keep the raw
//! values, and serialise them back unchanged.

use dfns_client::approvals::{ApprovalStatus, DecisionValue};
use dfns_client::policies::{ChangeRequestStatus, OperationKind};
use dfns_client::wallets::{AssetKind, KeyCurve, WalletAssets, WalletStatus};
use dfns_client::{
    Activity, ActivityKind, Approval, ChangeRequest, EventData, Network, Policy, PolicyAction,
    PolicyRule, PolicyStatus, TransferAsset, TransferRequest, TransferStatus, Wallet, WebhookEvent,
    WebhookEventKind,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let all: Value =
        serde_json::from_str(include_str!("fixtures/forward_compatible.json")).unwrap();
    all[name].clone()
}

#[test]
fn wallet_with_unknown_network_status_curve_and_fields() {
    let wallet: Wallet = serde_json::from_value(fixture("wallet")).unwrap();
    assert_eq!(wallet.network, Network::Unknown("MonadTestnet".into()));
    assert_eq!(wallet.status, WalletStatus::Unknown("Frozen".into()));
    assert_eq!(
        wallet.signing_key.curve,
        KeyCurve::Unknown("secp256r1".into())
    );
    assert_eq!(wallet.tags, vec!["client:42".to_owned()]);
    let back = serde_json::to_value(&wallet).unwrap();
    assert_eq!(back["network"], "MonadTestnet");
    assert_eq!(back["status"], "Frozen");
}

#[test]
fn policy_with_unknown_rule_action_filter_status_and_activity() {
    let policy: Policy = serde_json::from_value(fixture("policy")).unwrap();
    assert_eq!(policy.status, PolicyStatus::Unknown("Paused".into()));
    assert_eq!(
        policy.activity_kind,
        ActivityKind::Unknown("Wallets:Stake".into())
    );
    let PolicyRule::Unknown(rule) = &policy.rule else {
        panic!("{:?}", policy.rule)
    };
    assert_eq!(rule["configuration"]["threshold"], 7);
    let PolicyAction::Unknown(action) = &policy.action else {
        panic!("{:?}", policy.action)
    };
    assert_eq!(action["to"], "board");
    let filters = policy.filters.as_ref().unwrap();
    assert_eq!(
        filters.wallet_tags.as_ref().unwrap().has_all,
        Some(vec!["client:42".to_owned()])
    );
    // Writing the policy back keeps what we did not understand (never widens it).
    let body = serde_json::to_value(policy.body()).unwrap();
    assert_eq!(body["rule"], fixture("policy")["rule"]);
    assert_eq!(body["action"], fixture("policy")["action"]);
    assert_eq!(body["filters"], fixture("policy")["filters"]);
}

#[test]
fn approval_with_unknown_activity_status_and_decision() {
    let approval: Approval = serde_json::from_value(fixture("approval")).unwrap();
    assert_eq!(approval.status, ApprovalStatus::Unknown("Escalated".into()));
    let Activity::Unknown(activity) = &approval.activity else {
        panic!("{:?}", approval.activity)
    };
    assert_eq!(activity["stakeRequest"]["id"], "stk-1");
    assert_eq!(
        approval.decisions[0].value,
        DecisionValue::Unknown("Abstained".into())
    );
    assert_eq!(approval.decisions[0].reason, None);
    assert!(approval.policy_evaluations[0].triggered);
}

#[test]
fn transfer_with_unknown_kind_and_status() {
    let transfer: TransferRequest = serde_json::from_value(fixture("transfer")).unwrap();
    assert_eq!(
        transfer.status,
        TransferStatus::Unknown("Simulating".into())
    );
    assert!(!transfer.status.is_terminal());
    let TransferAsset::Unknown(body) = &transfer.request_body.asset else {
        panic!("{:?}", transfer.request_body)
    };
    assert_eq!(body["kind"], "Erc1155");
    assert_eq!(
        transfer
            .request_body
            .external_id
            .as_ref()
            .map(|e| e.as_str()),
        Some("order-9")
    );
}

#[test]
fn change_request_with_unknown_operation_and_status() {
    let change: ChangeRequest = serde_json::from_value(fixture("changeRequest")).unwrap();
    assert_eq!(
        change.operation_kind,
        OperationKind::Unknown("Archive".into())
    );
    assert_eq!(
        change.status,
        ChangeRequestStatus::Unknown("Scheduled".into())
    );
    assert_eq!(change.proposed_status(), Some(PolicyStatus::Archived));
    let proposed = change.proposed_policy().unwrap();
    assert_eq!(proposed.rule, PolicyRule::always_trigger());
    assert_eq!(proposed.action, PolicyAction::Block);
}

#[test]
fn webhook_event_of_an_unknown_kind_keeps_its_data() {
    let event: WebhookEvent = serde_json::from_value(fixture("webhookEvent")).unwrap();
    assert_eq!(
        event.kind,
        WebhookEventKind::Unknown("wallet.staking.rewarded".into())
    );
    assert_eq!(
        event.data,
        EventData::Other(json!({"reward": {"amount": "5"}}))
    );
    assert_eq!(event.timestamp_sent, Some(1701684144));
}

#[test]
fn assets_of_an_unknown_kind_keep_their_discriminator_fields() {
    let assets: WalletAssets = serde_json::from_value(fixture("assets")).unwrap();
    assert_eq!(assets.assets[0].kind, AssetKind::Native);
    assert_eq!(assets.assets[0].balance.to_u128(), Some(1000));
    let AssetKind::Unknown(raw) = &assets.assets[1].kind else {
        panic!("{:?}", assets.assets[1].kind)
    };
    assert_eq!(raw["kind"], "Erc4626");
    assert_eq!(raw["vault"], "0xvault");
    assert_eq!(assets.assets[1].balance.to_u128(), Some(42));
}

#[test]
fn amounts_must_be_integer_strings() {
    let mut assets = fixture("assets");
    assets["assets"][0]["balance"] = json!("1.5");
    assert!(serde_json::from_value::<WalletAssets>(assets.clone()).is_err());
    assets["assets"][0]["balance"] = json!(1000);
    assert!(serde_json::from_value::<WalletAssets>(assets).is_err());
}

#[test]
fn documented_policy_example_parses_into_typed_rule_action_and_filters() {
    let policy: Policy = serde_json::from_value(json!({
      "id": "plc-1f04s-lqc9q-xxxxxxxxxxxxxxxx",
      "name": "client 42 whitelist",
      "status": "Active",
      "activityKind": "Wallets:Sign",
      "rule": { "kind": "TransactionRecipientWhitelist", "configuration": { "addresses": ["0xb282dc7cde21717f18337a596e91ded00b79b25f"] } },
      "action": {
        "kind": "RequestApproval",
        "approvalGroups": [ { "name": "Compliance", "quorum": 1, "approvers": { "userId": { "in": ["us-1", "us-2"] } } } ],
        "autoRejectTimeout": 1440
      },
      "filters": { "walletTags": { "hasAll": ["client:42"] } },
      "dateCreated": "2024-06-28T09:09:54.437Z",
      "dateUpdated": "2024-06-28T09:09:54.437Z"
    }))
    .unwrap();
    assert_eq!(
        policy.rule,
        PolicyRule::recipient_whitelist(["0xb282dc7cde21717f18337a596e91ded00b79b25f".to_owned()])
    );
    let PolicyAction::RequestApproval {
        approval_groups,
        auto_reject_timeout,
    } = &policy.action
    else {
        panic!("{:?}", policy.action)
    };
    assert_eq!(*auto_reject_timeout, Some(1440));
    assert_eq!(approval_groups[0].quorum, 1);
    assert_eq!(
        approval_groups[0]
            .approvers
            .user_id
            .as_ref()
            .unwrap()
            .values
            .len(),
        2
    );
    // And the body serialises back to the documented wire shape.
    let body = serde_json::to_value(policy.body()).unwrap();
    assert_eq!(
        body["action"]["approvalGroups"][0]["approvers"]["userId"]["in"][1],
        "us-2"
    );
    assert_eq!(body["rule"]["kind"], "TransactionRecipientWhitelist");
    assert!(body.get("status").is_none());
}
