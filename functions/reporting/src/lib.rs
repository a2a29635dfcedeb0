//! Lambda function `reporting`: what a client sees of its account (docs/design.md, flow 3). The
//! caller is always the verified token's client; there is no way to name another client.
//!
//! | route | handler |
//! |---|---|
//! | `GET /v1/account` | [`account`]: wallets, balances, approved destinations (live Dfns whitelist) with labels, limits (live limit policies), pending requests, trading authorizations |
//! | `GET /v1/activity?limit&cursor&format` | [`activity_page`]: transfers, deposits and governance events, newest first, from the activity read model (no Dfns call); `format=csv` exports the same rows, page by page; a whole export past 5 MiB is written to S3 and answered with a presigned link ([`export_whole`]) |
//! | `GET /v1/audit?limit&cursor` | [`audit`]: the client's hash-chained audit trail with its verification |
//! | `GET /v1/notifications?limit&cursor` | [`notifications`]: the client's notifications, newest first |

use aide::generate::GenContext;
use aide::openapi::{
    MediaType, Operation, Response as DocResponse, SchemaObject, StatusCode as DocStatus,
};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use platform::App;
use platform::http::get_with;
use platform::http::{self, ApiError, Client, FunctionRouter, Json, Query};
use platform::reporting::query::{
    ActivityQuery, AuditCursor, Format, NotificationCursor, PageLimit, PageQuery,
};
use platform::reporting::{self, AccountView, AuditTrailPage, NotificationsPage, activity};

mod export;
pub use export::{
    ExportLink, Exports, LINK_VALIDITY, PART_SIZE, export_whole, s3_client, take_full_parts,
};

/// The secrets this function holds: it reads wallets, balances, history and policies; changes
/// nothing at Dfns.
pub const SECRETS: platform::SecretsHeld = platform::SecretsHeld::READ_ONLY;

/// Header carrying the next page's cursor of a paged CSV export.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

/// This function's routes, exporting as configured ([`Exports::from_env`]: nothing is read or
/// built until the first export that needs it).
pub fn router() -> FunctionRouter {
    router_with(Exports::from_env())
}

/// This function's routes, with large CSV exports handled by `exports`.
pub fn router_with(exports: Exports) -> FunctionRouter {
    http::documented()
        .api_route(
            "/v1/account",
            get_with(account, |op| {
                http::errors(op.summary(
                    "Wallets, balances, approved destinations (live Dfns policy), limits, pending requests",
                ), &[404])
            }),
        )
        .api_route(
            "/v1/activity",
            get_with(
                move |state: State<App>, client: Client, query: Query<ActivityQuery>| {
                    activity_page(exports.clone(), state, client, query)
                },
                |op| {
                    http::errors(op.summary(
                        "Transfers, deposits and governance events, newest first (JSON, CSV, or a link to a large CSV export)",
                    ).description(
                        "`format=csv` with neither `limit` nor `cursor` exports everything: inline up to 5 MiB of CSV; \
                         beyond that, where the deployment has an export bucket, the whole CSV is written to S3 and the \
                         answer is JSON with a presigned link (valid 15 minutes). Otherwise, and with `limit` or \
                         `cursor`, a CSV answer that does not hold everything carries the next page's cursor in `x-next-cursor`.",
                    ), &[404])
                },
            ),
        )
        .api_route(
            "/v1/audit",
            get_with(audit, |op| {
                http::errors(op.summary("The caller's hash-chained audit trail with its verification"), &[404])
            }),
        )
        .api_route(
            "/v1/notifications",
            get_with(notifications, |op| {
                http::errors(op.summary("The caller's notifications, newest first"), &[404])
            }),
        )
}

/// `GET /v1/account`.
pub async fn account(
    State(app): State<App>,
    Client(client): Client,
) -> Result<Json<AccountView>, ApiError> {
    let view = reporting::account(&app, &client)
        .await
        .map_err(reporting::ReportingError::log)?;
    Ok(Json(view))
}

/// `GET /v1/activity`: a page of JSON, or CSV (everything unless `limit` or `cursor` pages it,
/// up to [`CSV_MAX_BYTES`] per response); a whole export beyond the inline threshold goes to
/// `exports`' bucket when there is one ([`export_whole`]).
pub async fn activity_page(
    exports: Exports,
    State(app): State<App>,
    Client(client): Client,
    Query(query): Query<ActivityQuery>,
) -> Result<Activity, ApiError> {
    let limit = PageLimit::get(query.limit);
    if query.format.unwrap_or_default() == Format::Json {
        let page = reporting::activity(&app, &client, query.cursor.as_ref(), limit)
            .await
            .map_err(reporting::ReportingError::log)?;
        return Ok(Activity::Page(page));
    }
    let whole = query.limit.is_none() && query.cursor.is_none();
    let result = match exports.bucket() {
        Some(bucket) if whole => export_whole(&app, &client, &exports, bucket).await,
        _ => {
            let rows = (!whole).then_some(limit);
            export_csv(&app, &client, query.cursor, rows, exports.inline_max())
                .await
                .map(|(text, next_cursor)| Activity::Csv { text, next_cursor })
        }
    };
    result.map_err(ExportError::log)
}

