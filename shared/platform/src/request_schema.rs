//! JSON Schemas of the request fields the API validates by hand, written to refuse exactly what
//! the validation refuses: a value the OpenAPI document allows is accepted, and one it does not is
//! a 400. Where the accepted values are the deployment's (its networks, its exchange registry),
//! the schema reads the same configuration the handler does, so the document served by a
//! deployment is exact for it. Used as `#[schemars(schema_with = "...")]` on the input types.

use domain::address::{BITCOIN_MAINNET, BITCOIN_TEST};
use domain::{BitcoinParams, Network, NetworkFamily};
use schemars::{Schema, SchemaGenerator, json_schema};

use crate::destinations::MAX_LABEL_CHARS;

/// The networks this deployment offers (`PLATFORM_NETWORKS`, parsed as the settings parse it).
pub fn offered_network(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&'static str> = crate::settings::offered_networks_from_env()
        .iter()
        .map(|n| n.as_str())
        .collect();
    json_schema!({
        "type": "string",
        "enum": names,
        "description": "a Dfns network this platform offers"
    })
}

/// The EVM address pattern: `0x` and 40 hex digits in one case.
const EVM_PATTERN: &str = "0x([0-9a-f]{40}|[0-9A-F]{40})";
/// The base58 alphabet (no `0`, `O`, `I`, `l`).
const BASE58: &str = "[1-9A-HJ-NP-Za-km-z]";

/// The networks offered, grouped by family (in the order `NetworkFamily` lists them).
fn offered_families(offered: &[Network]) -> Vec<(NetworkFamily, Vec<Network>)> {
    [
        NetworkFamily::Evm,
        NetworkFamily::Bitcoin,
        NetworkFamily::Solana,
    ]
    .into_iter()
    .map(|family| {
        let of_it: Vec<Network> = offered
            .iter()
            .copied()
            .filter(|n| n.family() == family)
            .collect();
        (family, of_it)
    })
    .filter(|(_, networks)| !networks.is_empty())
    .collect()
}

/// The pattern (without anchors) of an address of `family` on any of `networks`.
fn family_pattern(family: NetworkFamily, networks: &[Network]) -> String {
    match family {
        NetworkFamily::Evm => EVM_PATTERN.to_owned(),
        NetworkFamily::Bitcoin => {
            // Each network's version bytes (base58: `1`/`3` on mainnet, `m`/`n`/`2` on the test
            // networks) and segwit prefix, bech32 in one case.
            let mut options = Vec::new();
            for params in [BITCOIN_MAINNET, BITCOIN_TEST] {
                if !networks
                    .iter()
                    .any(|n| BitcoinParams::of(*n) == Some(params))
                {
                    continue;
                }
                let first = if params == BITCOIN_MAINNET {
                    "[13]"
                } else {
                    "[2mn]"
                };
                let (lower, upper) = (params.hrp, params.hrp.to_ascii_uppercase());
                options.push(format!("{first}{BASE58}{{25,34}}"));
                options.push(format!("{lower}1[02-9ac-hj-np-z]{{8,87}}"));
                options.push(format!("{upper}1[02-9AC-HJ-NP-Z]{{8,87}}"));
            }
            format!("({})", options.join("|"))
        }
        NetworkFamily::Solana => format!("{BASE58}{{32,44}}"),
    }
}

/// What a pattern of `family` cannot say.
fn family_description(family: NetworkFamily) -> &'static str {
    match family {
        NetworkFamily::Evm => {
            "EVM: 0x + 40 hex digits, all lower or all upper case (mixed case only with a valid EIP-55 checksum, which no pattern can say); stored lowercase"
        }
        NetworkFamily::Bitcoin => {
            "Bitcoin: base58check P2PKH/P2SH with the network's version byte, or segwit bech32 (v0) / bech32m (v1+) with the network's prefix (bc1…, tb1…) in one case; the checksum, which no pattern can say, must be right (a 400 otherwise); bech32 stored lower case"
        }
        NetworkFamily::Solana => {
            "Solana: base58 decoding to exactly 32 bytes (which no pattern can say: a 400 otherwise), case-sensitive, stored exactly as given"
        }
    }
}

