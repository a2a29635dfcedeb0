//! Domain model of the managed-accounts platform.
//!
//! Pure types only: no I/O, no async, no AWS. Every value that crosses the system's edge is parsed
//! once into a type that cannot hold an invalid value ("parse, don't validate"): [`ClientId`],
//! [`WalletId`], [`Network`], [`Address`], [`Amount`]. Lifecycles are explicit state machines
//! ([`DestinationRequestState`], [`OrderState`]) that only move forward, and the audit trail is a
//! per-client hash chain of [`AuditEvent`]s ([`audit`]).

pub mod address;
pub mod amount;
pub mod audit;
pub mod canonical;
pub mod ids;
pub mod network;
pub mod schema;
pub mod state;

pub use address::{
    Address, AddressError, BitcoinAddress, BitcoinAddressKind, BitcoinParams, EvmAddress,
    NetworkAddress, SolanaAddress,
};
pub use amount::{Amount, AmountError};
pub use audit::{Actor, AuditAction, AuditEvent};
pub use ids::{ClientId, DestinationRequestId, IdError, OrderId, WalletId};
pub use network::{Network, NetworkFamily, UnknownNetwork};
pub use state::{
    DestinationAction, DestinationRequestState, IllegalTransition, OrderState, StateMachine,
};
