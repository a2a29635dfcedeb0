//! Issue 13 (the adversarial suite): the authorization matrix. Every HTTP route the platform
//! serves (enumerated from the functions' routers, `local_stack::functions::routes()`) × every
//! kind of caller → the status it must get, through HTTP against the local stack, on real data:
//! client A's account, trading authorizations, destination requests and an order the desk placed
//! for A; client B with an account of its own. A route served without an entry in [`routes`]
//! fails the test, naming it (and so does an entry for a route no longer served).
//!
//! Expectations: a missing or bad bearer token is a 401 everywhere; the Dfns webhook route takes
//! no bearer token and answers 401 to every caller without a valid signature; on client routes A
//! gets a 2xx, B a 404 for A's ids (its own account, a 2xx, where the route names no id) and an
//! operator a 403; on operator routes clients get a 403 and the operator a 2xx.
//!
//! Besides each status, no refused call (and no call of a caller not entitled to A's data) may
//! carry anything of A's in its body: A's client id, wallet and policy ids, request, approval,
//! authorization and order ids, A's own destination address.
//!
//! Run with `cargo xtask exec -- cargo test -p e2e --test it authorization_matrix`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use dfns_client::{ApprovalId, DecisionValue};
use e2e::{Env, EnvOptions, client_id, random_address, sign_webhook};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The desk member placing orders.
const DESK: &str = "desk-1";
/// `{"alg":"none","typ":"JWT"}`, base64url: the header of an unsigned token.
const ALG_NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
const HALF_ETH: &str = "500000000000000000";

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// No `Authorization` header.
    NoToken,
    /// Not a JWS: a valid token's header and claims without its signature segment.
    Malformed,
    /// A valid token's claims under `alg: none`, with an empty signature.
    Unsigned,
    /// Signed by the issuer, expired an hour ago.
    Expired,
    /// Signed by the issuer, for another audience.
    WrongAudience,
    /// Signed with the issuer's key, claiming another issuer.
    WrongIssuer,
    /// Client B, naming A's ids (or, on a route without ids, on its own account).
    OtherClient,
    /// A trading-desk operator. On client routes its token's subject is A's client id: an
    /// operator trying to pass as the client.
    Operator,
    /// Client A on A's own ids.
    Owner,
}

const CALLERS: [Caller; 9] = [
    Caller::NoToken,
    Caller::Malformed,
    Caller::Unsigned,
    Caller::Expired,
    Caller::WrongAudience,
    Caller::WrongIssuer,
    Caller::OtherClient,
    Caller::Operator,
    Caller::Owner,
];

impl Caller {
    fn name(self) -> &'static str {
        match self {
            Caller::NoToken => "no token",
            Caller::Malformed => "malformed",
            Caller::Unsigned => "alg none",
            Caller::Expired => "expired",
            Caller::WrongAudience => "wrong aud",
            Caller::WrongIssuer => "wrong iss",
            Caller::OtherClient => "client B",
            Caller::Operator => "operator",
            Caller::Owner => "client A",
        }
    }

    fn bad_token(self) -> bool {
        !matches!(self, Caller::OtherClient | Caller::Operator | Caller::Owner)
    }
}

/// Who a route is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// The caller's own account, no id in the request: another client gets its own.
    ClientScope,
    /// One of the caller's objects named by id: another client's is a 404.
    ClientObject,
    /// The trading desk's.
    Operator,
    /// Dfns's deliveries: an HMAC signature over the body, no bearer token.
    Webhook,
}

/// What a call must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Success,
    Refused(StatusCode, &'static str),
}

const UNAUTHORIZED: Expect = Expect::Refused(StatusCode::UNAUTHORIZED, "unauthorized");
const FORBIDDEN: Expect = Expect::Refused(StatusCode::FORBIDDEN, "forbidden");
const NOT_FOUND: Expect = Expect::Refused(StatusCode::NOT_FOUND, "not_found");