fn family_schema(family: NetworkFamily, networks: &[Network]) -> Schema {
    let pattern = format!("^{}$", family_pattern(family, networks));
    json_schema!({
        "type": "string",
        "pattern": pattern,
        "description": family_description(family)
    })
}

/// An address as a client may send it, of the form of one of the offered networks' families
/// (which family must match the request's `network`: see [`address_for_network`]).
pub fn address(_: &mut SchemaGenerator) -> Schema {
    address_schema(&crate::settings::offered_networks_from_env())
}

fn address_schema(offered: &[Network]) -> Schema {
    let families = offered_families(offered);
    match families.as_slice() {
        [(family, networks)] => family_schema(*family, networks),
        _ => {
            let options: Vec<Schema> = families
                .iter()
                .map(|(family, networks)| family_schema(*family, networks))
                .collect();
            json_schema!({
                "anyOf": options,
                "description": "an address of the request's network's family"
            })
        }
    }
}

/// A withdrawal's asset: `native`, an EVM token's contract, or a Solana SPL token's mint (Bitcoin
/// has no tokens).
pub fn withdrawal_asset(_: &mut SchemaGenerator) -> Schema {
    asset_schema(&crate::settings::offered_networks_from_env())
}

fn asset_schema(offered: &[Network]) -> Schema {
    let tokens: Vec<String> = offered_families(offered)
        .iter()
        // ERC-20 contracts and SPL mints (Bitcoin has no tokens).
        .filter(|(family, _)| has_tokens(*family))
        .map(|(family, networks)| family_pattern(*family, networks))
        .collect();
    let pattern = if tokens.is_empty() {
        "^native$".to_owned()
    } else {
        format!("^(native|{})$", tokens.join("|"))
    };
    json_schema!({
        "type": "string",
        "pattern": pattern,
        "description": "`native` for the network's coin; on an EVM network an ERC-20 token's contract address; on a Solana network an SPL token's mint: base58 of 32 bytes (which no pattern can say: a 400 otherwise), case-sensitive, sent exactly as given (as Dfns' `Spl` or `Spl2022`, whichever the wallet holds it under; a 409 when the wallet holds none of it). Bitcoin networks: `native` only"
    })
}

/// Whether a family's networks have tokens a withdrawal can name (ERC-20 contracts, SPL mints).
fn has_tokens(family: NetworkFamily) -> bool {
    match family {
        NetworkFamily::Evm | NetworkFamily::Solana => true,
        NetworkFamily::Bitcoin => false,
    }
}

/// Ties an address field to the request's `network` when the offered networks span more than
/// one family: a chain of `if` (the network is of this family) / `then` (the field has its form)
/// / `else` (the next family), so a value the document allows is one the handler accepts.
fn address_for_network(
    schema: &mut Schema,
    offered: &[Network],
    field: &str,
    token_field: Option<&str>,
) {
    let families = offered_families(offered);
    if families.len() < 2 {
        return;
    }
    let mut chain: Option<serde_json::Value> = None;
    for (family, networks) in families.iter().rev() {
        let names: Vec<&str> = networks.iter().map(|n| n.as_str()).collect();
        let mut then = serde_json::Map::new();
        then.insert(
            field.to_owned(),
            serde_json::json!({ "pattern": format!("^{}$", family_pattern(*family, networks)) }),
        );
        if let Some(token_field) = token_field {
            let asset = if !has_tokens(*family) {
                "^native$".to_owned()
            } else {
                format!("^(native|{})$", family_pattern(*family, networks))
            };
            then.insert(
                token_field.to_owned(),
                serde_json::json!({ "pattern": asset }),
            );
        }
        let mut rule = serde_json::json!({
            "if": { "properties": { "network": { "enum": names } }, "required": ["network"] },
            "then": { "properties": then },
        });
        if let Some(next) = chain.take() {
            rule["else"] = next;
        }
        chain = Some(rule);
    }
    if let (Some(chain), Some(object)) = (chain, schema.as_object_mut()) {
        for key in ["if", "then", "else"] {
            if let Some(value) = chain.get(key) {
                object.insert(key.to_owned(), value.clone());
            }
        }
    }
}

