//! The client's activity: on-chain history (deposits and outgoing movements), transfers and
//! governance events (the client's audit chain), merged newest first and paged.
//!
//! **Order and paging.** Every row has an immutable sort key `(occurredAt, id)`: a transfer's
//! `dateRequested`, a history entry's block `timestamp`, an audit event's `at`; ids are unique
//! across sources (`transfer:`, `chain:`, `audit:` prefixes). Rows are ordered by that key,
//! descending, and a page cursor is the key of the last row served (a watermark): the next page is
//! every row strictly below it. Because keys never change, a row is never served twice and never
//! skipped, whatever arrives in between; rows newer than the first page simply appear on a fresh
//! first page. (A source reporting an entry with a timestamp older than a watermark already served
//! — e.g. a late-indexed block — shows up on later reads from the start, not on the page in flight.)
//!
//! **One movement, one row.** A confirmed outgoing transfer appears both as a transfer and as an
//! `Out` history entry with the same transaction hash; the transfer row (which carries its status
//! and id) stands for both, so that history entry is dropped.

use std::collections::{HashMap, HashSet};

use dfns_client::TransferRequest;
use dfns_client::transfers::TransferAsset;
use dfns_client::wallets::{BlockchainEvent, BlockchainEventKind, Direction};
use domain::AuditEvent;
use serde::Serialize;
use time::OffsetDateTime;

/// Where a row comes from, in the client's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActivityCategory {
    /// Funds received (confirmed on-chain).
    Deposit,
    /// Funds that left on-chain without a transfer request of ours (confirmed).
    Withdrawal,
    /// A transfer request from the client's wallet, with its status.
    Transfer,
    /// A change to the account's rules or records (destination requests, onboarding, …).
    Governance,
}

impl ActivityCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::Transfer => "transfer",
            Self::Governance => "governance",
        }
    }
}

/// One row of the activity (JSON and CSV carry the same fields).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityItem {
    /// Unique across sources: `transfer:<id>`, `chain:<wallet>:<tx>:<kind>:<index>:<direction>`,
    /// `audit:<seq>`.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub category: ActivityCategory,
    /// Transfer kind (`Native`, `Erc20`), history kind (`NativeTransfer`), or audit action.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<String>,
    /// `In` or `Out`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Asset symbol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Token contract (an SPL token's mint), when not the native asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// Integer in the asset's smallest unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u32>,
    /// Network fee, integer in the native asset's smallest unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The client's label of the counterparty (or of the destination a governance event is about).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// Transfer id, destination request id, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Who did it (governance events): `client:<id>`, `compliance:<dfns user>`, `dfns:<event>`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why (a rejection or failure reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Column names of the CSV export, in order; [`ActivityItem::csv_record`] fills them.
pub const CSV_HEADER: [&str; 20] = [
    "id",
    "occurredAt",
    "category",
    "kind",
    "status",
    "network",
    "walletId",
    "direction",
    "asset",
    "contract",
    "amount",
    "decimals",
    "fee",
    "from",
    "to",
    "label",
    "txHash",
    "reference",
    "actor",
    "reason",
];

impl ActivityItem {
    /// The row's fields as text, in [`CSV_HEADER`] order (absent = empty). Amounts stay the
    /// integer strings they are; quoting is the CSV writer's job. A cell a spreadsheet would run
    /// as a formula gets a leading `'` (`neutralise_formula`); the JSON rows keep the values
    /// as they are.
    pub fn csv_record(&self) -> [String; 20] {
        self.csv_fields().map(neutralise_formula)
    }

