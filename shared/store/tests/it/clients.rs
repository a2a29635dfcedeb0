use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Network, NetworkAddress, WalletId};
use futures::future::join_all;
use store::{ClientProfile, StoreError, WalletMapping};

use crate::{client_id, fresh_store, t0};

fn wallet(client: &domain::ClientId, id: &str, network: Network) -> WalletMapping {
    WalletMapping {
        client_id: client.clone(),
        wallet_id: WalletId::parse(id).unwrap(),
        address: NetworkAddress::parse(network, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
            .unwrap(),
        created_at: t0(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_client_created_concurrently_exactly_one_wins() {
    let store = fresh_store().await;
    let client = client_id("alice");
    let attempts = (0..10).map(|i| {
        let store = store.clone();
        let profile = ClientProfile {
            client_id: client.clone(),
            created_at: t0(),
            tier: Some(format!("tier-{i}")),
        };
        tokio::spawn(async move { (i, store.create_client_profile(&profile).await) })
    });
    let results: Vec<_> = join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<_> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (_, result) in &results {
        if let Err(e) = result {
            assert!(
                matches!(
                    e,
                    StoreError::Conflict {
                        entity: "client profile",
                        ..
                    }
                ),
                "loser got {e:?}"
            );
        }
    }
    // The stored record is the winner's, intact.
    let stored = store.get_client_profile(&client).await.unwrap().unwrap();
    assert_eq!(stored.tier, Some(format!("tier-{}", winners[0])));
    assert_eq!(stored.client_id, client);
}

#[tokio::test]
async fn unknown_client_has_no_profile() {
    let store = fresh_store().await;
    assert_eq!(
        store
            .get_client_profile(&client_id("nobody"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn wallets_attach_once_per_network_and_are_found_by_wallet_id() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let first = wallet(
        &alice,
        "wa-aaaaa-bbbbb-ccccccccccccccc1",
        Network::EthereumSepolia,
    );

    // No profile yet: refused.
    assert!(matches!(
        store.attach_wallet(&first).await,
        Err(StoreError::NotFound {
            entity: "client profile",
            ..
        })
    ));
    store
        .create_client_profile(&ClientProfile {
            client_id: alice.clone(),
            created_at: t0(),
            tier: None,
        })
        .await
        .unwrap();

    assert_eq!(store.attach_wallet(&first).await.unwrap(), first);
    // Same wallet again: idempotent.
    assert_eq!(store.attach_wallet(&first).await.unwrap(), first);
    // Another wallet on the same network: conflict, and the first stays.
    let other = wallet(
        &alice,
        "wa-aaaaa-bbbbb-ccccccccccccccc2",
        Network::EthereumSepolia,
    );
    assert!(matches!(
        store.attach_wallet(&other).await,
        Err(StoreError::Conflict { .. })
    ));
    // A second network is fine.
    let base = wallet(
        &alice,
        "wa-aaaaa-bbbbb-ccccccccccccccc3",
        Network::BaseSepolia,
    );
    store.attach_wallet(&base).await.unwrap();

    let mut listed = store.list_wallets(&alice).await.unwrap();
    listed.sort_by_key(|w| w.wallet_id.clone());
    assert_eq!(listed, vec![first.clone(), base.clone()]);

    assert_eq!(
        store.find_wallet(&first.wallet_id).await.unwrap(),
        Some(first)
    );
    assert_eq!(
        store.find_wallet(&base.wallet_id).await.unwrap(),
        Some(base)
    );
    assert_eq!(store.find_wallet(&other.wallet_id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_onboardings_agree_on_one_policy_per_kind() {
    let store = fresh_store().await;
    let alice = client_id("alice");
    let recorders = (0..8).map(|i| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            let policy = format!("plc-racer-{i}");
            store
                .record_client_policy(&alice, "whitelist", &policy)
                .await
                .unwrap()
        })
    });
    let agreed: Vec<String> = join_all(recorders)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(agreed.iter().all(|p| *p == agreed[0]), "{agreed:?}");
    store
        .record_client_policy(&alice, "amount-limit", "plc-limit")
        .await
        .unwrap();
    let policies = store.client_policies(&alice).await.unwrap();
    assert_eq!(policies.len(), 2);
    assert_eq!(policies["whitelist"], agreed[0]);
    assert_eq!(policies["amount-limit"], "plc-limit");
    assert!(
        store
            .client_policies(&client_id("bob"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .record_client_policy(&alice, "Bad Kind", "plc-x")
            .await
            .is_err()
    );
}

/// A wallet not mapped yet is asked again (a deposit may arrive before its mapping); once found,
/// its mapping is answered by the process without the index: the item deleted behind the
/// store's back is still found through the same store, and not through a new one.
#[tokio::test]
async fn a_found_wallet_is_kept_and_a_missing_one_asked_again() {
    let store = fresh_store().await;
    let client = client_id("alice");
    let mapping = wallet(&client, "wa-kept", Network::EthereumSepolia);
    assert_eq!(store.find_wallet(&mapping.wallet_id).await.unwrap(), None);
    store
        .create_client_profile(&ClientProfile {
            client_id: client.clone(),
            created_at: t0(),
            tier: None,
        })
        .await
        .unwrap();
    store.attach_wallet(&mapping).await.unwrap();
    assert_eq!(
        store.find_wallet(&mapping.wallet_id).await.unwrap(),
        Some(mapping.clone()),
        "asked again after the miss"
    );

    let raw = crate::dynamodb_client().await;
    raw.delete_item()
        .table_name(store.table_name())
        .key("pk", AttributeValue::S(format!("CLIENT#{client}")))
        .key(
            "sk",
            AttributeValue::S(format!("WALLET#{}", Network::EthereumSepolia)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.find_wallet(&mapping.wallet_id).await.unwrap(),
        Some(mapping.clone()),
        "kept by this store"
    );
    let another = store::Store::new(raw, store.table_name());
    assert_eq!(another.find_wallet(&mapping.wallet_id).await.unwrap(), None);
}