/// Container transform of a destination request: its `address` has its `network`'s form.
pub fn destination_rules(schema: &mut Schema) {
    let offered = crate::settings::offered_networks_from_env();
    address_for_network(schema, &offered, "address", None);
}

/// Container transform of a withdrawal: its `to` and `asset` have its `network`'s form.
pub fn withdrawal_rules(schema: &mut Schema) {
    let offered = crate::settings::offered_networks_from_env();
    address_for_network(schema, &offered, "to", Some("asset"));
}

/// Characters `char::is_control` refuses (Unicode Cc).
const CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";
/// Characters `str::trim` removes (Unicode White_Space outside Cc).
const SPACE: &str = " \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/// A destination's label: 1 to [`MAX_LABEL_CHARS`] characters, not blank, no control characters.
pub fn label(_: &mut SchemaGenerator) -> Schema {
    let pattern = format!("^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$");
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_LABEL_CHARS,
        "pattern": pattern,
        "description": "the client's name for the destination (trimmed when stored)"
    })
}

/// `add` or `remove`.
pub fn destination_action(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": ["add", "remove"] })
}

/// An amount greater than zero in the asset's smallest unit: a decimal string without sign,
/// leading zero or fraction (at most 38 digits, within the 128 bits the platform counts in).
pub fn positive_amount(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^[1-9][0-9]{0,37}$",
        "description": "integer amount in the asset's smallest unit, as a decimal string"
    })
}

/// A client id, as tokens carry it.
pub fn client_id(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<domain::ClientId>()
}

/// An RFC 3339 date-time.
pub fn date_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time" })
}

/// An exchange of this deployment's registry (`EXCHANGES`), by its exact name.
pub fn exchange(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<String> = crate::trading::config()
        .map(|c| c.registry.venues().map(|v| v.name.clone()).collect())
        .unwrap_or_default();
    json_schema!({ "type": "string", "enum": names, "description": "an exchange of the registry" })
}

/// An asset symbol some exchange of the registry takes (matched without regard to case; which
/// exchange takes which asset on which network is in the registry).
pub fn registry_asset(_: &mut SchemaGenerator) -> Schema {
    let mut symbols: Vec<String> = crate::trading::config()
        .map(|c| {
            c.registry
                .venues()
                .flat_map(|v| v.deposits.iter().map(|d| d.asset.clone()))
                .collect()
        })
        .unwrap_or_default();
    symbols.sort();
    symbols.dedup();
    json_schema!({ "type": "string", "enum": symbols, "description": "an asset symbol of the registry" })
}

/// [`date_time`], or `null` / absent.
pub fn optional_date_time(generator: &mut SchemaGenerator) -> Schema {
    nullable(date_time(generator))
}

/// [`offered_network`], or `null` / absent.
pub fn optional_offered_network(generator: &mut SchemaGenerator) -> Schema {
    nullable(offered_network(generator))
}