fn expected(family: Family, caller: Caller) -> Expect {
    match (family, caller) {
        // The signature is the only credential; a bearer token changes nothing.
        (Family::Webhook, _) => UNAUTHORIZED,
        (_, caller) if caller.bad_token() => UNAUTHORIZED,
        (Family::ClientScope | Family::ClientObject, Caller::Owner) => Expect::Success,
        (Family::ClientScope, Caller::OtherClient) => Expect::Success,
        (Family::ClientObject, Caller::OtherClient) => NOT_FOUND,
        (Family::ClientScope | Family::ClientObject, _) => FORBIDDEN,
        (Family::Operator, Caller::Operator) => Expect::Success,
        (Family::Operator, _) => FORBIDDEN,
    }
}

/// Whether `caller` may see A's data on a route of `family`.
fn entitled(family: Family, caller: Caller) -> bool {
    matches!(
        (family, caller),
        (Family::ClientScope | Family::ClientObject, Caller::Owner)
            | (Family::Operator, Caller::Operator)
    )
}

/// The real data the calls name.
struct Fixture {
    a: String,
    b: String,
    /// A's queued destination request (cancellable).
    queued_request: String,
    /// A's destination request still cooling off (vetoable).
    cooling_off_request: String,
    /// The request adding A's exchange deposit address, pending approval.
    add_request: String,
    /// A's Kraken authorization, the one revoked: revoking it cancels A's scheduled Kraken
    /// orders only, and the desk's order (the one cancelled) is for Coinbase.
    revoked_authorization: String,
    order: String,
    /// An order for A by another operator than the desk's, waiting for a second operator
    /// (four eyes, the value unknown: no prices in the matrix): the desk may confirm it.
    unconfirmed_order: String,
    /// A's and B's approved destinations (withdrawals go there).
    a_destination: String,
    b_destination: String,
    /// A's withdrawal, kept `Requested` (Dfns refuses transfers during the matrix): cancellable.
    withdrawal: String,
    /// A's pending approval as Dfns would report it resolved: what a forged delivery carries.
    forged_approval: Value,
    /// Everything of A's that no other caller may see: (what, value), values lowercase.
    markers: Vec<(&'static str, String)>,
}

/// A withdrawal of 1 wei to the caller's own approved destination (B's when B calls).
fn withdrawal_body(f: &Fixture, caller: Caller) -> Value {
    let to = if caller == Caller::OtherClient {
        &f.b_destination
    } else {
        &f.a_destination
    };
    json!({"network": "EthereumSepolia", "to": to, "asset": "native", "amount": "1"})
}

/// One request.
#[derive(Default)]
struct Call {
    /// Path and query, ids filled in.
    target: String,
    /// A JSON body.
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
}

impl Call {
    fn to(target: impl Into<String>) -> Self {
        Call {
            target: target.into(),
            ..Call::default()
        }
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(serde_json::to_vec(&body).expect("JSON"));
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// One route's expectation and the request each caller makes on it.
struct Route {
    method: &'static str,
    path: &'static str,
    family: Family,
    call: fn(&Fixture, Caller) -> Call,
}

/// Every route, its family and a valid request (so a refusal is about who calls, not what it
/// sends). A route the platform serves must be here.
fn routes() -> Vec<Route> {
    vec![
        // signup
        Route {
            method: "POST",
            path: "/v1/accounts",
            family: Family::ClientScope,
            call: |_, _| Call::to("/v1/accounts"),
        },
        // destinations
        Route {
            method: "POST",
            path: "/v1/destination-requests",
            family: Family::ClientScope,
            call: |_, caller| {
                let label = if caller == Caller::OtherClient {
                    "B's own"
                } else {
                    "A's new"
                };
                Call::to("/v1/destination-requests").json(json!({
                    "network": "EthereumSepolia",
                    "address": random_address(),
                    "label": label,
                    "action": "add",
                }))
            },
        },
        Route {
            method: "GET",
            path: "/v1/destination-requests",
            family: Family::ClientScope,
            call: |_, _| Call::to("/v1/destination-requests"),
        },
        Route {
            method: "DELETE",
            path: "/v1/destination-requests/{id}",
            family: Family::ClientObject,
            call: |f, _| Call::to(format!("/v1/destination-requests/{}", f.queued_request)),
        },
        Route {
            method: "POST",
            path: "/v1/destination-requests/{id}/veto",
            family: Family::ClientObject,
            call: |f, _| {
                Call::to(format!(
                    "/v1/destination-requests/{}/veto",
                    f.cooling_off_request
                ))
            },
        },
        // reporting
        Route {
            method: "GET",
            path: "/v1/account",
            family: Family::ClientScope,
            call: |_, _| Call::to("/v1/account"),
        },
        Route {
            method: "GET",
            path: "/v1/activity",
            family: Family::ClientScope,
            call: |_, _| Call::to("/v1/activity?limit=100"),
        },
        Route {
            method: "GET",
            path: "/v1/audit",
            family: Family::ClientScope,
            call: |_, _| Call::to("/v1/audit?limit=100"),
        },
        Route {
            method: "GET",
            path: "/v1/notifications",
            family: Family::ClientScope,
            call: |_, _| Call::to("/v1/notifications?limit=100"),
        },
        // trading
        Route {
            method: "POST",
            path: "/v1/trading-authorizations",
            family: Family::ClientScope,
            call: |_, _| {
                Call::to("/v1/trading-authorizations").json(json!({"exchange": "Coinbase"}))
            },
        },
        Route {
            method: "GET",
            path: "/v1/trading-authorizations",
            family: Family::ClientScope,
            call: |_, _| Call::to("/v1/trading-authorizations"),
        },
        Route {
            method: "DELETE",
            path: "/v1/trading-authorizations/{id}",
            family: Family::ClientObject,
            call: |f, _| {
                Call::to(format!(
                    "/v1/trading-authorizations/{}",
                    f.revoked_authorization
                ))
            },
        },
        // withdrawals
        Route {
            method: "POST",
            path: "/v1/withdrawals",
            family: Family::ClientScope,
            call: |f, caller| {
                Call::to("/v1/withdrawals")
                    .json(withdrawal_body(f, caller))
                    .header("idempotency-key", ulid::Ulid::new().to_string())
            },
        },
        Route {
            method: "GET",
            path: "/v1/withdrawals",
            family: Family::ClientScope,
            call: |_, _| Call::to("/v1/withdrawals?limit=100"),
        },
        Route {
            method: "POST",
            path: "/v1/withdrawals/preview",
            family: Family::ClientScope,
            call: |f, caller| Call::to("/v1/withdrawals/preview").json(withdrawal_body(f, caller)),
        },
        Route {
            method: "GET",
            path: "/v1/withdrawals/{id}",
            family: Family::ClientObject,
            call: |f, _| Call::to(format!("/v1/withdrawals/{}", f.withdrawal)),
        },
        Route {
            method: "POST",
            path: "/v1/withdrawals/{id}/cancel",
            family: Family::ClientObject,
            call: |f, _| Call::to(format!("/v1/withdrawals/{}/cancel", f.withdrawal)),
        },
        // operator
        Route {
            method: "POST",
            path: "/v1/operator/orders",
            family: Family::Operator,
            call: |f, _| {
                Call::to("/v1/operator/orders")
                    .json(json!({"clientId": f.a, "exchange": "Coinbase", "asset": "ETH", "amount": HALF_ETH}))
                    .header("idempotency-key", ulid::Ulid::new().to_string())
            },
        },
        Route {
            method: "GET",
            path: "/v1/operator/orders",
            family: Family::Operator,
            call: |f, _| Call::to(format!("/v1/operator/orders?clientId={}", f.a)),
        },
        Route {
            method: "POST",
            path: "/v1/operator/orders/preview",
            family: Family::Operator,
            call: |f, _| {
                Call::to("/v1/operator/orders/preview").json(
                    json!({"clientId": f.a, "exchange": "Coinbase", "asset": "ETH", "amount": HALF_ETH}),
                )
            },
        },
        Route {
            method: "POST",
            path: "/v1/operator/orders/{id}/cancel",
            family: Family::Operator,
            call: |f, _| Call::to(format!("/v1/operator/orders/{}/cancel", f.order)),
        },
        Route {
            method: "POST",
            path: "/v1/operator/orders/{id}/confirm",
            family: Family::Operator,
            call: |f, _| {
                Call::to(format!(
                    "/v1/operator/orders/{}/confirm",
                    f.unconfirmed_order
                ))
            },
        },
        Route {
            method: "GET",
            path: "/v1/operator/clients/{id}",
            family: Family::Operator,
            call: |f, _| Call::to(format!("/v1/operator/clients/{}", f.a)),
        },
        // dfns-webhook: a delivery approving A's pending approval, signed with the wrong secret
        // (no signature header at all for the caller without a token).
        Route {
            method: "POST",
            path: "/v1/webhooks/dfns",
            family: Family::Webhook,
            call: |f, caller| {
                let body = webhook_event(
                    "policy.approval.resolved",
                    json!({"approval": f.forged_approval}),
                );
                let call = Call {
                    target: "/v1/webhooks/dfns".into(),
                    body: Some(body.clone()),
                    headers: Vec::new(),
                };
                if caller == Caller::NoToken {
                    call
                } else {
                    call.header(
                        "x-dfns-webhook-signature",
                        sign_webhook("not-the-webhook-secret", &body),
                    )
                }
            },
        },
    ]
}

fn webhook_event(kind: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("wh-matrix-{}", ulid::Ulid::new()),
        "kind": kind,
        "date": "2026-01-01T00:00:00.000Z",
        "timestampSent": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": data,
    }))
    .expect("JSON")
}

