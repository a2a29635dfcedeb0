//! `bootstrap` CLI: see the library docs. Exit status 0 on success (also when nothing had to
//! change), 1 on any failure, 2 when a least-privilege check refused (nothing was changed): the
//! signing service account could approve, unbind or override the rules, or the read-only service
//! account is not read-only.

use std::process::ExitCode;

use bootstrap::{BootstrapError, DEFAULT_POLICY_NAME, JsonSecretStore, Plan};
use clap::Parser;
use platform_config::{
    DFNS_READ_SECRET_ID, DFNS_SIGNING_SECRET_ID, DFNS_WEBHOOK_SECRET_ID, SigningCredential,
};

#[derive(Parser)]
#[command(
    name = "bootstrap",
    about = "One-time, idempotent Dfns organisation setup for the platform"
)]
struct Args {
    /// Name or ARN of the signing secret (the signing service account's token and key): bootstrap
    /// acts at Dfns with it, and never writes it.
    #[arg(long, env = DFNS_SIGNING_SECRET_ID)]
    signing_secret_id: String,
    /// Name or ARN of the read-only secret (the read-only service account's token): checked by
    /// the first-time setup, never written. Not needed by --rotate-webhook/--promote-webhook.
    #[arg(
        long,
        env = DFNS_READ_SECRET_ID,
        required_unless_present_any = ["rotate_webhook", "promote_webhook"]
    )]
    read_secret_id: Option<String>,
    /// Name or ARN of the webhook secret: where bootstrap stores the webhook's secret (and,
    /// during a rotation, the next one).
    #[arg(long, env = DFNS_WEBHOOK_SECRET_ID)]
    webhook_secret_id: String,
    /// The deployed webhook endpoint (the stack's WebhookUrl output).
    #[arg(long)]
    webhook_url: String,
    /// Dfns user ids of the compliance officers (repeat, or comma separated).
    #[arg(
        long = "officer",
        env = "COMPLIANCE_APPROVERS",
        value_delimiter = ',',
        required_unless_present_any = ["rotate_webhook", "promote_webhook"]
    )]
    officers: Vec<String>,
    /// Officer decisions an approval needs.
    #[arg(long, env = "COMPLIANCE_QUORUM", default_value_t = 1)]
    quorum: u32,
    /// Approvals expire after this many minutes (default 72 hours, as the platform's own
    /// policies; 0: never).
    #[arg(long, env = "COMPLIANCE_AUTO_REJECT_MINUTES", default_value_t = 4320)]
    auto_reject_minutes: u32,
    /// Name of the Policies:Modify policy (how later runs find it).
    #[arg(long, default_value = DEFAULT_POLICY_NAME)]
    policy_name: String,
    #[arg(long, env = "DFNS_BASE_URL", default_value = dfns_client::DEFAULT_BASE_URL)]
    dfns_base_url: String,
    /// Read everything, change nothing, print what would be done.
    #[arg(long)]
    dry_run: bool,
    /// Webhook-secret rotation, phase 1 (only this): a second webhook to --webhook-url, its
    /// secret stored as dfnsWebhookSecretNext. Then, after SECRET_REFRESH_SECONDS,
    /// --promote-webhook.
    #[arg(long, conflicts_with = "promote_webhook")]
    rotate_webhook: bool,
    /// Webhook-secret rotation, phase 2 (only this): delete the old webhook, make the next
    /// secret dfnsWebhookSecret. Refused until SECRET_REFRESH_SECONDS after phase 1.
    #[arg(long)]
    promote_webhook: bool,
    /// The functions' SECRET_REFRESH_SECONDS (how long --promote-webhook waits after phase 1).
    #[arg(long, env = "SECRET_REFRESH_SECONDS", default_value_t = 300)]
    secret_refresh_seconds: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.refusal() {
            Some((what, findings)) => {
                eprintln!("bootstrap: refusing to continue, nothing changed: {what}:");
                for finding in findings {
                    eprintln!("  - {finding}");
                }
                ExitCode::from(2)
            }
            None => {
                eprintln!("bootstrap: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run(args: Args) -> Result<(), BootstrapError> {
    let client = platform_config::aws::secrets_manager_client().await;
    let store = |secret_id: &str| JsonSecretStore {
        client: client.clone(),
        secret_id: secret_id.to_owned(),
    };
    let signing: SigningCredential = store(&args.signing_secret_id).read_as().await?;
    let dfns = bootstrap::signing_client(&signing, &args.dfns_base_url)?;
    let secret = store(&args.webhook_secret_id);
    if args.rotate_webhook || args.promote_webhook {
        let report = if args.rotate_webhook {
            bootstrap::rotate_webhook(&dfns, &secret, &args.webhook_url, args.dry_run).await?
        } else {
            bootstrap::promote_webhook(
                &dfns,
                &secret,
                &args.webhook_url,
                std::time::Duration::from_secs(args.secret_refresh_seconds),
                args.dry_run,
            )
            .await?
        };
        print_report(&report, args.dry_run);
        if args.rotate_webhook && !args.dry_run {
            println!(
                "functions accept deliveries signed under either secret once they re-read the \
                 webhook secret (within SECRET_REFRESH_SECONDS, {}s); after that, run bootstrap \
                 --promote-webhook with the same --signing-secret-id, --webhook-secret-id and \
                 --webhook-url",
                args.secret_refresh_seconds
            );
        }
        return Ok(());
    }
    let read_only = store(args.read_secret_id.as_deref().ok_or_else(|| {
        BootstrapError::Invalid("--read-secret-id (DFNS_READ_SECRET_ID) is required".into())
    })?);
    let plan = Plan {
        officers: args
            .officers
            .iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect(),
        quorum: args.quorum,
        auto_reject_minutes: (args.auto_reject_minutes != 0).then_some(args.auto_reject_minutes),
        policy_name: args.policy_name,
        webhook_url: args.webhook_url,
        dry_run: args.dry_run,
    };
    let report = bootstrap::run(
        &dfns,
        &args.dfns_base_url,
        &signing,
        &read_only,
        &secret,
        &plan,
    )
    .await?;
    print_report(&report, plan.dry_run);
    Ok(())
}

fn print_report(report: &bootstrap::Report, dry_run: bool) {
    for step in &report.steps {
        let mark = match (step.changed, dry_run) {
            (false, _) => "ok     ",
            (true, false) => "changed",
            (true, true) => "dry-run",
        };
        println!("{mark} {}", step.what);
    }
    let changes = report.changes().len();
    println!(
        "{}",
        match (changes, dry_run) {
            (0, _) => "nothing to change".to_owned(),
            (n, true) => format!("{n} change(s) would be made (dry run: nothing changed)"),
            (n, false) => format!("{n} change(s) made"),
        }
    );
}
