//! Audit events and the per-client hash chain that makes them tamper-evident.
//!
//! Each client's trail is a sequence `1, 2, 3, …` of [`ChainEntry`]s. Entry `n` stores:
//! - `body`: the canonical JSON ([`crate::canonical`]) of the event together with its sequence
//!   number, exactly the bytes that were hashed;
//! - `prev_hash`: entry `n-1`'s `hash` (for entry 1, [`GENESIS_HASH`]: 32 zero bytes);
//! - `hash = sha256(prev_hash ‖ body)`, over the 32 raw bytes of `prev_hash` followed by the body's
//!   UTF-8 bytes; hashes are stored as lowercase hex.
//!
//! Changing any stored byte of an entry (body, sequence, or hash) breaks the chain at that entry;
//! [`verify_chain`] finds the first entry that no longer fits. A hash chain alone cannot detect a
//! rewrite of an entry *and every entry after it* by someone who can write the store; anchoring
//! the head hash elsewhere (a report, a log sink) closes that gap.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::canonical::to_canonical_json;
use crate::ids::ClientId;

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Actor {
    /// The client, by the verified token's subject.
    Client { id: ClientId },
    /// A trading-desk operator, by the verified token's subject.
    Operator { id: String },
    /// A compliance officer, by Dfns user id.
    Compliance { id: String },
    /// The platform itself, by component (e.g. `order-execution`).
    System { id: String },
    /// Dfns, by webhook event id (or the Dfns object that reported the change).
    Dfns { id: String },
}

/// Why a string is not an audit action name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "audit action must be 1..=100 characters of dot-separated lowercase words (`[a-z][a-z0-9_]*`)"
)]
pub struct InvalidAuditAction;

/// What happened, as a stable dotted name: `destination_request.created`, `order.confirmed`, …
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditAction(String);

impl AuditAction {
    pub fn parse(raw: &str) -> Result<Self, InvalidAuditAction> {
        let word_ok = |w: &str| {
            let mut bytes = w.bytes();
            matches!(bytes.next(), Some(b'a'..=b'z'))
                && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if raw.len() <= 100 && raw.split('.').all(word_ok) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidAuditAction)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AuditAction {
    type Err = InvalidAuditAction;
    fn from_str(s: &str) -> Result<Self, InvalidAuditAction> {
        Self::parse(s)
    }
}

impl Serialize for AuditAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// One thing that happened to a client's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Whose trail this event belongs to.
    pub client_id: ClientId,
    pub actor: Actor,
    pub action: AuditAction,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::schema::Rfc3339")]
    pub at: OffsetDateTime,
    /// The request (API Gateway / webhook / run id) that caused it, for correlation with logs.
    pub request_id: String,
    /// Action-specific facts (ids, old and new states, addresses, amounts as strings).
    pub details: serde_json::Value,
}

/// The `prev_hash` of the first entry of every chain.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// `sha256(prev_hash ‖ body)`.
pub fn chain_hash(prev_hash: &[u8; 32], body: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(body.as_bytes());
    hasher.finalize().into()
}

/// The hashed body: the event plus its position in the chain.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SequencedEvent {
    seq: u64,
    #[serde(flatten)]
    event: AuditEvent,
}

/// One stored link of a client's audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEntry {
    pub seq: u64,
    /// Lowercase hex of the previous entry's hash.
    pub prev_hash: String,
    /// Lowercase hex of `sha256(prev_hash ‖ body)`.
    pub hash: String,
    /// Canonical JSON of the event with its sequence number.
    pub body: String,
}

impl ChainEntry {
    /// Builds entry `seq` following an entry whose hash is `prev_hash`.
    pub fn seal(seq: u64, prev_hash: &[u8; 32], event: &AuditEvent) -> Self {
        let value = serde_json::to_value(SequencedEvent {
            seq,
            event: event.clone(),
        })
        .expect("audit events always serialise");
        let body = to_canonical_json(&value);
        let hash = chain_hash(prev_hash, &body);
        Self {
            seq,
            prev_hash: hex::encode(prev_hash),
            hash: hex::encode(hash),
            body,
        }
    }

