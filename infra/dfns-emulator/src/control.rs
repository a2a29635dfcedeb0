//! The emulator-only control API under `/emulator/…`: no Dfns auth, loopback callers only.
//! Tests use it to fund wallets, set prices, move the clock, step transfers, inject faults and
//! grant extra permissions.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Request, State as AxState};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::iso;
use crate::errors::{ApiError, ApiResult};
use crate::extract::DfnsJson;
use crate::faults::{FaultRule, FaultSpec, WebhookFaultSpec, WebhookFaults};
use crate::keys::is_evm_address;
use crate::ledger::{self, AssetKey, Deposit, SplProgram, TokenInfo, parse_amount};
use crate::permissions;
use crate::state::SharedApp;
use crate::transfers::{self, Lifecycle};

/// Refuses control calls that do not come from the loopback interface.
pub async fn loopback_only(request: Request, next: Next) -> Response {
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match remote {
        Some(ip) if ip.is_loopback() => next.run(request).await,
        _ => ApiError::forbidden("the emulator control API only answers loopback callers")
            .into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DepositBody {
    wallet_id: String,
    kind: String,
    #[serde(default)]
    contract: Option<String>,
    /// An SPL token's mint (kinds `Spl`, `Spl2022`), base58, exact case.
    #[serde(default)]
    mint: Option<String>,
    amount: String,
    #[serde(default)]
    from: Option<String>,
    /// Token metadata (emulator extension): symbol and decimals of `contract` or `mint`.
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default)]
    decimals: Option<u32>,
    #[serde(default)]
    tx_hash: Option<String>,
}

/// `POST /emulator/deposits` → the history entry (also delivered as a webhook).
pub async fn deposit(
    AxState(app): AxState<SharedApp>,
    DfnsJson(body): DfnsJson<DepositBody>,
) -> ApiResult<Json<Value>> {
    let amount = parse_amount("amount", &body.amount)?;
    let (asset, token) = match body.kind.as_str() {
        "Native" => (AssetKey::Native, None),
        "Erc20" => {
            let contract = body
                .contract
                .as_deref()
                .filter(|c| is_evm_address(c))
                .ok_or_else(|| ApiError::bad_request("Erc20 deposits need a valid contract"))?
                .to_ascii_lowercase();
            let token = (body.symbol.is_some() || body.decimals.is_some()).then(|| TokenInfo {
                symbol: body.symbol.clone(),
                decimals: body.decimals.unwrap_or(ledger::DEFAULT_TOKEN_DECIMALS),
            });
            (AssetKey::Erc20(contract), token)
        }
        kind @ ("Spl" | "Spl2022") => {
            let program = SplProgram::parse(kind).expect("matched above");
            // Kept exactly as given: base58 is case-sensitive.
            let mint = body
                .mint
                .as_deref()
                .filter(|m| ledger::is_solana_mint(m))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{kind} deposits need a mint: base58 of 32 bytes"
                    ))
                })?
                .to_owned();
            let token = (body.symbol.is_some() || body.decimals.is_some()).then(|| TokenInfo {
                symbol: body.symbol.clone(),
                decimals: body.decimals.unwrap_or(ledger::DEFAULT_SPL_DECIMALS),
            });
            (AssetKey::Spl { mint, program }, token)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "kind must be Native, Erc20, Spl or Spl2022, got {other:?}"
            )));
        }
    };
    let event = app.with_state(|s| {
        ledger::deposit(
            s,
            Deposit {
                wallet_id: body.wallet_id,
                asset,
                amount,
                from: body.from,
                token,
                tx_hash: body.tx_hash,
            },
        )
    })?;
    Ok(Json(event))
}

#[derive(Debug, Deserialize)]
pub struct PricesBody {
    prices: std::collections::HashMap<String, String>,
}

