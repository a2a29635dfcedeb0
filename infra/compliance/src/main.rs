//! `compliance` CLI: list pending approvals, approve or deny them with the officer's own key.
//!
//! Credentials: `--credentials-file` (JSON `{"token","credId","privateKeyPem"}`) or
//! `DFNS_OFFICER_TOKEN` + `DFNS_OFFICER_CREDENTIAL_ID` + `DFNS_OFFICER_PRIVATE_KEY_PEM` (or
//! `--private-key-file`). Service-account credentials are refused.
//!
//! The platform's context (`pending`, `show`) is read from its DynamoDB table (`--table-name` /
//! `TABLE_NAME`; AWS credentials from the usual chain, reads only).

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
    /// The platform's DynamoDB table, for the platform's side of each approval (without it,
    /// `pending` shows Dfns' side only and `show` refuses).
    #[arg(long, env = "TABLE_NAME")]
    table_name: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pending approvals: Dfns' side (client, what is asked, which policy asks) and the
    /// platform's (request, order or withdrawal; who asked and when; label; exact change or
    /// amount in the asset and USD; waited and expiry).
    Pending {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One approval in full, with the client's recent activity with that destination.
    Show {
        approval_id: String,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
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

fn to_json(value: &impl serde::Serialize) -> Result<String, ComplianceError> {
    serde_json::to_string_pretty(value).map_err(|e| ComplianceError::Platform(format!("JSON: {e}")))
}

async fn run(args: Args) -> Result<(), ComplianceError> {
    let officer = Officer::new(
        &args.dfns_base_url,
        &credentials(&args)?,
        args.service_account_user_id.as_deref(),
    )?;
    let store = match &args.table_name {
        Some(table) => Some(store::Store::new(
            platform_config::aws::dynamodb_client().await,
            table.clone(),
        )),
        None => None,
    };
    let now = time::OffsetDateTime::now_utc();
    match &args.command {
        Command::Pending { json } => match &store {
            Some(store) => {
                let listed = compliance::pending_in_context(&officer.dfns, store, now).await?;
                if *json {
                    println!("{}", to_json(&listed)?);
                } else {
                    if listed.is_empty() {
                        println!("no pending approvals");
                    }
                    for entry in listed {
                        println!("{entry}\n");
                    }
                }
            }
            None => {
                let views = compliance::pending(&officer.dfns).await?;
                if *json {
                    println!("{}", to_json(&views)?);
                } else {
                    if views.is_empty() {
                        println!("no pending approvals");
                    }
                    for view in views {
                        println!("{view}\n");
                    }
                }
            }
        },
        Command::Show { approval_id, json } => {
            let store = store.as_ref().ok_or_else(|| {
                ComplianceError::Platform(
                    "`show` needs the platform's table: --table-name or TABLE_NAME".into(),
                )
            })?;
            let shown = compliance::show(
                &officer.dfns,
                store,
                &ApprovalId::new(approval_id.as_str()),
                now,
            )
            .await?;
            if *json {
                println!("{}", to_json(&shown)?);
            } else {
                println!("{shown}");
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
