//! The API Gateway part: each request to a function's route becomes the API Gateway HTTP API
//! (payload v2.0) event the Lambda runtime would hand the function, converted into a request by
//! `lambda_http`'s own code, before the function's handler sees it ([`as_lambda_event`], a route
//! layer on the merged routers: the route key comes from the route axum matched).

use axum::body::Bytes;
use axum::extract::{ConnectInfo, MatchedPath, Request as AxumRequest};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response as AxumResponse};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::Request;
use lambda_http::http::{HeaderMap, Method, StatusCode, header};
use lambda_http::request::LambdaRequest;
use platform::http::{ApiError, RequestId};
use serde_json::{Value, json};

/// Largest request body accepted (API Gateway HTTP API's payload limit is 10 MB).
pub const MAX_BODY: usize = 10 * 1024 * 1024;

/// The route the request matched, as API Gateway names it.
pub struct Matched {
    /// `METHOD /template`.
    pub route_key: String,
    /// `{name}` → value, from the template.
    pub path_parameters: Vec<(String, String)>,
}

impl Matched {
    /// The match of `path` against `template` (`{name}` is one segment).
    pub fn of(method: &Method, template: &str, path: &str) -> Self {
        let path_parameters = template
            .split('/')
            .zip(path.split('/'))
            .filter_map(|(t, p)| {
                let name = t.strip_prefix('{')?.strip_suffix('}')?;
                Some((name.to_owned(), p.to_owned()))
            })
            .collect();
        Self {
            route_key: format!("{method} {template}"),
            path_parameters,
        }
    }
}

/// The route layer: the request as the function's Lambda would receive it. Runs each invocation
/// in its own task, so a panicking handler answers like a crashed Lambda behind API Gateway (500)
/// instead of dropping the connection.
pub async fn as_lambda_event(req: AxumRequest, next: Next) -> AxumResponse {
    let (parts, body) = req.into_parts();
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_else(new_request_id);
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large",
            )
            .into_response();
        }
    };
    let path = parts.uri.path().to_owned();
    let template = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let matched = Matched::of(&parts.method, &template, &path);
    let source_ip = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let domain_name = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let incoming = Incoming {
        method: &parts.method,
        raw_path: &path,
        raw_query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        source_ip,
        domain_name,
        request_id,
    };
    let event = event_json(&incoming, &matched);
    let request = match lambda_request(event) {
        Ok(request) => request,
        Err(error) => {
            // API Gateway would never send such an event: our bug, not the caller's.
            tracing::error!(%error, "could not build the Lambda event");
            return ApiError::internal().into_response();
        }
    };
    let (mut lambda_parts, lambda_body) = request.into_parts();
    // The function sees the event's method, URI, headers and body, with what routing found.
    lambda_parts.extensions.extend(parts.extensions);
    let request = AxumRequest::from_parts(
        lambda_parts,
        axum::body::Body::from(lambda_body.as_ref().to_vec()),
    );
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(%error, "handler crashed");
            ApiError::internal().into_response()
        }
    }
}

/// What the gateway knows about one incoming request besides the route.
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub raw_path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    pub source_ip: String,
    pub domain_name: String,
    pub request_id: String,
}

/// Content types API Gateway passes as text; anything else goes base64-encoded.
fn is_text(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        // No declared type: JSON bodies sent by curl without -H still arrive as text.
        return true;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence == "application/json"
        || essence == "application/x-www-form-urlencoded"
        || essence == "application/xml"
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
}

/// The API Gateway HTTP API event (payload format 2.0) for `incoming` on `matched`, exactly as
/// AWS documents it: lowercased headers with repeated ones comma-joined, cookies split out,
/// `queryStringParameters` with repeated keys comma-joined, `pathParameters` from the template,
/// the body as text or base64.
pub fn event_json(incoming: &Incoming<'_>, matched: &Matched) -> Value {
    let route_key = matched.route_key.clone();
    let mut headers: serde_json::Map<String, Value> = serde_json::Map::new();
    let mut cookies: Vec<String> = Vec::new();
    for name in incoming.headers.keys() {
        let values: Vec<&str> = incoming
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if name == header::COOKIE {
            cookies.extend(
                values
                    .iter()
                    .flat_map(|v| v.split(';'))
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        headers.insert(name.as_str().to_owned(), json!(values.join(",")));
    }
    let mut query: Vec<(String, String)> = Vec::new();
    if let Some(raw) = incoming.raw_query {
        for (name, value) in form_pairs(raw) {
            match query.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(&value);
                }
                None => query.push((name, value)),
            }
        }
    }
    let (body, is_base64) = if incoming.body.is_empty() {
        (Value::Null, false)
    } else if is_text(incoming.headers)
        && let Ok(text) = std::str::from_utf8(incoming.body)
    {
        (json!(text), false)
    } else {
        (json!(STANDARD.encode(incoming.body)), true)
    };
    let now = time::OffsetDateTime::now_utc();
    let time_text = now
        .format(time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .unwrap_or_default();
    let user_agent = incoming
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": incoming.raw_path,
        "rawQueryString": incoming.raw_query.unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": incoming.domain_name,
            "domainPrefix": incoming.domain_name.split('.').next().unwrap_or_default(),
            "http": {
                "method": incoming.method.as_str(),
                "path": incoming.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": incoming.source_ip,
                "userAgent": user_agent,
            },
            "requestId": incoming.request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": time_text,
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
        },
        "isBase64Encoded": is_base64,
    });
    let object = event.as_object_mut().expect("built as an object");
    if !cookies.is_empty() {
        object.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        let map: serde_json::Map<String, Value> =
            query.into_iter().map(|(k, v)| (k, json!(v))).collect();
        object.insert("queryStringParameters".into(), Value::Object(map));
    }
    if !matched.path_parameters.is_empty() {
        let map: serde_json::Map<String, Value> = matched
            .path_parameters
            .iter()
            .map(|(k, v)| (k.clone(), json!(percent_decode(v))))
            .collect();
        object.insert("pathParameters".into(), Value::Object(map));
    }
    if !body.is_null() {
        object.insert("body".into(), body);
    }
    event
}

