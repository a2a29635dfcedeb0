//! Exact US-dollar values for limit checks: `amount / 10^decimals × price`, kept as an integer
//! over a power of ten, so a value is compared with a limit exactly at the boundary (no float
//! rounding), as the emulator does. Prices arrive as JSON numbers (Dfns `quotes.USD`); their
//! shortest text form is parsed as a decimal.

use std::cmp::Ordering;
use std::fmt;

/// `numerator / 10^scale` dollars (never negative).
#[derive(Debug, Clone, Copy)]
pub struct Usd {
    numerator: u128,
    scale: u32,
}

impl PartialEq for Usd {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Usd {}
impl PartialOrd for Usd {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Usd {
    fn cmp(&self, other: &Self) -> Ordering {
        let scale = self.scale.max(other.scale);
        match (self.rescale(scale), other.rescale(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // Overflow at the common scale: compare whole dollars, then fall back to scale.
            _ => self
                .whole_dollars()
                .cmp(&other.whole_dollars())
                .then(self.scale.cmp(&other.scale)),
        }
    }
}

impl Usd {
    pub const ZERO: Usd = Usd {
        numerator: 0,
        scale: 0,
    };

    pub fn whole(dollars: u64) -> Usd {
        Usd {
            numerator: u128::from(dollars),
            scale: 0,
        }
    }

    /// Parses a non-negative decimal (`"3000.00"`, `"1"`, `"0.000125"`, `"1e-5"`, `"2.5E3"`).
    pub fn parse(text: &str) -> Option<Usd> {
        let (mantissa, exponent) = match text.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let numerator: u128 = format!("{int}{frac}").parse().ok()?;
        let scale = i64::try_from(frac.len()).ok()? - i64::from(exponent);
        if scale >= 0 {
            Some(Usd {
                numerator,
                scale: u32::try_from(scale).ok()?,
            })
        } else {
            let factor = 10u128.checked_pow(u32::try_from(-scale).ok()?)?;
            Some(Usd {
                numerator: numerator.checked_mul(factor)?,
                scale: 0,
            })
        }
    }

    /// The unit price in a Dfns `quotes` map (`{"USD": 3020.82}`), if present and sane.
    pub fn price_from_quotes(
        quotes: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Option<Usd> {
        match quotes?.get("USD")? {
            serde_json::Value::Number(n) => Usd::parse(&n.to_string()),
            serde_json::Value::String(s) => Usd::parse(s),
            _ => None,
        }
    }

    /// Value of `amount` smallest units of an asset with `decimals` at `price` per unit.
    pub fn value_of(amount: u128, decimals: u32, price: Usd) -> Option<Usd> {
        Some(Usd {
            numerator: amount.checked_mul(price.numerator)?,
            scale: decimals.checked_add(price.scale)?,
        })
    }

    fn rescale(self, scale: u32) -> Option<u128> {
        self.numerator
            .checked_mul(10u128.checked_pow(scale.checked_sub(self.scale)?)?)
    }

    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        let scale = self.scale.max(other.scale);
        Some(Usd {
            numerator: self.rescale(scale)?.checked_add(other.rescale(scale)?)?,
            scale,
        })
    }

    /// `self − other`, or `None` when `other` is larger (or on overflow).
    pub fn checked_sub(self, other: Usd) -> Option<Usd> {
        let scale = self.scale.max(other.scale);
        Some(Usd {
            numerator: self.rescale(scale)?.checked_sub(other.rescale(scale)?)?,
            scale,
        })
    }

    /// `self − other`, floored at zero.
    pub fn saturating_sub(self, other: Usd) -> Usd {
        self.checked_sub(other).unwrap_or(Usd::ZERO)
    }

    /// Whole dollars, rounded down (Dfns' reason strings: "USD 10000").
    pub fn whole_dollars(self) -> u128 {
        10u128
            .checked_pow(self.scale)
            .map_or(0, |d| self.numerator / d)
    }
}

impl fmt::Display for Usd {
    /// Plain decimal, no exponent, no trailing zeros after the point (`"2.5"`, `"10000"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.numerator.to_string();
        let scale = self.scale as usize;
        let (int, frac) = if digits.len() > scale {
            let (i, fr) = digits.split_at(digits.len() - scale);
            (i.to_owned(), fr.to_owned())
        } else {
            ("0".to_owned(), format!("{digits:0>scale$}"))
        };
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            f.write_str(&int)
        } else {
            write!(f, "{int}.{frac}")
        }
    }
}

impl serde::Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for Usd {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Usd".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?$",
            "description": "US dollars as an exact decimal string"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_decimals_exactly() {
        for (text, printed) in [
            ("3000.00", "3000"),
            ("0.000125", "0.000125"),
            ("1e-5", "0.00001"),
            ("2.5E3", "2500"),
            ("7", "7"),
        ] {
            assert_eq!(Usd::parse(text).unwrap().to_string(), printed, "{text}");
        }
        for bad in ["", "-1", "1.2.3", "abc", ".5"] {
            assert!(Usd::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn values_compare_exactly_at_the_boundary() {
        // 1.666666666666666667 ETH at 3000 USD is 5000.000000000000001 USD: above a 5000 limit.
        let price = Usd::parse("3000").unwrap();
        let just_over = Usd::value_of(1_666_666_666_666_666_667, 18, price).unwrap();
        assert!(just_over > Usd::whole(5000));
        let exact = Usd::value_of(5_000_000, 6, Usd::parse("1.00").unwrap()).unwrap();
        assert_eq!(exact, Usd::whole(5));
        assert_eq!(exact.to_string(), "5");
        assert_eq!(
            Usd::whole(10)
                .saturating_sub(Usd::parse("2.5").unwrap())
                .to_string(),
            "7.5"
        );
        assert_eq!(Usd::whole(1).saturating_sub(Usd::whole(2)), Usd::ZERO);
    }

    #[test]
    fn prices_come_from_the_quotes_map() {
        let quotes = serde_json::json!({"USD": 3020.82});
        assert_eq!(
            Usd::price_from_quotes(quotes.as_object())
                .unwrap()
                .to_string(),
            "3020.82"
        );
        assert!(Usd::price_from_quotes(serde_json::json!({"EUR": 1}).as_object()).is_none());
        assert!(Usd::price_from_quotes(None).is_none());
    }
}
