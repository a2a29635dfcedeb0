//! `compliance` CLI: list pending approvals, approve or deny them with the officer's own key.
//!
//! Credentials: `--credentials-file` (JSON `{"token","credId","privateKeyPem"}`) or
//! `DFNS_OFFICER_TOKEN` + `DFNS_OFFICER_CREDENTIAL_ID` + `DFNS_OFFICER_PRIVATE_KEY_PEM` (or
//! `--private-key-file`). Service-account credentials are refused.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use compliance::{ComplianceError, Officer, OfficerCredentials};
use dfns_client::{ApprovalId, DecisionValue, SecretString};

#[derive(Parser)]
#[command(
    name = "compliance",
    about = "Decide pending Dfns approvals as a compliance officer"
)]
struct Args {
    #[arg(long, env = "DFNS_BASE_URL", default_value = dfns_client::DEFAULT_BASE_URL)]
    dfns_base_url: String,
    /// JSON file with the officer's token, credId and privateKeyPem.
    #[arg(long, env = "DFNS_OFFICER_CREDENTIALS_FILE")]
    credentials_file: Option<std::path::PathBuf>,
    #[arg(long, env = "DFNS_OFFICER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long, env = "DFNS_OFFICER_CREDENTIAL_ID")]
    credential_id: Option<String>,
    #[arg(long, env = "DFNS_OFFICER_PRIVATE_KEY_PEM", hide_env_values = true)]
    private_key_pem: Option<String>,
    /// File holding the officer's private key (PKCS#8 PEM), instead of the variable.
    #[arg(long)]
    private_key_file: Option<std::path::PathBuf>,
    /// The platform's service-account user id: credentials for it are refused.
    #[arg(long, env = "DFNS_SERVICE_ACCOUNT_USER_ID")]
    service_account_user_id: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pending approvals with client, what is asked and which policy asks.
    Pending,
    /// Approve one approval.
    Approve {
        approval_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny one approval (a reason is required, it is shown to the requester).
    Deny {
        approval_id: String,
        #[arg(long)]
        reason: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compliance: {error}");
            ExitCode::FAILURE
        }
    }
}

fn credentials(args: &Args) -> Result<OfficerCredentials, ComplianceError> {
    if let Some(path) = &args.credentials_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ComplianceError::Credentials(format!("reading {}: {e}", path.display()))
        })?;
        return OfficerCredentials::from_json(&text);
    }
    let missing = |what: &str| ComplianceError::Credentials(format!("no officer {what} given"));
    let pem = match (&args.private_key_pem, &args.private_key_file) {
        (Some(pem), _) => pem.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
            ComplianceError::Credentials(format!("reading {}: {e}", path.display()))
        })?,
        (None, None) => return Err(missing("private key")),
    };
    Ok(OfficerCredentials {
        token: SecretString::from(args.token.clone().ok_or_else(|| missing("token"))?),
        cred_id: SecretString::from(
            args.credential_id
                .clone()
                .ok_or_else(|| missing("credential id"))?,
        ),
        private_key_pem: SecretString::from(pem),
    })
}

async fn run(args: Args) -> Result<(), ComplianceError> {
    let officer = Officer::new(
        &args.dfns_base_url,
        &credentials(&args)?,
        args.service_account_user_id.as_deref(),
    )?;
    match &args.command {
        Command::Pending => {
            let views = compliance::pending(&officer.dfns).await?;
            if views.is_empty() {
                println!("no pending approvals");
            }
            for view in views {
                println!("{view}\n");
            }
        }
        Command::Approve {
            approval_id,
            reason,
        } => {
            let approval = compliance::decide(
                &officer,
                &ApprovalId::new(approval_id.as_str()),
                DecisionValue::Approved,
                reason.as_deref(),
            )
            .await?;
            println!("{}: {} (you approved)", approval.id, approval.status);
        }
        Command::Deny {
            approval_id,
            reason,
        } => {
            let approval = compliance::decide(
                &officer,
                &ApprovalId::new(approval_id.as_str()),
                DecisionValue::Denied,
                Some(reason),
            )
            .await?;
            println!("{}: {} (you denied)", approval.id, approval.status);
        }
    }
    Ok(())
}
