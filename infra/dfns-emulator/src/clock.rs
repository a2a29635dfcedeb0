//! The emulated clock: wall time plus an offset that tests move forward through the control API.
//! Every timestamp the emulator writes, challenge and user-action expiry, and (part 2) velocity
//! windows and approval expiry read this clock, so a test can jump an hour without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock forward; the clock never goes back.
    pub fn advance(&self, seconds: u64) -> OffsetDateTime {
        let ms = i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
        self.now()
    }
}

/// ISO-8601 UTC with milliseconds, as Dfns writes dates: `2023-12-22T20:56:16.662Z`.
pub fn iso(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("a UTC date always formats")
}

pub fn parse_iso(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_has_millisecond_precision_and_z_suffix() {
        let t = OffsetDateTime::from_unix_timestamp(1_701_684_144).unwrap();
        assert_eq!(iso(t), "2023-12-04T10:02:24.000Z");
        let t = t + time::Duration::milliseconds(280);
        assert_eq!(iso(t), "2023-12-04T10:02:24.280Z");
    }

    #[test]
    fn advancing_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now();
        let after = clock.advance(3600);
        assert!(after - before >= time::Duration::seconds(3600));
    }
}
