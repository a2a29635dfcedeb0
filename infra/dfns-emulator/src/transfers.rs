//! Transfers (docs/dfns.md §3.7–3.8, §8.5): `Native`, `Erc20`, `Spl` and `Spl2022` with
//! validation, `externalId`
//! idempotency, the policy hook, and the lifecycle `Pending → Executing → Broadcasted →
//! Confirmed` (or `Failed` on insufficient balance), automatic or stepped by the control API.

use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State as AxState};
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::clock::iso;
use crate::errors::{ApiError, ApiResult};
use crate::extract::{DfnsJson, DfnsQuery};
use crate::ids;
use crate::keys::is_evm_address;
use crate::ledger::{self, AssetKey, Movement, SplProgram, parse_amount};
use crate::networks;
use crate::pagination::{PageQuery, page};
use crate::permissions::list_json;
use crate::policy::Verdict;
use crate::state::{Job, SharedApp, State};
use crate::wallets::get_wallet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TransferStatus {
    Pending,
    Executing,
    Broadcasted,
    Confirmed,
    Failed,
    Rejected,
}

impl TransferStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Confirmed | Self::Failed | Self::Rejected)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Executing => "Executing",
            Self::Broadcasted => "Broadcasted",
            Self::Confirmed => "Confirmed",
            Self::Failed => "Failed",
            Self::Rejected => "Rejected",
        }
    }
}

/// How transfers move through their lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// One step every `delay` until terminal.
    Auto { delay: Duration },
    /// Only `POST /emulator/transfers/{id}/advance` moves a transfer.
    Manual,
}

/// Gas used by the emulated chain, times a 1 gwei gas price, is the fee in wei (an ERC-20
/// transfer; native fees per network: [`networks::native_transfer_fee`]).
const GAS_PRICE_WEI: u128 = 1_000_000_000;
const ERC20_GAS: u128 = 65_000;
/// The fee of an SPL transfer in lamports: one signature, as a native SOL transfer.
const SPL_TRANSFER_FEE: u128 = 5_000;
/// Rent-exempt deposit of a new associated token account (165 bytes), in lamports, paid by the
/// sender when `createDestinationAccount` opens the recipient's account. Token-2022 accounts
/// with extensions cost a little more on chain; the emulator charges the same.
pub const TOKEN_ACCOUNT_RENT: u128 = 2_039_280;

#[derive(Debug, Clone)]
pub struct Transfer {
    pub id: String,
    pub wallet_id: String,
    pub network: String,
    pub requester_user_id: String,
    pub requester_token_id: String,
    /// The request body as sent (echoed as `requestBody`).
    pub request_body: Value,
    pub asset: AssetKey,
    pub to: String,
    pub amount: u128,
    /// `metadata.asset` at request time (`quotes.USD` = unit price then).
    pub asset_metadata: Value,
    pub status: TransferStatus,
    pub reason: Option<String>,
    pub tx_hash: Option<String>,
    pub fee: Option<u128>,
    pub date_requested: OffsetDateTime,
    pub date_policy_resolved: Option<OffsetDateTime>,
    pub date_broadcasted: Option<OffsetDateTime>,
    pub date_confirmed: Option<OffsetDateTime>,
    pub approval_id: Option<String>,
    pub external_id: Option<String>,
    /// An SPL transfer's `createDestinationAccount`.
    pub create_destination_account: bool,
    /// Held by a `RequestApproval` policy until the approval resolves.
    pub awaiting_approval: bool,
    /// A lifecycle driver task is running for this transfer.
    pub driving: bool,
    pub seq: u64,
}

