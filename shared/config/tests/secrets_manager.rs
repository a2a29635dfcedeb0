//! Against moto's Secrets Manager (started by `cargo xtask test`).

use std::time::Duration;

use platform_config::{SecretCache, SecretError, SigningCredential};

type SigningCache = SecretCache<SigningCredential>;
use secrecy::ExposeSecret;

async fn client() -> aws_sdk_secretsmanager::Client {
    if std::env::var_os("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_none() {
        panic!(
            "AWS_ENDPOINT_URL_SECRETS_MANAGER is not set: these tests need the moto server; \
             run through `cargo xtask test`"
        );
    }
    // A config per test: each #[tokio::test] has its own runtime, and pooled connections must
    // not outlive the runtime that opened them.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

fn secret_json(token: &str) -> String {
    serde_json::json!({
        "dfnsServiceAccountToken": token,
        "dfnsCredentialId": "cred-1",
        "dfnsPrivateKeyPem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    })
    .to_string()
}

/// Creates a uniquely named secret and returns (name, ARN).
async fn create_secret(client: &aws_sdk_secretsmanager::Client, value: &str) -> (String, String) {
    let name = format!("platform-test-{}", ulid::Ulid::new());
    let created = client
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    (name, created.arn().expect("ARN").to_owned())
}

async fn rotate(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) {
    client
        .put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
        .expect("put secret value");
}

async fn token(cache: &SigningCache) -> String {
    cache
        .get()
        .await
        .expect("secret")
        .token
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn loads_by_name_and_by_arn() {
    let client = client().await;
    let (name, arn) = create_secret(&client, &secret_json("token-v1")).await;
    for id in [name, arn] {
        let cache = SigningCache::new(client.clone(), id, Duration::from_secs(300));
        let secret = cache.get().await.unwrap();
        assert_eq!(secret.token.expose_secret(), "token-v1");
        assert_eq!(secret.credential_id.expose_secret(), "cred-1");
        assert!(!format!("{secret:?}").contains("token-v1"));
    }
}

#[tokio::test]
async fn cached_until_the_refresh_interval_then_reread() {
    let client = client().await;
    let (name, _) = create_secret(&client, &secret_json("token-v1")).await;
    let refresh = Duration::from_millis(1500);
    let cache = SigningCache::new(client.clone(), name.clone(), refresh);
    assert_eq!(token(&cache).await, "token-v1");

    rotate(&client, &name, &secret_json("token-v2")).await;
    // Within the interval the cached value is served: Secrets Manager is not asked again.
    assert_eq!(token(&cache).await, "token-v1");

    tokio::time::sleep(refresh + Duration::from_millis(100)).await;
    assert_eq!(token(&cache).await, "token-v2");
}

#[tokio::test]
async fn invalidate_forces_a_fresh_read() {
    let client = client().await;
    let (name, _) = create_secret(&client, &secret_json("token-v1")).await;
    let cache = SigningCache::new(client.clone(), name.clone(), Duration::from_secs(3600));
    assert_eq!(token(&cache).await, "token-v1");
    rotate(&client, &name, &secret_json("token-v2")).await;
    assert_eq!(token(&cache).await, "token-v1");
    cache.invalidate().await;
    assert_eq!(token(&cache).await, "token-v2");
}

#[tokio::test]
async fn fetched_on_first_use_not_at_construction() {
    let client = client().await;
    let name = format!("platform-test-{}", ulid::Ulid::new());
    // Constructing a cache for a secret that does not exist yet makes no call and cannot fail.
    let cache = SigningCache::new(client.clone(), name.clone(), Duration::from_secs(300));
    create_secret_named(&client, &name, &secret_json("token-late")).await;
    assert_eq!(token(&cache).await, "token-late");

    let missing = SigningCache::new(client, format!("{name}-missing"), Duration::from_secs(300));
    assert!(matches!(
        missing.get().await,
        Err(SecretError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_failed_refresh_serves_the_last_good_value_but_a_malformed_first_read_fails() {
    let client = client().await;
    let (name, _) = create_secret(&client, &secret_json("token-v1")).await;
    let refresh = Duration::from_millis(500);
    let cache = SigningCache::new(client.clone(), name.clone(), refresh);
    assert_eq!(token(&cache).await, "token-v1");
    rotate(
        &client,
        &name,
        "{\"dfnsServiceAccountToken\": \"half-written\"}",
    )
    .await;
    tokio::time::sleep(refresh + Duration::from_millis(100)).await;
    assert_eq!(token(&cache).await, "token-v1");
    // After an explicit invalidation there is no fallback: the caller learns it is broken.
    cache.invalidate().await;
    let err = cache.get().await.unwrap_err();
    assert!(matches!(err, SecretError::Malformed { .. }), "{err:?}");
    assert!(!format!("{err}").contains("half-written"));

    let (bad, _) = create_secret(&client, "not json at all").await;
    let fresh = SigningCache::new(client, bad, refresh);
    assert!(matches!(
        fresh.get().await,
        Err(SecretError::Malformed { .. })
    ));
}

async fn create_secret_named(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) {
    client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
}

/// The process's own client (what `App::from_env` gives its caches) is built on the first read,
/// and reads the secret like a given one. The only test here on the process-wide client, whose
/// pool belongs to the first runtime that uses it.
#[tokio::test]
async fn a_cache_on_the_process_client_reads_the_secret_on_first_use() {
    let given = client().await;
    let (name, _) = create_secret(&given, &secret_json("token-process")).await;
    let cache = SigningCache::with_process_client(&name, Duration::from_secs(60));
    assert_eq!(token(&cache).await, "token-process");
    let missing = SigningCache::with_process_client(
        format!("platform-test-missing-{}", ulid::Ulid::new()),
        Duration::from_secs(60),
    );
    assert!(matches!(
        missing.get().await,
        Err(SecretError::NotFound { .. })
    ));
}
