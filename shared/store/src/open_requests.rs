//! Work not finished yet, across all clients, through the sparse `open` index: destination
//! requests not final (for the reconciler) and orders whose transfer is at Dfns but not final
//! (for the in-flight refresh). An item carries `openPk`/`openSk` exactly while it is open; the
//! writes that move it in or out of those states set or remove them in the same update, so these
//! reads are one `Query` each, not a scan of the table.
//!
//! Also the bounds that keep one client from crowding out the others:
//! - a destination request's `openSk` is `<clientId>#<ulid>`, so the reconciler takes the open
//!   requests client by client, a page each ([`Store::next_client_open_requests`]), resuming
//!   where its last run stopped ([`Store::reconcile_cursor`]: item `RECONCILER` / `CURSOR#DESTREQ`);
//! - each client's count of open destination requests (`CLIENT#<id>` / `QUOTA#OPEN_DESTREQ`),
//!   which [`Store::create_destination_request_within`] keeps within a quota ([`Admission`]);
//! - each client's count of mutating calls per clock minute (`CLIENT#<id>` / `RATE#<minute>`,
//!   expiring by TTL): [`Store::count_client_call`].

use domain::{ClientId, DestinationRequestId, DestinationRequestState, OrderState, StateMachine};
use time::OffsetDateTime;

use crate::destinations::{DestinationRequest, DestinationRequestView};
use crate::item::{self, Item, client_pk, get_n, get_s, key, n, s};
use crate::orders::Order;
use crate::schema::{OPEN_INDEX, TTL_ATTRIBUTE};
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
    /// Every destination request still `CoolingOff`, `Queued`, `Submitted` or `PendingApproval`, of every
    /// client, client by client, each client's oldest first. All of them, in one list: the
    /// reconciler takes them a client and a page at a time instead
    /// ([`Store::next_client_open_requests`]). An index read (it may lag a moment behind a
    /// write): callers re-read or write conditionally before acting.
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

// ---------------------------------------------------------------------------------------------
// Client by client: the reconciler's fair walk over the open index.

/// `openSk` of a destination request: its client, then its id. One client's open requests are
/// therefore contiguous in the index, oldest first, and the reconciler can take them client by
/// client (a page each) instead of walking every open request. Requests stored before this key
/// carry their bare id; they are read too, each as a group of its own.
pub(crate) fn destination_open_sort_key(client: &ClientId, id: &DestinationRequestId) -> String {
    format!("{client}#{id}")
}

/// Above every character of a ULID (`0-9`, `A-Z`): `<client>#~` sorts after every key of the
/// client (`<client>#<ulid>`), so whatever sorts after it belongs to a later client.
const AFTER_ULIDS: char = '~';

/// One client's oldest open destination requests, as the reconciler takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOpenRequests {
    pub client_id: ClientId,
    /// At most the page asked for, oldest first, each with the end of its cooling-off (an index
    /// read: callers re-read or write conditionally before acting).
    pub requests: Vec<DestinationRequestView>,
    /// The client has more open requests than the page: the rest wait for a later run.
    pub more: bool,
    /// Where the next client starts: pass it to [`Store::next_client_open_requests`] (and keep it
    /// as the reconciler's cursor).
    pub after: String,
}

const CURSOR_PK: &str = "RECONCILER";
const CURSOR_SK: &str = "CURSOR#DESTREQ";

impl Store {
    /// The first client (in index order) whose open requests sort after `after` (`None`: from the
    /// start), with up to `page` of its oldest open requests. `None` when no client is left. One
    /// `Query` of at most `page + 1` items.
    pub async fn next_client_open_requests(
        &self,
        after: Option<&str>,
        page: usize,
    ) -> Result<Option<ClientOpenRequests>, StoreError> {
        let page = page.max(1);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .expression_attribute_values(":kind", s(OPEN_DESTINATION_REQUESTS))
            .limit(i32::try_from(page + 1).unwrap_or(i32::MAX));
        query = match after {
            Some(after) => query
                .key_condition_expression("openPk = :kind AND openSk > :after")
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("openPk = :kind"),
        };
        let items = query
            .send()
            .await
            .map_err(|e| StoreError::aws("Query", e))?
            .items
            .unwrap_or_default();
        let Some(first_key) = items
            .first()
            .and_then(|i| get_s(i, "openSk"))
            .map(str::to_owned)
        else {
            return Ok(None);
        };
        // `<client>#<ulid>`, or a bare id (stored before the client prefix): a group of one.
        let (prefix, after) = match first_key.split_once('#') {
            Some((client, _)) => (
                Some(format!("{client}#")),
                format!("{client}#{AFTER_ULIDS}"),
            ),
            None => (None, first_key.clone()),
        };
        let in_group = |item: &Item| {
            let key = get_s(item, "openSk").unwrap_or_default();
            match &prefix {
                Some(prefix) => key.starts_with(prefix.as_str()),
                None => key == first_key,
            }
        };
        let grouped: Vec<Item> = items.into_iter().take_while(in_group).collect();
        let more = grouped.len() > page;
        let mut requests = Vec::with_capacity(page);
        for found in grouped.into_iter().take(page) {
            requests.push(item::from_item::<DestinationRequestView>(
                found,
                "destination request",
                "open index",
            )?);
        }
        let client_id = match requests.first() {
            Some(request) => request.client_id.clone(),
            None => return Ok(None),
        };
        requests.retain(|r| destination_request_is_open(r.state));
        Ok(Some(ClientOpenRequests {
            client_id,
            requests,
            more,
            after,
        }))
    }

