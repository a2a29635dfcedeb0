//! The platform secret read from Secrets Manager through the production cache (one-hour refresh).

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