    /// The event recorded in the body.
    pub fn event(&self) -> Result<AuditEvent, serde_json::Error> {
        serde_json::from_str::<SequencedEvent>(&self.body).map(|s| s.event)
    }

    /// The hash as bytes, if it is well-formed hex.
    pub fn hash_bytes(&self) -> Option<[u8; 32]> {
        decode_hash(&self.hash)
    }
}

/// Decodes a lowercase-hex 32-byte hash.
pub fn decode_hash(hex_hash: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut out).ok()?;
    (hex::encode(out) == hex_hash).then_some(out)
}

/// What is wrong with the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry with this sequence number is missing (or a duplicate/out-of-order one is here).
    Gap,
    /// The entry does not point at its predecessor's hash.
    PrevHashMismatch,
    /// The stored hash is not the hash of the stored body.
    HashMismatch,
    /// The body is not a readable event, or names another sequence number or client.
    BodyMismatch,
    /// The chain's head record does not match its last entry.
    HeadMismatch,
}

/// Outcome of [`verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainVerdict {
    Intact {
        length: u64,
        /// Hex hash of the last entry ([`GENESIS_HASH`] for an empty chain).
        head_hash: String,
    },
    Broken {
        /// The first sequence number at which the chain no longer verifies.
        seq: u64,
        reason: ChainBreak,
    },
}

impl ChainVerdict {
    pub fn is_intact(&self) -> bool {
        matches!(self, ChainVerdict::Intact { .. })
    }
}

