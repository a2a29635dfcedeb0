//! Appending several facts to one client's audit chain at once (the webhook consumer's batch).

use domain::{AuditEvent, ClientId};

use crate::{Store, StoreError};

impl Store {
    /// Appends each `(event, once_key)` to `client`'s chain unless its once-key was appended
    /// before (see [`Store::append_audit_event_once`]), in order, a chunk per transaction.
    /// Returns how many it appended.
    pub async fn append_audit_events_once(
        &self,
        client: &ClientId,
        lines: &[(AuditEvent, String)],
    ) -> Result<usize, StoreError> {
        if lines.iter().any(|(event, _)| &event.client_id != client) {
            return Err(StoreError::Corrupt {
                entity: "audit chain",
                key: client.to_string(),
                reason: "a batch holds another client's event".into(),
            });
        }
        self.append_once_batch(client, lines).await
    }
}
