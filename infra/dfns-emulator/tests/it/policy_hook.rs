//! The policy hook part 2 plugs into: a custom engine decides allow / block / request approval
//! before a transfer executes, and an approval resolution resumes or rejects it.

use std::sync::Arc;

use crate::common::{Harness, RECIPIENT};
use dfns_emulator::Options;
use dfns_emulator::policy::{PolicyChange, PolicyEngine, Verdict};
use dfns_emulator::state::State;
use dfns_emulator::transfers::{self, Transfer};
use reqwest::Method;
use serde_json::json;

/// Blocks transfers above 100 units, holds those above 10 for approval, allows the rest.
struct ThresholdEngine;

impl PolicyEngine for ThresholdEngine {
    fn evaluate_transfer(&self, state: &mut State, transfer: &Transfer) -> Verdict {
        // The engine sees the wallet's tags and can emit its own events.
        let tagged = state.wallets[&transfer.wallet_id]
            .tags
            .contains(&"guarded".to_owned());
        if !tagged {
            return Verdict::Allow;
        }
        state.emit(
            "policy.triggered",
            json!({ "policyEvaluation": { "triggered": true } }),
        );
        match transfer.amount {
            a if a > 100 => Verdict::Block {
                reason: "Transfer amount (USD 101) is above limit (USD 100).".into(),
            },
            a if a > 10 => Verdict::RequestApproval {
                approval_id: "ap-test0-test0-0000000000000000".into(),
            },
            _ => Verdict::Allow,
        }
    }

    fn evaluate_policy_change(&self, _state: &mut State, _change: &PolicyChange) -> Verdict {
        Verdict::Allow
    }
}

#[tokio::test]
async fn engine_verdicts_shape_the_transfer() {
    let h = Harness::with(Options {
        policy_engine: Some(Arc::new(ThresholdEngine)),
        ..Options::default()
    })
    .await;
    let wallet = h
        .create_wallet(json!({ "network": "EthereumSepolia", "tags": ["guarded"] }))
        .await;
    let id = wallet["id"].as_str().unwrap();
    h.deposit(id, "1000000000000000000").await;
    let send = async |amount: &str| {
        h.sa.signed(
            Method::POST,
            &format!("/wallets/{id}/transfers"),
            &json!({ "kind": "Native", "to": RECIPIENT, "amount": amount }),
        )
        .await
        .ok()
    };

    let blocked = send("101").await;
    assert_eq!(
        blocked["status"], "Rejected",
        "a Block answers 200 with a Rejected transfer"
    );
    assert!(blocked["reason"].as_str().unwrap().contains("above limit"));
    assert!(blocked["datePolicyResolved"].is_string());

    let held = send("50").await;
    assert_eq!(held["status"], "Pending");
    assert_eq!(held["approvalId"], "ap-test0-test0-0000000000000000");
    let held_id = held["id"].as_str().unwrap().to_owned();

    let denied = send("60").await;
    let denied_id = denied["id"].as_str().unwrap().to_owned();

    let allowed = send("5").await;
    h.wait_for_status(id, allowed["id"].as_str().unwrap(), "Confirmed")
        .await;

    // Still held: the lifecycle does not move a transfer awaiting approval.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let still =
        h.sa.get(&format!("/wallets/{id}/transfers/{held_id}"))
            .await
            .ok();
    assert_eq!(still["status"], "Pending");

    // Part 2 resolves approvals through this call.
    h.emulator
        .app()
        .with_state(|s| transfers::resolve_approval(s, &held_id, true, None))
        .unwrap();
    h.emulator
        .app()
        .with_state(|s| {
            transfers::resolve_approval(s, &denied_id, false, Some("Denied by officer".into()))
        })
        .unwrap();
    h.wait_for_status(id, &held_id, "Confirmed").await;
    let rejected = h.wait_for_status(id, &denied_id, "Rejected").await;
    assert_eq!(rejected["reason"], "Denied by officer");
}