impl Transfer {
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("walletId".into(), json!(self.wallet_id));
        out.insert("network".into(), json!(self.network));
        out.insert(
            "requester".into(),
            json!({ "userId": self.requester_user_id, "tokenId": self.requester_token_id }),
        );
        out.insert("requestBody".into(), self.request_body.clone());
        out.insert("metadata".into(), json!({ "asset": self.asset_metadata }));
        out.insert("status".into(), json!(self.status.as_str()));
        if let Some(reason) = &self.reason {
            out.insert("reason".into(), json!(reason));
        }
        if let Some(tx_hash) = &self.tx_hash {
            out.insert("txHash".into(), json!(tx_hash));
        }
        if let Some(fee) = self.fee {
            out.insert("fee".into(), json!(fee.to_string()));
        }
        out.insert("dateRequested".into(), json!(iso(self.date_requested)));
        for (name, date) in [
            ("datePolicyResolved", self.date_policy_resolved),
            ("dateBroadcasted", self.date_broadcasted),
            ("dateConfirmed", self.date_confirmed),
        ] {
            if let Some(date) = date {
                out.insert(name.into(), json!(iso(date)));
            }
        }
        if let Some(approval_id) = &self.approval_id {
            out.insert("approvalId".into(), json!(approval_id));
        }
        if let Some(external_id) = &self.external_id {
            out.insert("externalId".into(), json!(external_id));
        }
        Value::Object(out)
    }

    /// The network fee, and for an SPL transfer that opens the recipient's token account its
    /// rent (`Err` when the recipient has none and the request did not ask to create it).
    fn fee_for_asset(&self, ledger: &ledger::Ledger) -> Result<u128, String> {
        match &self.asset {
            AssetKey::Native => Ok(networks::native_transfer_fee(&self.network)),
            AssetKey::Erc20(_) => Ok(ERC20_GAS * GAS_PRICE_WEI),
            AssetKey::Spl { mint, .. } => {
                if ledger.has_token_account(&self.to, mint) {
                    Ok(SPL_TRANSFER_FEE)
                } else if self.create_destination_account {
                    Ok(SPL_TRANSFER_FEE + TOKEN_ACCOUNT_RENT)
                } else {
                    Err(format!(
                        "Transaction failed on chain: {} has no token account for mint {mint} \
                         (createDestinationAccount was not set)",
                        self.to
                    ))
                }
            }
        }
    }
}

const COMMON_FIELDS: &[&str] = &[
    "kind",
    "to",
    "amount",
    "externalId",
    "feeSponsorId",
    "travelRule",
    "priority",
];
const NATIVE_FIELDS: &[&str] = &[
    "memo",
    "createDestinationAccount",
    "offer",
    "expiresAt",
    "useDurableNonce",
];
/// `Spl` / `Spl2022` (`TransferAssetBody` in `@dfns/sdk` 0.8.21): no `priority`.
const SPL_FIELDS: &[&str] = &[
    "kind",
    "to",
    "amount",
    "mint",
    "memo",
    "createDestinationAccount",
    "useDurableNonce",
    "externalId",
    "travelRule",
    "feeSponsorId",
];

/// A validated transfer request.
struct TransferInput {
    asset: AssetKey,
    to: String,
    amount: u128,
    external_id: Option<String>,
    create_destination_account: bool,
}

fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> ApiResult<Option<&'a str>> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
    }
}