    fn csv_fields(&self) -> [String; 20] {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            self.id.clone(),
            rfc3339(self.occurred_at),
            self.category.as_str().to_owned(),
            self.kind.clone(),
            text(&self.status),
            text(&self.network),
            text(&self.wallet_id),
            text(&self.direction),
            text(&self.asset),
            text(&self.contract),
            text(&self.amount),
            self.decimals.map(|d| d.to_string()).unwrap_or_default(),
            text(&self.fee),
            text(&self.from),
            text(&self.to),
            text(&self.label),
            text(&self.tx_hash),
            text(&self.reference),
            text(&self.actor),
            text(&self.reason),
        ]
    }

    fn sort_key(&self) -> (i128, &str) {
        (self.occurred_at.unix_timestamp_nanos(), self.id.as_str())
    }

    fn empty(
        id: String,
        occurred_at: OffsetDateTime,
        category: ActivityCategory,
        kind: String,
    ) -> Self {
        Self {
            id,
            occurred_at,
            category,
            kind,
            status: None,
            network: None,
            wallet_id: None,
            direction: None,
            asset: None,
            contract: None,
            amount: None,
            decimals: None,
            fee: None,
            from: None,
            to: None,
            label: None,
            tx_hash: None,
            reference: None,
            actor: None,
            reason: None,
        }
    }
}