    /// Where the reconciler's last run stopped (the `after` of the last client it took), if it
    /// stopped before the end.
    pub async fn reconcile_cursor(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_raw(key(CURSOR_PK, CURSOR_SK))
            .await?
            .and_then(|found| get_s(&found, "after").map(str::to_owned)))
    }

    /// Records where the next reconciler run starts (`None`: from the first client).
    pub async fn set_reconcile_cursor(&self, after: Option<&str>) -> Result<(), StoreError> {
        match after {
            Some(after) => {
                let mut cursor = key(CURSOR_PK, CURSOR_SK);
                cursor.insert("after".into(), s(after));
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(cursor))
                    .send()
                    .await
                    .map_err(|e| StoreError::aws("PutItem", e))?;
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(CURSOR_PK, CURSOR_SK)))
                    .send()
                    .await
                    .map_err(|e| StoreError::aws("DeleteItem", e))?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Per-client quota of open destination requests.

/// Sort key of a client's count of open destination requests (in the client's partition). The
/// count moves only inside the transactions that change it: `+1` with the request's creation,
/// conditional on staying within the quota; `-1` with the request's move to a final state. So it
/// cannot drift, and concurrent creates cannot pass the quota.
pub(crate) const OPEN_COUNT_SK: &str = "QUOTA#OPEN_DESTREQ";
/// Attribute holding the count.
pub(crate) const OPEN_COUNT: &str = "openCount";
/// Attribute marking a request counted in its client's open count (requests stored before the
/// count existed are not, and are never subtracted).
pub(crate) const COUNTED: &str = "countedOpen";

/// Outcome of [`Store::create_destination_request_within`].
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Stored (`Queued`, or `CoolingOff` when it waits), and counted.
    Created(Box<DestinationRequest>),
    /// The client already has `max_open` open requests: nothing was written.
    QuotaReached,
}

impl Store {
    /// How many of the client's destination requests are open, as counted (strongly consistent).
    pub async fn open_destination_request_count(
        &self,
        client: &ClientId,
    ) -> Result<u32, StoreError> {
        Ok(self
            .get_raw(key(client_pk(client), OPEN_COUNT_SK))
            .await?
            .and_then(|found| get_n::<i64>(&found, OPEN_COUNT))
            .map_or(0, |n| u32::try_from(n.max(0)).unwrap_or(u32::MAX)))
    }
}

// ---------------------------------------------------------------------------------------------
// Per-client rate of mutating calls: a fixed window per client and clock minute.

/// Sort-key prefix of a client's call counter for one minute (`RATE#<epoch minute>`). Each
/// expires (DynamoDB TTL) an hour after its minute.
const RATE_PREFIX: &str = "RATE#";

/// Outcome of [`Store::count_client_call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateWindow {
    /// Counted: the `calls`-th of this minute.
    Admitted { calls: u32 },
    /// The minute's allowance is spent; the next minute starts in `retry_after_seconds`.
    Refused { retry_after_seconds: u32 },
}

impl Store {
    /// Counts one call of `client` in the clock minute of `now`, if fewer than `per_minute` were
    /// counted in it: one conditional `UpdateItem` (`calls < per_minute`), so concurrent calls
    /// cannot pass the limit. A fixed window: a burst straddling a minute's end can reach twice
    /// the rate over those two minutes, never more.
    pub async fn count_client_call(
        &self,
        client: &ClientId,
        now: OffsetDateTime,
        per_minute: u32,
    ) -> Result<RateWindow, StoreError> {
        let minute = now.unix_timestamp().div_euclid(60);
        let window_end = (minute + 1) * 60;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                client_pk(client),
                format!("{RATE_PREFIX}{minute}"),
            )))
            .update_expression("SET calls = if_not_exists(calls, :zero) + :one, #ttl = :ttl")
            .condition_expression("attribute_not_exists(calls) OR calls < :max")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(per_minute))
            .expression_attribute_values(":ttl", n(window_end + 3600))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(RateWindow::Admitted {
                calls: output
                    .attributes
                    .as_ref()
                    .and_then(|a| get_n::<u32>(a, "calls"))
                    .unwrap_or(1),
            }),
            Err(err) if item::conditional_failure(&err).is_some() => {
                let left = (window_end - now.unix_timestamp()).clamp(1, 60);
                Ok(RateWindow::Refused {
                    retry_after_seconds: left as u32,
                })
            }
            Err(err) => Err(StoreError::aws("UpdateItem", err)),
        }
    }
}