fn required_string<'a>(body: &'a Map<String, Value>, name: &str) -> ApiResult<&'a str> {
    string_field(body, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

fn validate(network: &str, body: &Value) -> ApiResult<TransferInput> {
    let body = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("request body must be a JSON object"))?;
    let kind = required_string(body, "kind")?;
    let allowed: Vec<&str> = match kind {
        "Native" => COMMON_FIELDS.iter().chain(NATIVE_FIELDS).copied().collect(),
        "Erc20" => COMMON_FIELDS.iter().copied().chain(["contract"]).collect(),
        "Spl" | "Spl2022" => SPL_FIELDS.to_vec(),
        other => {
            return Err(ApiError::bad_request(format!(
                "transfer kind {other:?} is not supported by the emulator (Native, Erc20, Spl, \
                 Spl2022)"
            )));
        }
    };
    if let Some(unknown) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "field {unknown:?} is not allowed for a {kind} transfer"
        )));
    }
    let to = required_string(body, "to")?;
    let amount = parse_amount("amount", required_string(body, "amount")?)?;
    if let Some(priority) = string_field(body, "priority")?
        && !["Slow", "Standard", "Fast"].contains(&priority)
    {
        return Err(ApiError::bad_request(
            "priority must be Slow, Standard or Fast",
        ));
    }
    let external_id = string_field(body, "externalId")?.map(str::to_owned);
    if external_id.as_deref() == Some("") {
        return Err(ApiError::bad_request("externalId must not be empty"));
    }
    let evm = networks::is_evm(network);
    if networks::is_valid_address(network, to) == Some(false) {
        return Err(ApiError::bad_request(format!(
            "to is not a valid {network} address: {to:?}"
        )));
    }
    let create_destination_account = match body.get("createDestinationAccount") {
        None => false,
        Some(Value::Bool(create)) => *create,
        Some(_) => {
            return Err(ApiError::bad_request(
                "createDestinationAccount must be a boolean",
            ));
        }
    };
    let asset = if let Some(program) = SplProgram::parse(kind) {
        if !network.starts_with("Solana") {
            return Err(ApiError::bad_request(format!(
                "{kind} transfers are only supported on Solana networks, not {network}"
            )));
        }
        let mint = required_string(body, "mint")?;
        if !ledger::is_solana_mint(mint) {
            return Err(ApiError::bad_request(format!(
                "mint is not a Solana address (base58 of 32 bytes): {mint:?}"
            )));
        }
        AssetKey::Spl {
            mint: mint.to_owned(),
            program,
        }
    } else if kind == "Erc20" {
        if !evm {
            return Err(ApiError::bad_request(format!(
                "Erc20 transfers are not supported on {network}"
            )));
        }
        let contract = required_string(body, "contract")?;
        if !is_evm_address(contract) {
            return Err(ApiError::bad_request(format!(
                "contract is not a valid address: {contract:?}"
            )));
        }
        AssetKey::Erc20(contract.to_ascii_lowercase())
    } else {
        AssetKey::Native
    };
    Ok(TransferInput {
        asset,
        to: to.to_owned(),
        amount,
        external_id,
        create_destination_account,
    })
}

/// `POST /wallets/{walletId}/transfers`.
pub async fn create(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(wallet_id): Path<String>,
    DfnsJson(body): DfnsJson<Value>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Transfers:Create")?;
    let engine = app.engine.clone();
    app.with_state(|s| {
        let network = get_wallet(s, &wallet_id)?.network.clone();
        let input = validate(&network, &body)?;
        if let AssetKey::Spl { mint, program } = &input.asset
            && let Some(known) = s.ledger.spl_program_of(mint)
            && known != *program
        {
            // Built for the wrong token program, the transaction could not be constructed.
            return Err(ApiError::bad_request(format!(
                "mint {mint} belongs to the {} program: send it as kind {}",
                known.kind(),
                known.kind()
            )));
        }

        if let Some(external_id) = &input.external_id
            && let Some(existing) = s
                .transfer_external_ids
                .get(external_id)
                .and_then(|id| s.transfers.get(id))
        {
            // §8.5: same wallet and body → the original transfer, whatever its status.
            if existing.wallet_id == wallet_id && existing.request_body == body {
                return Ok(Json(existing.to_json()));
            }
            return Err(
                ApiError::conflict("Conflicting transfer with same externalId").with_details(
                    json!({
                        "duplicate": { "id": existing.id, "externalId": external_id }
                    }),
                ),
            );
        }

        let meta = s.ledger.meta(&network, &input.asset);
        let now = s.now();
        let transfer = Transfer {
            id: ids::new_id("xfr"),
            wallet_id: wallet_id.clone(),
            network,
            requester_user_id: caller.user_id.clone(),
            requester_token_id: caller.token_id.clone(),
            request_body: body.clone(),
            asset: input.asset,
            to: input.to,
            amount: input.amount,
            asset_metadata: s.ledger.asset_metadata_json(&meta),
            status: TransferStatus::Pending,
            reason: None,
            tx_hash: None,
            fee: None,
            date_requested: now,
            date_policy_resolved: None,
            date_broadcasted: None,
            date_confirmed: None,
            approval_id: None,
            external_id: input.external_id,
            create_destination_account: input.create_destination_account,
            awaiting_approval: false,
            driving: false,
            seq: s.next_seq(),
        };
        let id = transfer.id.clone();
        if let Some(external_id) = &transfer.external_id {
            s.transfer_external_ids
                .insert(external_id.clone(), id.clone());
        }
        s.transfers.insert(id.clone(), transfer.clone());
        emit_transfer(s, "wallet.transfer.requested", &id);

        match engine.evaluate_transfer(s, &transfer) {
            Verdict::Allow => {
                let t = transfer_mut(s, &id);
                t.date_policy_resolved = Some(now);
                queue_drive(s, &id);
            }
            Verdict::Block { reason } => {
                let t = transfer_mut(s, &id);
                t.status = TransferStatus::Rejected;
                t.reason = Some(reason);
                t.date_policy_resolved = Some(now);
                emit_transfer(s, "wallet.transfer.rejected", &id);
            }
            Verdict::RequestApproval { approval_id } => {
                let t = transfer_mut(s, &id);
                t.approval_id = Some(approval_id);
                t.awaiting_approval = true;
            }
        }
        Ok(Json(s.transfers[&id].to_json()))
    })
}