/// The most CSV one response carries: under Lambda's 6 MB response payload (with room for the
/// headers). An export beyond it answers this much and the next page's cursor in
/// [`NEXT_CURSOR_HEADER`]; the client asks again with it.
pub const CSV_MAX_BYTES: usize = 5 * 1024 * 1024;

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Reporting(#[from] reporting::ReportingError),
    #[error(transparent)]
    Csv(#[from] csv::Error),
    /// An S3 call of a large export failed (the multipart upload is aborted).
    #[error("S3 {operation} of a CSV export failed")]
    Storage {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// S3 answered `CreateMultipartUpload` without an upload id.
    #[error("S3 CreateMultipartUpload answered no upload id")]
    NoUploadId,
    /// More than S3's 10,000 parts (50 GB at 5 MiB a part).
    #[error("a CSV export of more than 10,000 parts")]
    TooManyParts,
}

impl ExportError {
    /// Logged (never a presigned URL), and the one error shape outside.
    pub fn log(self) -> ApiError {
        match self {
            ExportError::Reporting(e) => e.log(),
            ExportError::Csv(e) => {
                tracing::error!(error = %e, "CSV export failed");
                ApiError::internal()
            }
            e => {
                // The SDK's error chain names the code and message S3 answered, never credentials
                // or a presigned URL.
                let mut chain = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    chain.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                tracing::error!(error = %chain, "CSV export to S3 failed");
                ApiError::internal()
            }
        }
    }

    fn storage(
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ExportError::Storage {
            operation,
            source: Box::new(source),
        }
    }
}

fn bad_own_cursor() -> ExportError {
    ExportError::Reporting(reporting::ReportingError::Platform(
        platform::PlatformError::Internal("our own cursor does not decode".into()),
    ))
}

/// The CSV export, read from the activity read model a page ([`platform::reporting::MAX_PAGE_SIZE`]
/// rows) at a time and written as it is read: `rows` rows at most (`None`: all), stopping after
/// the page that passes `max_bytes`. Returns the text and the cursor of what is left.
pub async fn export_csv(
    app: &App,
    client: &domain::ClientId,
    mut cursor: Option<activity::Cursor>,
    rows: Option<usize>,
    max_bytes: usize,
) -> Result<(String, Option<String>), ExportError> {
    let mut writer = csv_writer(Vec::new());
    writer.write_record(activity::CSV_HEADER)?;
    let mut left = rows.unwrap_or(usize::MAX);
    let next = loop {
        let size = left.min(reporting::MAX_PAGE_SIZE);
        let page = reporting::activity(app, client, cursor.as_ref(), size).await?;
        for row in &page.items {
            writer.write_record(row.csv_record())?;
        }
        left -= size.min(left);
        let Some(next) = page.next_cursor else {
            break None;
        };
        writer.flush().map_err(csv::Error::from)?;
        if left == 0 || writer.get_ref().len() >= max_bytes {
            break Some(next);
        }
        cursor = Some(activity::Cursor::decode(&next).map_err(|_| bad_own_cursor())?);
    };
    let bytes = writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    // Every field is a Rust string, so the bytes are UTF-8.
    Ok((String::from_utf8_lossy(&bytes).into_owned(), next))
}

/// The export's CSV writer: RFC 4180 quoting, CRLF line ends. Every export (inline, paged, to S3)
/// writes through it, so they are the same bytes.
pub(crate) fn csv_writer<W: std::io::Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out)
}

/// `GET /v1/activity`'s answer: a JSON page, a CSV export, or the link to a large one.
pub enum Activity {
    Page(activity::ActivityPage),
    Csv {
        text: String,
        next_cursor: Option<String>,
    },
    Link(ExportLink),
}

impl IntoResponse for Activity {
    fn into_response(self) -> Response {
        match self {
            Activity::Page(page) => Json(page).into_response(),
            Activity::Link(link) => Json(link).into_response(),
            Activity::Csv { text, next_cursor } => {
                let mut response = text.into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                );
                headers.insert(
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"activity.csv\""),
                );
                if let Some(next) = next_cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    headers.insert(NEXT_CURSOR_HEADER, next);
                }
                response
            }
        }
    }
}

