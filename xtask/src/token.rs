//! `cargo xtask token --sub alice [--role operator]`: a bearer token for the running local stack,
//! signed with the issuer key `cargo xtask dev` keeps in `.tools/local-stack/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use auth::dev_issuer::{DevIssuer, TokenSpec};
use local_stack::StackInfo;

/// Where `cargo xtask dev` writes what another process needs to mint tokens.
pub fn state_dir(repo_root: &Path) -> PathBuf {
    repo_root.join(".tools/local-stack")
}

pub fn info_file(repo_root: &Path) -> PathBuf {
    state_dir(repo_root).join("stack.json")
}

pub fn issuer_key_file(repo_root: &Path) -> PathBuf {
    state_dir(repo_root).join("issuer.pem")
}

/// Who the token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Client,
    Operator,
}

/// A token for `subject` from the stack described in `info`, valid `minutes`.
pub fn mint(
    info: &StackInfo,
    key_pem: &str,
    subject: &str,
    role: Role,
    minutes: i64,
) -> Result<String> {
    let issuer = DevIssuer::from_private_key_pem(info.issuer.clone(), key_pem)
        .context("loading the local issuer key")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs() as i64;
    let mut spec = TokenSpec::oidc(subject, info.audience.clone(), info.role_claim.clone())
        .issued_at(now)
        .expires_at(now + minutes * 60);
    if role == Role::Operator {
        spec = spec.role(info.operator_role.clone());
    }
    Ok(issuer.mint(&spec)?)
}

pub fn run(repo_root: &Path, subject: &str, role: Role, minutes: i64) -> Result<()> {
    let path = info_file(repo_root);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no local stack described at {} (start one with `cargo xtask dev`)",
            path.display()
        )
    })?;
    let info: StackInfo =
        serde_json::from_str(&text).context("reading the local stack's description")?;
    let key_file = info
        .issuer_key_file
        .clone()
        .unwrap_or_else(|| issuer_key_file(repo_root));
    let key = std::fs::read_to_string(&key_file)
        .with_context(|| format!("reading the issuer key {}", key_file.display()))?;
    println!("{}", mint(&info, &key, subject, role, minutes)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_carry_the_stack_issuer_audience_and_role() {
        let issuer = DevIssuer::generate(
            "http://127.0.0.1:4010",
            auth::dev_issuer::SigningAlgorithm::Es256,
        )
        .unwrap();
        let info = StackInfo {
            base_url: "http://127.0.0.1:4010".into(),
            issuer: "http://127.0.0.1:4010".into(),
            audience: "platform-api".into(),
            role_claim: "roles".into(),
            operator_role: "operators".into(),
            issuer_key_file: None,
        };
        let token = mint(&info, issuer.private_key_pem(), "alice", Role::Operator, 5).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["iss"], "http://127.0.0.1:4010");
        assert_eq!(claims["aud"], "platform-api");
        assert_eq!(claims["roles"], serde_json::json!(["operators"]));
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            300
        );
        let client = mint(&info, issuer.private_key_pem(), "bob", Role::Client, 60).unwrap();
        assert_ne!(client, token);
    }
}
