//! The test-controlled ledger: native, ERC-20 and SPL balances per wallet, USD prices per asset,
//! token metadata, and each wallet's confirmed on-chain history (docs/dfns.md §3.5–3.6).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::clock::iso;
use crate::errors::{ApiError, ApiResult};
use crate::ids;
use crate::networks;
use crate::state::State;

/// Which Solana token program a mint belongs to (Dfns' kinds `Spl` and `Spl2022`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SplProgram {
    /// The original Token program.
    Spl,
    /// Token-2022 (Token Extensions).
    Spl2022,
}

impl SplProgram {
    pub fn parse(kind: &str) -> Option<Self> {
        match kind {
            "Spl" => Some(Self::Spl),
            "Spl2022" => Some(Self::Spl2022),
            _ => None,
        }
    }

    /// The Dfns kind of an asset or transfer (`Spl`, `Spl2022`).
    pub fn kind(self) -> &'static str {
        match self {
            Self::Spl => "Spl",
            Self::Spl2022 => "Spl2022",
        }
    }

    /// The Dfns kind of a history entry (`SplTransfer`, `Spl2022Transfer`).
    pub fn history_kind(self) -> &'static str {
        match self {
            Self::Spl => "SplTransfer",
            Self::Spl2022 => "Spl2022Transfer",
        }
    }
}

/// Which asset of a wallet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AssetKey {
    Native,
    /// Lowercase contract address.
    Erc20(String),
    /// A Solana token: its mint (base58, exact case) and the program that owns it.
    Spl {
        mint: String,
        program: SplProgram,
    },
}

/// Whether `mint` is a Solana account address: base58 that decodes to exactly 32 bytes.
pub fn is_solana_mint(mint: &str) -> bool {
    bs58::decode(mint)
        .into_vec()
        .is_ok_and(|bytes| bytes.len() == 32)
}

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub symbol: Option<String>,
    pub decimals: u32,
}

/// Decimals assumed for an ERC-20 contract nobody described (most tokens use 18).
pub const DEFAULT_TOKEN_DECIMALS: u32 = 18;
/// Decimals assumed for an SPL mint nobody described (the `spl-token` CLI's default).
pub const DEFAULT_SPL_DECIMALS: u32 = 9;

#[derive(Debug)]
pub struct Ledger {
    balances: HashMap<(String, AssetKey), u128>,
    /// USD unit price as a decimal string, keyed by native symbol (`ETH`) or lowercase contract.
    pub prices: HashMap<String, String>,
    pub tokens: HashMap<String, TokenInfo>,
    history: HashMap<String, Vec<(u64, Value)>>,
    /// Associated token accounts that exist: (owner address, mint). A deposit creates the
    /// receiving wallet's; a transfer with `createDestinationAccount` creates the recipient's.
    token_accounts: HashSet<(String, String)>,
    pub block_number: u64,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            balances: HashMap::new(),
            prices: HashMap::new(),
            tokens: HashMap::new(),
            history: HashMap::new(),
            token_accounts: HashSet::new(),
            block_number: 7_000_000,
        }
    }
}

/// Asset description for transfer metadata and history: `{symbol?, decimals, verified, quotes?}`.
pub struct AssetMeta {
    pub symbol: Option<String>,
    pub decimals: u32,
    pub price_key: String,
}

impl Ledger {
    pub fn balance(&self, wallet_id: &str, asset: &AssetKey) -> u128 {
        self.balances
            .get(&(wallet_id.to_owned(), asset.clone()))
            .copied()
            .unwrap_or(0)
    }

    pub fn credit(&mut self, wallet_id: &str, asset: &AssetKey, amount: u128) -> ApiResult<()> {
        let entry = self
            .balances
            .entry((wallet_id.to_owned(), asset.clone()))
            .or_insert(0);
        *entry = entry
            .checked_add(amount)
            .ok_or_else(|| ApiError::bad_request("balance would overflow"))?;
        Ok(())
    }

    /// Debits if the balance covers `amount`; returns false (and changes nothing) otherwise.
    pub fn try_debit(&mut self, wallet_id: &str, asset: &AssetKey, amount: u128) -> bool {
        let key = (wallet_id.to_owned(), asset.clone());
        let current = self.balances.get(&key).copied().unwrap_or(0);
        match current.checked_sub(amount) {
            Some(rest) => {
                self.balances.insert(key, rest);
                true
            }
            None => false,
        }
    }

    /// The tokens (ERC-20 contracts, SPL mints) this wallet has ever held, in a stable order.
    pub fn tokens_of(&self, wallet_id: &str) -> Vec<AssetKey> {
        let mut tokens: Vec<AssetKey> = self
            .balances
            .keys()
            .filter(|(w, a)| w == wallet_id && *a != AssetKey::Native)
            .map(|(_, a)| a.clone())
            .collect();
        tokens.sort_by_key(|a| match a {
            AssetKey::Native => (0, String::new(), None),
            AssetKey::Erc20(c) => (1, c.clone(), None),
            AssetKey::Spl { mint, program } => (2, mint.clone(), Some(*program)),
        });
        tokens
    }

