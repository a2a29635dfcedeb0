//! Onboarding step claims: who may create a client's Dfns wallet or policy right now.
//!
//! Dfns wallet and policy creation are not idempotent (docs/dfns.md §8.5), so concurrent or
//! retried onboardings must not both create. Each step (`wallet:EthereumSepolia`,
//! `policy:whitelist`, …) has one item `CLIENT#<id>` / `ONBOARD#<step>`:
//!
//! - [`Store::claim_onboarding_step`] takes the step with a lease, conditionally: only if nobody
//!   holds it, or the holder's lease ran out and the step is not done. Exactly one of many
//!   concurrent callers gets [`StepClaim::Claimed`]; the others see [`StepClaim::Busy`] (wait
//!   and look again) or [`StepClaim::Done`].
//! - [`Store::complete_onboarding_step`] records the created resource's id, only for the holder.
//!
//! A holder that crashed after creating at Dfns but before completing leaves an expired lease;
//! the next claimer gets `Claimed { resumed: true }` and must look the resource up at Dfns (by
//! `externalId` or name) before creating one.

use time::OffsetDateTime;

use crate::item::{client_pk, epoch_millis, get_n, get_s, key, n, s};
use crate::{Store, StoreError};

const ENTITY: &str = "onboarding step";
const PREFIX: &str = "ONBOARD#";

/// Outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepClaim {
    /// The caller holds the step until its lease ends. `resumed`: an earlier holder's lease ran
    /// out without completing, so the resource may already exist at Dfns.
    Claimed { resumed: bool },
    /// Someone else holds the step; their lease ends at this instant.
    Busy { lease_until: OffsetDateTime },
    /// The step is done; the created resource's id.
    Done { resource_id: String },
}

/// A step as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardingStep {
    pub step: String,
    pub resource_id: Option<String>,
}

fn valid_step(step: &str) -> bool {
    (1..=100).contains(&step.len())
        && step
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-' || b == b'_')
}

impl Store {
    /// Takes `step` for `owner` until `now + lease`, unless someone else holds it or it is done.
    pub async fn claim_onboarding_step(
        &self,
        client: &domain::ClientId,
        step: &str,
        owner: &str,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<StepClaim, StoreError> {
        if !valid_step(step) {
            return Err(StoreError::Corrupt {
                entity: ENTITY,
                key: step.to_owned(),
                reason: "step must be 1..=100 characters of [A-Za-z0-9:_-]".into(),
            });
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(client_pk(client), format!("{PREFIX}{step}"))))
            .update_expression(
                "SET #owner = :owner, leaseUntil = :until, attempts = if_not_exists(attempts, :zero) + :one",
            )
            .condition_expression(
                "attribute_not_exists(pk) OR (attribute_not_exists(resourceId) AND leaseUntil < :now)",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(epoch_millis(now + lease)))
            .expression_attribute_values(":now", n(epoch_millis(now)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match result {
            Ok(output) => Ok(StepClaim::Claimed {
                resumed: output.attributes.is_some_and(|old| !old.is_empty()),
            }),
            Err(err) => match crate::item::conditional_failure(&err) {
                Some(old) => {
                    let old = match old {
                        Some(old) => old,
                        None => self
                            .get_raw(key(client_pk(client), format!("{PREFIX}{step}")))
                            .await?
                            .unwrap_or_default(),
                    };
                    if let Some(resource_id) = get_s(&old, "resourceId") {
                        return Ok(StepClaim::Done {
                            resource_id: resource_id.to_owned(),
                        });
                    }
                    let until_ms: i128 = get_n(&old, "leaseUntil").unwrap_or(0);
                    Ok(StepClaim::Busy {
                        lease_until: OffsetDateTime::from_unix_timestamp_nanos(
                            until_ms * 1_000_000,
                        )
                        .unwrap_or(now),
                    })
                }
                None => Err(StoreError::aws("UpdateItem", err)),
            },
        }
    }

    /// Marks `step` done with the created resource's id. Only the current holder may complete
    /// ([`StoreError::ConditionFailed`] otherwise); completing again with the same id is a no-op.
    pub async fn complete_onboarding_step(
        &self,
        client: &domain::ClientId,
        step: &str,
        owner: &str,
        resource_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(client_pk(client), format!("{PREFIX}{step}"))))
            .update_expression("SET resourceId = :resource, completedAt = :now REMOVE leaseUntil")
            .condition_expression(
                "attribute_exists(pk) AND ((#owner = :owner AND attribute_not_exists(resourceId)) OR resourceId = :resource)",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":resource", s(resource_id))
            .expression_attribute_values(":now", s(crate::destinations::rfc3339(now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if crate::item::conditional_failure(&err).is_some() => {
                Err(StoreError::ConditionFailed {
                    entity: ENTITY,
                    key: format!("{client}/{step}"),
                    detail: "step is held by another owner or done with another resource".into(),
                })
            }
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }

    /// Gives the step up early (the holder failed), so the next caller need not wait for the lease
    /// to run out. That caller gets `Claimed { resumed: true }`. A no-op if `owner` no longer
    /// holds it or it is done.
    pub async fn release_onboarding_step(
        &self,
        client: &domain::ClientId,
        step: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(client_pk(client), format!("{PREFIX}{step}"))))
            .update_expression("SET leaseUntil = :zero")
            .condition_expression("#owner = :owner AND attribute_not_exists(resourceId)")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if crate::item::conditional_failure(&err).is_some() => Ok(()),
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }

    /// Every recorded step of the client's onboarding.
    pub async fn onboarding_steps(
        &self,
        client: &domain::ClientId,
    ) -> Result<Vec<OnboardingStep>, StoreError> {
        Ok(self
            .query_client_prefix(client, PREFIX)
            .await?
            .iter()
            .filter_map(|item| {
                Some(OnboardingStep {
                    step: get_s(item, "sk")?.strip_prefix(PREFIX)?.to_owned(),
                    resource_id: get_s(item, "resourceId").map(str::to_owned),
                })
            })
            .collect())
    }
}