fn nullable(schema: Schema) -> Schema {
    json_schema!({ "anyOf": [schema, { "type": "null" }] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const EVM_LOWER: &str = "0x52908400098527886e0f7030069857d2e4169ee7";
    const EVM_UPPER: &str = "0x52908400098527886E0F7030069857D2E4169EE7";
    const TB_BECH32: &str = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7";
    const TB_BECH32M: &str = "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c";
    const TB_P2PKH: &str = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn";
    const TB_P2SH: &str = "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc";
    const BC_BECH32: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5";
    const SOLANA: &str = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";

    /// A minimal JSON Schema check: the keywords these schemas use.
    fn fits(schema: &Value, value: &Value) -> bool {
        if let Some(options) = schema.get("anyOf").and_then(Value::as_array)
            && !options.iter().any(|o| fits(o, value))
        {
            return false;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            return false;
        }
        if let (Some(pattern), Some(text)) = (
            schema.get("pattern").and_then(Value::as_str),
            value.as_str(),
        ) && !regex_lite::Regex::new(pattern).unwrap().is_match(text)
        {
            return false;
        }
        if let Some(object) = value.as_object() {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !object.contains_key(required.as_str().unwrap()) {
                    return false;
                }
            }
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, field) in object {
                    if let Some(field_schema) = properties.get(key)
                        && !fits(field_schema, field)
                    {
                        return false;
                    }
                }
            }
        }
        if let Some(condition) = schema.get("if") {
            let branch = if fits(condition, value) {
                schema.get("then")
            } else {
                schema.get("else")
            };
            if let Some(branch) = branch
                && !fits(branch, value)
            {
                return false;
            }
        }
        true
    }

    fn destination_body(offered: &[Network]) -> Value {
        let names: Vec<&str> = offered.iter().map(|n| n.as_str()).collect();
        let mut schema = json_schema!({
            "type": "object",
            "properties": {
                "network": { "type": "string", "enum": names },
                "address": address_schema(offered),
            },
            "required": ["network", "address"],
        });
        address_for_network(&mut schema, offered, "address", None);
        schema.to_value()
    }

    fn withdrawal_body(offered: &[Network]) -> Value {
        let names: Vec<&str> = offered.iter().map(|n| n.as_str()).collect();
        let mut schema = json_schema!({
            "type": "object",
            "properties": {
                "network": { "type": "string", "enum": names },
                "to": address_schema(offered),
                "asset": asset_schema(offered),
            },
            "required": ["network", "to", "asset"],
        });
        address_for_network(&mut schema, offered, "to", Some("asset"));
        schema.to_value()
    }

    const THREE: [Network; 3] = [
        Network::EthereumSepolia,
        Network::BitcoinTestnet4,
        Network::SolanaDevnet,
    ];

    fn solana_with_a_case_flipped() -> String {
        let i = SOLANA
            .find(|c: char| c.is_ascii_lowercase() && c != 'l')
            .unwrap();
        let mut flipped = SOLANA.to_owned();
        flipped.replace_range(i..=i, &SOLANA[i..=i].to_ascii_uppercase());
        flipped
    }

    #[test]
    fn one_family_keeps_the_evm_schema() {
        let schema = destination_body(&[Network::EthereumSepolia, Network::BaseSepolia]);
        assert!(schema.get("if").is_none(), "{schema}");
        let address = &schema["properties"]["address"];
        assert_eq!(address["pattern"], "^0x([0-9a-f]{40}|[0-9A-F]{40})$");
        let asset = asset_schema(&[Network::EthereumSepolia]).to_value();
        assert_eq!(asset["pattern"], "^(native|0x([0-9a-f]{40}|[0-9A-F]{40}))$");
    }

    /// Over the three families: what the document allows the handler's parsing accepts, and
    /// what it refuses the handler refuses (the checksums, which no pattern says, aside).
    #[test]
    fn the_document_follows_each_networks_family() {
        let schema = destination_body(&THREE);
        let flipped = solana_with_a_case_flipped();
        let cases = [
            (Network::EthereumSepolia, EVM_LOWER),
            (Network::EthereumSepolia, EVM_UPPER),
            (Network::EthereumSepolia, SOLANA),
            (Network::EthereumSepolia, TB_BECH32),
            (Network::BitcoinTestnet4, TB_BECH32),
            (Network::BitcoinTestnet4, TB_BECH32M),
            (Network::BitcoinTestnet4, &TB_BECH32.to_ascii_uppercase()),
            (Network::BitcoinTestnet4, TB_P2PKH),
            (Network::BitcoinTestnet4, TB_P2SH),
            (Network::BitcoinTestnet4, BC_BECH32),
            (Network::BitcoinTestnet4, EVM_LOWER),
            (Network::BitcoinTestnet4, SOLANA),
            (Network::SolanaDevnet, SOLANA),
            (Network::SolanaDevnet, &flipped),
            (Network::SolanaDevnet, EVM_LOWER),
            (Network::SolanaDevnet, TB_BECH32),
        ];
        for (network, address) in cases {
            let body = json!({ "network": network.as_str(), "address": address });
            let allowed = fits(&schema, &body);
            let parsed = domain::NetworkAddress::parse(network, address);
            // The one value the document allows and the handler refuses: a base58 string of
            // the right alphabet that is not 32 bytes' worth (or one letter's case changed,
            // which decodes to other bytes and sometimes to 33).
            if address == flipped {
                assert!(allowed, "{body}");
                continue;
            }
            assert_eq!(allowed, parsed.is_ok(), "{body}: {parsed:?}");
        }
        // A family's form on another family's network is refused by the document itself.
        for (network, address) in [
            (Network::EthereumSepolia, SOLANA),
            (Network::SolanaDevnet, EVM_LOWER),
            (Network::BitcoinTestnet4, BC_BECH32),
        ] {
            let body = json!({ "network": network.as_str(), "address": address });
            assert!(!fits(&schema, &body), "{body}");
        }
    }

    #[test]
    fn only_the_offered_families_and_prefixes_are_listed() {
        let schema = destination_body(&[Network::EthereumSepolia, Network::SolanaDevnet]);
        let address = &schema["properties"]["address"];
        assert_eq!(address["anyOf"].as_array().unwrap().len(), 2, "{address}");
        assert!(!address.to_string().contains("tb1"), "{address}");
        let body = json!({ "network": "EthereumSepolia", "address": TB_BECH32 });
        assert!(!fits(&schema, &body));
        // Only the test networks: a mainnet prefix is not in the document.
        let body = json!({ "network": "BitcoinTestnet4", "address": BC_BECH32 });
        assert!(!fits(&destination_body(&THREE), &body));
    }

    #[test]
    fn a_withdrawals_asset_follows_its_network() {
        let schema = withdrawal_body(&THREE);
        let body = |network: Network, to: &str, asset: &str| json!({ "network": network.as_str(), "to": to, "asset": asset });
        assert!(fits(
            &schema,
            &body(Network::SolanaDevnet, SOLANA, "native")
        ));
        // An SPL token's mint (a Solana address); not an EVM contract.
        assert!(fits(&schema, &body(Network::SolanaDevnet, SOLANA, SOLANA)));
        assert!(!fits(
            &schema,
            &body(Network::SolanaDevnet, SOLANA, EVM_LOWER)
        ));
        assert!(fits(
            &schema,
            &body(Network::BitcoinTestnet4, TB_P2PKH, "native")
        ));
        assert!(!fits(
            &schema,
            &body(Network::BitcoinTestnet4, TB_P2PKH, TB_P2PKH)
        ));
        assert!(fits(
            &schema,
            &body(Network::EthereumSepolia, EVM_LOWER, EVM_UPPER)
        ));
        assert!(!fits(
            &schema,
            &body(Network::EthereumSepolia, EVM_LOWER, SOLANA)
        ));
        assert!(!fits(
            &schema,
            &body(Network::EthereumSepolia, SOLANA, "native")
        ));
    }

    proptest::proptest! {
        /// Every Solana address (any 32 bytes) and EVM address fits its network's form.
        #[test]
        fn generated_addresses_fit(bytes in proptest::array::uniform32(proptest::num::u8::ANY)) {
            let schema = destination_body(&THREE);
            let solana = domain::SolanaAddress::from_bytes(bytes);
            let body = json!({ "network": "SolanaDevnet", "address": solana.as_str() });
            proptest::prop_assert!(fits(&schema, &body), "{}", body);
            let evm = format!("0x{}", hex::encode(&bytes[..20]));
            let body = json!({ "network": "EthereumSepolia", "address": evm });
            proptest::prop_assert!(fits(&schema, &body), "{}", body);
        }
    }
}
