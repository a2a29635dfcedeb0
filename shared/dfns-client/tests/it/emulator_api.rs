//! Every call of the client against the Dfns emulator (no mocks).

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;

use crate::common::{As, emulator, receiver};
use dfns_client::transfers::TransfersQuery;
use dfns_client::wallets::{HistoryQuery, WalletsQuery};
use dfns_client::webhooks::{CreateWebhook, UpdateWebhook, WebhookEventsQuery, WebhookStatus};
use dfns_client::{
    Amount, AuditLogQuery, ClientConfig, CreateWallet, DfnsClient, Error, EventData, ExternalId,
    KeySigner, Network, SecretString, SignerError, TransferAsset, TransferOutcome, TransferStatus,
    WalletId, WebhookEventKind, WebhookVerifier,
};
use futures::TryStreamExt as _;
use time::OffsetDateTime;

fn native(to: &str, amount: u128) -> TransferAsset {
    TransferAsset::Native {
        to: to.to_owned(),
        amount: Amount::from(amount),
        memo: None,
        priority: None,
    }
}

const RECIPIENT: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";

async fn funded_wallet(emu: &common::Emulator, client: &DfnsClient, name: &str) -> WalletId {
    let mut body = CreateWallet::new(Network::EthereumSepolia);
    body.name = Some(name.to_owned());
    let wallet = client.create_wallet(&body).await.unwrap();
    emu.deposit(wallet.id.as_str(), "1000000000000000000000")
        .await;
    wallet.id
}

#[tokio::test]
async fn wallets_create_get_list_tag_untag_assets_history() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);

    let mut body = CreateWallet::new(Network::EthereumSepolia);
    body.name = Some("client 42".into());
    body.external_id = Some("client-42:EthereumSepolia".into());
    body.tags = vec!["client:42".into()];
    let wallet = client.create_wallet(&body).await.unwrap();
    assert!(wallet.id.as_str().starts_with("wa-"), "{}", wallet.id);
    assert_eq!(wallet.network, Network::EthereumSepolia);
    assert_eq!(wallet.tags, vec!["client:42".to_owned()]);
    assert_eq!(
        wallet.external_id.as_deref(),
        Some("client-42:EthereumSepolia")
    );
    let address = wallet.address.clone().expect("EVM wallet has an address");
    assert_eq!(address, address.to_lowercase());

    assert_eq!(client.get_wallet(&wallet.id).await.unwrap(), wallet);

    // More wallets than one page holds, to walk the pages.
    for i in 0..4 {
        let mut more = CreateWallet::new(Network::EthereumSepolia);
        more.name = Some(format!("extra {i}"));
        client.create_wallet(&more).await.unwrap();
    }
    let listed: Vec<_> = client
        .list_wallets(&WalletsQuery { page_size: Some(2) })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 5);
    let ids: HashSet<_> = listed.iter().map(|w| w.id.clone()).collect();
    assert_eq!(ids.len(), 5, "no wallet twice across pages");
    assert!(ids.contains(&wallet.id));

    let tags = ["vip".to_owned(), "desk:eu".to_owned()];
    client.tag_wallet(&wallet.id, &tags).await.unwrap();
    let tagged = client.get_wallet(&wallet.id).await.unwrap();
    for tag in ["client:42", "vip", "desk:eu"] {
        assert!(tagged.tags.iter().any(|t| t == tag), "{:?}", tagged.tags);
    }
    // The service account holds no Wallets:Tags:Delete (docs/dfns.md §9): 403; the admin may.
    let refused = client
        .untag_wallet(&wallet.id, &["vip".to_owned()])
        .await
        .expect_err("the service account cannot untag");
    assert_eq!(refused.status(), Some(403), "{refused}");
    emu.client(As::Admin)
        .untag_wallet(&wallet.id, &["vip".to_owned()])
        .await
        .unwrap();
    let untagged = client.get_wallet(&wallet.id).await.unwrap();
    assert!(
        !untagged.tags.iter().any(|t| t == "vip"),
        "{:?}",
        untagged.tags
    );
    assert!(untagged.tags.iter().any(|t| t == "desk:eu"));

    emu.deposit(wallet.id.as_str(), "1500000000000000000").await;
    emu.deposit(wallet.id.as_str(), "500000000000000000").await;
    let assets = client.wallet_assets(&wallet.id, false).await.unwrap();
    assert_eq!(assets.wallet_id, wallet.id);
    let native = assets
        .assets
        .iter()
        .find(|a| a.kind == dfns_client::wallets::AssetKind::Native)
        .expect("native asset listed");
    assert_eq!(native.balance.to_u128(), Some(2_000_000_000_000_000_000));
    assert_eq!(native.decimals, 18);

    let history: Vec<_> = client
        .wallet_history(
            &wallet.id,
            &HistoryQuery {
                page_size: Some(1),
                ..Default::default()
            },
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(
        history
            .iter()
            .all(|e| e.direction == dfns_client::wallets::Direction::In)
    );
    let mut values: Vec<_> = history
        .iter()
        .map(|e| e.value.as_ref().unwrap().to_u128().unwrap())
        .collect();
    values.sort();
    assert_eq!(
        values,
        vec![500_000_000_000_000_000, 1_500_000_000_000_000_000]
    );
}

