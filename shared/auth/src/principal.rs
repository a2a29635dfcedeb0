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

/// Operator when the role claim holds `operator_role` as a whole value: an element of an array
/// (Cognito groups, Auth0 roles) or the whole string. Never a word or a part of a string: a role
/// claim the user can edit (a custom attribute) must not grant `operators` by containing it.
pub(crate) fn role_from_claim(claim: Option<&Value>, operator_role: &str) -> Role {
    let holds = match claim {
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(operator_role)),
        Some(Value::String(s)) => s == operator_role,
        _ => false,
    };
    if holds { Role::Operator } else { Role::Client }
}

/// The same rule for a claim API Gateway's JWT authorizer passed on: it flattens an array to
/// `[a b]` (elements joined by one space; Cognito group names cannot contain whitespace), and
/// passes a string as is.
pub(crate) fn gateway_claim_holds_role(value: &str, operator_role: &str) -> bool {
    match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        Some(items) => items.split(' ').any(|item| item == operator_role),
        None => value == operator_role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operator_role_is_a_whole_element_or_the_whole_string() {
        for claim in [
            json!(["operators"]),
            json!(["traders", "operators"]),
            json!("operators"),
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
            json!("not-operators"),
            json!("operators-x"),
            json!("clients operators"),
            json!("clients,operators"),
            json!("[traders operators]"),
            json!(" operators"),
            json!("Operators"),
            json!(["operatorsx"]),
            json!(["operatorsX"]),
            json!(["clients operators"]),
            json!(["[operators"]),
            json!([["operators"]]),
            json!([{"a": "operators"}]),
            json!({"a": "operators"}),
            json!([]),
            json!(""),
            json!("op"),
            json!(1),
            json!(true),
            json!(null),
        ] {
            assert_eq!(
                role_from_claim(Some(&claim), "operators"),
                Role::Client,
                "{claim}"
            );
        }
        assert_eq!(role_from_claim(None, "operators"), Role::Client);
    }

    #[test]
    fn gateway_flattened_claims_match_whole_elements_only() {
        for value in ["[operators]", "[traders operators]", "operators"] {
            assert!(gateway_claim_holds_role(value, "operators"), "{value}");
        }
        for value in [
            "[traders]",
            "[operatorsx]",
            "[not-operators]",
            "[traders,operators]",
            "[\"operators\"]",
            "[[operators]]",
            "[]",
            "clients operators",
            "not-operators",
            "operators-x",
            "operators]",
            "[operators",
            "",
        ] {
            assert!(!gateway_claim_holds_role(value, "operators"), "{value}");
        }
    }
}
