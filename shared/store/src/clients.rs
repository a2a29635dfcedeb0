//! Client profiles and their wallet mappings.

use domain::{ClientId, NetworkAddress, WalletId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::{self, Item, cancellation_codes, client_pk, key, s};
use crate::schema::GSI1;
use crate::{Store, StoreError};

const PROFILE: &str = "client profile";
const WALLET: &str = "wallet mapping";

/// A client's account record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientProfile {
    pub client_id: ClientId,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub created_at: OffsetDateTime,
    /// Limits tier from configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// The Dfns wallet a client holds on one network (at most one per network).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletMapping {
    pub client_id: ClientId,
    pub wallet_id: WalletId,
    /// The wallet's network and address.
    #[serde(flatten)]
    pub address: NetworkAddress,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub created_at: OffsetDateTime,
}

fn wallet_sk(mapping_network: domain::Network) -> String {
    format!("WALLET#{mapping_network}")
}

impl Store {
    /// Creates the profile if the client has none. The loser of a concurrent create (or any
    /// create for an existing client) gets [`StoreError::Conflict`].
    pub async fn create_client_profile(&self, profile: &ClientProfile) -> Result<(), StoreError> {
        let pk = client_pk(&profile.client_id);
        let mut item = item::to_item(profile, PROFILE, &pk)?;
        item.extend(key(pk.clone(), "PROFILE"));
        match self.put_if_absent(item).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict {
                entity: PROFILE,
                key: profile.client_id.to_string(),
            }),
        }
    }

    pub async fn get_client_profile(
        &self,
        client: &ClientId,
    ) -> Result<Option<ClientProfile>, StoreError> {
        let pk = client_pk(client);
        match self.get_raw(key(pk.clone(), "PROFILE")).await? {
            Some(found) => item::from_item(found, PROFILE, &pk).map(Some),
            None => Ok(None),
        }
    }

    /// Records the client's wallet for its network. Idempotent: attaching the same wallet again
    /// returns the stored mapping; a *different* wallet for a network that already has one is a
    /// [`StoreError::Conflict`]. The client's profile must exist ([`StoreError::NotFound`]).
    pub async fn attach_wallet(
        &self,
        mapping: &WalletMapping,
    ) -> Result<WalletMapping, StoreError> {
        let pk = client_pk(&mapping.client_id);
        let sk = wallet_sk(mapping.address.network());
        let mut item = item::to_item(mapping, WALLET, &pk)?;
        item.extend(key(pk.clone(), sk.clone()));
        item.insert("gsi1pk".into(), s(format!("WALLET#{}", mapping.wallet_id)));
        item.insert("gsi1sk".into(), s(pk.clone()));

        let profile_check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), "PROFILE")))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(builder_error)?;
        let put = self.create_if_absent(item)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .condition_check(profile_check)
                    .build(),
            )
            .transact_items(put)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(mapping.clone()),
            Err(err) => err,
        };
        let Some(codes) = cancellation_codes(&err) else {
            return Err(StoreError::aws("TransactWriteItems", err));
        };
        let failed =
            |i: usize| codes.get(i).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed");
        if failed(0) {
            return Err(StoreError::NotFound {
                entity: PROFILE,
                key: mapping.client_id.to_string(),
            });
        }
        if failed(1) {
            let existing: Option<WalletMapping> = match self.get_raw(key(pk.clone(), sk)).await? {
                Some(found) => Some(item::from_item(found, WALLET, &pk)?),
                None => None,
            };
            return match existing {
                Some(existing) if existing.wallet_id == mapping.wallet_id => Ok(existing),
                _ => Err(StoreError::Conflict {
                    entity: WALLET,
                    key: format!("{}/{}", mapping.client_id, mapping.address.network()),
                }),
            };
        }
        // Cancelled for another reason (e.g. a concurrent transaction on the same items).
        Err(StoreError::aws("TransactWriteItems", err))
    }

    /// The client's wallets, one per network.
    pub async fn list_wallets(&self, client: &ClientId) -> Result<Vec<WalletMapping>, StoreError> {
        let pk = client_pk(client);
        self.query_client_prefix(client, "WALLET#")
            .await?
            .into_iter()
            .map(|i: Item| item::from_item(i, WALLET, &pk))
            .collect()
    }

    /// Which client holds this wallet (e.g. for a deposit webhook). Reads an index: a mapping
    /// written a moment ago may not be visible yet. A mapping found is kept for the life of the
    /// process: it never changes once written ([`Store::attach_wallet`] creates it if absent and
    /// nothing deletes it), and every deposit asks twice (the receiver for its queue group, the
    /// consumer for its client), so a dust burst would otherwise cost two index reads per event.
    /// A wallet not mapped yet is asked again each time.
    pub async fn find_wallet(
        &self,
        wallet_id: &WalletId,
    ) -> Result<Option<WalletMapping>, StoreError> {
        if let Some(found) = self.found_wallets.get(wallet_id) {
            return Ok(Some(found));
        }
        let found = self.query_wallet_mapping(wallet_id).await?;
        if let Some(mapping) = &found {
            self.found_wallets.keep(mapping);
        }
        Ok(found)
    }

    async fn query_wallet_mapping(
        &self,
        wallet_id: &WalletId,
    ) -> Result<Option<WalletMapping>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(format!("WALLET#{wallet_id}")))
            .limit(1);
        match self.query_all(query, Some(1)).await?.into_iter().next() {
            Some(found) => item::from_item(found, WALLET, wallet_id.as_str()).map(Some),
            None => Ok(None),
        }
    }
}