/// The `lambda_http::Request` the Lambda runtime hands the handler for `event`: deserialised into
/// `aws_lambda_events`' `ApiGatewayV2httpRequest` and converted by `lambda_http` itself.
pub fn lambda_request(event: Value) -> Result<Request, serde_json::Error> {
    let typed: aws_lambda_events::apigw::ApiGatewayV2httpRequest = serde_json::from_value(event)?;
    Ok(Request::from(LambdaRequest::ApiGatewayV2(typed)))
}

/// `application/x-www-form-urlencoded` pairs, as API Gateway decodes the query string.
fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&name.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// Percent-decoding; invalid escapes are kept as written.
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Request ids look like API Gateway's (`Abc123=`-style ids are opaque; a ULID is as good).
pub fn new_request_id() -> String {
    ulid::Ulid::new().to_string()
}

#[cfg(test)]
mod tests {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    use super::*;

    #[test]
    fn the_handler_sees_what_api_gateway_would_send() {
        let matched = Matched::of(&Method::DELETE, "/v1/things/{id}", "/v1/things/t%201");
        let mut headers = HeaderMap::new();
        headers.insert("X-Custom", "one".parse().unwrap());
        headers.append("x-custom", "two".parse().unwrap());
        headers.insert(header::COOKIE, "a=1; b=2".parse().unwrap());
        headers.insert(
            header::CONTENT_TYPE,
            "application/octet-stream".parse().unwrap(),
        );
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        let body = Bytes::from_static(&[0, 159, 146, 150, 255]);
        let incoming = Incoming {
            method: &Method::DELETE,
            raw_path: "/v1/things/t%201",
            raw_query: Some("limit=5&tag=x&tag=y&q=a+b%21"),
            headers: &headers,
            body: &body,
            source_ip: "127.0.0.1".into(),
            domain_name: "127.0.0.1:4010".into(),
            request_id: "req-42".into(),
        };
        let event = event_json(&incoming, &matched);
        assert_eq!(event["routeKey"], "DELETE /v1/things/{id}");
        assert_eq!(event["headers"]["x-custom"], "one,two");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["queryStringParameters"]["tag"], "x,y");
        assert_eq!(event["isBase64Encoded"], true);

        let request = lambda_request(event).unwrap();
        assert_eq!(request.method(), Method::DELETE);
        assert_eq!(request.uri().path(), "/v1/things/t%201");
        assert_eq!(
            request.path_parameters_ref().and_then(|p| p.first("id")),
            Some("t 1")
        );
        let query = request.query_string_parameters_ref().unwrap();
        assert_eq!(query.first("limit"), Some("5"));
        assert_eq!(query.all("tag"), Some(vec!["x", "y"]));
        assert_eq!(query.first("q"), Some("a b!"));
        assert_eq!(request.headers()[header::AUTHORIZATION], "Bearer abc");
        assert_eq!(request.body().as_ref(), &body[..], "binary body intact");
        match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                assert_eq!(ctx.request_id.as_deref(), Some("req-42"));
                assert_eq!(ctx.route_key.as_deref(), Some("DELETE /v1/things/{id}"));
                assert_eq!(ctx.http.source_ip.as_deref(), Some("127.0.0.1"));
            }
            other => panic!("not an API Gateway v2 context: {other:?}"),
        }
    }

    #[test]
    fn a_json_body_arrives_as_the_same_text() {
        let matched = Matched::of(&Method::GET, "/v1/things", "/v1/things");
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let body = Bytes::from_static(br#"{"a": "\u00e9 1"}"#);
        let incoming = Incoming {
            method: &Method::GET,
            raw_path: "/v1/things",
            raw_query: None,
            headers: &headers,
            body: &body,
            source_ip: "127.0.0.1".into(),
            domain_name: "localhost".into(),
            request_id: "r".into(),
        };
        let event = event_json(&incoming, &matched);
        assert_eq!(event["isBase64Encoded"], false);
        assert!(event.get("pathParameters").is_none());
        let request = lambda_request(event).unwrap();
        assert_eq!(request.body().as_ref(), &body[..]);
    }
}
