//! Exact USD valuation for policy rules (amount and velocity limits, part 2): `amount /
//! 10^decimals × price`, kept as an integer over a power of ten so a limit is compared exactly at
//! its boundary (no float rounding). `None` means "not determinable" — callers fail closed.

use std::cmp::Ordering;

/// `numerator / 10^scale` US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usd {
    pub numerator: u128,
    pub scale: u32,
}

/// Parses a non-negative decimal string (`"3000.00"`, `"1"`, `"0.000125"`).
pub fn parse_decimal(s: &str) -> Option<Usd> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int}{frac}");
    Some(Usd {
        numerator: digits.parse().ok()?,
        scale: u32::try_from(frac.len()).ok()?,
    })
}

fn pow10(exp: u32) -> Option<u128> {
    10u128.checked_pow(exp)
}

impl Usd {
    pub const ZERO: Usd = Usd {
        numerator: 0,
        scale: 0,
    };

    /// Value of `amount` minimum units of an asset with `decimals` at unit price `price`.
    pub fn of(amount: u128, decimals: u32, price: &str) -> Option<Usd> {
        let price = parse_decimal(price)?;
        Some(Usd {
            numerator: amount.checked_mul(price.numerator)?,
            scale: decimals.checked_add(price.scale)?,
        })
    }

    /// The same value at a larger scale.
    fn rescale(self, scale: u32) -> Option<u128> {
        self.numerator
            .checked_mul(pow10(scale.checked_sub(self.scale)?)?)
    }

    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        let scale = self.scale.max(other.scale);
        Some(Usd {
            numerator: self.rescale(scale)?.checked_add(other.rescale(scale)?)?,
            scale,
        })
    }

    /// Exact comparison; `None` only if the common scale overflows.
    pub fn compare(self, other: Usd) -> Option<Ordering> {
        let scale = self.scale.max(other.scale);
        Some(self.rescale(scale)?.cmp(&other.rescale(scale)?))
    }

    /// Compares with a JSON number limit (`5000`, `2.5`), as policy configurations carry them.
    pub fn compare_to_limit(self, limit: &serde_json::Number) -> Option<Ordering> {
        // serde_json prints floats in their shortest round-trip form, which parses back exactly.
        let limit = parse_decimal(&limit.to_string())?;
        self.compare(limit)
    }

    /// Whole dollars, rounded down (for reason strings such as "USD 10000").
    pub fn whole_dollars(self) -> u128 {
        pow10(self.scale).map_or(0, |d| self.numerator / d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limit(v: serde_json::Value) -> serde_json::Number {
        match v {
            serde_json::Value::Number(n) => n,
            _ => unreachable!(),
        }
    }

    #[test]
    fn values_compare_exactly_at_the_boundary() {
        // 1.5 ETH at 3000.00 = 4500 USD exactly.
        let v = Usd::of(1_500_000_000_000_000_000, 18, "3000.00").unwrap();
        assert_eq!(
            v.compare_to_limit(&limit(json!(4500))),
            Some(Ordering::Equal)
        );
        assert_eq!(
            v.compare_to_limit(&limit(json!(4499.99))),
            Some(Ordering::Greater)
        );
        assert_eq!(
            v.compare_to_limit(&limit(json!(4500.01))),
            Some(Ordering::Less)
        );
        // One wei more is strictly above the limit.
        let above = Usd::of(1_500_000_000_000_000_001, 18, "3000.00").unwrap();
        assert_eq!(
            above.compare_to_limit(&limit(json!(4500))),
            Some(Ordering::Greater)
        );
        assert_eq!(v.whole_dollars(), 4500);
    }

    #[test]
    fn sums_across_scales() {
        let a = Usd::of(1_000_000, 6, "1.00").unwrap(); // 1 USD
        let b = Usd::of(500_000_000_000_000_000, 18, "3000").unwrap(); // 1500 USD
        let total = a.checked_add(b).unwrap();
        assert_eq!(
            total.compare_to_limit(&limit(json!(1501))),
            Some(Ordering::Equal)
        );
        assert_eq!(Usd::ZERO.checked_add(a), Some(a));
    }

    #[test]
    fn malformed_prices_are_not_determinable() {
        for bad in ["", ".5", "1e3", "-1", "abc", "1.2.3"] {
            assert!(Usd::of(1, 0, bad).is_none(), "{bad:?}");
        }
    }
}
