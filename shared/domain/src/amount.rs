//! Token amounts in the asset's smallest unit (wei, satoshi, …).
//!
//! JSON carries them as decimal strings (`"1000000000000000000"`) because JSON numbers become
//! floats in most consumers. Only the canonical form is accepted: ASCII digits, no sign, no
//! whitespace, no fraction or exponent, and **no leading zeros** (except `"0"` itself). Rejecting
//! leading zeros makes the text form unique, so a parsed amount prints back to exactly the string
//! that was parsed, and nothing can read `"010"` as octal or as a different value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid amount. One variant per class of mistake, so an API can tell the
/// caller precisely what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount must not carry a sign")]
    Sign,
    #[error("amount must not contain whitespace")]
    Whitespace,
    #[error("amount must be an integer in the smallest unit, without a decimal point")]
    Decimal,
    #[error("amount must not use exponent notation")]
    Exponent,
    #[error("amount must not have leading zeros")]
    LeadingZero,
    #[error("amount contains a character that is not a decimal digit at position {position}")]
    InvalidCharacter { position: usize },
    #[error("amount exceeds the largest supported value (2^128 - 1)")]
    Overflow,
}

/// A non-negative integer amount in an asset's smallest unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u128);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(u128::MAX);

    pub const fn new(smallest_units: u128) -> Self {
        Self(smallest_units)
    }

    pub const fn get(self) -> u128 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Parses the canonical decimal string form.
    pub fn parse(raw: &str) -> Result<Self, AmountError> {
        if raw.is_empty() {
            return Err(AmountError::Empty);
        }
        // Classify the first offending character so the error names the mistake, not just "bad".
        if let Some((position, c)) = raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(match c {
                c if c.is_whitespace() => AmountError::Whitespace,
                '-' if position == 0 => AmountError::Negative,
                '+' | '-' if position == 0 => AmountError::Sign,
                '.' | ',' => AmountError::Decimal,
                'e' | 'E' if position > 0 => AmountError::Exponent,
                _ => AmountError::InvalidCharacter { position },
            });
        }
        if raw.len() > 1 && raw.starts_with('0') {
            return Err(AmountError::LeadingZero);
        }
        raw.parse::<u128>()
            .map(Amount)
            .map_err(|_| AmountError::Overflow)
    }
}