/// Wallet mappings a process has found, at most [`FoundWallets::CAPACITY`] (then it starts over:
/// a miss only costs the index read it saves).
#[derive(Debug, Default)]
pub(crate) struct FoundWallets(std::sync::Mutex<std::collections::HashMap<String, WalletMapping>>);

impl FoundWallets {
    const CAPACITY: usize = 10_000;

    fn get(&self, wallet_id: &WalletId) -> Option<WalletMapping> {
        let found = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        found.get(wallet_id.as_str()).cloned()
    }

    fn keep(&self, mapping: &WalletMapping) {
        let mut found = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if found.len() >= Self::CAPACITY {
            found.clear();
        }
        found.insert(mapping.wallet_id.as_str().to_owned(), mapping.clone());
    }
}

pub(crate) fn builder_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Aws {
        operation: "request builder",
        message: e.to_string(),
        retryable: false,
        source: Box::new(e),
    }
}

const POLICY_REF: &str = "client policy";
pub(crate) const POLICY_REF_PREFIX: &str = "POLICYREF#";

/// Whether `kind` is a usable policy kind name: 1..=40 of `[a-z0-9-]`.
fn valid_policy_kind(kind: &str) -> bool {
    (1..=40).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Store {
    /// Records which Dfns policy serves as the client's policy of `kind` (`whitelist`,
    /// `amount-limit`, …) unless one is already recorded, and returns the recorded id: `policy_id`
    /// if this call recorded it, else the one recorded first. Concurrent onboardings that each
    /// created a policy thus agree on one of them (the other can be archived).
    pub async fn record_client_policy(
        &self,
        client: &ClientId,
        kind: &str,
        policy_id: &str,
    ) -> Result<String, StoreError> {
        if !valid_policy_kind(kind) {
            return Err(StoreError::InvalidInput {
                reason: format!("policy kind `{kind}` must be 1..=40 characters of [a-z0-9-]"),
            });
        }
        let pk = client_pk(client);
        let sk = format!("{POLICY_REF_PREFIX}{kind}");
        let mut item = key(pk.clone(), sk.clone());
        item.insert("kind".into(), s(kind));
        item.insert("policyId".into(), s(policy_id));
        match self.put_if_absent(item).await? {
            true => Ok(policy_id.to_owned()),
            false => {
                let existing = self.get_raw(key(pk, sk)).await?;
                existing
                    .as_ref()
                    .and_then(|i| item::get_s(i, "policyId"))
                    .map(str::to_owned)
                    .ok_or_else(|| StoreError::Corrupt {
                        entity: POLICY_REF,
                        key: format!("{client}/{kind}"),
                        reason: "record without policyId".into(),
                    })
            }
        }
    }

    /// Forgets the client's policy of `kind` if it is still `policy_id` (a migration forgets the
    /// shared set once Dfns has archived it). `false`: another id, or none, is recorded.
    pub async fn forget_client_policy(
        &self,
        client: &ClientId,
        kind: &str,
        policy_id: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                client_pk(client),
                format!("{POLICY_REF_PREFIX}{kind}"),
            )))
            .condition_expression("policyId = :id")
            .expression_attribute_values(":id", s(policy_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::aws("DeleteItem", err)),
        }
    }

    /// The client's recorded policies, by kind.
    pub async fn client_policies(
        &self,
        client: &ClientId,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        Ok(self
            .query_client_prefix(client, POLICY_REF_PREFIX)
            .await?
            .iter()
            .filter_map(|i| {
                Some((
                    item::get_s(i, "kind")?.to_owned(),
                    item::get_s(i, "policyId")?.to_owned(),
                ))
            })
            .collect())
    }
}