    /// The program `mint` is known under (from any balance of it), if any wallet ever held it.
    pub fn spl_program_of(&self, mint: &str) -> Option<SplProgram> {
        self.balances.keys().find_map(|(_, a)| match a {
            AssetKey::Spl { mint: m, program } if m == mint => Some(*program),
            _ => None,
        })
    }

    pub fn has_token_account(&self, owner: &str, mint: &str) -> bool {
        self.token_accounts
            .contains(&(owner.to_owned(), mint.to_owned()))
    }

    pub fn open_token_account(&mut self, owner: &str, mint: &str) {
        self.token_accounts
            .insert((owner.to_owned(), mint.to_owned()));
    }

    pub fn meta(&self, network: &str, asset: &AssetKey) -> AssetMeta {
        match asset {
            AssetKey::Native => {
                let (symbol, decimals) = networks::native_asset(network);
                AssetMeta {
                    price_key: symbol.clone(),
                    symbol: Some(symbol),
                    decimals,
                }
            }
            AssetKey::Erc20(contract) => {
                let info = self.tokens.get(contract);
                AssetMeta {
                    symbol: info.and_then(|i| i.symbol.clone()),
                    decimals: info.map_or(DEFAULT_TOKEN_DECIMALS, |i| i.decimals),
                    price_key: contract.clone(),
                }
            }
            AssetKey::Spl { mint, .. } => {
                let info = self.tokens.get(mint);
                let symbol = info.and_then(|i| i.symbol.clone());
                // Priced by its mint; failing that, by its symbol's price if one is set (`USDC`).
                let price_key = match &symbol {
                    Some(symbol)
                        if !self.prices.contains_key(mint) && self.prices.contains_key(symbol) =>
                    {
                        symbol.clone()
                    }
                    _ => mint.clone(),
                };
                AssetMeta {
                    symbol,
                    decimals: info.map_or(DEFAULT_SPL_DECIMALS, |i| i.decimals),
                    price_key,
                }
            }
        }
    }

    /// The USD unit price as Dfns shows it in `quotes` (a JSON number), if one is set.
    pub fn usd_quote(&self, price_key: &str) -> Option<f64> {
        self.prices
            .get(price_key)
            .and_then(|p| p.parse::<f64>().ok())
    }

    /// Exact USD value of `amount` of `asset` at the current price; `None` when the asset has no
    /// price (policy rules then fail closed).
    pub fn usd_value(
        &self,
        network: &str,
        asset: &AssetKey,
        amount: u128,
    ) -> Option<crate::usd::Usd> {
        let meta = self.meta(network, asset);
        let price = self.prices.get(&meta.price_key)?;
        crate::usd::Usd::of(amount, meta.decimals, price)
    }

    /// `{symbol?, decimals, verified, quotes?}` for transfer and history metadata.
    pub fn asset_metadata_json(&self, meta: &AssetMeta) -> Value {
        let mut out = Map::new();
        if let Some(symbol) = &meta.symbol {
            out.insert("symbol".into(), json!(symbol));
        }
        out.insert("decimals".into(), json!(meta.decimals));
        out.insert("verified".into(), json!(true));
        if let Some(usd) = self.usd_quote(&meta.price_key) {
            out.insert("quotes".into(), json!({ "USD": usd }));
        }
        Value::Object(out)
    }

    pub fn push_history(&mut self, wallet_id: &str, seq: u64, event: Value) {
        self.history
            .entry(wallet_id.to_owned())
            .or_default()
            .push((seq, event));
    }

    pub fn history(&self, wallet_id: &str) -> &[(u64, Value)] {
        self.history.get(wallet_id).map_or(&[], Vec::as_slice)
    }

    pub fn next_block(&mut self) -> u64 {
        self.block_number += 1;
        self.block_number
    }
}

/// Parses a positive integer amount in the asset's minimum unit (a decimal string).
pub fn parse_amount(field: &str, raw: &str) -> ApiResult<u128> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "{field} must be a positive integer string in the asset's minimum unit, got {raw:?}"
        )));
    }
    match raw.parse::<u128>() {
        Ok(0) => Err(ApiError::bad_request(format!(
            "{field} must be greater than 0"
        ))),
        Ok(n) => Ok(n),
        Err(_) => Err(ApiError::bad_request(format!("{field} is too large"))),
    }
}

/// One confirmed on-chain movement, written to a wallet's history as a BlockchainEvent.
pub struct Movement<'a> {
    pub wallet_id: &'a str,
    pub network: &'a str,
    pub direction: &'a str,
    pub asset: &'a AssetKey,
    pub from: &'a str,
    pub to: &'a str,
    pub value: u128,
    pub tx_hash: &'a str,
    pub block_number: u64,
    /// Fee paid by this wallet (outgoing only), in the native minimum unit.
    pub fee: Option<u128>,
}