fn transfer_mut<'a>(s: &'a mut State, id: &str) -> &'a mut Transfer {
    s.transfers.get_mut(id).expect("transfer exists")
}

fn emit_transfer(s: &mut State, kind: &str, id: &str) {
    let data = json!({ "transferRequest": s.transfers[id].to_json() });
    s.emit(kind, data);
}

/// Starts the automatic lifecycle for `id` if the mode is automatic and no driver runs yet.
pub fn queue_drive(s: &mut State, id: &str) {
    if !matches!(s.lifecycle, Lifecycle::Auto { .. }) {
        return;
    }
    let Some(t) = s.transfers.get_mut(id) else {
        return;
    };
    if t.driving || t.awaiting_approval || t.status.is_terminal() {
        return;
    }
    t.driving = true;
    s.outbox.push(Job::DriveTransfer {
        transfer_id: id.to_owned(),
    });
}

/// Called by the policy engine when the approval holding transfer `id` resolves.
pub fn resolve_approval(
    s: &mut State,
    id: &str,
    approved: bool,
    reason: Option<String>,
) -> ApiResult<()> {
    let now = s.now();
    let t = s
        .transfers
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found("transfer not found"))?;
    if !t.awaiting_approval || t.status != TransferStatus::Pending {
        return Err(ApiError::conflict("transfer is not awaiting an approval"));
    }
    t.awaiting_approval = false;
    t.date_policy_resolved = Some(now);
    if approved {
        queue_drive(s, id);
    } else {
        t.status = TransferStatus::Rejected;
        t.reason = Some(reason.unwrap_or_else(|| "Approval denied or expired".to_owned()));
        emit_transfer(s, "wallet.transfer.rejected", id);
    }
    Ok(())
}

/// Marks a non-terminal transfer `Failed` (control-API failure injection).
pub fn fail(s: &mut State, id: &str, reason: String) -> ApiResult<Value> {
    let t = s
        .transfers
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found("transfer not found"))?;
    if t.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "transfer is already {}",
            t.status.as_str()
        )));
    }
    t.status = TransferStatus::Failed;
    t.reason = Some(reason);
    t.awaiting_approval = false;
    emit_transfer(s, "wallet.transfer.failed", id);
    Ok(s.transfers[id].to_json())
}

