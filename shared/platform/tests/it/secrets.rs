//! The secrets read from Secrets Manager through the production cache, and what a function
//! without the signing credential can do.

use platform::error::PlatformError;
use platform::onboarding::{self, AccountStatus};
use platform::testing::{TestEnv, TestOptions};

use crate::client_id;

/// Operations rotate the service-account token: the container still holds the old one, which
/// Dfns refuses. One refused call later the platform works again, not an hour later.
#[tokio::test]
async fn a_rotated_dfns_token_is_picked_up_after_one_refused_call() {
    let env = TestEnv::start(TestOptions {
        secret_in_secrets_manager: true,
        ..TestOptions::default()
    })
    .await;
    // What the container read before the rotation: a token Dfns no longer accepts.
    env.write_secret(Some("revoked-service-account-token"))
        .await;
    let client = client_id("rotation");
    let refused = onboarding::open_account(&env.app, &client, "before-rotation")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PlatformError::Dfns(e) if e.status() == Some(401)),
        "{refused:?}"
    );

    // The rotation lands in Secrets Manager; the next call re-reads it.
    env.write_secret(None).await;
    let account = onboarding::open_account(&env.app, &client, "after-rotation")
        .await
        .expect("the new token is used");
    assert_eq!(account.status, AccountStatus::Open);
}

/// Issue 12, credentials by need: a function without the signing credential (the internet-facing
/// receiver holds only the webhook secret; reporting, operator and the consumer the read-only
/// account) cannot change anything at Dfns. It has no signing client at all, use cases that would change something fail
/// before reaching Dfns, its reads work, and the read-only account's own token — even with a
/// valid signature — is refused by Dfns for every change.
#[tokio::test]
async fn without_the_signing_credential_nothing_can_be_changed_at_dfns() {
    use dfns_client::transfers::TransferAsset;
    use platform::SecretsHeld;

    let env = TestEnv::start(TestOptions::default()).await;
    let client = client_id("read-only");
    let account = onboarding::open_account(&env.app, &client, "open")
        .await
        .unwrap();
    let wallet_id = dfns_client::WalletId::new(account.wallets[0].wallet_id.as_str());

    // The webhook receiver holds the webhook secret only: no Dfns client at all.
    let receiver = env.app.holding_only(SecretsHeld::WEBHOOK_RECEIVER);
    assert_eq!(receiver.secrets_held(), SecretsHeld::WEBHOOK_RECEIVER);
    assert!(receiver.dfns().await.is_err());
    assert!(receiver.dfns_reader().await.is_err());
    // Reporting, operator and the webhook consumer hold the read-only account.
    let receiver = env.app.holding_only(SecretsHeld::READ_ONLY);
    let no_signing = receiver.dfns().await.expect_err("no signing client");
    assert!(
        matches!(&no_signing, PlatformError::Internal(m) if m.contains("signing")),
        "{no_signing:?}"
    );
    let refused = onboarding::open_account(&receiver, &client_id("not-opened"), "open")
        .await
        .expect_err("opening an account changes Dfns");
    assert!(matches!(refused, PlatformError::Internal(_)), "{refused:?}");
    assert!(
        env.app
            .store()
            .list_wallets(&client_id("not-opened"))
            .await
            .unwrap()
            .is_empty(),
        "no wallet made"
    );

    let reader = receiver.dfns_reader().await.expect("a read-only client");
    assert_eq!(reader.get_wallet(&wallet_id).await.unwrap().id, wallet_id);

    // The read-only account itself, with its token and a valid user-action signature.
    let read_only = platform::testing::identity_client(
        &env.emulator.base_url(),
        &env.emulator.bootstrap().read_only_service_account,
    );
    let transfer = read_only
        .transfer_without_external_id(
            &wallet_id,
            TransferAsset::Native {
                to: "0x000000000000000000000000000000000000dead".to_owned(),
                amount: dfns_client::Amount::from(1u128),
                memo: None,
                priority: None,
            },
        )
        .await
        .expect_err("a transfer is refused");
    assert_eq!(transfer.status(), Some(403), "{transfer}");
    let untag = read_only
        .untag_wallet(&wallet_id, &[client.wallet_tag()])
        .await
        .expect_err("an untag is refused");
    assert_eq!(untag.status(), Some(403), "{untag}");
}
