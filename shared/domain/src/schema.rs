//! JSON Schemas for the types whose serde form is hand-written, so the OpenAPI document says what
//! actually goes on the wire (a decimal string, a lowercase hex address…) rather than the Rust shape.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::{
    Address, Amount, AuditAction, ClientId, DestinationRequestId, EvmAddress, Network,
    NetworkAddress, OrderId, WalletId,
};

/// Stands in for a `time::OffsetDateTime` serialised with `time::serde::rfc3339`:
/// `#[schemars(with = "domain::schema::Rfc3339")]`.
pub struct Rfc3339;

impl JsonSchema for Rfc3339 {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Rfc3339".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date-time" })
    }
}

impl JsonSchema for Amount {
    fn schema_name() -> Cow<'static, str> {
        "Amount".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "integer amount in the asset's smallest unit, as a decimal string (never a JSON number)"
        })
    }
}

impl JsonSchema for Network {
    fn schema_name() -> Cow<'static, str> {
        "Network".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Network::ALL.iter().map(|n| n.as_str()).collect();
        json_schema!({ "type": "string", "enum": names })
    }
}

const EVM_ADDRESS_PATTERN: &str = "^0x[0-9a-fA-F]{40}$";
/// Base58 (P2PKH, P2SH: 25 bytes) or a lower-case segwit address of the mainnet or test prefix.
pub const BITCOIN_ADDRESS_PATTERN: &str =
    "^([123mn][1-9A-HJ-NP-Za-km-z]{25,34}|(bc|tb)1[02-9ac-hj-np-z]{8,87})$";
/// Base58 of 32 bytes: 32 to 44 characters of the base58 alphabet.
pub const SOLANA_ADDRESS_PATTERN: &str = "^[1-9A-HJ-NP-Za-km-z]{32,44}$";

impl JsonSchema for EvmAddress {
    fn schema_name() -> Cow<'static, str> {
        "EvmAddress".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": EVM_ADDRESS_PATTERN,
            "description": "0x + 40 hex digits; mixed case must pass EIP-55; served lowercase"
        })
    }
}

impl JsonSchema for Address {
    fn schema_name() -> Cow<'static, str> {
        "Address".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                EvmAddress::json_schema(generator),
                {
                    "type": "string",
                    "pattern": BITCOIN_ADDRESS_PATTERN,
                    "description": "Bitcoin: base58check P2PKH/P2SH as given, or bech32/bech32m (bc1…, tb1…) in lower case"
                },
                {
                    "type": "string",
                    "pattern": SOLANA_ADDRESS_PATTERN,
                    "description": "Solana: base58 of 32 bytes, case-sensitive, exactly as given"
                }
            ],
            "description": "an address in its network's stored form"
        })
    }
}

impl JsonSchema for NetworkAddress {
    fn schema_name() -> Cow<'static, str> {
        "NetworkAddress".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "required": ["network", "address"],
            "properties": {
                "network": generator.subschema_for::<Network>(),
                "address": generator.subschema_for::<Address>()
            }
        })
    }
}

fn string_id(description: &str, pattern: &str) -> Schema {
    json_schema!({ "type": "string", "pattern": pattern, "description": description })
}

impl JsonSchema for ClientId {
    fn schema_name() -> Cow<'static, str> {
        "ClientId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_id(
            "the client's identity-token subject",
            "^[A-Za-z0-9._:@|+-]{1,128}$",
        )
    }
}

impl JsonSchema for WalletId {
    fn schema_name() -> Cow<'static, str> {
        "WalletId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "description": "a Dfns wallet id (wa-…)" })
    }
}

const ULID_PATTERN: &str = "^[0-9A-HJKMNP-TV-Z]{26}$";

impl JsonSchema for DestinationRequestId {
    fn schema_name() -> Cow<'static, str> {
        "DestinationRequestId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_id("a destination request id (ULID)", ULID_PATTERN)
    }
}

impl JsonSchema for OrderId {
    fn schema_name() -> Cow<'static, str> {
        "OrderId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_id("an order id (ULID)", ULID_PATTERN)
    }
}

impl JsonSchema for AuditAction {
    fn schema_name() -> Cow<'static, str> {
        "AuditAction".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "description": "what happened, e.g. destination.requested" })
    }
}

/// Stands in for a bare `ulid::Ulid` (serialised as its 26-character text):
/// `#[schemars(with = "domain::schema::UlidText")]`.
pub struct UlidText;

impl JsonSchema for UlidText {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "UlidText".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": ULID_PATTERN })
    }
}
