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
//!
//! Verification need not start at the beginning: [`verify_chain_from`] continues a chain from a
//! [`ChainPoint`] already verified (the server keeps one per client, so each entry is checked once),
//! and [`verify_run`] checks a run of consecutive entries (one page) on its own.

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
    /// The stored entry at a verified point ([`ChainPoint`], the server's checkpoint) is not the
    /// one that was verified: the entry or the checkpoint was altered since.
    CheckpointMismatch,
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

/// A position in a client's chain known to be good: entry `seq` has hash `hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPoint {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl ChainPoint {
    /// Before the first entry: sequence number 0 and [`GENESIS_HASH`].
    pub const GENESIS: ChainPoint = ChainPoint {
        seq: 0,
        hash: GENESIS_HASH,
    };
}

/// Recomputes a client's chain from its entries in sequence order, from the first entry.
pub fn verify_chain<'a>(
    client_id: &ClientId,
    entries: impl IntoIterator<Item = &'a ChainEntry>,
) -> ChainVerdict {
    verify_chain_from(client_id, ChainPoint::GENESIS, entries)
}

/// Recomputes the rest of a client's chain after `start`, which is trusted: `entries` must be
/// entries `start.seq + 1, start.seq + 2, …` in order, the first one pointing at `start.hash`.
/// An intact verdict's `length` is the last entry's sequence number (`start.seq` if there is
/// none) and its `head_hash` that entry's hash. From [`ChainPoint::GENESIS`] this is
/// [`verify_chain`].
pub fn verify_chain_from<'a>(
    client_id: &ClientId,
    start: ChainPoint,
    entries: impl IntoIterator<Item = &'a ChainEntry>,
) -> ChainVerdict {
    let mut prev = start.hash;
    let mut expected_seq = start.seq + 1;
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

/// Checks a run of consecutive entries that should start at `first_seq`, without the entries
/// before it: the run starts at `first_seq`, each entry's hash is the hash of its stored
/// `prev_hash` and body, each entry points at the one before it in the run, and entry 1 points
/// at [`GENESIS_HASH`]. Only the first entry's `prev_hash` is taken as stored. Returns the first
/// entry that does not fit, and why; `None` when the run verifies (or is empty).
pub fn verify_run(
    client_id: &ClientId,
    first_seq: u64,
    entries: &[ChainEntry],
) -> Option<(u64, ChainBreak)> {
    let first_seq = first_seq.max(1);
    let first = entries.first()?;
    if first.seq != first_seq {
        return Some((first_seq, ChainBreak::Gap));
    }
    let start_hash = if first_seq == 1 {
        GENESIS_HASH
    } else {
        match decode_hash(&first.prev_hash) {
            Some(hash) => hash,
            None => return Some((first_seq, ChainBreak::PrevHashMismatch)),
        }
    };
    let start = ChainPoint {
        seq: first_seq - 1,
        hash: start_hash,
    };
    match verify_chain_from(client_id, start, entries) {
        ChainVerdict::Intact { .. } => None,
        ChainVerdict::Broken { seq, reason } => Some((seq, reason)),
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
    fn verifying_from_a_point_continues_the_whole_chain() {
        let client = ClientId::parse("alice").unwrap();
        let entries = chain(&client, 6);
        let whole = verify_chain(&client, &entries);
        for k in 0..=6usize {
            let start = match k {
                0 => ChainPoint::GENESIS,
                k => ChainPoint {
                    seq: k as u64,
                    hash: entries[k - 1].hash_bytes().unwrap(),
                },
            };
            assert_eq!(
                verify_chain_from(&client, start, &entries[k..]),
                whole,
                "from {k}"
            );
        }
        assert_eq!(
            verify_chain_from(&client, ChainPoint::GENESIS, &entries),
            verify_chain(&client, &entries)
        );
    }

    #[test]
    fn a_start_point_that_does_not_fit_the_entries_is_a_break() {
        let client = ClientId::parse("alice").unwrap();
        let entries = chain(&client, 5);
        // The wrong hash for entry 2: entry 3 does not point at it.
        let wrong_hash = ChainPoint {
            seq: 2,
            hash: [9; 32],
        };
        assert_eq!(
            verify_chain_from(&client, wrong_hash, &entries[2..]),
            ChainVerdict::Broken {
                seq: 3,
                reason: ChainBreak::PrevHashMismatch
            }
        );
        // The wrong position: the next entry is not the one expected.
        let wrong_seq = ChainPoint {
            seq: 3,
            hash: entries[1].hash_bytes().unwrap(),
        };
        assert_eq!(
            verify_chain_from(&client, wrong_seq, &entries[2..]),
            ChainVerdict::Broken {
                seq: 4,
                reason: ChainBreak::Gap
            }
        );
        // Nothing after the point: intact, ending at the point itself.
        let at_end = ChainPoint {
            seq: 5,
            hash: entries[4].hash_bytes().unwrap(),
        };
        assert_eq!(
            verify_chain_from(&client, at_end, &[]),
            ChainVerdict::Intact {
                length: 5,
                head_hash: entries[4].hash.clone()
            }
        );
    }

    #[test]
    fn a_run_verifies_on_its_own_and_names_its_first_bad_entry() {
        let client = ClientId::parse("alice").unwrap();
        let entries = chain(&client, 8);
        assert_eq!(verify_run(&client, 1, &entries), None);
        assert_eq!(verify_run(&client, 3, &entries[2..6]), None);
        assert_eq!(verify_run(&client, 9, &[]), None);
        // A run that does not start where it should.
        assert_eq!(
            verify_run(&client, 3, &entries[3..6]),
            Some((3, ChainBreak::Gap))
        );
        // Entry 1 must point at genesis.
        let mut forged_first = entries.clone();
        forged_first[0] = ChainEntry::seal(1, &[5; 32], &event(&client, 1));
        assert_eq!(
            verify_run(&client, 1, &forged_first[..3]),
            Some((1, ChainBreak::PrevHashMismatch))
        );
        for i in 2..6 {
            let seq = i as u64 + 1;
            let mut altered = entries.clone();
            altered[i].body = altered[i].body.replace("0xabc", "0xabd");
            assert_eq!(
                verify_run(&client, 3, &altered[2..6]),
                Some((seq, ChainBreak::HashMismatch))
            );
            // Re-sealed in place: its own hash fits, the link to the next entry does not.
            let mut resealed = entries.clone();
            let mut forged = event(&client, seq as u32);
            forged.details = json!({"n": seq, "address": "0xevil"});
            let prev = decode_hash(&entries[i].prev_hash).unwrap();
            resealed[i] = ChainEntry::seal(seq, &prev, &forged);
            let expected = (i < 5).then_some((seq + 1, ChainBreak::PrevHashMismatch));
            assert_eq!(verify_run(&client, 3, &resealed[2..6]), expected);
        }
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
