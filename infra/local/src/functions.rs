//! The functions the stack serves and the scheduled functions it ticks. A new function crate is
//! one line here (and its routes then appear in the gateway and in `/openapi.json`).

use std::time::Duration;

use futures::future::BoxFuture;

use crate::gateway::Function;

/// Every HTTP function, with its `ROUTES` and `handle`.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "signup",
        routes: signup::ROUTES,
        handler: |app, req| Box::pin(async move { signup::handle(&app, req).await }),
    },
    Function {
        name: "destinations",
        routes: destinations::ROUTES,
        handler: |app, req| Box::pin(async move { destinations::handle(&app, req).await }),
    },
    Function {
        name: "reporting",
        routes: reporting::ROUTES,
        handler: |app, req| Box::pin(async move { reporting::handle(&app, req).await }),
    },
    Function {
        name: "trading",
        routes: trading::ROUTES,
        handler: |app, req| Box::pin(async move { trading::handle(&app, req).await }),
    },
    Function {
        name: "operator",
        routes: operator::ROUTES,
        handler: |app, req| Box::pin(async move { operator::handle(&app, req).await }),
    },
    Function {
        name: "dfns-webhook",
        routes: dfns_webhook::ROUTES,
        handler: |app, req| Box::pin(async move { dfns_webhook::handle(&app, req).await }),
    },
];

/// A scheduled function: what an EventBridge schedule invokes.
pub struct Job {
    pub name: &'static str,
    /// Runs once; the report as JSON.
    pub run: fn(platform::App) -> BoxFuture<'static, anyhow::Result<serde_json::Value>>,
}

/// The scheduled functions, in the order one tick runs them.
pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            name: "reconciler",
            run: |app| {
                Box::pin(async move {
                    let report = reconciler::run(&app).await?;
                    Ok(serde_json::to_value(report)?)
                })
            },
        },
        Job {
            name: "order-execution",
            run: |app| {
                Box::pin(async move {
                    let now = time::OffsetDateTime::now_utc();
                    let report = order_execution::run(&app, now).await?;
                    Ok(serde_json::to_value(report)?)
                })
            },
        },
    ]
}

/// Runs every job each `every`, forever. A failing run is logged and retried next tick, as a
/// failed scheduled Lambda would be.
pub async fn run_schedule(app: platform::App, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; the first run waits one period
    loop {
        ticker.tick().await;
        for job in jobs() {
            match (job.run)(app.clone()).await {
                Ok(report) => tracing::debug!(job = job.name, %report, "scheduled run done"),
                Err(error) => {
                    tracing::warn!(job = job.name, error = %error, "scheduled run failed")
                }
            }
        }
    }
}
