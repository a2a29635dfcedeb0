//! `webhook-redrive` CLI: see the library docs.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "webhook-redrive",
    about = "Moves queued Dfns events from the webhook dead-letter queue back to the webhook queue"
)]
struct Args {
    /// The dead-letter queue (the stack's WebhookDeadLetterQueueUrl output).
    #[arg(long)]
    dead_letter_url: String,
    /// The webhook queue (the dfns-webhook function's WEBHOOK_QUEUE_URL).
    #[arg(long)]
    queue_url: String,
    /// Move at most this many.
    #[arg(long)]
    max: Option<usize>,
    /// List them, move nothing.
    #[arg(long)]
    dry_run: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sqs = aws_sdk_sqs::Client::new(platform_config::aws::sdk_config().await);
    let done = webhook_redrive::redrive(
        &sqs,
        &args.dead_letter_url,
        &args.queue_url,
        args.max,
        args.dry_run,
    )
    .await?;
    for (group, id) in &done.messages {
        println!(
            "{} {id} ({group})",
            if args.dry_run { "found" } else { "moved" }
        );
    }
    println!(
        "{} message(s) {}",
        done.messages.len(),
        if args.dry_run {
            "in the dead-letter queue (dry run: nothing moved)"
        } else {
            "moved back"
        }
    );
    Ok(())
}