/// OWASP's rule against CSV injection: a cell starting with `=`, `+`, `-`, `@`, tab or carriage
/// return is prefixed with `'`, so spreadsheets show it as text instead of evaluating it. Labels,
/// token symbols and other cells come from others (anyone can send the wallet a token named
/// `=HYPERLINK(…)`).
fn neutralise_formula(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The client's labels by destination address (exact text as stored, i.e. canonical).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels(HashMap<String, String>);

impl Labels {
    /// From the client's destination requests, oldest first: the latest `add` request naming an
    /// address gives its label.
    pub fn from_requests(requests: &[store::DestinationRequest]) -> Self {
        let mut sorted: Vec<&store::DestinationRequest> = requests.iter().collect();
        sorted.sort_by_key(|r| r.created_at);
        let mut labels = HashMap::new();
        for request in sorted {
            if request.action == domain::DestinationAction::Add {
                labels.insert(
                    request.destination.address().canonical(),
                    request.label.clone(),
                );
            }
        }
        Self(labels)
    }

    pub fn get(&self, address: &str) -> Option<&str> {
        self.0
            .get(address)
            .or_else(|| {
                // EVM addresses are stored lowercase; Dfns may echo another case.
                address
                    .starts_with("0x")
                    .then(|| self.0.get(&address.to_ascii_lowercase()))
                    .flatten()
            })
            .map(String::as_str)
    }

    fn label_of(&self, address: Option<&str>) -> Option<String> {
        address.and_then(|a| self.get(a)).map(str::to_owned)
    }
}

/// A transfer request as a row; `from` is the wallet's own address.
pub fn from_transfer(
    transfer: &TransferRequest,
    wallet_address: Option<&str>,
    labels: &Labels,
) -> ActivityItem {
    let (kind, to, amount, contract) = match &transfer.request_body.asset {
        TransferAsset::Native { to, amount, .. } => (
            "Native".to_owned(),
            Some(to.clone()),
            Some(amount.to_string()),
            None,
        ),
        TransferAsset::Erc20 {
            contract,
            to,
            amount,
            ..
        } => (
            "Erc20".to_owned(),
            Some(to.clone()),
            Some(amount.to_string()),
            Some(contract.clone()),
        ),
        TransferAsset::Erc721 {
            contract,
            to,
            token_id,
            ..
        } => (
            "Erc721".to_owned(),
            Some(to.clone()),
            Some(token_id.clone()),
            Some(contract.clone()),
        ),
        // The mint goes in the token column, as a contract does.
        TransferAsset::Spl {
            mint, to, amount, ..
        } => (
            "Spl".to_owned(),
            Some(to.clone()),
            Some(amount.to_string()),
            Some(mint.clone()),
        ),
        TransferAsset::Spl2022 {
            mint, to, amount, ..
        } => (
            "Spl2022".to_owned(),
            Some(to.clone()),
            Some(amount.to_string()),
            Some(mint.clone()),
        ),
        TransferAsset::Unknown(raw) => {
            let field = |name: &str| raw.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            (
                field("kind").unwrap_or_else(|| "Unknown".to_owned()),
                field("to"),
                field("amount"),
                field("contract").or_else(|| field("mint")),
            )
        }
    };
    let asset = &transfer.metadata.asset;
    let mut item = ActivityItem::empty(
        format!("transfer:{}", transfer.id.as_str()),
        transfer.date_requested,
        ActivityCategory::Transfer,
        kind,
    );
    item.status = Some(transfer.status.as_str().to_owned());
    item.network = Some(transfer.network.as_str().to_owned());
    item.wallet_id = Some(transfer.wallet_id.as_str().to_owned());
    item.direction = Some("Out".to_owned());
    item.asset = asset.symbol.clone();
    item.decimals = asset.decimals;
    item.contract = contract;
    item.amount = amount;
    item.fee = transfer.fee.as_ref().map(ToString::to_string);
    item.from = wallet_address.map(str::to_owned);
    item.label = labels.label_of(to.as_deref());
    item.to = to;
    item.tx_hash = transfer.tx_hash.clone();
    item.reference = Some(transfer.id.as_str().to_owned());
    item.reason = transfer.reason.clone();
    item
}

/// A confirmed on-chain movement as a row.
pub fn from_history(event: &BlockchainEvent, labels: &Labels) -> ActivityItem {
    let (kind, from, to, contract) = match &event.kind {
        BlockchainEventKind::NativeTransfer { from, to } => {
            ("NativeTransfer".to_owned(), from.clone(), to.clone(), None)
        }
        BlockchainEventKind::Erc20Transfer { contract, from, to } => (
            "Erc20Transfer".to_owned(),
            Some(from.clone()),
            Some(to.clone()),
            Some(contract.clone()),
        ),
        BlockchainEventKind::Erc721Transfer {
            contract, from, to, ..
        } => (
            "Erc721Transfer".to_owned(),
            Some(from.clone()),
            Some(to.clone()),
            Some(contract.clone()),
        ),
        BlockchainEventKind::SplTransfer { mint, from, to } => (
            "SplTransfer".to_owned(),
            from.clone(),
            to.clone(),
            Some(mint.clone()),
        ),
        BlockchainEventKind::Spl2022Transfer { mint, from, to } => (
            "Spl2022Transfer".to_owned(),
            from.clone(),
            to.clone(),
            Some(mint.clone()),
        ),
        BlockchainEventKind::Unknown(raw) => {
            let field = |name: &str| raw.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            (
                field("kind").unwrap_or_else(|| "Unknown".to_owned()),
                field("from"),
                field("to"),
                field("contract").or_else(|| field("mint")),
            )
        }
    };
    let incoming = event.direction == Direction::In;
    let index = event
        .index
        .as_ref()
        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
        .unwrap_or_default();
    let mut item = ActivityItem::empty(
        format!(
            "chain:{}:{}:{kind}:{index}:{}",
            event.wallet_id.as_str(),
            event.tx_hash,
            event.direction.as_str()
        ),
        event.timestamp,
        if incoming {
            ActivityCategory::Deposit
        } else {
            ActivityCategory::Withdrawal
        },
        kind,
    );
    item.status = Some("Confirmed".to_owned());
    item.network = Some(event.network.as_str().to_owned());
    item.wallet_id = Some(event.wallet_id.as_str().to_owned());
    item.direction = Some(event.direction.as_str().to_owned());
    item.asset = event.metadata.asset.symbol.clone();
    item.decimals = event.metadata.asset.decimals;
    item.contract = contract;
    item.amount = event.value.as_ref().map(ToString::to_string);
    item.fee = event.fee.as_ref().map(ToString::to_string);
    item.label = labels.label_of(if incoming {
        from.as_deref()
    } else {
        to.as_deref()
    });
    item.from = from;
    item.to = to;
    item.tx_hash = Some(event.tx_hash.clone());
    item
}

/// Audit actions that record money movements already shown from Dfns (history, transfers): not
/// repeated as governance rows.
fn is_movement_record(action: &str) -> bool {
    action.starts_with("deposit.") || action.starts_with("transfer.")
}

fn actor_text(actor: &domain::Actor) -> String {
    match actor {
        domain::Actor::Client { id } => format!("client:{id}"),
        domain::Actor::Operator { id } => format!("operator:{id}"),
        domain::Actor::Compliance { id } => format!("compliance:{id}"),
        domain::Actor::System { id } => format!("system:{id}"),
        domain::Actor::Dfns { id } => format!("dfns:{id}"),
    }
}

/// An audit-chain event as a governance row (`None` for movement records, shown from Dfns).
pub fn from_audit(seq: u64, event: &AuditEvent, labels: &Labels) -> Option<ActivityItem> {
    let action = event.action.as_str();
    if is_movement_record(action) {
        return None;
    }
    let detail = |names: &[&str]| {
        names.iter().find_map(|name| {
            event.details.get(*name).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        })
    };
    // Zero-padded so that equal timestamps still order by sequence.
    let mut item = ActivityItem::empty(
        format!("audit:{seq:020}"),
        event.at,
        ActivityCategory::Governance,
        action.to_owned(),
    );
    item.status = detail(&["state", "status"]);
    item.network = detail(&["network"]);
    item.wallet_id = detail(&["walletId"]);
    // Destination events name the destination; other events' `address` (e.g. a new wallet's own)
    // is not a counterparty.
    if action.starts_with("destination_request.") {
        let address = detail(&["address"]);
        item.label = detail(&["label"]).or_else(|| labels.label_of(address.as_deref()));
        item.to = address;
    }
    // A withdrawal's own lines say where, what and how much (the transfer's row says the rest).
    if action.starts_with("withdrawal.") {
        let address = detail(&["to"]);
        item.label = labels.label_of(address.as_deref());
        item.to = address;
        item.amount = detail(&["amount"]);
        item.asset = detail(&["asset"]);
        item.direction = Some("Out".to_owned());
    }
    item.reference = detail(&[
        "requestId",
        "destinationRequestId",
        "id",
        "policyId",
        "orderId",
        "withdrawalId",
    ]);
    item.actor = Some(actor_text(&event.actor));
    item.reason = detail(&["reason"]);
    Some(item)
}

/// Rows from every source, merged newest first (by `(occurredAt, id)` descending), each id once,
/// with `Out` history entries that a transfer of the same wallet and transaction already stands
/// for left out.
pub fn merge(
    transfers: Vec<ActivityItem>,
    history: Vec<ActivityItem>,
    governance: Vec<ActivityItem>,
) -> Vec<ActivityItem> {
    let sent: HashSet<(String, String)> = transfers
        .iter()
        .filter_map(|t| Some((t.wallet_id.clone()?, t.tx_hash.clone()?)))
        .collect();
    let history = history.into_iter().filter(|h| {
        let outgoing = h.direction.as_deref() == Some("Out");
        let key = (
            h.wallet_id.clone().unwrap_or_default(),
            h.tx_hash.clone().unwrap_or_default(),
        );
        !(outgoing && sent.contains(&key))
    });
    let mut all: Vec<ActivityItem> = transfers
        .into_iter()
        .chain(history)
        .chain(governance)
        .collect();
    all.sort_by(|a, b| b.sort_key().cmp(&a.sort_key()));
    all.dedup_by(|a, b| a.id == b.id);
    all
}

/// Where the next page starts: the sort key of the last row served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    at_nanos: i128,
    id: String,
}

