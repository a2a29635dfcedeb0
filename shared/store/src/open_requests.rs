//! Work not finished yet, across all clients, through the sparse `open` index: destination
//! requests not final (for the reconciler) and orders whose transfer is at Dfns but not final
//! (for the in-flight refresh). An item carries `openPk`/`openSk` exactly while it is open; the
//! writes that move it in or out of those states set or remove them in the same update, so these
//! reads are one `Query` each, not a scan of the table.

use domain::{DestinationRequestState, OrderState, StateMachine};

use crate::destinations::DestinationRequest;
use crate::item::{self, Item, s};
use crate::orders::Order;
use crate::schema::OPEN_INDEX;
use crate::{Store, StoreError};

/// `openPk` of a destination request while it is not final.
pub(crate) const OPEN_DESTINATION_REQUESTS: &str = "OPEN#DESTREQ";
/// `openPk` of an order while its transfer is at Dfns and not final.
pub(crate) const OPEN_ORDERS: &str = "OPEN#ORDER";

/// Whether a destination request in `state` belongs in the index.
pub(crate) fn destination_request_is_open(state: DestinationRequestState) -> bool {
    !state.is_terminal()
}

/// Whether an order in `state` belongs in the index: a lost webhook could leave it there.
pub(crate) fn order_is_open(state: OrderState) -> bool {
    matches!(
        state,
        OrderState::Submitted | OrderState::PendingApproval | OrderState::Broadcasted
    )
}

/// The index attributes of an open item (`openSk` orders it: a ULID, i.e. creation time).
pub(crate) fn open_attributes(
    kind: &str,
    sort: impl Into<String>,
) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    [
        ("openPk".into(), s(kind)),
        ("openSk".into(), s(sort.into())),
    ]
}

impl Store {
    /// Every destination request still `Queued`, `Submitted` or `PendingApproval`, of every
    /// client, oldest first. An index read (it may lag a moment behind a write): callers re-read
    /// or write conditionally before acting.
    pub async fn open_destination_requests(&self) -> Result<Vec<DestinationRequest>, StoreError> {
        let requests: Vec<DestinationRequest> = self
            .open_items(OPEN_DESTINATION_REQUESTS)
            .await?
            .into_iter()
            .map(|found| item::from_item(found, "destination request", "open index"))
            .collect::<Result<_, _>>()?;
        Ok(requests
            .into_iter()
            .filter(|r| destination_request_is_open(r.state))
            .collect())
    }

    /// Orders whose transfer is at Dfns but not final (`Submitted`, `PendingApproval`,
    /// `Broadcasted`): the ones a lost webhook could leave behind. An index read, as above.
    pub async fn in_flight_orders(&self) -> Result<Vec<Order>, StoreError> {
        let orders: Vec<Order> = self
            .open_items(OPEN_ORDERS)
            .await?
            .into_iter()
            .map(|found| item::from_item(found, "order", "open index"))
            .collect::<Result<_, _>>()?;
        Ok(orders
            .into_iter()
            .filter(|o| order_is_open(o.state))
            .collect())
    }

    async fn open_items(&self, kind: &str) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .key_condition_expression("openPk = :kind")
            .expression_attribute_values(":kind", s(kind));
        self.query_all(query, None).await
    }
}