/// The token `caller` presents on a route of `family`. The bad tokens carry the claims of whoever
/// the route is for (client A on client routes, the desk on operator routes), so only their flaw
/// stands between them and a 2xx.
fn token(env: &Env, fixture: &Fixture, family: Family, caller: Caller) -> Option<String> {
    let stack = &env.stack;
    let spec = match family {
        Family::Operator => stack
            .token_spec(DESK)
            .role(stack.info.operator_role.clone()),
        _ => stack.token_spec(&fixture.a),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match caller {
        Caller::NoToken => None,
        Caller::Malformed => {
            let valid = stack.mint(&spec);
            let (unsigned, _) = valid.rsplit_once('.').expect("a JWS");
            Some(unsigned.to_owned())
        }
        Caller::Unsigned => {
            let valid = stack.mint(&spec);
            let claims = valid.split('.').nth(1).expect("a JWS");
            Some(format!("{ALG_NONE_HEADER}.{claims}."))
        }
        Caller::Expired => Some(stack.mint(&spec.issued_at(now - 7200).expires_at(now - 3600))),
        Caller::WrongAudience => Some(stack.mint(&spec.claim("aud", json!("someone-else")))),
        Caller::WrongIssuer => {
            Some(stack.mint(&spec.claim("iss", json!("https://issuer.example/"))))
        }
        Caller::OtherClient => Some(env.token(&fixture.b)),
        Caller::Operator => Some(match family {
            Family::Operator => env.operator_token(DESK),
            _ => env.operator_token(&fixture.a),
        }),
        Caller::Owner => Some(env.token(&fixture.a)),
    }
}

/// Sends `call`; the status and the body as text.
async fn send(env: &Env, method: &str, call: &Call, token: Option<&str>) -> (StatusCode, String) {
    let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = env.http.request(method, env.url(&call.target));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in &call.headers {
        request = request.header(*name, value);
    }
    if let Some(body) = &call.body {
        request = request
            .header("content-type", "application/json")
            .body(body.clone());
    }
    let response = request.send().await.expect("the stack answers");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}

/// A's data: two trading authorizations (Coinbase, its deposit address pending approval; Kraken,
/// queued behind it), a destination request queued too, an order the desk placed for Coinbase; B
/// with an account of its own.
async fn fixture(env: &Env) -> Fixture {
    let a = client_id("alice");
    let b = client_id("bob");
    let account = env.open_account(&a).await;
    env.open_account(&b).await;
    // Each an approved destination first (the policy-change slot is free), then Dfns refuses
    // every transfer for the rest of the matrix, so withdrawals stay `Requested`.
    let mut approved = Vec::new();
    for client in [&a, &b] {
        let address = random_address();
        let (status, created) = env.request_destination(client, &address, "own").await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().expect("an id");
        let pending = env.wait_for_state(client, id, &["PendingApproval"]).await;
        env.decide(&pending, DecisionValue::Approved).await;
        env.wait_for_state(client, id, &["Approved"]).await;
        approved.push(address);
    }
    let (a_destination, b_destination) = (approved[0].clone(), approved[1].clone());
    env.control(
        Method::POST,
        "faults",
        &json!({"pathPattern": "/wallets/*/transfers", "method": "POST", "status": 503, "rate": 1.0}),
    )
    .await;
    let (status, withdrawal) = env
        .call_with_headers(
            Method::POST,
            "/v1/withdrawals",
            Some(&env.token(&a)),
            Some(&json!({"network": "EthereumSepolia", "to": a_destination, "asset": "native", "amount": "1"})),
            &[("idempotency-key", "fixture")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{withdrawal}");
    assert_eq!(withdrawal["state"], "Requested", "{withdrawal}");
    let withdrawal = withdrawal["id"].as_str().expect("an id").to_owned();
    let mut markers = vec![("A's client id", a.clone())];
    for wallet in account["wallets"].as_array().expect("wallets") {
        let id = wallet["walletId"].as_str().expect("a wallet id");
        markers.push(("A's wallet id", id.to_owned()));
    }
    for (_, policy) in account["policies"].as_object().expect("policies") {
        if let Some(id) = policy.as_str() {
            markers.push(("A's policy id", id.to_owned()));
        }
    }

    let (status, authorization) = env
        .post(
            "/v1/trading-authorizations",
            &a,
            &json!({"exchange": "Coinbase"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{authorization}");
    let authorization_id = authorization["id"].as_str().expect("an id").to_owned();
    let add_request = authorization["destinations"][0]["addRequestId"]
        .as_str()
        .unwrap_or_else(|| panic!("no add request: {authorization}"))
        .to_owned();
    let pending = env
        .wait_for_state(&a, &add_request, &["PendingApproval"])
        .await;
    let approval_id = pending["approvalId"]
        .as_str()
        .expect("an approval")
        .to_owned();
    let mut forged_approval = serde_json::to_value(
        env.officer(0)
            .get_approval(&ApprovalId::new(approval_id.clone()))
            .await
            .expect("the approval"),
    )
    .expect("JSON");
    forged_approval["status"] = json!("Approved");

    let (status, kraken) = env
        .post(
            "/v1/trading-authorizations",
            &a,
            &json!({"exchange": "Kraken"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{kraken}");
    let kraken_id = kraken["id"].as_str().expect("an id").to_owned();

    let address = random_address();
    let (status, queued) = env.request_destination(&a, &address, "A's own").await;
    assert_eq!(status, StatusCode::CREATED, "{queued}");
    assert_eq!(
        queued["state"], "Queued",
        "behind the pending one: {queued}"
    );
    let queued_request = queued["id"].as_str().expect("an id").to_owned();
    let cooling_off_request = cooling_off_request(env, &a).await;

    let (status, order) = env
        .call_with_headers(
            Method::POST,
            "/v1/operator/orders",
            Some(&env.operator_token(DESK)),
            Some(
                &json!({"clientId": a, "exchange": "Coinbase", "asset": "ETH", "amount": HALF_ETH}),
            ),
            &[("idempotency-key", &ulid::Ulid::new().to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["state"], "Scheduled", "{order}");
    let order_id = order["id"].as_str().expect("an id").to_owned();
    let (status, unconfirmed) = env
        .call_with_headers(
            Method::POST,
            "/v1/operator/orders",
            Some(&env.operator_token("desk-2")),
            Some(
                &json!({"clientId": a, "exchange": "Coinbase", "asset": "ETH", "amount": HALF_ETH}),
            ),
            &[("idempotency-key", &ulid::Ulid::new().to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{unconfirmed}");
    assert_eq!(unconfirmed["needsConfirmation"], true, "{unconfirmed}");
    let unconfirmed_order = unconfirmed["id"].as_str().expect("an id").to_owned();

    markers.extend([
        ("A's Coinbase authorization id", authorization_id),
        ("A's Kraken authorization id", kraken_id.clone()),
        ("A's deposit-address request id", add_request.clone()),
        ("A's approval id", approval_id),
        ("A's destination address", address),
        ("A's queued request id", queued_request.clone()),
        ("A's cooling-off request id", cooling_off_request.clone()),
        ("A's order id", order_id.clone()),
        ("A's unconfirmed order id", unconfirmed_order.clone()),
        ("A's withdrawal id", withdrawal.clone()),
        ("A's approved destination", a_destination.clone()),
    ]);
    for (_, value) in &mut markers {
        *value = value.to_lowercase();
    }
    Fixture {
        a,
        b,
        queued_request,
        cooling_off_request,
        add_request,
        revoked_authorization: kraken_id,
        order: order_id,
        unconfirmed_order,
        a_destination,
        b_destination,
        withdrawal,
        forged_approval,
        markers,
    }
}

/// A destination request of `client` cooling off for an hour, stored as the create route stores
/// one under `DESTINATION_COOLING_OFF` (the matrix's environment has none, so that its other
/// requests go to compliance at once). Its id.
async fn cooling_off_request(env: &Env, client: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let new = store::NewDestinationRequest {
        id: domain::DestinationRequestId::new(),
        client_id: domain::ClientId::parse(client).expect("a client id"),
        destination: domain::NetworkAddress::parse(
            domain::Network::EthereumSepolia,
            &random_address(),
        )
        .expect("an address"),
        label: "A's cooling off".into(),
        action: domain::DestinationAction::Add,
        created_at: now,
    };
    let admitted = store::Store::new(env.dynamodb.clone(), env.table.clone())
        .create_destination_request_cooling_off(
            &new,
            now + std::time::Duration::from_secs(3600),
            None,
            None,
        )
        .await
        .expect("store the request");
    assert!(
        matches!(admitted, store::open_requests::Admission::Created(ref r) if r.state == domain::DestinationRequestState::CoolingOff),
        "{admitted:?}"
    );
    new.id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_answers_every_caller_as_expected_and_leaks_nothing() {
    // The routes come from the code: each one served needs an expectation here, and each
    // expectation a served route.
    let table = routes();
    let served: Vec<(String, String, &str)> = local_stack::functions::routes();
    let unlisted: Vec<String> = served
        .iter()
        .filter(|(method, path, _)| !table.iter().any(|r| r.method == method && r.path == path))
        .map(|(method, path, function)| format!("{method} {path} (function {function})"))
        .collect();
    assert!(
        unlisted.is_empty(),
        "routes without an expectation in the authorization matrix: {unlisted:?}; add each to \
         `routes()` in tests/e2e/tests/it/authorization_matrix.rs"
    );
    let stale: Vec<String> = table
        .iter()
        .filter(|r| !served.iter().any(|(m, p, _)| r.method == m && r.path == p))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        stale.is_empty(),
        "expectations for routes no function serves: {stale:?}"
    );

    // Four eyes on: the desk's confirmation route has an order to confirm.
    let env = Env::start(EnvOptions {
        four_eyes_usd: Some(1_000),
        ..EnvOptions::default()
    })
    .await;
    assert_eq!(
        env.stack.routes(),
        served,
        "the stack serves the functions' routes"
    );
    let fixture = fixture(&env).await;

    let mut failures = Vec::new();
    let mut rows = Vec::new();
    let mut seen_by_entitled = BTreeSet::new();
    let mut cases = 0;
    for route in &table {
        // The caller entitled to a 2xx goes last: the refused calls before it must have changed
        // nothing it relies on (a cancel needs the request still queued, the order still
        // scheduled).
        let mut callers = CALLERS.to_vec();
        callers.sort_by_key(|&caller| expected(route.family, caller) == Expect::Success);
        let mut row = vec![String::new(); CALLERS.len()];
        for caller in callers {
            cases += 1;
            let call = (route.call)(&fixture, caller);
            let token = token(&env, &fixture, route.family, caller);
            let (status, body) = send(&env, route.method, &call, token.as_deref()).await;
            let case = format!(
                "{} {} as {} ({})",
                route.method,
                call.target,
                caller.name(),
                route.path
            );
            let column = CALLERS.iter().position(|c| *c == caller).expect("listed");
            row[column] = status.as_u16().to_string();
            match expected(route.family, caller) {
                Expect::Success if !status.is_success() => {
                    failures.push(format!("{case}: expected 2xx, got {status}: {body}"));
                }
                Expect::Refused(want, code) => {
                    if status.is_success() {
                        failures.push(format!(
                            "LEAK {case}: expected {want}, got {status}: {body}"
                        ));
                    } else if status != want {
                        failures.push(format!("{case}: expected {want}, got {status}: {body}"));
                    } else {
                        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        if parsed["error"]["code"] != code {
                            failures.push(format!("{case}: expected error code {code}: {body}"));
                        }
                    }
                }
                Expect::Success => {}
            }
            let text = body.to_lowercase();
            if entitled(route.family, caller) {
                seen_by_entitled.extend(
                    fixture
                        .markers
                        .iter()
                        .filter(|(_, value)| text.contains(value.as_str()))
                        .map(|(what, _)| *what),
                );
            } else {
                for (what, value) in &fixture.markers {
                    if text.contains(value.as_str()) {
                        failures.push(format!(
                            "LEAK {case}: {status} body carries {what} {value}: {body}"
                        ));
                    }
                }
            }
        }
        rows.push((format!("{} {}", route.method, route.path), row));
    }

    // The markers are what the API shows those entitled to them (so their absence elsewhere
    // means something).
    for (what, _) in &fixture.markers {
        if !seen_by_entitled.contains(what) {
            failures.push(format!(
                "{what} appears in no entitled answer: not a useful marker"
            ));
        }
    }
    // The forged delivery approved nothing.
    let request = env
        .destination_request(&fixture.a, &fixture.add_request)
        .await
        .expect("A's deposit-address request");
    if request["state"] == "Approved" {
        failures.push(format!(
            "a badly signed webhook approved A's request: {request}"
        ));
    }
    // The webhook's 401s are about the signature: the same route takes a signed delivery.
    let event = webhook_event("matrix.noop", json!({}));
    let (status, body) = env
        .deliver_webhook(&event, &sign_webhook(&env.webhook_secret, &event))
        .await;
    if status != StatusCode::OK {
        failures.push(format!(
            "a signed delivery: expected 200, got {status}: {body}"
        ));
    }

    // Every mutating client route counts against the client's rate of changes: with A's minute
    // spent, each answers 429 `rate_limited` (before looking at ids or calling Dfns).
    let store = store::Store::new(env.dynamodb.clone(), env.table.clone());
    let a = domain::ClientId::parse(&fixture.a).expect("A's id");
    let mut rate_limited = 0;
    for route in table.iter().filter(|r| {
        matches!(r.family, Family::ClientScope | Family::ClientObject)
            && matches!(r.method, "POST" | "PUT" | "PATCH" | "DELETE")
            // A preview changes nothing (a dashboard previews as the client types).
            && !r.path.ends_with("/preview")
    }) {
        // Spend A's minute, and call within it.
        if time::OffsetDateTime::now_utc().second() > 50 {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        }
        loop {
            let window = store
                .count_client_call(&a, time::OffsetDateTime::now_utc(), 60)
                .await
                .expect("count a call");
            if matches!(window, store::open_requests::RateWindow::Refused { .. }) {
                break;
            }
        }
        let call = (route.call)(&fixture, Caller::Owner);
        let token = token(&env, &fixture, route.family, Caller::Owner);
        let (status, body) = send(&env, route.method, &call, token.as_deref()).await;
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status != StatusCode::TOO_MANY_REQUESTS || parsed["error"]["code"] != "rate_limited" {
            failures.push(format!(
                "{} {} with the minute's changes spent: expected 429 rate_limited, got {status}: {body}",
                route.method, route.path
            ));
        }
        rate_limited += 1;
    }
    assert!(
        rate_limited >= 5,
        "mutating client routes found: {rate_limited}"
    );

    let mut matrix = String::new();
    let width = rows.iter().map(|(route, _)| route.len()).max().unwrap_or(0);
    let _ = write!(matrix, "{:width$}", "");
    for caller in CALLERS {
        let _ = write!(matrix, " | {:>9}", caller.name());
    }
    for (route, row) in &rows {
        let _ = write!(matrix, "\n{route:width$}");
        for status in row {
            let _ = write!(matrix, " | {status:>9}");
        }
    }
    eprintln!("{matrix}");
    eprintln!(
        "authorization matrix: {} routes x {} callers = {cases} cases",
        rows.len(),
        CALLERS.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
