//! The functions the stack serves and the scheduled functions it ticks. A new function crate is
//! one entry here (and its routes then appear in the stack and in `/openapi.json`).

use std::time::Duration;

use futures::future::BoxFuture;
use platform::http::FunctionRouter;

/// One HTTP function: its name (the Lambda's) and its router.
#[derive(Clone, Copy)]
pub struct Function {
    pub name: &'static str,
    pub router: fn() -> FunctionRouter,
}

/// Every HTTP function, with the `router` its Lambda `main` serves.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "signup",
        router: signup::router,
    },
    Function {
        name: "destinations",
        router: destinations::router,
    },
    Function {
        name: "reporting",
        router: reporting::router,
    },
    Function {
        name: "trading",
        router: trading::router,
    },
    Function {
        name: "operator",
        router: operator::router,
    },
    Function {
        name: "dfns-webhook",
        router: dfns_webhook::router,
    },
];

/// Every function's routes in one router. axum refuses (panics on) a route served twice, so two
/// functions claiming one route stop the stack at startup.
pub fn merged() -> FunctionRouter {
    FUNCTIONS
        .iter()
        .fold(platform::http::documented(), |all, function| {
            all.merge((function.router)())
        })
}

/// Every route with the function serving it.
pub fn routes() -> Vec<(String, String, &'static str)> {
    FUNCTIONS
        .iter()
        .flat_map(|function| {
            platform::http::routes_of((function.router)())
                .into_iter()
                .map(|(method, path)| (method, path, function.name))
        })
        .collect()
}

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
