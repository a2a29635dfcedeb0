//! JSON Schemas of the request fields the API validates by hand, written to refuse exactly what
//! the validation refuses: a value the OpenAPI document allows is accepted, and one it does not is
//! a 400. Where the accepted values are the deployment's (its networks, its exchange registry),
//! the schema reads the same configuration the handler does, so the document served by a
//! deployment is exact for it. Used as `#[schemars(schema_with = "...")]` on the input types.

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

/// An EVM address as a client may send it: `0x` and 40 hex digits in one case (a mixed-case
/// address is accepted too when its EIP-55 checksum is right, which no pattern can say).
pub fn evm_address(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^0x([0-9a-f]{40}|[0-9A-F]{40})$",
        "description": "0x + 40 hex digits, all lower or all upper case (mixed case only with a valid EIP-55 checksum); stored lowercase"
    })
}

/// A withdrawal's asset: `native`, or a token contract (an EVM address as [`evm_address`] takes).
pub fn withdrawal_asset(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^(native|0x([0-9a-f]{40}|[0-9A-F]{40}))$",
        "description": "`native` for the network's coin, or the token's contract address"
    })
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
