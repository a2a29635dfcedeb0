//! The in-memory organisation and the shared application handle.
//!
//! All Dfns state lives in one [`State`] behind one mutex: every request's checks and changes
//! happen under that lock, so each state change is atomic (no lost update, no double spend).
//! Work that must happen *after* the lock is released — webhook deliveries and the automatic
//! transfer lifecycle — is queued in [`State::outbox`] and started by [`App::with_state`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::audit::AuditEntry;
use crate::auth::{Challenge, Credential, User, UserAction};
use crate::clock::Clock;
use crate::faults::{FaultCounts, FaultRule, WebhookFaultCounts, WebhookFaults};
use crate::ledger::Ledger;
use crate::permissions::{Assignment, Permission};
use crate::policy::{DfnsPolicyEngine, PolicyData, PolicyEngine};
use crate::transfers::{Lifecycle, Transfer};
use crate::wallets::Wallet;
use crate::webhooks::{StoredEvent, Webhook};

/// Work to start once the state lock is released.
#[derive(Debug, Clone)]
pub enum Job {
    /// Attempt delivery of a stored webhook event (first attempt or a retry already recorded).
    Deliver { event_id: String },
    /// Drive a transfer through its lifecycle (automatic mode).
    DriveTransfer { transfer_id: String },
}

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Delay before each webhook retry, counted from the previous attempt. Attempts in total =
    /// `len + 1` (Dfns: 5 attempts over ~24 h).
    pub webhook_retry_delays: Vec<Duration>,
    pub webhook_timeout: Duration,
    /// Lifetime of a challenge and of a user-action token (docs/dfns.md U3: 5 minutes).
    pub user_action_ttl: Duration,
}

pub struct State {
    pub org_id: String,
    pub clock: Arc<Clock>,
    seq: u64,
    pub users: BTreeMap<String, User>,
    /// Bearer token → user id.
    pub tokens: HashMap<String, String>,
    /// credId → credential.
    pub credentials: HashMap<String, Credential>,
    pub permissions: BTreeMap<String, Permission>,
    pub assignments: Vec<Assignment>,
    /// challengeIdentifier → pending challenge.
    pub challenges: HashMap<String, Challenge>,
    /// user-action token → binding.
    pub user_actions: HashMap<String, UserAction>,
    /// Size of challenges + user actions above which expired ones are swept.
    pub auth_prune_mark: usize,
    pub wallets: HashMap<String, Wallet>,
    pub ledger: Ledger,
    pub transfers: HashMap<String, Transfer>,
    /// Transfer `externalId` → transfer id (org-wide, docs/dfns.md U16).
    pub transfer_external_ids: HashMap<String, String>,
    pub lifecycle: Lifecycle,
    pub webhooks: HashMap<String, Webhook>,
    pub webhook_events: HashMap<String, StoredEvent>,
    pub audit: Vec<AuditEntry>,
    /// Data owned by the policy engine (part 2 adds policies and approvals here).
    pub policy: PolicyData,
    pub outbox: Vec<Job>,
}

impl State {
    pub fn new(org_id: String, clock: Arc<Clock>, lifecycle: Lifecycle) -> Self {
        Self {
            org_id,
            clock,
            seq: 0,
            users: BTreeMap::new(),
            tokens: HashMap::new(),
            credentials: HashMap::new(),
            permissions: BTreeMap::new(),
            assignments: Vec::new(),
            challenges: HashMap::new(),
            user_actions: HashMap::new(),
            auth_prune_mark: crate::auth::AUTH_PRUNE_MIN,
            wallets: HashMap::new(),
            ledger: Ledger::default(),
            transfers: HashMap::new(),
            transfer_external_ids: HashMap::new(),
            lifecycle,
            webhooks: HashMap::new(),
            webhook_events: HashMap::new(),
            audit: Vec::new(),
            policy: PolicyData::default(),
            outbox: Vec::new(),
        }
    }

    /// Monotonic creation order used for newest-first listing and pagination cursors.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Publishes a Dfns event (`wallet.transfer.confirmed`, …) with `data` to every enabled
    /// webhook subscribed to it; deliveries start when the lock is released.
    pub fn emit(&mut self, kind: &str, data: Value) {
        crate::webhooks::publish(self, kind, data);
    }
}

/// Shared handle given to every handler and background task.
pub struct App {
    pub state: Mutex<State>,
    pub clock: Arc<Clock>,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub engine: Arc<dyn PolicyEngine>,
    pub faults: Mutex<Vec<FaultRule>>,
    /// What the API faults injected so far.
    pub fault_counts: FaultCounts,
    /// Webhook delivery faults (`None`: deliveries are made as they come).
    pub webhook_faults: Mutex<Option<WebhookFaults>>,
    /// What the webhook delivery faults injected so far.
    pub webhook_fault_counts: WebhookFaultCounts,
    /// The org's request rate limit (off until set) and the requests it counted.
    pub rate_limit: crate::rate_limit::RateLimiter,
    /// Key for the HS256 bearer JWTs and challenge identifiers this emulator issues.
    pub jwt_secret: [u8; 32],
}

pub type SharedApp = Arc<App>;

impl App {
    pub fn new(state: State, settings: Settings, engine: Option<Arc<dyn PolicyEngine>>) -> Self {
        let clock = state.clock.clone();
        let http = reqwest::Client::builder()
            .timeout(settings.webhook_timeout)
            .build()
            .expect("reqwest client builds with rustls");
        let mut jwt_secret = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut jwt_secret);
        Self {
            state: Mutex::new(state),
            clock,
            settings,
            http,
            engine: engine.unwrap_or_else(|| Arc::new(DfnsPolicyEngine)),
            faults: Mutex::new(Vec::new()),
            fault_counts: FaultCounts::default(),
            webhook_faults: Mutex::new(None),
            webhook_fault_counts: WebhookFaultCounts::default(),
            rate_limit: crate::rate_limit::RateLimiter::default(),
            jwt_secret,
        }
    }

    /// Runs `f` under the state lock, then starts the jobs it queued.
    pub fn with_state<R>(self: &Arc<Self>, f: impl FnOnce(&mut State) -> R) -> R {
        let (result, jobs) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let result = f(&mut state);
            (result, std::mem::take(&mut state.outbox))
        };
        for job in jobs {
            self.start(job);
        }
        result
    }

    fn start(self: &Arc<Self>, job: Job) {
        let app = self.clone();
        match job {
            Job::Deliver { event_id } => {
                tokio::spawn(crate::webhooks::deliver(app, event_id));
            }
            Job::DriveTransfer { transfer_id } => {
                tokio::spawn(crate::transfers::drive(app, transfer_id));
            }
        }
    }
}