/// Appends the history entry for `m` and emits `wallet.blockchainevent.detected`; returns it.
pub fn record_movement(state: &mut State, m: &Movement<'_>) -> Value {
    let meta = state.ledger.meta(m.network, m.asset);
    let asset_meta = state.ledger.asset_metadata_json(&meta);
    let mut metadata = json!({ "asset": asset_meta });
    let mut event = json!({
        "walletId": m.wallet_id,
        "direction": m.direction,
        "network": m.network,
        "blockNumber": m.block_number,
        "txHash": m.tx_hash,
        "timestamp": iso(state.now()),
        "from": m.from,
        "to": m.to,
        "value": m.value.to_string(),
        "decimals": meta.decimals,
        "verified": true,
    });
    match m.asset {
        AssetKey::Native => {
            event["kind"] = json!("NativeTransfer");
            event["symbol"] = json!(meta.symbol.clone().unwrap_or_default());
        }
        AssetKey::Erc20(contract) => {
            event["kind"] = json!("Erc20Transfer");
            event["contract"] = json!(contract);
            if let Some(symbol) = &meta.symbol {
                event["symbol"] = json!(symbol);
            }
        }
        AssetKey::Spl { mint, program } => {
            // The SDK's `SplTransfer` entry carries symbol, decimals and verified only under
            // `metadata.asset` (the official-SDK conformance run checks the shape).
            event["kind"] = json!(program.history_kind());
            event["mint"] = json!(mint);
            if let Some(fields) = event.as_object_mut() {
                fields.remove("decimals");
                fields.remove("verified");
            }
        }
    }
    if let Some(fee) = m.fee {
        event["fee"] = json!(fee.to_string());
        let native = state.ledger.meta(m.network, &AssetKey::Native);
        metadata["fee"] = state.ledger.asset_metadata_json(&native);
    }
    event["metadata"] = metadata;
    let seq = state.next_seq();
    state.ledger.push_history(m.wallet_id, seq, event.clone());
    state.emit(
        "wallet.blockchainevent.detected",
        json!({ "blockchainEvent": event.clone() }),
    );
    event
}

/// Control-API deposit: credits the wallet and records an incoming history entry + webhook.
pub struct Deposit {
    pub wallet_id: String,
    pub asset: AssetKey,
    pub amount: u128,
    pub from: Option<String>,
    pub token: Option<TokenInfo>,
    pub tx_hash: Option<String>,
}

pub fn deposit(state: &mut State, d: Deposit) -> ApiResult<Value> {
    let wallet = state.wallets.get(&d.wallet_id).ok_or_else(|| {
        ApiError::not_found("wallet not found").with_details(json!({ "walletId": d.wallet_id }))
    })?;
    let network = wallet.network.clone();
    let to = wallet.address.clone().unwrap_or_default();
    if let AssetKey::Spl { mint, program } = &d.asset {
        if !network.starts_with("Solana") {
            return Err(ApiError::bad_request(format!(
                "{} deposits need a Solana wallet; this one is on {network}",
                program.kind()
            )));
        }
        if let Some(known) = state.ledger.spl_program_of(mint)
            && known != *program
        {
            return Err(ApiError::bad_request(format!(
                "mint {mint} is a {} token, not {}",
                known.kind(),
                program.kind()
            )));
        }
        state.ledger.open_token_account(&to, mint);
    }
    if let (AssetKey::Erc20(key) | AssetKey::Spl { mint: key, .. }, Some(info)) =
        (&d.asset, d.token)
    {
        state.ledger.tokens.insert(key.clone(), info);
    }
    state.ledger.credit(&d.wallet_id, &d.asset, d.amount)?;
    let block = state.ledger.next_block();
    let tx_hash = d.tx_hash.unwrap_or_else(|| ids::tx_hash(&network));
    let from = d.from.unwrap_or_else(|| ids::external_sender(&network));
    Ok(record_movement(
        state,
        &Movement {
            wallet_id: &d.wallet_id,
            network: &network,
            direction: "In",
            asset: &d.asset,
            from: &from,
            to: &to,
            value: d.amount,
            tx_hash: &tx_hash,
            block_number: block,
            fee: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_integer_strings() {
        assert_eq!(parse_amount("amount", "1000").unwrap(), 1000);
        for bad in ["", "0", "-1", "1.5", "1e3", " 1", "0x10"] {
            assert!(parse_amount("amount", bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_amount("amount", &"9".repeat(40)).is_err());
    }

    #[test]
    fn debit_never_overdraws() {
        let mut ledger = Ledger::default();
        ledger.credit("wa-1", &AssetKey::Native, 10).unwrap();
        assert!(!ledger.try_debit("wa-1", &AssetKey::Native, 11));
        assert_eq!(ledger.balance("wa-1", &AssetKey::Native), 10);
        assert!(ledger.try_debit("wa-1", &AssetKey::Native, 10));
        assert_eq!(ledger.balance("wa-1", &AssetKey::Native), 0);
    }
}
