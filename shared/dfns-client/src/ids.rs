//! Newtype ids, so a wallet id cannot be passed where a policy id is expected.

id_type!(
    /// `wa-…`
    WalletId
);
id_type!(
    /// `xfr-…`
    TransferId
);
id_type!(
    /// `plc-…`
    PolicyId
);
id_type!(
    /// `ap-…`
    ApprovalId
);
id_type!(
    /// `cr-…`
    ChangeRequestId
);
id_type!(
    /// `wh-…`
    WebhookId
);
id_type!(
    /// `whe-…` (one per delivery attempt)
    WebhookEventId
);
id_type!(
    /// `us-…` (users and service accounts)
    UserId
);
id_type!(
    /// Audit-log entry id (`uj-…`)
    AuditLogId
);
id_type!(
    /// Caller-chosen idempotency key of a transfer (docs/dfns.md §8.5). Reuse it for every retry
    /// of the same transfer; use a new one (e.g. `order-123#2`) to try a failed transfer again.
    ExternalId
);