/// Recomputes a client's chain from its entries in sequence order.
pub fn verify_chain<'a>(
    client_id: &ClientId,
    entries: impl IntoIterator<Item = &'a ChainEntry>,
) -> ChainVerdict {
    let mut prev = GENESIS_HASH;
    let mut expected_seq = 1u64;
    for entry in entries {
        let broken = |reason| ChainVerdict::Broken {
            seq: expected_seq,
            reason,
        };
        if entry.seq != expected_seq {
            return broken(ChainBreak::Gap);
        }
        if decode_hash(&entry.prev_hash) != Some(prev) {
            return broken(ChainBreak::PrevHashMismatch);
        }
        let recomputed = chain_hash(&prev, &entry.body);
        if entry.hash_bytes() != Some(recomputed) {
            return broken(ChainBreak::HashMismatch);
        }
        match serde_json::from_str::<SequencedEvent>(&entry.body) {
            Ok(body) if body.seq == entry.seq && &body.event.client_id == client_id => {}
            _ => return broken(ChainBreak::BodyMismatch),
        }
        prev = recomputed;
        expected_seq += 1;
    }
    ChainVerdict::Intact {
        length: expected_seq - 1,
        head_hash: hex::encode(prev),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(client: &ClientId, n: u32) -> AuditEvent {
        AuditEvent {
            client_id: client.clone(),
            actor: Actor::Client { id: client.clone() },
            action: AuditAction::parse("destination_request.created").unwrap(),
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000 + i64::from(n)).unwrap(),
            request_id: format!("req-{n}"),
            details: json!({"n": n, "address": "0xabc"}),
        }
    }

    fn chain(client: &ClientId, len: u32) -> Vec<ChainEntry> {
        let mut prev = GENESIS_HASH;
        (1..=len)
            .map(|n| {
                let entry = ChainEntry::seal(u64::from(n), &prev, &event(client, n));
                prev = entry.hash_bytes().unwrap();
                entry
            })
            .collect()
    }

    #[test]
    fn body_is_canonical_and_hash_is_sha256_of_prev_and_body() {
        let client = ClientId::parse("alice").unwrap();
        let entry = ChainEntry::seal(1, &GENESIS_HASH, &event(&client, 1));
        assert_eq!(
            entry.body,
            r#"{"action":"destination_request.created","actor":{"id":"alice","type":"client"},"at":"2023-11-14T22:13:21Z","clientId":"alice","details":{"address":"0xabc","n":1},"requestId":"req-1","seq":1}"#
        );
        let mut hasher = Sha256::new();
        hasher.update([0u8; 32]);
        hasher.update(entry.body.as_bytes());
        assert_eq!(entry.hash, hex::encode(hasher.finalize()));
        assert_eq!(entry.prev_hash, "0".repeat(64));
        assert_eq!(entry.event().unwrap(), event(&client, 1));
    }

    #[test]
    fn intact_chain_verifies() {
        let client = ClientId::parse("alice").unwrap();
        let entries = chain(&client, 5);
        assert_eq!(
            verify_chain(&client, &entries),
            ChainVerdict::Intact {
                length: 5,
                head_hash: entries[4].hash.clone()
            }
        );
        assert!(verify_chain(&client, &[]).is_intact());
    }

    #[test]
    fn any_alteration_is_found_at_that_entry() {
        let client = ClientId::parse("alice").unwrap();
        let entries = chain(&client, 5);
        for i in 0..5 {
            let seq = i as u64 + 1;
            let broken_at = |reason| ChainVerdict::Broken { seq, reason };

            let mut altered = entries.clone();
            altered[i].body = altered[i].body.replace("0xabc", "0xabd");
            assert_eq!(
                verify_chain(&client, &altered),
                broken_at(ChainBreak::HashMismatch)
            );

            let mut altered = entries.clone();
            altered[i].hash = hex::encode([7u8; 32]);
            assert_eq!(
                verify_chain(&client, &altered),
                broken_at(ChainBreak::HashMismatch)
            );

            let mut altered = entries.clone();
            altered[i].prev_hash = hex::encode([7u8; 32]);
            assert_eq!(
                verify_chain(&client, &altered),
                broken_at(ChainBreak::PrevHashMismatch)
            );

            let mut altered = entries.clone();
            altered.remove(i);
            if i < 4 {
                assert_eq!(verify_chain(&client, &altered), broken_at(ChainBreak::Gap));
            }
        }
    }

    #[test]
    fn a_rehashed_forgery_still_breaks_the_next_link() {
        let client = ClientId::parse("alice").unwrap();
        let mut entries = chain(&client, 3);
        let prev = entries[0].hash_bytes().unwrap();
        let mut forged = event(&client, 2);
        forged.details = json!({"n": 2, "address": "0xevil"});
        entries[1] = ChainEntry::seal(2, &prev, &forged);
        assert_eq!(
            verify_chain(&client, &entries),
            ChainVerdict::Broken {
                seq: 3,
                reason: ChainBreak::PrevHashMismatch
            }
        );
    }

    #[test]
    fn another_clients_entry_does_not_verify() {
        let alice = ClientId::parse("alice").unwrap();
        let bob = ClientId::parse("bob").unwrap();
        let entries = chain(&bob, 2);
        assert_eq!(
            verify_chain(&alice, &entries),
            ChainVerdict::Broken {
                seq: 1,
                reason: ChainBreak::BodyMismatch
            }
        );
    }

    #[test]
    fn actor_json_and_action_names() {
        let actor = Actor::Compliance { id: "us-1".into() };
        assert_eq!(
            serde_json::to_string(&actor).unwrap(),
            r#"{"type":"compliance","id":"us-1"}"#
        );
        for ok in [
            "order.confirmed",
            "a",
            "destination_request.pending_approval",
        ] {
            assert!(AuditAction::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Order.created",
            "order..created",
            ".x",
            "x.",
            "1x",
            "order created",
        ] {
            assert!(AuditAction::parse(bad).is_err(), "{bad}");
        }
    }
}
