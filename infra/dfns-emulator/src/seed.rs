//! The seeded organisation: the signing service account (Ed25519 key), a read-only service
//! account (the platform's reporting and webhook receiver read with it), compliance officers (the first
//! with an ECDSA P-256 key, the next Ed25519, alternating), and one admin (P-256), each with a key
//! credential, a bearer JWT and permission assignments (docs/dfns.md §9). [`Bootstrap`] is what a
//! test or the platform needs to act as any of them.

use serde::{Deserialize, Serialize};

use crate::auth::{self, Credential, User};
use crate::clock::iso;
use crate::ids;
use crate::keys::{self, KeyAlgorithm};
use crate::permissions;
use crate::state::State;

/// Credentials of one seeded identity (keys as PKCS#8 PEM).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub user_id: String,
    pub token: String,
    pub cred_id: String,
    pub private_key_pem: String,
}

/// Exactly the `--bootstrap-out` JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    pub base_url: String,
    pub org_id: String,
    pub service_account: Identity,
    /// Holds only [`permissions::READ_ONLY_SERVICE_ACCOUNT_OPERATIONS`].
    pub read_only_service_account: Identity,
    pub officers: Vec<Identity>,
    pub admin: Identity,
}

/// Who to seed.
struct Seat<'a> {
    username: &'a str,
    name: &'a str,
    is_service_account: bool,
    algorithm: KeyAlgorithm,
    operations: &'a [&'a str],
    permission_name: &'a str,
}

fn add_user(state: &mut State, jwt_secret: &[u8], seat: Seat<'_>) -> Identity {
    let Seat {
        username,
        name,
        is_service_account,
        algorithm,
        operations,
        permission_name,
    } = seat;
    let now = state.now();
    let (private_key_pem, key) = keys::generate_credential(algorithm);
    let mut user = User {
        user_id: ids::new_id("us"),
        username: username.to_owned(),
        name: name.to_owned(),
        is_service_account,
        token: String::new(),
        token_id: ids::new_id("to"),
        cred_ids: Vec::new(),
        date_created: iso(now),
    };
    let token_kind = if is_service_account {
        "ServiceAccount"
    } else {
        "Token"
    };
    user.token = auth::mint_jwt(
        jwt_secret,
        &auth::bearer_claims(&state.org_id, &user, now, token_kind),
    );
    let credential = Credential {
        cred_id: ids::random_token(24),
        record_id: ids::new_id("cr"),
        uuid: ids::new_id("cu"),
        user_id: user.user_id.clone(),
        key,
        date_created: iso(now),
    };
    user.cred_ids.push(credential.cred_id.clone());
    let identity = Identity {
        user_id: user.user_id.clone(),
        token: user.token.clone(),
        cred_id: credential.cred_id.clone(),
        private_key_pem,
    };
    state
        .tokens
        .insert(user.token.clone(), user.user_id.clone());
    state
        .credentials
        .insert(credential.cred_id.clone(), credential);
    let operations: Vec<String> = operations.iter().map(|s| (*s).to_owned()).collect();
    permissions::grant(state, &user.user_id, permission_name, &operations);
    state.users.insert(user.user_id.clone(), user);
    identity
}

/// Seeds users into `state` and returns their credentials (`base_url` filled in later).
pub fn seed(state: &mut State, jwt_secret: &[u8], officers: usize) -> Bootstrap {
    let service_account = add_user(
        state,
        jwt_secret,
        Seat {
            username: "platform-service-account",
            name: "Platform service account",
            is_service_account: true,
            algorithm: KeyAlgorithm::Ed25519,
            operations: permissions::SERVICE_ACCOUNT_OPERATIONS,
            permission_name: "Platform service account",
        },
    );
    let read_only_service_account = add_user(
        state,
        jwt_secret,
        Seat {
            username: "platform-read-only",
            name: "Platform read-only service account",
            is_service_account: true,
            algorithm: KeyAlgorithm::Ed25519,
            operations: permissions::READ_ONLY_SERVICE_ACCOUNT_OPERATIONS,
            permission_name: "Platform read-only",
        },
    );
    let officers = (0..officers.max(2))
        .map(|i| {
            let algorithm = if i % 2 == 0 {
                KeyAlgorithm::EcdsaP256
            } else {
                KeyAlgorithm::Ed25519
            };
            add_user(
                state,
                jwt_secret,
                Seat {
                    username: &format!("officer{}@platform.example", i + 1),
                    name: &format!("Compliance officer {}", i + 1),
                    is_service_account: false,
                    algorithm,
                    operations: permissions::OFFICER_OPERATIONS,
                    permission_name: "Compliance officer",
                },
            )
        })
        .collect();
    let admin_ops = permissions::admin_operations();
    let admin = add_user(
        state,
        jwt_secret,
        Seat {
            username: "admin@platform.example",
            name: "Org admin",
            is_service_account: false,
            algorithm: KeyAlgorithm::EcdsaP256,
            operations: &admin_ops,
            permission_name: "Org admin",
        },
    );
    Bootstrap {
        base_url: String::new(),
        org_id: state.org_id.clone(),
        service_account,
        read_only_service_account,
        officers,
        admin,
    }
}