/// `PUT /emulator/prices` `{"prices":{"ETH":"3000.00","0x…":"1.00","<mint>":"1.00"}}` (USD
/// decimal strings; an SPL mint is kept exactly as given).
pub async fn set_prices(
    AxState(app): AxState<SharedApp>,
    DfnsJson(body): DfnsJson<PricesBody>,
) -> ApiResult<Json<Value>> {
    for (asset, price) in &body.prices {
        let valid = !price.is_empty()
            && price.chars().filter(|c| *c == '.').count() <= 1
            && price.chars().all(|c| c.is_ascii_digit() || c == '.')
            && !price.starts_with('.')
            && !price.ends_with('.');
        if !valid {
            return Err(ApiError::bad_request(format!(
                "price for {asset} must be a non-negative decimal string, got {price:?}"
            )));
        }
    }
    let prices = app.with_state(|s| {
        for (asset, price) in body.prices {
            // Contracts are keyed lowercase; native symbols as given (ETH).
            let key = if asset.starts_with("0x") {
                asset.to_ascii_lowercase()
            } else {
                asset
            };
            s.ledger.prices.insert(key, price);
        }
        s.ledger.prices.clone()
    });
    Ok(Json(json!({ "prices": prices })))
}

pub async fn get_clock(AxState(app): AxState<SharedApp>) -> Json<Value> {
    Json(json!({ "now": iso(app.clock.now()) }))
}

#[derive(Debug, Deserialize)]
pub struct AdvanceClockBody {
    seconds: u64,
}

