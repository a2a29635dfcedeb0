//! The functions the stack serves and the scheduled functions it ticks. A new function crate is
//! one entry here (and its routes then appear in the stack and in `/openapi.json`).

use std::time::Duration;

use futures::future::BoxFuture;
use platform::SecretsHeld;
use platform::http::FunctionRouter;

/// One HTTP function: its name (the Lambda's), its router and the secrets it holds (the stack
/// serves it with only those, as IAM lets it read only those on AWS).
#[derive(Clone, Copy)]
pub struct Function {
    pub name: &'static str,
    pub router: fn() -> FunctionRouter,
    pub secrets: SecretsHeld,
}

/// Every HTTP function, with the `router` its Lambda `main` serves.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "signup",
        router: signup::router,
        secrets: signup::SECRETS,
    },
    Function {
        name: "destinations",
        router: destinations::router,
        secrets: destinations::SECRETS,
    },
    Function {
        name: "reporting",
        router: reporting::router,
        secrets: reporting::SECRETS,
    },
    Function {
        name: "trading",
        router: trading::router,
        secrets: trading::SECRETS,
    },
    Function {
        name: "withdrawals",
        router: withdrawals::router,
        secrets: withdrawals::SECRETS,
    },
    Function {
        name: "operator",
        router: operator::router,
        secrets: operator::SECRETS,
    },
    Function {
        name: "dfns-webhook",
        router: dfns_webhook::router,
        secrets: dfns_webhook::SECRETS,
    },
];

/// Every function's routes in one router, each served with an app holding only that function's
/// secrets. axum refuses (panics on) a route served twice, so two functions claiming one route
/// stop the stack at startup. `exports`: the reporting function's export bucket (else it reads
/// `EXPORT_BUCKET`, as deployed).
pub fn serving(app: &platform::App, exports: Option<&reporting::Exports>) -> axum::Router {
    FUNCTIONS.iter().fold(axum::Router::new(), |all, function| {
        let router = match exports {
            Some(exports) if function.name == "reporting" => {
                reporting::router_with(exports.clone())
            }
            _ => (function.router)(),
        };
        let router: axum::Router<platform::App> = router.into();
        all.merge(router.with_state(app.holding_only(function.secrets)))
    })
}

/// Every function's routes in one documented router (the OpenAPI document's source).
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
    /// The secrets it holds; it runs with only those.
    pub secrets: SecretsHeld,
    /// Runs once; the report as JSON.
    pub run: fn(platform::App) -> BoxFuture<'static, anyhow::Result<serde_json::Value>>,
}

/// The scheduled functions, in the order one tick runs them.
pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            name: "reconciler",
            secrets: reconciler::SECRETS,
            run: |app| {
                Box::pin(async move {
                    let report = reconciler::run(&app).await?;
                    Ok(serde_json::to_value(report)?)
                })
            },
        },
        Job {
            name: "order-execution",
            secrets: order_execution::SECRETS,
            run: |app| {
                Box::pin(async move {
                    let now = time::OffsetDateTime::now_utc();
                    let report = order_execution::run(&app, now, None).await?;
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
            match (job.run)(app.holding_only(job.secrets)).await {
                Ok(report) => tracing::debug!(job = job.name, %report, "scheduled run done"),
                Err(error) => {
                    tracing::warn!(job = job.name, error = %error, "scheduled run failed")
                }
            }
        }
    }
}