#[tokio::test]
async fn transfers_are_idempotent_on_external_id_and_listed_across_pages() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let wallet_id = funded_wallet(&emu, &client, "transfers").await;

    let before = emu.transfers_created().await;
    let first = client
        .transfer(
            &wallet_id,
            ExternalId::new("order-1"),
            native(RECIPIENT, 1_000),
        )
        .await
        .unwrap();
    let TransferOutcome::Accepted(first) = first else {
        panic!("not rejected: {first:?}")
    };
    assert_eq!(first.wallet_id, wallet_id);
    assert_eq!(
        first.external_id.as_ref().map(|e| e.as_str()),
        Some("order-1")
    );
    assert_eq!(first.request_body.asset, native(RECIPIENT, 1_000));
    assert!(!first.status.is_terminal() || first.status == TransferStatus::Confirmed);

    // Same externalId and body: the same transfer, not a second one.
    let again = client
        .transfer(
            &wallet_id,
            ExternalId::new("order-1"),
            native(RECIPIENT, 1_000),
        )
        .await
        .unwrap()
        .into_transfer();
    assert_eq!(again.id, first.id);
    assert_eq!(emu.transfers_created().await, before + 1);

    // Same externalId, different body: 409 with the duplicate in details.
    let conflict = client
        .transfer(
            &wallet_id,
            ExternalId::new("order-1"),
            native(RECIPIENT, 2_000),
        )
        .await
        .unwrap_err();
    let api = conflict.api().expect("Dfns error");
    assert_eq!(api.status, 409);
    assert!(!api.message.is_empty());
    assert!(!conflict.is_retryable());
    let duplicate = &api.details.as_ref().expect("details kept")["duplicate"];
    assert_eq!(duplicate["id"], first.id.as_str());
    assert_eq!(api.duplicate_id(), Some(first.id.as_str()));

    let second = client
        .transfer_without_external_id(&wallet_id, native(RECIPIENT, 3_000))
        .await
        .unwrap()
        .into_transfer();
    assert_eq!(second.external_id, None);
    let third = client
        .transfer(
            &wallet_id,
            ExternalId::new("order-3"),
            native(RECIPIENT, 4_000),
        )
        .await
        .unwrap()
        .into_transfer();

    let fetched = client.get_transfer(&wallet_id, &second.id).await.unwrap();
    assert_eq!(fetched.id, second.id);
    assert_eq!(fetched.request_body.asset, native(RECIPIENT, 3_000));

    let listed: Vec<_> = client
        .list_transfers(&wallet_id, &TransfersQuery { page_size: Some(1) })
        .try_collect()
        .await
        .unwrap();
    let ids: HashSet<_> = listed.iter().map(|t| t.id.clone()).collect();
    assert_eq!(listed.len(), 3);
    assert_eq!(ids, HashSet::from([first.id.clone(), second.id, third.id]));

    // Looked up by externalId across pages; absent only once every page was read.
    let one_per_page = TransfersQuery { page_size: Some(1) };
    let found = client
        .find_transfer_by_external_id(&wallet_id, &ExternalId::new("order-1"), &one_per_page)
        .await
        .unwrap();
    assert_eq!(found.map(|t| t.id), Some(first.id));
    let absent = client
        .find_transfer_by_external_id(&wallet_id, &ExternalId::new("order-9"), &one_per_page)
        .await
        .unwrap();
    assert_eq!(absent, None);
}