pub async fn advance_clock(
    AxState(app): AxState<SharedApp>,
    DfnsJson(body): DfnsJson<AdvanceClockBody>,
) -> Json<Value> {
    let now = app.clock.advance(body.seconds);
    // Approvals whose auto-reject timeout passed expire now (their effects follow).
    app.with_state(crate::policy::approvals::expire_due);
    Json(json!({ "now": iso(now) }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleBody {
    mode: String,
    #[serde(default)]
    delay_ms: Option<u64>,
}

/// `PUT /emulator/transfer-lifecycle` `{"mode":"auto","delayMs":N}` or `{"mode":"manual"}`.
pub async fn set_lifecycle(
    AxState(app): AxState<SharedApp>,
    DfnsJson(body): DfnsJson<LifecycleBody>,
) -> ApiResult<Json<Value>> {
    let lifecycle = match body.mode.as_str() {
        "auto" => Lifecycle::Auto {
            delay: Duration::from_millis(body.delay_ms.unwrap_or(0)),
        },
        "manual" => Lifecycle::Manual,
        other => {
            return Err(ApiError::bad_request(format!(
                "mode must be auto or manual, got {other:?}"
            )));
        }
    };
    app.with_state(|s| {
        s.lifecycle = lifecycle;
        // Switching to automatic picks up every transfer left mid-way in manual mode.
        let ids: Vec<String> = s.transfers.keys().cloned().collect();
        for id in ids {
            transfers::queue_drive(s, &id);
        }
    });
    Ok(Json(lifecycle_json(lifecycle)))
}

fn lifecycle_json(lifecycle: Lifecycle) -> Value {
    match lifecycle {
        Lifecycle::Auto { delay } => json!({ "mode": "auto", "delayMs": delay.as_millis() as u64 }),
        Lifecycle::Manual => json!({ "mode": "manual" }),
    }
}

/// `POST /emulator/transfers/{id}/advance`: one lifecycle step → the transfer.
pub async fn advance_transfer(
    AxState(app): AxState<SharedApp>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.with_state(|s| {
        transfers::advance(s, &id)?;
        Ok(Json(s.transfers[&id].to_json()))
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct FailBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /emulator/transfers/{id}/fail` `{"reason"?}`: forces a non-terminal transfer to Failed.
pub async fn fail_transfer(
    AxState(app): AxState<SharedApp>,
    Path(id): Path<String>,
    DfnsJson(body): DfnsJson<FailBody>,
) -> ApiResult<Json<Value>> {
    let reason = body
        .reason
        .unwrap_or_else(|| "Transaction failed on chain (injected)".to_owned());
    app.with_state(|s| transfers::fail(s, &id, reason))
        .map(Json)
}

pub async fn add_fault(
    AxState(app): AxState<SharedApp>,
    DfnsJson(spec): DfnsJson<FaultSpec>,
) -> ApiResult<Json<Value>> {
    let rule = FaultRule::from_spec(spec)?;
    let id = rule.id.clone();
    app.faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(rule);
    Ok(Json(json!({ "id": id })))
}

pub async fn clear_faults(AxState(app): AxState<SharedApp>) -> Json<Value> {
    app.faults.lock().unwrap_or_else(|p| p.into_inner()).clear();
    Json(json!({ "cleared": true }))
}

/// `PUT /emulator/rate-limit` `{"requestsPerMinute","burst"?}` → the limit now in force.
pub async fn set_rate_limit(
    AxState(app): AxState<SharedApp>,
    DfnsJson(spec): DfnsJson<crate::rate_limit::RateLimitSpec>,
) -> ApiResult<Json<Value>> {
    Ok(Json(app.rate_limit.set(spec)?))
}

/// `DELETE /emulator/rate-limit`: no limit.
pub async fn clear_rate_limit(AxState(app): AxState<SharedApp>) -> Json<Value> {
    app.rate_limit.clear();
    Json(json!({ "cleared": true }))
}

/// `PUT /emulator/webhook-faults` `{"dropRate"?,"duplicateRate"?,"lostAnswerRate"?,
/// "reorderDelayMs"?,"reorderRate"?,"seed"?}`: replaces the webhook delivery faults.
pub async fn set_webhook_faults(
    AxState(app): AxState<SharedApp>,
    DfnsJson(spec): DfnsJson<WebhookFaultSpec>,
) -> ApiResult<Json<Value>> {
    let faults = WebhookFaults::from_spec(spec.clone())?;
    *app.webhook_faults.lock().unwrap_or_else(|p| p.into_inner()) = Some(faults);
    Ok(Json(json!({
        "dropRate": spec.drop_rate,
        "duplicateRate": spec.duplicate_rate,
        "lostAnswerRate": spec.lost_answer_rate,
        "reorderDelayMs": spec.reorder_delay_ms,
        "reorderRate": spec.reorder_rate.unwrap_or(1.0),
    })))
}

/// `DELETE /emulator/webhook-faults`: deliveries are made as they come again (retries already
/// scheduled go on).
pub async fn clear_webhook_faults(AxState(app): AxState<SharedApp>) -> Json<Value> {
    *app.webhook_faults.lock().unwrap_or_else(|p| p.into_inner()) = None;
    Json(json!({ "cleared": true }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantBody {
    user_id: String,
    operations: Vec<String>,
}

/// `POST /emulator/permissions` grants extra operations (e.g. to build a misconfigured org).
pub async fn grant_permissions(
    AxState(app): AxState<SharedApp>,
    DfnsJson(body): DfnsJson<GrantBody>,
) -> ApiResult<Json<Value>> {
    if body.operations.is_empty() {
        return Err(ApiError::bad_request("operations must not be empty"));
    }
    app.with_state(|s| {
        if !s.users.contains_key(&body.user_id) {
            return Err(ApiError::not_found("user not found")
                .with_details(json!({ "userId": body.user_id })));
        }
        let (permission_id, assignment_id) =
            permissions::grant(s, &body.user_id, "Emulator grant", &body.operations);
        let operations: Vec<String> = permissions::operations_of(s, &body.user_id)
            .into_iter()
            .collect();
        Ok(Json(json!({
            "userId": body.user_id,
            "permissionId": permission_id,
            "assignmentId": assignment_id,
            "operations": operations,
        })))
    })
}

/// `GET /emulator/stats`.
pub async fn stats(AxState(app): AxState<SharedApp>) -> Json<Value> {
    app.with_state(|s| {
        Json(json!({
            "transfers": s.transfers.len(),
            "wallets": s.wallets.len(),
            "webhookEvents": s.webhook_events.len(),
            "auditLogs": s.audit.len(),
            "lifecycle": lifecycle_json(s.lifecycle),
            "requests": app.rate_limit.requests(),
            "rateLimit": app.rate_limit.to_json(),
            "faults": app.fault_counts.to_json(),
            "webhookFaults": app.webhook_fault_counts.to_json(),
        }))
    })
}
