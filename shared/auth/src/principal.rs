use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A client of the platform, acting on their own account only.
    Client,
    /// A trading-desk operator.
    Operator,
}

/// The verified caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// The token's `sub`: the client id for a client.
    pub subject: String,
    /// Client or operator, from the configured role claim.
    pub role: Role,
}

impl Principal {
    /// True for a trading-desk operator.
    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }
}

/// Operator when the role claim holds `operator_role`: as an array element (Cognito groups,
/// Auth0 roles), as the whole string, or as one word of a space-separated string.
pub(crate) fn role_from_claim(claim: Option<&Value>, operator_role: &str) -> Role {
    let holds = match claim {
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(operator_role)),
        Some(Value::String(s)) => string_holds_role(s, operator_role),
        _ => false,
    };
    if holds { Role::Operator } else { Role::Client }
}

/// API Gateway flattens array claims to strings like `[operators admins]`; plain strings may be a
/// single role or a space-separated list.
pub(crate) fn string_holds_role(value: &str, operator_role: &str) -> bool {
    let inner = value
        .trim()
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    inner == operator_role
        || inner
            .split(|c: char| c.is_whitespace() || c == ',')
            .any(|part| part.trim_matches('"') == operator_role)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operator_role_found_in_each_claim_shape() {
        for claim in [
            json!(["traders", "operators"]),
            json!("operators"),
            json!("traders operators"),
            json!("[traders operators]"),
        ] {
            assert_eq!(
                role_from_claim(Some(&claim), "operators"),
                Role::Operator,
                "{claim}"
            );
        }
    }

    #[test]
    fn anything_else_is_a_client() {
        for claim in [
            json!(["operatorsX"]),
            json!("op"),
            json!(1),
            json!(null),
            json!(["[operators"]),
        ] {
            assert_eq!(
                role_from_claim(Some(&claim), "operators"),
                Role::Client,
                "{claim}"
            );
        }
        assert_eq!(role_from_claim(None, "operators"), Role::Client);
    }
}