impl aide::OperationOutput for Activity {
    type Inner = activity::ActivityPage;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<DocResponse> {
        let mut response = Json::<activity::ActivityPage>::operation_response(ctx, operation)?;
        response.description =
            "a page of activity (JSON), the CSV export, or a link to a large CSV export (JSON)"
                .to_owned();
        // JSON is either a page or, for a whole CSV export too large to answer, its link.
        let link = ctx.schema.subschema_for::<ExportLink>();
        for media in response.content.values_mut() {
            if let Some(schema) = media.schema.as_mut() {
                let page = schema.json_schema.clone();
                schema.json_schema = schemars::json_schema!({ "oneOf": [page, link.clone()] });
            }
        }
        response.content.insert(
            "text/csv; charset=utf-8".to_owned(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: schemars::json_schema!({ "type": "string" }),
                    example: None,
                    external_docs: None,
                }),
                ..Default::default()
            },
        );
        Some(response)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        Self::operation_response(ctx, operation)
            .map(|r| vec![(Some(DocStatus::Code(200)), r)])
            .unwrap_or_default()
    }
}

/// `GET /v1/audit`.
pub async fn audit(
    State(app): State<App>,
    Client(client): Client,
    Query(query): Query<PageQuery<AuditCursor>>,
) -> Result<Json<AuditTrailPage>, ApiError> {
    let after = query.cursor.map(|c| c.0);
    let page = reporting::audit_trail(&app, &client, after, PageLimit::get(query.limit))
        .await
        .map_err(reporting::ReportingError::log)?;
    Ok(Json(page))
}

/// `GET /v1/notifications`.
pub async fn notifications(
    State(app): State<App>,
    Client(client): Client,
    Query(query): Query<PageQuery<NotificationCursor>>,
) -> Result<Json<NotificationsPage>, ApiError> {
    let page = reporting::notifications(
        &app,
        &client,
        query.cursor.as_ref(),
        PageLimit::get(query.limit),
    )
    .await
    .map_err(reporting::ReportingError::log)?;
    Ok(Json(page))
}

/// The rows as RFC 4180 CSV: a header row, CRLF line ends, fields quoted when they hold a comma,
/// a quote or a line break (quotes doubled).
pub fn to_csv(rows: &[activity::ActivityItem]) -> Result<String, csv::Error> {
    let mut writer = csv_writer(Vec::new());
    writer.write_record(activity::CSV_HEADER)?;
    for row in rows {
        writer.write_record(row.csv_record())?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    // Every field is a Rust string, so the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The routes as the Lambda runtime calls them.
#[cfg(test)]
async fn handle(app: &App, req: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
    http::call(router(), app, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str) -> activity::ActivityItem {
        let mut item = sample();
        item.label = Some(label.to_owned());
        item
    }

    fn sample() -> activity::ActivityItem {
        activity::ActivityItem {
            id: "transfer:xfr-1".into(),
            occurred_at: time_at(),
            category: activity::ActivityCategory::Transfer,
            kind: "Native".into(),
            status: Some("Confirmed".into()),
            network: Some("EthereumSepolia".into()),
            wallet_id: Some("wa-1".into()),
            direction: Some("Out".into()),
            asset: Some("ETH".into()),
            contract: None,
            amount: Some("340282366920938463463374607431768211455".into()),
            decimals: Some(18),
            fee: None,
            from: Some("0xmine".into()),
            to: Some("0xdest".into()),
            label: None,
            tx_hash: Some("0xt".into()),
            reference: Some("xfr-1".into()),
            actor: None,
            reason: None,
        }
    }

    fn time_at() -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
    }

    #[test]
    fn csv_quotes_commas_quotes_and_line_breaks_and_parses_back() {
        let labels = [
            "plain",
            "Desk, main",
            "the \"good\" one",
            "two\nlines",
            "crlf\r\nend",
        ];
        let rows: Vec<_> = labels.iter().map(|l| row(l)).collect();
        let text = to_csv(&rows).unwrap();

        assert!(text.starts_with("id,occurredAt,category,kind,status,"));
        assert!(text.contains(",\"Desk, main\","));
        assert!(text.contains(",\"the \"\"good\"\" one\","));
        assert!(text.contains(",\"two\nlines\","));
        assert!(text.contains("\r\n"));

        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        assert_eq!(header.iter().collect::<Vec<_>>(), activity::CSV_HEADER);
        let label_at = header.iter().position(|h| h == "label").unwrap();
        let amount_at = header.iter().position(|h| h == "amount").unwrap();
        let parsed: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(parsed.len(), labels.len(), "one record per row");
        for (record, label) in parsed.iter().zip(labels) {
            assert_eq!(&record[label_at], label);
            assert_eq!(
                &record[amount_at],
                "340282366920938463463374607431768211455"
            );
        }
    }

    #[test]
    fn an_empty_export_still_has_its_header() {
        let text = to_csv(&[]).unwrap();
        assert_eq!(text, format!("{}\r\n", activity::CSV_HEADER.join(",")));
    }
}

// Tests of the crate as its callers use it, against the stand-ins and the Dfns emulator.
// Kept in the library rather than tests/: an integration test would make cargo link the binary
// too (~45 MB of CI disk each) for nothing.
#[cfg(test)]
mod route_tests;