impl From<u128> for Amount {
    fn from(value: u128) -> Self {
        Self(value)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, AmountError> {
        Self::parse(s)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    /// Only a JSON string is accepted: a JSON number may already have been rounded by a float.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer amount as a decimal string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Amount, E> {
                Amount::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_canonical_integers() {
        assert_eq!(Amount::parse("0"), Ok(Amount::ZERO));
        assert_eq!(Amount::parse("1"), Ok(Amount::new(1)));
        assert_eq!(
            Amount::parse("1000000000000000000"),
            Ok(Amount::new(10u128.pow(18)))
        );
        assert_eq!(Amount::parse(&u128::MAX.to_string()), Ok(Amount::MAX));
    }

    #[test]
    fn each_rejection_class() {
        let cases: &[(&str, AmountError)] = &[
            ("", AmountError::Empty),
            ("-1", AmountError::Negative),
            ("-0", AmountError::Negative),
            ("+1", AmountError::Sign),
            ("1-", AmountError::InvalidCharacter { position: 1 }),
            (" 1", AmountError::Whitespace),
            ("1 ", AmountError::Whitespace),
            ("1\n", AmountError::Whitespace),
            ("1 000", AmountError::Whitespace),
            ("1.5", AmountError::Decimal),
            ("1.0", AmountError::Decimal),
            (".5", AmountError::Decimal),
            ("1,000", AmountError::Decimal),
            ("1e18", AmountError::Exponent),
            ("1E18", AmountError::Exponent),
            ("e18", AmountError::InvalidCharacter { position: 0 }),
            ("007", AmountError::LeadingZero),
            ("00", AmountError::LeadingZero),
            ("0x10", AmountError::InvalidCharacter { position: 1 }),
            ("abc", AmountError::InvalidCharacter { position: 0 }),
            ("12abc", AmountError::InvalidCharacter { position: 2 }),
            ("NaN", AmountError::InvalidCharacter { position: 0 }),
            ("١٢", AmountError::InvalidCharacter { position: 0 }),
            (
                "340282366920938463463374607431768211456",
                AmountError::Overflow,
            ),
            ("9".repeat(60).leak(), AmountError::Overflow),
        ];
        for (raw, expected) in cases {
            assert_eq!(Amount::parse(raw).as_ref(), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn json_is_a_string_and_numbers_are_refused() {
        let amount = Amount::new(1_500_000);
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"1500000\"");
        assert_eq!(
            serde_json::from_str::<Amount>("\"1500000\"").unwrap(),
            amount
        );
        assert!(serde_json::from_str::<Amount>("1500000").is_err());
        assert!(serde_json::from_str::<Amount>("1.5").is_err());
        assert!(serde_json::from_str::<Amount>("\"1.5\"").is_err());
        assert!(serde_json::from_str::<Amount>("null").is_err());
    }

    #[test]
    fn checked_arithmetic() {
        assert_eq!(Amount::MAX.checked_add(Amount::new(1)), None);
        assert_eq!(Amount::ZERO.checked_sub(Amount::new(1)), None);
        assert_eq!(
            Amount::new(5).checked_sub(Amount::new(3)),
            Some(Amount::new(2))
        );
    }

    proptest! {
        #[test]
        fn every_u128_round_trips_through_text_and_json(n in any::<u128>()) {
            let text = n.to_string();
            let amount = Amount::parse(&text).unwrap();
            prop_assert_eq!(amount.get(), n);
            prop_assert_eq!(amount.to_string(), text.clone());
            let json = serde_json::to_string(&amount).unwrap();
            prop_assert_eq!(&json, &format!("\"{text}\""));
            prop_assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), amount);
        }

        #[test]
        fn anything_beyond_u128_overflows(extra_digits in "[0-9]{1,20}", lead in 1u8..=9) {
            // u128::MAX has 39 digits; a 40+ digit number without leading zero always overflows.
            let raw = format!("{lead}{}{extra_digits}", "0".repeat(38));
            prop_assert_eq!(Amount::parse(&raw), Err(AmountError::Overflow));
        }

        #[test]
        fn signs_are_rejected(n in any::<u128>()) {
            prop_assert_eq!(Amount::parse(&format!("-{n}")), Err(AmountError::Negative));
            prop_assert_eq!(Amount::parse(&format!("+{n}")), Err(AmountError::Sign));
        }

        #[test]
        fn whitespace_anywhere_is_rejected(n in any::<u64>(), ws in "[ \t\r\n\u{a0}\u{2003}]", at_end in any::<bool>()) {
            let raw = if at_end { format!("{n}{ws}") } else { format!("{ws}{n}") };
            prop_assert_eq!(Amount::parse(&raw), Err(AmountError::Whitespace));
        }

        #[test]
        fn fractions_and_exponents_are_rejected(a in 1u64.., b in any::<u32>()) {
            prop_assert_eq!(Amount::parse(&format!("{a}.{b}")), Err(AmountError::Decimal));
            prop_assert_eq!(Amount::parse(&format!("{a}e{b}")), Err(AmountError::Exponent));
            prop_assert_eq!(Amount::parse(&format!("{a}E-{b}")), Err(AmountError::Exponent));
        }

        #[test]
        fn leading_zeros_are_rejected(n in any::<u128>(), zeros in 1usize..5) {
            let raw = format!("{}{n}", "0".repeat(zeros));
            prop_assert_eq!(Amount::parse(&raw), Err(AmountError::LeadingZero));
        }

        #[test]
        fn leading_garbage_is_rejected(garbage in "[a-zA-Z_$#@!?]{1,4}", n in any::<u64>()) {
            let raw = format!("{garbage}{n}");
            prop_assert!(Amount::parse(&raw).is_err());
        }

        #[test]
        fn arbitrary_strings_parse_only_when_canonical(raw in "\\PC{0,45}") {
            let canonical = !raw.is_empty()
                && raw.bytes().all(|b| b.is_ascii_digit())
                && (raw == "0" || !raw.starts_with('0'))
                && raw.parse::<u128>().is_ok();
            prop_assert_eq!(Amount::parse(&raw).is_ok(), canonical);
        }
    }
}
