//! Lambda function `reporting`: what a client sees of its account (design.md flow 3).
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/account` | wallets, balances, approved destinations (live Dfns whitelist) with labels, limits (live limit policies), pending requests, trading authorizations |
//! | `GET /v1/activity?limit&cursor[&format=csv]` | transfers, deposits and governance events, newest first; `format=csv` exports the same rows |
//! | `GET /v1/audit?limit&cursor` | the client's hash-chained audit trail with its verification |
//! | `GET /v1/notifications?limit&cursor` | the client's notifications, newest first |
//!
//! The caller is always the verified token's client; there is no way to name another client.
//! The handler parses, calls one use case of [`platform::reporting`], and maps the result.

use std::collections::HashMap;

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use platform::http::{self, ApiError, Route};
use platform::reporting::{self, ReportingError, activity};

pub const ROUTES: &[Route] = &[
    Route::new(Method::GET, "/v1/account"),
    Route::new(Method::GET, "/v1/activity"),
    Route::new(Method::GET, "/v1/audit"),
    Route::new(Method::GET, "/v1/notifications"),
];

/// Header carrying the next page's cursor of a paged CSV export.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

pub async fn handle(app: &platform::App, req: Request) -> Response<Body> {
    http::serve(req, |req, _request_id| async move {
        let path = req.uri().path().to_owned();
        let Some(route) = ROUTES
            .iter()
            .find(|route| http::match_path(route.path, &path).is_some())
        else {
            return Err(ApiError::not_found("no such route"));
        };
        if req.method() != route.method {
            return Err(ApiError::method_not_allowed());
        }
        let client = http::client_principal(app, &req).await?;
        let query = Query::of(&req);
        match route.path {
            "/v1/account" => {
                let view = reporting::account(app, &client)
                    .await
                    .map_err(ReportingError::log)?;
                Ok(http::json_response(StatusCode::OK, &view))
            }
            "/v1/activity" => activity_route(app, &client, &query).await,
            "/v1/audit" => {
                let after = query
                    .get("cursor")
                    .map(|c| {
                        reporting::parse_audit_cursor(c)
                            .ok_or_else(|| ApiError::bad_request("invalid cursor"))
                    })
                    .transpose()?;
                let page = reporting::audit_trail(app, &client, after, query.limit()?)
                    .await
                    .map_err(ReportingError::log)?;
                Ok(http::json_response(StatusCode::OK, &page))
            }
            "/v1/notifications" => {
                let page =
                    reporting::notifications(app, &client, query.get("cursor"), query.limit()?)
                        .await
                        .map_err(ReportingError::log)?;
                Ok(http::json_response(StatusCode::OK, &page))
            }
            _ => Err(ApiError::not_found("no such route")),
        }
    })
    .await
}

async fn activity_route(
    app: &platform::App,
    client: &domain::ClientId,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let cursor = query
        .get("cursor")
        .map(|c| activity::Cursor::decode(c).map_err(|_| ApiError::bad_request("invalid cursor")))
        .transpose()?;
    let csv = match query.get("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::bad_request("format must be json or csv")),
    };
    let rows = reporting::activity_rows(app, client)
        .await
        .map_err(ReportingError::log)?;
    if !csv {
        let page = activity::page(&rows, cursor.as_ref(), query.limit()?);
        return Ok(http::json_response(StatusCode::OK, &page));
    }
    // An export is everything unless the caller pages it explicitly.
    let page = if query.get("limit").is_some() || cursor.is_some() {
        activity::page(&rows, cursor.as_ref(), query.limit()?)
    } else {
        activity::ActivityPage {
            items: rows,
            next_cursor: None,
        }
    };
    let text = to_csv(&page.items).map_err(|e| {
        tracing::error!(error = %e, "CSV export failed");
        ApiError::internal()
    })?;
    let mut response = Response::new(Body::Text(text));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"activity.csv\""),
    );
    if let Some(next) = page
        .next_cursor
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(NEXT_CURSOR_HEADER, next);
    }
    Ok(response)
}

/// The rows as RFC 4180 CSV: a header row, CRLF line ends, fields quoted when they hold a comma,
/// a quote or a line break (quotes doubled).
pub fn to_csv(rows: &[activity::ActivityItem]) -> Result<String, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(activity::CSV_HEADER)?;
    for row in rows {
        writer.write_record(row.csv_record())?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    // Every field is a Rust string, so the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The query string, from API Gateway's parsed parameters or, failing those, the URI.
struct Query(HashMap<String, String>);

impl Query {
    fn of(req: &Request) -> Self {
        let mut params = HashMap::new();
        if let Some(map) = req.query_string_parameters_ref() {
            for (name, _) in map.iter() {
                if let Some(value) = map.first(name) {
                    params.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        if params.is_empty() {
            if let Some(raw) = req.uri().query() {
                for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
                    params
                        .entry(name.into_owned())
                        .or_insert_with(|| value.into_owned());
                }
            }
        }
        Self(params)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `limit`: 1..=MAX_PAGE_SIZE, default DEFAULT_PAGE_SIZE.
    fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(reporting::DEFAULT_PAGE_SIZE),
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=reporting::MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit must be a whole number from 1 to {}",
                        reporting::MAX_PAGE_SIZE
                    ))
                }),
        }
    }
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