#[tokio::test]
async fn dfns_errors_keep_status_message_and_details() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let missing = WalletId::new("wa-00000-00000-0000000000000000");
    let error = client.get_wallet(&missing).await.unwrap_err();
    let api = error.api().expect("a Dfns error");
    assert_eq!(api.status, 404);
    assert_eq!(error.status(), Some(404));
    assert!(
        api.message.to_lowercase().contains("not found"),
        "{}",
        api.message
    );
    assert_eq!(
        api.details.as_ref().and_then(|d| d["walletId"].as_str()),
        Some(missing.as_str())
    );
    assert!(!error.is_retryable());

    // A bad bearer token is a 401, not retried.
    let bad = DfnsClient::new(
        ClientConfig::new(SecretString::from("not-a-token".to_owned()), None)
            .with_base_url(emu.base_url.clone()),
    )
    .unwrap();
    let error = bad.get_wallet(&missing).await.unwrap_err();
    assert_eq!(error.status(), Some(401));
}

#[tokio::test]
async fn signed_calls_work_with_p256_and_ed25519_keys_and_fail_with_the_wrong_key() {
    let emu = emulator().await;
    // Service account: Ed25519. Admin: ECDSA P-256.
    for who in [As::ServiceAccount, As::Admin] {
        let signer = emu.signer(who);
        let client = emu.client(who);
        let wallet = client
            .create_wallet(&CreateWallet::new(Network::EthereumSepolia))
            .await
            .unwrap_or_else(|e| panic!("{:?} signer: {e}", signer.algorithm()));
        assert!(wallet.id.as_str().starts_with("wa-"));
    }
    assert_eq!(
        emu.signer(As::ServiceAccount).algorithm(),
        dfns_client::KeyAlgorithm::Ed25519
    );
    assert_eq!(
        emu.signer(As::Admin).algorithm(),
        dfns_client::KeyAlgorithm::EcdsaP256
    );

    // The right credential id with another key: Dfns refuses the assertion.
    let other_key = emu.identity(As::Admin)["privateKeyPem"]
        .as_str()
        .unwrap()
        .to_owned();
    let impostor = KeySigner::from_pkcs8_pem(
        emu.identity(As::ServiceAccount)["credId"].as_str().unwrap(),
        &SecretString::from(other_key),
    )
    .unwrap();
    let mut config = emu.config(As::ServiceAccount);
    config.signer = Some(Arc::new(impostor));
    let error = DfnsClient::new(config)
        .unwrap()
        .create_wallet(&CreateWallet::new(Network::EthereumSepolia))
        .await
        .unwrap_err();
    let status = error.status().expect("Dfns refused");
    assert!((400..500).contains(&status), "{error}");

    // A credential Dfns does not list for this user: refused before anything is sent.
    let mut config = emu.config(As::ServiceAccount);
    config.signer = Some(Arc::new(
        KeySigner::from_pkcs8_pem(
            "some-other-credential",
            &SecretString::from(
                emu.identity(As::ServiceAccount)["privateKeyPem"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
        )
        .unwrap(),
    ));
    let error = DfnsClient::new(config)
        .unwrap()
        .create_wallet(&CreateWallet::new(Network::EthereumSepolia))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Signing(SignerError::CredentialNotAllowed { .. })
        ),
        "{error:?}"
    );

    // No signer at all: a typed error, not a panic.
    let mut config = emu.config(As::ServiceAccount);
    config.signer = None;
    let error = DfnsClient::new(config)
        .unwrap()
        .create_wallet(&CreateWallet::new(Network::EthereumSepolia))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
}

