//! Destination requests that are not final yet, across all clients (for the reconciler).

use domain::DestinationRequestState;

use crate::destinations::DestinationRequest;
use crate::item::{self, s};
use crate::{Store, StoreError};

impl Store {
    /// Every destination request still `Queued`, `Submitted` or `PendingApproval`, of every
    /// client. A filtered `Scan`: it reads the whole table, which is fine for a periodic
    /// reconciler at our size; a sparse "open requests" index is the next step if it is not.
    pub async fn open_destination_requests(&self) -> Result<Vec<DestinationRequest>, StoreError> {
        let mut found = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "begins_with(sk, :prefix) AND #state IN (:queued, :submitted, :pending)",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":prefix", s("DESTREQ#"))
                .expression_attribute_values(":queued", s(DestinationRequestState::Queued.as_str()))
                .expression_attribute_values(
                    ":submitted",
                    s(DestinationRequestState::Submitted.as_str()),
                )
                .expression_attribute_values(
                    ":pending",
                    s(DestinationRequestState::PendingApproval.as_str()),
                )
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| StoreError::aws("Scan", e))?;
            for found_item in page.items.unwrap_or_default() {
                found.push(item::from_item(found_item, "destination request", "scan")?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => return Ok(found),
            }
        }
    }
}
