//! Every integration test of this crate, one module per area, in one binary: each test binary links
//! the whole dependency tree (~40 MB in debug), so one binary instead of several keeps CI's disk and
//! link time down. The tests still run in parallel inside it.

mod auth;
mod binary;
mod common;
mod families;
mod faults_permissions_audit;
mod policy_engine;
mod policy_hook;
mod spl;
mod wallets_transfers;
mod webhooks;