/// Moves transfer `id` one lifecycle step and returns its new status.
pub fn advance(s: &mut State, id: &str) -> ApiResult<TransferStatus> {
    let now = s.now();
    let t = s
        .transfers
        .get(id)
        .ok_or_else(|| ApiError::not_found("transfer not found"))?
        .clone();
    match t.status {
        TransferStatus::Pending if t.awaiting_approval => {
            Err(ApiError::conflict("transfer is awaiting a policy approval"))
        }
        TransferStatus::Pending => {
            transfer_mut(s, id).status = TransferStatus::Executing;
            Ok(TransferStatus::Executing)
        }
        TransferStatus::Executing => {
            let fee = match t.fee_for_asset(&s.ledger) {
                Ok(fee) => fee,
                Err(reason) => {
                    let tm = transfer_mut(s, id);
                    tm.status = TransferStatus::Failed;
                    tm.reason = Some(reason);
                    emit_transfer(s, "wallet.transfer.failed", id);
                    return Ok(TransferStatus::Failed);
                }
            };
            // Check and debit under the one lock: concurrent transfers cannot overdraw.
            let (asset_needed, native_needed) = match &t.asset {
                AssetKey::Native => (None, t.amount.checked_add(fee)),
                AssetKey::Erc20(_) | AssetKey::Spl { .. } => (Some(t.amount), Some(fee)),
            };
            let native_ok = native_needed
                .is_some_and(|n| s.ledger.balance(&t.wallet_id, &AssetKey::Native) >= n);
            let asset_ok =
                asset_needed.is_none_or(|n| s.ledger.balance(&t.wallet_id, &t.asset) >= n);
            if !(native_ok && asset_ok) {
                let tm = transfer_mut(s, id);
                tm.status = TransferStatus::Failed;
                tm.reason = Some(if asset_ok {
                    "Insufficient funds: balance does not cover amount plus network fee".to_owned()
                } else {
                    "Insufficient funds: token balance does not cover amount".to_owned()
                });
                emit_transfer(s, "wallet.transfer.failed", id);
                return Ok(TransferStatus::Failed);
            }
            if let Some(n) = asset_needed {
                s.ledger.try_debit(&t.wallet_id, &t.asset, n);
            }
            if let Some(n) = native_needed {
                s.ledger.try_debit(&t.wallet_id, &AssetKey::Native, n);
            }
            if let AssetKey::Spl { mint, .. } = &t.asset {
                // Opened by this transaction (its rent is in the fee) if it did not exist.
                s.ledger.open_token_account(&t.to, mint);
            }
            let tm = transfer_mut(s, id);
            tm.status = TransferStatus::Broadcasted;
            tm.tx_hash = Some(ids::tx_hash(&t.network));
            tm.fee = Some(fee);
            tm.date_broadcasted = Some(now);
            emit_transfer(s, "wallet.transfer.broadcasted", id);
            Ok(TransferStatus::Broadcasted)
        }
        TransferStatus::Broadcasted => {
            let block = s.ledger.next_block();
            {
                let tm = transfer_mut(s, id);
                tm.status = TransferStatus::Confirmed;
                tm.date_confirmed = Some(now);
            }
            emit_transfer(s, "wallet.transfer.confirmed", id);
            let tx_hash = t.tx_hash.clone().unwrap_or_default();
            let from = s
                .wallets
                .get(&t.wallet_id)
                .and_then(|w| w.address.clone())
                .unwrap_or_default();
            ledger::record_movement(
                s,
                &Movement {
                    wallet_id: &t.wallet_id,
                    network: &t.network,
                    direction: "Out",
                    asset: &t.asset,
                    from: &from,
                    to: &t.to,
                    value: t.amount,
                    tx_hash: &tx_hash,
                    block_number: block,
                    fee: t.fee,
                },
            );
            // A transfer to another emulated wallet on the same network arrives there too.
            let receiver = s
                .wallets
                .values()
                .find(|w| w.network == t.network && w.address.as_deref() == Some(t.to.as_str()))
                .map(|w| w.id.clone());
            if let Some(receiver) = receiver {
                s.ledger.credit(&receiver, &t.asset, t.amount)?;
                ledger::record_movement(
                    s,
                    &Movement {
                        wallet_id: &receiver,
                        network: &t.network,
                        direction: "In",
                        asset: &t.asset,
                        from: &from,
                        to: &t.to,
                        value: t.amount,
                        tx_hash: &tx_hash,
                        block_number: block,
                        fee: None,
                    },
                );
            }
            Ok(TransferStatus::Confirmed)
        }
        terminal => Err(ApiError::conflict(format!(
            "transfer is already {}",
            terminal.as_str()
        ))),
    }
}

