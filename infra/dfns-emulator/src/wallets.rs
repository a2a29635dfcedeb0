//! Wallets (docs/dfns.md §3.1–3.6): create, get, list, update, tag/untag, assets, history.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State as AxState};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::clock::iso;
use crate::errors::{ApiError, ApiResult};
use crate::extract::{DfnsJson, DfnsQuery};
use crate::ids;
use crate::keys;
use crate::ledger::AssetKey;
use crate::networks;
use crate::pagination::{PageQuery, page};
use crate::permissions::list_json;
use crate::state::{SharedApp, State};

#[derive(Debug, Clone)]
pub struct Wallet {
    pub id: String,
    pub network: String,
    pub address: Option<String>,
    pub key_id: String,
    pub scheme: String,
    pub curve: String,
    pub public_key: String,
    pub date_created: String,
    pub name: Option<String>,
    pub external_id: Option<String>,
    pub tags: Vec<String>,
    pub seq: u64,
}

impl Wallet {
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("network".into(), json!(self.network));
        if let Some(address) = &self.address {
            out.insert("address".into(), json!(address));
        }
        out.insert(
            "signingKey".into(),
            json!({
                "id": self.key_id,
                "scheme": self.scheme,
                "curve": self.curve,
                "publicKey": self.public_key,
            }),
        );
        out.insert("status".into(), json!("Active"));
        out.insert("dateCreated".into(), json!(self.date_created));
        if let Some(name) = &self.name {
            out.insert("name".into(), json!(name));
        }
        out.insert("custodial".into(), json!(true));
        if let Some(external_id) = &self.external_id {
            out.insert("externalId".into(), json!(external_id));
        }
        out.insert("tags".into(), json!(self.tags));
        Value::Object(out)
    }
}

pub fn wallet_not_found(state: &State, wallet_id: &str) -> ApiError {
    ApiError::not_found("wallet not found")
        .with_details(json!({ "walletId": wallet_id, "orgId": state.org_id }))
}

pub fn get_wallet<'a>(state: &'a State, wallet_id: &str) -> ApiResult<&'a Wallet> {
    state
        .wallets
        .get(wallet_id)
        .ok_or_else(|| wallet_not_found(state, wallet_id))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateWalletBody {
    network: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    signing_key: Option<Value>,
    #[serde(default)]
    delegate_to: Option<String>,
}

fn validate_tags(tags: &[String]) -> ApiResult<()> {
    if let Some(bad) = tags.iter().find(|t| t.is_empty() || t.len() > 64) {
        return Err(ApiError::bad_request(format!(
            "tags must be 1 to 64 characters, got {bad:?}"
        )));
    }
    Ok(())
}

