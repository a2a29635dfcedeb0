//! Appending several facts to one client's audit chain at once (the webhook consumer's batch).

use domain::{AuditEvent, ClientId};

use crate::{Store, StoreError};

impl Store {
    /// Appends each `(event, once_key)` to `client`'s chain unless its once-key was appended
    /// before (see [`Store::append_audit_event_once`]), in order. Returns how many it appended.
    pub async fn append_audit_events_once(
        &self,
        client: &ClientId,
        lines: &[(AuditEvent, String)],
    ) -> Result<usize, StoreError> {
        let mut appended = 0;
        for (event, once_key) in lines {
            debug_assert_eq!(&event.client_id, client);
            if self.append_audit_event_once(event, once_key).await?.is_some() {
                appended += 1;
            }
        }
        Ok(appended)
    }
}