/// Background driver of the automatic lifecycle: one step per configured delay.
pub async fn drive(app: SharedApp, id: String) {
    loop {
        let delay = app.with_state(|s| match s.lifecycle {
            Lifecycle::Auto { delay } => Some(delay),
            Lifecycle::Manual => {
                if let Some(t) = s.transfers.get_mut(&id) {
                    t.driving = false;
                }
                None
            }
        });
        let Some(delay) = delay else { return };
        tokio::time::sleep(delay).await;
        let keep_going = app.with_state(|s| {
            let runnable = matches!(s.lifecycle, Lifecycle::Auto { .. })
                && s.transfers
                    .get(&id)
                    .is_some_and(|t| !t.status.is_terminal() && !t.awaiting_approval);
            let next = if runnable { advance(s, &id).ok() } else { None };
            let keep_going = next.is_some_and(|status| !status.is_terminal());
            if !keep_going && let Some(t) = s.transfers.get_mut(&id) {
                t.driving = false;
            }
            keep_going
        });
        if !keep_going {
            return;
        }
    }
}

pub async fn get(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path((wallet_id, transfer_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Transfers:Read")?;
    app.with_state(|s| {
        crate::policy::approvals::expire_due(s);
        get_wallet(s, &wallet_id)?;
        s.transfers
            .get(&transfer_id)
            .filter(|t| t.wallet_id == wallet_id)
            .map(|t| Json(t.to_json()))
            .ok_or_else(|| {
                ApiError::not_found("transfer not found")
                    .with_details(json!({ "walletId": wallet_id, "transferId": transfer_id }))
            })
    })
}

pub async fn list(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(wallet_id): Path<String>,
    DfnsQuery(query): DfnsQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Transfers:Read")?;
    app.with_state(|s| {
        crate::policy::approvals::expire_due(s);
        get_wallet(s, &wallet_id)?;
        let all = s
            .transfers
            .values()
            .filter(|t| t.wallet_id == wallet_id)
            .map(|t| (t.seq, t.to_json()));
        let (items, next) = page(all, &query, 50)?;
        let mut out = list_json(items, next);
        out["walletId"] = json!(wallet_id);
        Ok(Json(out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_refuses_what_dfns_refuses() {
        let ok =
            json!({"kind":"Native","to":"0xb282dc7cde21717f18337a596e91ded00b79b25f","amount":"1"});
        assert!(validate("EthereumSepolia", &ok).is_ok());
        let cases = [
            json!({"kind":"Native","to":"0xb282","amount":"1"}),
            json!({"kind":"Native","to":"0xb282dc7cde21717f18337a596e91ded00b79b25f","amount":"1.5"}),
            json!({"kind":"Native","to":"0xb282dc7cde21717f18337a596e91ded00b79b25f"}),
            json!({"kind":"Erc20","to":"0xb282dc7cde21717f18337a596e91ded00b79b25f","amount":"1"}),
            json!({"kind":"Erc20","contract":"0x1","to":"0xb282dc7cde21717f18337a596e91ded00b79b25f","amount":"1"}),
            json!({"kind":"Erc20","contract":"0xb282dc7cde21717f18337a596e91ded00b79b25f","to":"0xb282dc7cde21717f18337a596e91ded00b79b25f","amount":"1","memo":"x"}),
            json!({"kind":"Erc721","to":"0xb282dc7cde21717f18337a596e91ded00b79b25f","tokenId":"1"}),
            json!({"kind":"Native","to":"0xb282dc7cde21717f18337a596e91ded00b79b25f","amount":"1","priority":"Turbo"}),
            json!({"kind":"Native","to":"0xb282dc7cde21717f18337a596e91ded00b79b25f","amount":"1","externalID":"typo"}),
        ];
        for case in cases {
            assert!(
                validate("EthereumSepolia", &case).is_err(),
                "accepted {case}"
            );
        }
    }
}