pub async fn create(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    DfnsJson(body): DfnsJson<CreateWalletBody>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Create")?;
    let tags = body.tags.unwrap_or_default();
    if !tags.is_empty() {
        caller.require("Wallets:Tags:Add")?;
    }
    if !networks::is_known(&body.network) {
        return Err(ApiError::bad_request(format!(
            "unknown network {:?}",
            body.network
        )));
    }
    if body.delegate_to.is_some() {
        return Err(ApiError::bad_request(
            "delegated wallets are not emulated (delegateTo)",
        ));
    }
    if body
        .signing_key
        .as_ref()
        .and_then(|k| k.get("id"))
        .is_some()
    {
        return Err(ApiError::bad_request(
            "reusing an existing key (signingKey.id) is not emulated",
        ));
    }
    validate_tags(&tags)?;
    let mut unique_tags: Vec<String> = Vec::new();
    for tag in tags {
        if !unique_tags.contains(&tag) {
            unique_tags.push(tag);
        }
    }
    let key = keys::generate_wallet_key();
    // Key curve follows the network family; EVM, Bitcoin and Solana addresses are derived (see
    // crate docs), other families get none.
    let derived = hex::decode(&key.public_key_hex)
        .ok()
        .and_then(|public| networks::derived_address(&body.network, &public));
    let (scheme, curve, address) = if body.network.starts_with("Solana") {
        ("EdDSA", "ed25519", derived)
    } else if networks::is_evm(&body.network) {
        ("ECDSA", "secp256k1", Some(key.evm_address))
    } else {
        ("ECDSA", "secp256k1", derived)
    };
    let wallet = app.with_state(|s| {
        let wallet = Wallet {
            id: ids::new_id("wa"),
            network: body.network,
            address,
            key_id: ids::new_id("key"),
            scheme: scheme.to_owned(),
            curve: curve.to_owned(),
            public_key: key.public_key_hex,
            date_created: iso(s.now()),
            name: body.name,
            external_id: body.external_id,
            tags: unique_tags,
            seq: s.next_seq(),
        };
        s.wallets.insert(wallet.id.clone(), wallet.clone());
        let json = wallet.to_json();
        s.emit("wallet.created", json!({ "wallet": json.clone() }));
        json
    });
    Ok(Json(wallet))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListWalletsQuery {
    #[serde(flatten)]
    page: PageQuery,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    owner_id: Option<String>,
    #[serde(default)]
    owner_username: Option<String>,
}

pub async fn list(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    DfnsQuery(query): DfnsQuery<ListWalletsQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Read")?;
    // Every emulated wallet is custodial (org-owned): an owner filter matches none.
    let owner_filter =
        query.owner.is_some() || query.owner_id.is_some() || query.owner_username.is_some();
    app.with_state(|s| {
        let all = s
            .wallets
            .values()
            .filter(|_| !owner_filter)
            .map(|w| (w.seq, w.to_json()));
        let (items, next) = page(all, &query.page, 50)?;
        Ok(Json(list_json(items, next)))
    })
}

pub async fn get(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(wallet_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Read")?;
    app.with_state(|s| get_wallet(s, &wallet_id).map(|w| Json(w.to_json())))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWalletBody {
    #[serde(default, with = "double_option")]
    name: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    external_id: Option<Option<String>>,
}

/// Distinguishes an absent field (leave unchanged) from `null` (clear it).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

pub async fn update(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(wallet_id): Path<String>,
    DfnsJson(body): DfnsJson<UpdateWalletBody>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Update")?;
    app.with_state(|s| {
        get_wallet(s, &wallet_id)?;
        let wallet = s.wallets.get_mut(&wallet_id).expect("checked above");
        if let Some(name) = body.name {
            wallet.name = name;
        }
        if let Some(external_id) = body.external_id {
            wallet.external_id = external_id;
        }
        Ok(Json(wallet.to_json()))
    })
}

#[derive(Debug, Deserialize)]
pub struct TagsBody {
    tags: Vec<String>,
}

/// `PUT /wallets/{id}/tags` adds tags (idempotent) → `{}`.
pub async fn add_tags(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(wallet_id): Path<String>,
    DfnsJson(body): DfnsJson<TagsBody>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Tags:Add")?;
    validate_tags(&body.tags)?;
    change_tags(&app, &wallet_id, |tags| {
        for tag in body.tags {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    })
}

/// `DELETE /wallets/{id}/tags` (with a JSON body) removes tags (idempotent) → `{}`.
pub async fn remove_tags(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(wallet_id): Path<String>,
    DfnsJson(body): DfnsJson<TagsBody>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Tags:Delete")?;
    change_tags(&app, &wallet_id, |tags| {
        tags.retain(|t| !body.tags.contains(t))
    })
}

fn change_tags(
    app: &SharedApp,
    wallet_id: &str,
    change: impl FnOnce(&mut Vec<String>),
) -> ApiResult<Json<Value>> {
    app.with_state(|s| {
        get_wallet(s, wallet_id)?;
        let wallet = s.wallets.get_mut(wallet_id).expect("checked above");
        let before = wallet.tags.clone();
        change(&mut wallet.tags);
        if wallet.tags != before {
            let json = wallet.to_json();
            s.emit("wallet.tags.modified", json!({ "wallet": json }));
        }
        Ok(Json(json!({})))
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetsQuery {
    #[serde(default)]
    net_worth: Option<String>,
}

/// `GET /wallets/{id}/assets`: the native asset always, then every token (ERC-20, SPL) the wallet
/// has held.
pub async fn assets(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(wallet_id): Path<String>,
    DfnsQuery(query): DfnsQuery<AssetsQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Read")?;
    app.with_state(|s| {
        let wallet = get_wallet(s, &wallet_id)?;
        let mut keys = vec![AssetKey::Native];
        keys.extend(s.ledger.tokens_of(&wallet_id));
        let mut net_worth = 0f64;
        let mut assets = Vec::new();
        for key in keys {
            let meta = s.ledger.meta(&wallet.network, &key);
            let balance = s.ledger.balance(&wallet_id, &key);
            let mut asset = s.ledger.asset_metadata_json(&meta);
            match &key {
                AssetKey::Native => asset["kind"] = json!("Native"),
                AssetKey::Erc20(contract) => {
                    asset["kind"] = json!("Erc20");
                    asset["contract"] = json!(contract);
                }
                AssetKey::Spl { mint, program } => {
                    asset["kind"] = json!(program.kind());
                    asset["mint"] = json!(mint);
                }
            }
            asset["balance"] = json!(balance.to_string());
            if let Some(usd) = s.ledger.usd_quote(&meta.price_key) {
                // Display-only valuation (Dfns reports netWorth as a float too).
                net_worth += balance as f64 / 10f64.powi(meta.decimals as i32) * usd;
            }
            assets.push(asset);
        }
        let mut out = json!({ "walletId": wallet_id, "network": wallet.network, "assets": assets });
        if query.net_worth.as_deref() == Some("true") {
            out["netWorth"] = json!({ "USD": net_worth });
        }
        Ok(Json(out))
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryQuery {
    #[serde(flatten)]
    page: PageQuery,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    contract: Option<String>,
}

/// `GET /wallets/{id}/history`: confirmed movements in and out, newest first.
pub async fn history(
    AxState(app): AxState<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(wallet_id): Path<String>,
    DfnsQuery(query): DfnsQuery<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    caller.require("Wallets:Read")?;
    if let Some(direction) = &query.direction
        && direction != "In"
        && direction != "Out"
    {
        return Err(ApiError::bad_request("direction must be In or Out"));
    }
    app.with_state(|s| {
        let wallet = get_wallet(s, &wallet_id)?;
        let matches = |event: &Value| {
            let field = |name: &str| event.get(name).and_then(Value::as_str);
            query
                .direction
                .as_deref()
                .is_none_or(|d| field("direction") == Some(d))
                && query
                    .kind
                    .as_deref()
                    .is_none_or(|k| field("kind") == Some(k))
                && query
                    .contract
                    .as_deref()
                    .is_none_or(|c| field("contract").is_some_and(|x| x.eq_ignore_ascii_case(c)))
        };
        let all = s
            .ledger
            .history(&wallet_id)
            .iter()
            .filter(|(_, e)| matches(e))
            .cloned();
        let (items, next) = page(all, &query.page, 50)?;
        let mut out = list_json(items, next);
        out["walletId"] = json!(wallet_id);
        out["network"] = json!(wallet.network);
        Ok(Json(out))
    })
}
