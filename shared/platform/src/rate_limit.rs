//! A client's rate of changes: every mutating client route (signup, destination requests, trading
//! authorizations) counts the call against `CLIENT_MUTATIONS_PER_MINUTE`, so one client cannot
//! spend the organisation's Dfns budget or the officers' attention for the others.

use domain::ClientId;
use time::OffsetDateTime;

use crate::App;
use crate::error::{PlatformError, Result};

/// `code` of the 429 of the per-minute rate.
pub const RATE_CODE: &str = "rate_limited";

/// The OpenAPI description of a route's 429 when only the rate applies.
pub const RATE_LIMITED_429: &str = "too many requests: the caller made its changes for this \
     minute (`rate_limited`); nothing was changed; retry after `Retry-After` seconds (an upstream \
     throttling: `throttled`, without it)";

/// Counts one mutating call of `client` against `CLIENT_MUTATIONS_PER_MINUTE` (a fixed window
/// per clock minute, one conditional write): 429 with `Retry-After` (the seconds left in the
/// minute) once the minute's calls are spent. The HTTP handlers of mutating client routes call
/// it after validating the input (a malformed call is refused as such, uncounted).
pub async fn admit_mutation(app: &App, client: &ClientId) -> Result<()> {
    let Some(per_minute) = app.settings().client_mutations_per_minute else {
        return Ok(());
    };
    match app
        .store()
        .count_client_call(client, OffsetDateTime::now_utc(), per_minute)
        .await?
    {
        store::open_requests::RateWindow::Admitted { .. } => Ok(()),
        store::open_requests::RateWindow::Refused {
            retry_after_seconds,
        } => Err(PlatformError::TooManyRequests {
            code: RATE_CODE,
            message: format!(
                "at most {per_minute} changes a minute; retry after {retry_after_seconds} s"
            ),
            retry_after_seconds,
        }),
    }
}