#[tokio::test]
async fn audit_log_lists_each_signed_call_and_gets_one() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let start = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let wallet = client
        .create_wallet(&CreateWallet::new(Network::EthereumSepolia))
        .await
        .unwrap();
    client
        .tag_wallet(&wallet.id, &["a".to_owned()])
        .await
        .unwrap();
    let end = OffsetDateTime::now_utc() + time::Duration::minutes(5);

    let rows: Vec<_> = client
        .list_audit_logs(&AuditLogQuery {
            start,
            end,
            user_id: None,
        })
        .try_collect()
        .await
        .unwrap();
    let sa = emu.user_id(As::ServiceAccount);
    let ours: Vec<_> = rows
        .iter()
        .filter(|r| r.user_id.as_ref().map(|u| u.as_str()) == Some(sa.as_str()))
        .collect();
    assert_eq!(ours.len(), 2, "{rows:?}");
    assert!(
        ours.iter().any(|r| r
            .action_path
            .as_deref()
            .is_some_and(|p| p.ends_with("/tags"))),
        "{ours:?}"
    );

    let one = client.get_audit_log(&ours[0].id).await.unwrap();
    assert_eq!(one.id, ours[0].id);
    assert_eq!(one.user_id.as_ref().map(|u| u.as_str()), Some(sa.as_str()));
}

#[tokio::test]
async fn webhooks_manage_ping_deliver_verified_events_and_list_them() {
    let emu = emulator().await;
    let client = emu.client(As::ServiceAccount);
    let receiver = receiver().await;

    let created = client
        .create_webhook(&CreateWebhook {
            url: receiver.url.clone(),
            events: vec![WebhookEventKind::All],
            status: None,
            description: Some("platform".into()),
        })
        .await
        .unwrap();
    let webhook = created.webhook.clone();
    assert!(webhook.id.as_str().starts_with("wh-"));
    assert_eq!(webhook.status, WebhookStatus::Enabled);
    let verifier = WebhookVerifier::new(created.secret.clone());

    assert_eq!(
        client.get_webhook(&webhook.id).await.unwrap().url,
        receiver.url
    );
    let listed: Vec<_> = client.list_webhooks().try_collect().await.unwrap();
    assert_eq!(listed.iter().filter(|w| w.id == webhook.id).count(), 1);

    let updated = client
        .update_webhook(
            &webhook.id,
            &UpdateWebhook {
                description: Some("platform v2".into()),
                events: Some(vec![
                    WebhookEventKind::TransferRequested,
                    WebhookEventKind::TransferConfirmed,
                ]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.description.as_deref(), Some("platform v2"));
    assert_eq!(updated.events.len(), 2);

    // Ping: Dfns posts a signed test event to the URL and reports our answer.
    let ping = client.ping_webhook(&webhook.id).await.unwrap();
    assert!(ping.is_success(), "{ping:?}");
    let delivered = receiver
        .wait_for(|d| String::from_utf8_lossy(&d.body).contains("\"ping\""))
        .await;
    let event = verifier
        .verify(delivered.signature.as_deref(), &delivered.body)
        .expect("ping is signed with the webhook secret");
    assert!(matches!(event.data, EventData::Other(_)));

    // A real event: a transfer is requested.
    let wallet_id = funded_wallet(&emu, &client, "hooks").await;
    let transfer = client
        .transfer(&wallet_id, ExternalId::new("hook-1"), native(RECIPIENT, 7))
        .await
        .unwrap()
        .into_transfer();
    let delivered = receiver
        .wait_for(|d| String::from_utf8_lossy(&d.body).contains("wallet.transfer.requested"))
        .await;
    let event = verifier
        .verify(delivered.signature.as_deref(), &delivered.body)
        .expect("verified");
    assert_eq!(event.kind, WebhookEventKind::TransferRequested);
    let EventData::Transfer(requested) = &event.data else {
        panic!("typed transfer event: {event:?}")
    };
    assert_eq!(requested.id, transfer.id);

    // The stored events, by filter and one by one.
    let mut events = Vec::new();
    for _ in 0..100 {
        events = client
            .list_webhook_events(
                &webhook.id,
                &WebhookEventsQuery {
                    kind: Some(WebhookEventKind::TransferRequested),
                    delivery_failed: Some(false),
                    page_size: Some(1),
                },
            )
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, WebhookEventKind::TransferRequested);
    let stored = client
        .get_webhook_event(&webhook.id, &events[0].id)
        .await
        .unwrap();
    assert_eq!(stored.id, events[0].id);
    assert!(matches!(stored.data, EventData::Transfer(ref t) if t.id == transfer.id));

    client.delete_webhook(&webhook.id).await.unwrap();
    let gone = client.get_webhook(&webhook.id).await.unwrap_err();
    assert_eq!(gone.status(), Some(404));
}