/// A cursor the API did not hand out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

impl Cursor {
    /// The watermark after the row `(at_nanos, id)`.
    pub fn new(at_nanos: i128, id: String) -> Self {
        Self { at_nanos, id }
    }

    pub fn at_nanos(&self) -> i128 {
        self.at_nanos
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn after(item: &ActivityItem) -> Self {
        Self {
            at_nanos: item.occurred_at.unix_timestamp_nanos(),
            id: item.id.clone(),
        }
    }

    /// Opaque text (hex of `<nanos>|<id>`): safe in a query string without escaping.
    pub fn encode(&self) -> String {
        format!("{}|{}", self.at_nanos, self.id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Refuses exactly what [`super::query::ACTIVITY_CURSOR_PATTERN`] refuses: lowercase hex of
    /// 1 to 20 digits, `|`, and 1 to 200 printable ASCII characters.
    pub fn decode(text: &str) -> Result<Self, InvalidCursor> {
        if text.is_empty() || text.len() % 2 != 0 || text.len() > 2 * (20 + 1 + 200) {
            return Err(InvalidCursor);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(InvalidCursor);
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(text.get(i..i + 2).ok_or(InvalidCursor)?, 16)
                    .map_err(|_| InvalidCursor)
            })
            .collect::<Result<Vec<u8>, _>>()?;
        if !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err(InvalidCursor);
        }
        let plain = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
        let (nanos, id) = plain.split_once('|').ok_or(InvalidCursor)?;
        if nanos.is_empty()
            || nanos.len() > 20
            || !nanos.bytes().all(|b| b.is_ascii_digit())
            || id.is_empty()
            || id.len() > 200
        {
            return Err(InvalidCursor);
        }
        Ok(Self {
            at_nanos: nanos.parse().map_err(|_| InvalidCursor)?,
            id: id.to_owned(),
        })
    }
}

/// One page of activity.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityPage {
    pub items: Vec<ActivityItem>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The page of `merged` (as [`merge`] orders it) after `cursor`, at most `limit` rows.
pub fn page(merged: &[ActivityItem], cursor: Option<&Cursor>, limit: usize) -> ActivityPage {
    let start = cursor.map_or(0, |c| {
        let watermark = (c.at_nanos, c.id.as_str());
        merged.partition_point(|item| item.sort_key() >= watermark)
    });
    let rest = &merged[start..];
    let items: Vec<ActivityItem> = rest.iter().take(limit).cloned().collect();
    let next_cursor = (rest.len() > items.len())
        .then(|| items.last().map(|last| Cursor::after(last).encode()))
        .flatten();
    ActivityPage { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Actor, AuditAction, ClientId, DestinationRequestId, NetworkAddress};
    use serde_json::json;
    use time::macros::datetime;

    const DEST: &str = "0xb282dc7cde21717f18337a596e91ded00b79b25f";
    const WALLET: &str = "wa-5pfuu-9euek-h0odgb6snva8ph3k";

    fn transfer(id: &str, at: &str, status: &str, tx_hash: Option<&str>) -> TransferRequest {
        let mut raw = json!({
            "id": id, "walletId": WALLET, "network": "EthereumSepolia",
            "requester": { "userId": "us-sa" },
            "requestBody": { "kind": "Native", "to": DEST, "amount": "1000000000000000000", "externalId": "o-1" },
            "metadata": { "asset": { "symbol": "ETH", "decimals": 18, "quotes": { "USD": 3020.82 } } },
            "status": status, "dateRequested": at,
        });
        if let Some(hash) = tx_hash {
            raw["txHash"] = json!(hash);
            raw["fee"] = json!("21000000000000");
        }
        serde_json::from_value(raw).unwrap()
    }

    fn history(direction: &str, at: &str, tx_hash: &str, from: &str, to: &str) -> BlockchainEvent {
        serde_json::from_value(json!({
            "walletId": WALLET, "direction": direction, "network": "EthereumSepolia",
            "blockNumber": 7, "txHash": tx_hash, "timestamp": at, "kind": "NativeTransfer",
            "from": from, "to": to, "value": "5000000000000000000",
            "metadata": { "asset": { "symbol": "ETH", "decimals": 18 } }
        }))
        .unwrap()
    }

    fn audit(action: &str, at: OffsetDateTime, details: serde_json::Value) -> AuditEvent {
        AuditEvent {
            client_id: ClientId::parse("alice").unwrap(),
            actor: Actor::Dfns { id: "whe-1".into() },
            action: AuditAction::parse(action).unwrap(),
            at,
            request_id: "req-1".into(),
            details,
        }
    }

    fn labels(label: &str) -> Labels {
        let request = store::DestinationRequest {
            id: DestinationRequestId::new(),
            client_id: ClientId::parse("alice").unwrap(),
            destination: NetworkAddress::parse(domain::Network::EthereumSepolia, DEST).unwrap(),
            label: label.to_owned(),
            action: domain::DestinationAction::Add,
            state: domain::DestinationRequestState::Approved,
            created_at: datetime!(2026-01-01 00:00 UTC),
            updated_at: datetime!(2026-01-01 00:00 UTC),
            approval_id: None,
            change_request_id: None,
            reason: None,
        };
        Labels::from_requests(&[request])
    }

    #[test]
    fn merge_orders_every_source_newest_first_and_folds_the_transfers_own_history_entry() {
        let labels = labels("Exchange, main");
        let transfers = vec![from_transfer(
            &transfer(
                "xfr-aaaaa-bbbbb-cccccccccccccc",
                "2026-01-03T00:00:00.000Z",
                "Confirmed",
                Some("0xt1"),
            ),
            Some("0xmine"),
            &labels,
        )];
        let history = vec![
            from_history(
                &history(
                    "In",
                    "2026-01-02T00:00:00.000Z",
                    "0xd1",
                    "0xfunder",
                    "0xmine",
                ),
                &labels,
            ),
            // The transfer's own confirmation: folded into the transfer row.
            from_history(
                &history("Out", "2026-01-03T00:01:00.000Z", "0xt1", "0xmine", DEST),
                &labels,
            ),
            // An outgoing movement no transfer of ours explains: kept.
            from_history(
                &history("Out", "2026-01-01T00:00:00.000Z", "0xother", "0xmine", DEST),
                &labels,
            ),
        ];
        let governance: Vec<_> = [
            (1, audit("account.opened", datetime!(2025-12-31 00:00 UTC), json!({}))),
            (2, audit("destination_request.approved", datetime!(2026-01-02 12:00 UTC),
                json!({"requestId": "01J0000000000000000000000", "address": DEST, "state": "Approved"}))),
            (3, audit("deposit.received", datetime!(2026-01-02 00:00 UTC), json!({}))),
        ]
        .iter()
        .filter_map(|(seq, e)| from_audit(*seq, e, &labels))
        .collect();

        let merged = merge(transfers, history, governance);
        let summary: Vec<_> = merged
            .iter()
            .map(|i| (i.category, i.kind.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (ActivityCategory::Transfer, "Native"),
                (ActivityCategory::Governance, "destination_request.approved"),
                (ActivityCategory::Deposit, "NativeTransfer"),
                (ActivityCategory::Withdrawal, "NativeTransfer"),
                (ActivityCategory::Governance, "account.opened"),
            ]
        );
        let transfer_row = &merged[0];
        assert_eq!(transfer_row.status.as_deref(), Some("Confirmed"));
        assert_eq!(transfer_row.amount.as_deref(), Some("1000000000000000000"));
        assert_eq!(transfer_row.label.as_deref(), Some("Exchange, main"));
        assert_eq!(transfer_row.tx_hash.as_deref(), Some("0xt1"));
        let approval = &merged[1];
        assert_eq!(approval.label.as_deref(), Some("Exchange, main"));
        assert_eq!(
            approval.reference.as_deref(),
            Some("01J0000000000000000000000")
        );
        assert_eq!(approval.actor.as_deref(), Some("dfns:whe-1"));
        assert_eq!(merged[2].amount.as_deref(), Some("5000000000000000000"));
    }

    #[test]
    fn only_destination_events_name_a_counterparty() {
        let labels = labels("desk");
        let wallet = audit(
            "wallet.created",
            datetime!(2026-01-01 00:00 UTC),
            json!({"walletId": WALLET, "address": "0xmine", "network": "EthereumSepolia"}),
        );
        let row = from_audit(7, &wallet, &labels).unwrap();
        assert_eq!(row.to, None);
        assert_eq!(row.wallet_id.as_deref(), Some(WALLET));
        assert_eq!(row.id, "audit:00000000000000000007");

        let created = audit(
            "destination_request.created",
            datetime!(2026-01-01 00:00 UTC),
            json!({"requestId": "01J", "address": DEST}),
        );
        let row = from_audit(8, &created, &labels).unwrap();
        assert_eq!(row.to.as_deref(), Some(DEST));
        assert_eq!(
            row.label.as_deref(),
            Some("desk"),
            "label from the client's requests"
        );
        assert_eq!(row.reference.as_deref(), Some("01J"));

        let deposit = audit(
            "deposit.received",
            datetime!(2026-01-01 00:00 UTC),
            json!({}),
        );
        assert_eq!(
            from_audit(9, &deposit, &labels),
            None,
            "shown from Dfns history instead"
        );
    }

    fn synthetic(count: usize) -> Vec<ActivityItem> {
        // Many rows share a timestamp, so the id must break ties for paging to be exact.
        let rows = (0..count)
            .map(|i| {
                let at = datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds((i / 3) as i64);
                ActivityItem::empty(
                    format!("audit:{i:020}"),
                    at,
                    ActivityCategory::Governance,
                    "x".into(),
                )
            })
            .collect();
        merge(Vec::new(), Vec::new(), rows)
    }

    fn read_all(merged: &[ActivityItem], limit: usize) -> Vec<String> {
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = page(merged, cursor.as_ref(), limit);
            assert!(page.items.len() <= limit);
            seen.extend(page.items.iter().map(|i| i.id.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(Cursor::decode(&next).expect("our cursor decodes")),
                None => return seen,
            }
        }
    }

    #[test]
    fn paging_serves_every_row_once_in_order_for_any_page_size() {
        let merged = synthetic(23);
        let expected: Vec<String> = merged.iter().map(|i| i.id.clone()).collect();
        for limit in [1, 2, 3, 5, 7, 22, 23, 24, 100] {
            assert_eq!(read_all(&merged, limit), expected, "page size {limit}");
        }
    }

    #[test]
    fn rows_arriving_between_pages_are_neither_repeated_nor_skipped() {
        let mut merged = synthetic(10);
        let first = page(&merged, None, 4);
        let cursor = Cursor::decode(first.next_cursor.as_deref().unwrap()).unwrap();
        // A newer row arrives after the first page was served.
        let newest = ActivityItem::empty(
            "transfer:new".into(),
            datetime!(2027-01-01 00:00 UTC),
            ActivityCategory::Transfer,
            "Native".into(),
        );
        merged.push(newest);
        let merged = merge(Vec::new(), Vec::new(), merged);
        let rest = read_from(&merged, cursor, 4);
        let served: Vec<String> = first
            .items
            .iter()
            .map(|i| i.id.clone())
            .chain(rest)
            .collect();
        let original: Vec<String> = synthetic(10).iter().map(|i| i.id.clone()).collect();
        assert_eq!(served, original, "the new row waits for a fresh first page");
    }

    fn read_from(merged: &[ActivityItem], cursor: Cursor, limit: usize) -> Vec<String> {
        let mut seen = Vec::new();
        let mut cursor = Some(cursor);
        while let Some(c) = cursor.take() {
            let page = page(merged, Some(&c), limit);
            seen.extend(page.items.iter().map(|i| i.id.clone()));
            cursor = page.next_cursor.map(|n| Cursor::decode(&n).unwrap());
        }
        seen
    }

    #[test]
    fn cursor_round_trips_and_rejects_what_it_did_not_make() {
        let cursor = Cursor {
            at_nanos: 1_767_225_600_123_000_000,
            id: "chain:wa-1:0xabc:NativeTransfer::In".into(),
        };
        let text = cursor.encode();
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Cursor::decode(&text), Ok(cursor));
        for bad in ["", "zz", "abc", "7c", "31327c", "6e6f7065"] {
            assert_eq!(Cursor::decode(bad), Err(InvalidCursor), "{bad:?}");
        }
    }

    #[test]
    fn csv_record_keeps_amounts_as_integer_strings_in_header_order() {
        let labels = labels("Desk \"A\"\nsecond line");
        let row = from_transfer(
            &transfer(
                "xfr-aaaaa-bbbbb-cccccccccccccc",
                "2026-01-03T00:00:00.000Z",
                "Broadcasted",
                Some("0xt1"),
            ),
            Some("0xmine"),
            &labels,
        );
        let record = row.csv_record();
        let field =
            |name: &str| record[CSV_HEADER.iter().position(|h| *h == name).unwrap()].as_str();
        assert_eq!(field("amount"), "1000000000000000000");
        assert_eq!(field("decimals"), "18");
        assert_eq!(field("occurredAt"), "2026-01-03T00:00:00Z");
        assert_eq!(field("status"), "Broadcasted");
        assert_eq!(field("label"), "Desk \"A\"\nsecond line");
        assert_eq!(field("reason"), "");
    }

    fn csv_field<'a>(record: &'a [String; 20], name: &str) -> &'a str {
        &record[CSV_HEADER.iter().position(|h| *h == name).unwrap()]
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_evaluate_get_a_leading_quote() {
        for lead in ['=', '+', '-', '@', '\t', '\r'] {
            let payload = format!("{lead}HYPERLINK(\"https://evil.example\",\"claim\")");
            let neutralised = format!("'{payload}");
            // A destination label the client typed.
            let transfer_row = from_transfer(
                &transfer(
                    "xfr-aaaaa-bbbbb-cccccccccccccc",
                    "2026-01-03T00:00:00.000Z",
                    "Confirmed",
                    Some("0xt1"),
                ),
                Some("0xmine"),
                &labels(&payload),
            );
            let record = transfer_row.csv_record();
            assert_eq!(csv_field(&record, "label"), neutralised, "{lead:?}");
            assert_eq!(csv_field(&record, "asset"), "ETH");
            // A spam token airdropped to the wallet, named by its sender.
            let mut airdrop = history(
                "In",
                "2026-01-02T00:00:00.000Z",
                "0xd1",
                "0xspammer",
                "0xmine",
            );
            airdrop.metadata.asset.symbol = Some(payload.clone());
            let record = from_history(&airdrop, &Labels::default()).csv_record();
            assert_eq!(csv_field(&record, "asset"), neutralised, "{lead:?}");
            assert_eq!(csv_field(&record, "from"), "0xspammer");
        }
    }

    #[test]
    fn every_csv_column_is_neutralised() {
        let text = || Some("=1+1".to_owned());
        let mut row = ActivityItem::empty(
            "=1+1".into(),
            datetime!(2026-01-01 00:00 UTC),
            ActivityCategory::Governance,
            "=1+1".into(),
        );
        for field in [
            &mut row.status,
            &mut row.network,
            &mut row.wallet_id,
            &mut row.direction,
            &mut row.asset,
            &mut row.contract,
            &mut row.amount,
            &mut row.fee,
            &mut row.from,
            &mut row.to,
            &mut row.label,
            &mut row.tx_hash,
            &mut row.reference,
            &mut row.actor,
            &mut row.reason,
        ] {
            *field = text();
        }
        let record = row.csv_record();
        for (name, cell) in CSV_HEADER.iter().zip(&record) {
            match *name {
                "occurredAt" => assert_eq!(cell, "2026-01-01T00:00:00Z"),
                "category" => assert_eq!(cell, "governance"),
                "decimals" => assert_eq!(cell, ""),
                _ => assert_eq!(cell, "'=1+1", "{name}"),
            }
        }
        assert_eq!(
            row.label.as_deref(),
            Some("=1+1"),
            "the row itself is unchanged"
        );
    }

    #[test]
    fn ordinary_csv_cells_are_unchanged() {
        for cell in [
            "",
            "plain",
            "Desk, main",
            "a=b",
            "1+1",
            " =1+1",
            "'quoted",
            "0xb282dc7cde21717f18337a596e91ded00b79b25f",
            "1000000000000000000",
            "transfer:xfr-1",
            "two\nlines",
            "\"=in quotes\"",
            "\u{ff1d}fullwidth",
        ] {
            assert_eq!(neutralise_formula(cell.to_owned()), cell, "{cell:?}");
        }
        let row = from_transfer(
            &transfer(
                "xfr-aaaaa-bbbbb-cccccccccccccc",
                "2026-01-03T00:00:00.000Z",
                "Confirmed",
                Some("0xt1"),
            ),
            Some("0xmine"),
            &labels("Exchange, main"),
        );
        assert_eq!(row.csv_record(), row.csv_fields());
    }
}
