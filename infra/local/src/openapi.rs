//! `GET /openapi.json`: an OpenAPI 3.1 document built from the gateway's route table.
//!
//! Paths, methods, path parameters, which function serves each route and whether it needs a
//! bearer token come from the functions' `ROUTES` themselves, so a new route is documented the
//! moment it is served. Request and response bodies are described here, per route
//! ([`describe`]); the function crates' types do not derive a schema (adding `utoipa`/`schemars`
//! derives to `platform` and `store` types is the follow-up), and a route with no description
//! here is still listed, marked `x-undocumented`, and fails this crate's test.

use serde_json::{Value, json};

use crate::gateway::RouteTable;

/// What we say about one route's bodies.
pub struct Description {
    pub summary: &'static str,
    pub request: Option<Value>,
    /// Success status and its body schema.
    pub success: (&'static str, Value),
    /// Extra success statuses (e.g. 202) with their body schema.
    pub also: Vec<(&'static str, Value)>,
    /// Whether the route takes a bearer token (everything but the Dfns webhook).
    pub bearer: bool,
    pub query: Vec<(&'static str, &'static str)>,
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn page_of(item: &str, field: &str) -> Value {
    json!({
        "type": "object",
        "required": [field],
        "properties": {
            field: { "type": "array", "items": reference(item) },
            "nextCursor": { "type": "string" }
        }
    })
}

/// The description of `method path`, if we have one.
pub fn describe(method: &str, path: &str) -> Option<Description> {
    let paging = vec![
        ("limit", "page size (1 to 100)"),
        ("cursor", "the previous page's nextCursor"),
    ];
    Some(match (method, path) {
        ("POST", "/v1/accounts") => Description {
            summary: "Open (or resume) the caller's managed account",
            request: None,
            success: ("200", reference("AccountState")),
            also: vec![("202", reference("AccountState"))],
            bearer: true,
            query: vec![],
        },
        ("POST", "/v1/destination-requests") => Description {
            summary: "Ask for a destination to be added to or removed from the whitelist",
            request: Some(reference("DestinationInput")),
            success: ("201", reference("DestinationRequest")),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("GET", "/v1/destination-requests") => Description {
            summary: "The caller's destination requests, newest first",
            request: None,
            success: (
                "200",
                json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": reference("DestinationRequest")}}}),
            ),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("DELETE", "/v1/destination-requests/{id}") => Description {
            summary: "Cancel a destination request while it is still queued (409 otherwise)",
            request: None,
            success: ("200", reference("DestinationRequest")),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("GET", "/v1/account") => Description {
            summary: "Wallets, balances, approved destinations (live Dfns policy), limits, pending requests",
            request: None,
            success: ("200", reference("AccountView")),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("GET", "/v1/activity") => Description {
            summary: "Transfers, deposits and governance events, newest first (JSON or CSV)",
            request: None,
            success: ("200", page_of("ActivityItem", "items")),
            also: vec![],
            bearer: true,
            query: {
                let mut q = paging.clone();
                q.push(("format", "json (default) or csv"));
                q
            },
        },
        ("GET", "/v1/audit") => Description {
            summary: "The caller's hash-chained audit trail with its verification",
            request: None,
            success: ("200", reference("AuditTrailPage")),
            also: vec![],
            bearer: true,
            query: paging.clone(),
        },
        ("GET", "/v1/notifications") => Description {
            summary: "The caller's notifications, newest first",
            request: None,
            success: ("200", page_of("Notification", "items")),
            also: vec![],
            bearer: true,
            query: paging,
        },
        ("POST", "/v1/trading-authorizations") => Description {
            summary: "Authorize trading through an exchange (its deposit address goes through the destination flow)",
            request: Some(
                json!({"type": "object", "additionalProperties": false, "required": ["exchange"], "properties": {"exchange": {"type": "string"}}}),
            ),
            success: ("201", reference("TradingAuthorization")),
            also: vec![("200", reference("TradingAuthorization"))],
            bearer: true,
            query: vec![],
        },
        ("GET", "/v1/trading-authorizations") => Description {
            summary: "The caller's trading authorizations, newest first",
            request: None,
            success: ("200", page_of("TradingAuthorization", "items")),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("DELETE", "/v1/trading-authorizations/{id}") => Description {
            summary: "Revoke a trading authorization (no new orders; removal of the address requested)",
            request: None,
            success: ("200", reference("TradingAuthorization")),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("POST", "/v1/operator/orders") => Description {
            summary: "Operator: schedule an order moving a client's funds to an exchange",
            request: Some(reference("OrderInput")),
            success: ("201", reference("Order")),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("GET", "/v1/operator/orders") => Description {
            summary: "Operator: orders, newest first",
            request: None,
            success: ("200", page_of("Order", "items")),
            also: vec![],
            bearer: true,
            query: vec![
                ("clientId", "only this client's"),
                ("status", "only orders in this state"),
            ],
        },
        ("POST", "/v1/operator/orders/preview") => Description {
            summary: "Operator: would this transfer pass the client's live policies, and the headroom on each limit (dry run)",
            request: Some(
                json!({"type": "object", "required": ["clientId", "exchange", "asset", "amount"], "properties": {
                    "clientId": {"type": "string"}, "exchange": {"type": "string"}, "asset": {"type": "string"},
                    "amount": {"type": "string", "description": "integer, smallest unit"}, "network": {"type": "string"}
                }}),
            ),
            success: ("200", json!({"type": "object"})),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("POST", "/v1/operator/orders/{id}/cancel") => Description {
            summary: "Operator: cancel an order not yet claimed (409 once claimed)",
            request: None,
            success: ("200", reference("Order")),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("GET", "/v1/operator/clients/{id}") => Description {
            summary: "Operator: a client's account view with its trading authorizations and orders",
            request: None,
            success: ("200", reference("AccountView")),
            also: vec![],
            bearer: true,
            query: vec![],
        },
        ("POST", "/v1/webhooks/dfns") => Description {
            summary: "Dfns webhook receiver (HMAC signature in X-DFNS-WEBHOOK-SIGNATURE, no token)",
            request: Some(json!({"type": "object", "description": "a Dfns webhook event"})),
            success: (
                "200",
                json!({"type": "object", "properties": {"received": {"type": "boolean"}, "outcome": {}}}),
            ),
            also: vec![],
            bearer: false,
            query: vec![],
        },
        _ => return None,
    })
}

fn schemas() -> Value {
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message", "requestId"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "requestId": {"type": "string"}
            }}}
        },
        "DestinationInput": {
            "type": "object",
            "additionalProperties": false,
            "required": ["network", "address", "label", "action"],
            "properties": {
                "network": {"type": "string", "examples": ["EthereumSepolia"]},
                "address": {"type": "string", "description": "EVM: 0x + 40 hex digits; mixed case must pass EIP-55; stored lowercase"},
                "label": {"type": "string", "maxLength": 100},
                "action": {"type": "string", "enum": ["add", "remove"]}
            }
        },
        "DestinationRequest": {
            "type": "object",
            "required": ["id", "network", "address", "label", "action", "state", "createdAt", "updatedAt"],
            "properties": {
                "id": {"type": "string"},
                "clientId": {"type": "string"},
                "network": {"type": "string"},
                "address": {"type": "string"},
                "label": {"type": "string"},
                "action": {"type": "string"},
                "state": {"type": "string", "enum": ["Queued", "Submitted", "PendingApproval", "Approved", "Rejected", "Failed", "Cancelled"]},
                "createdAt": {"type": "string", "format": "date-time"},
                "updatedAt": {"type": "string", "format": "date-time"},
                "approvalId": {"type": "string"},
                "changeRequestId": {"type": "string"},
                "reason": {"type": "string"}
            }
        },
        "AccountState": {
            "type": "object",
            "required": ["clientId", "status", "tier", "wallets", "policies"],
            "properties": {
                "clientId": {"type": "string"},
                "status": {"type": "string", "enum": ["Open", "Opening"]},
                "tier": {"type": "string"},
                "wallets": {"type": "array", "items": {"type": "object", "properties": {
                    "network": {"type": "string"}, "walletId": {"type": "string"}, "address": {"type": "string"}
                }}},
                "policies": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Dfns policy id by kind"}
            }
        },
        "AccountView": {
            "type": "object",
            "required": ["clientId", "wallets", "approvedDestinations", "limits"],
            "properties": {
                "clientId": {"type": "string"},
                "openedAt": {"type": "string", "format": "date-time"},
                "tier": {"type": "string"},
                "wallets": {"type": "array", "items": {"type": "object", "properties": {
                    "network": {"type": "string"}, "address": {"type": "string"}, "walletId": {"type": "string"},
                    "balances": {"type": "array", "items": {"type": "object", "properties": {
                        "kind": {"type": "string"}, "symbol": {"type": "string"}, "decimals": {"type": "integer"},
                        "contract": {"type": "string"}, "amount": {"type": "string", "description": "integer, smallest unit"}
                    }}}
                }}},
                "approvedDestinations": {"type": "array", "items": {"type": "object", "properties": {
                    "address": {"type": "string"}, "label": {"type": "string"}, "network": {"type": "string"}, "requestId": {"type": "string"}
                }}},
                "whitelistPolicy": {"type": "object"},
                "limits": {"type": "array", "items": {"type": "object"}},
                "pendingRequests": {"type": "array", "items": {"$ref": "#/components/schemas/DestinationRequest"}}
            }
        },
        "ActivityItem": {
            "type": "object",
            "required": ["id", "occurredAt", "category", "kind"],
            "properties": {
                "id": {"type": "string"}, "occurredAt": {"type": "string", "format": "date-time"},
                "category": {"type": "string"}, "kind": {"type": "string"}, "status": {"type": "string"},
                "network": {"type": "string"}, "walletId": {"type": "string"}, "direction": {"type": "string"},
                "asset": {"type": "string"}, "contract": {"type": "string"},
                "amount": {"type": "string", "description": "integer, smallest unit"}, "decimals": {"type": "integer"},
                "fee": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
                "label": {"type": "string"}, "txHash": {"type": "string"}, "reference": {"type": "string"},
                "actor": {"type": "string"}, "reason": {"type": "string"}
            }
        },
        "AuditTrailPage": {
            "type": "object",
            "required": ["entries", "verification"],
            "properties": {
                "entries": {"type": "array", "items": {"type": "object", "properties": {
                    "seq": {"type": "integer"}, "prevHash": {"type": "string"}, "hash": {"type": "string"},
                    "body": {"type": "string"}, "event": {"type": "object"}
                }}},
                "nextCursor": {"type": "string"},
                "verification": {"type": "object", "required": ["verified"], "properties": {
                    "verified": {"type": "boolean"}, "length": {"type": "integer"}, "headHash": {"type": "string"},
                    "firstBadSeq": {"type": "integer"}, "reason": {"type": "string"}
                }}
            }
        },
        "Notification": {"type": "object"},
        "TradingAuthorization": {"type": "object", "properties": {
            "id": {"type": "string"}, "exchange": {"type": "string"}, "status": {"type": "string"},
            "network": {"type": "string"}, "address": {"type": "string"}, "destinationRequestId": {"type": "string"}
        }},
        "OrderInput": {"type": "object", "required": ["clientId", "exchange", "asset", "amount"], "properties": {
            "clientId": {"type": "string"}, "exchange": {"type": "string"}, "asset": {"type": "string"},
            "amount": {"type": "string", "description": "integer, smallest unit"},
            "executeAt": {"type": "string", "format": "date-time", "description": "absent: now"},
            "network": {"type": "string"}
        }},
        "Order": {"type": "object", "properties": {
            "id": {"type": "string"}, "clientId": {"type": "string"}, "exchange": {"type": "string"},
            "asset": {"type": "string"}, "amount": {"type": "string"}, "state": {"type": "string"},
            "executeAt": {"type": "string", "format": "date-time"}, "transferId": {"type": "string"}, "reason": {"type": "string"}
        }}
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": reference("Error")}}
    })
}

/// The document for `routes`, served from `base_url`.
pub fn document(routes: &RouteTable, base_url: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for (route, function) in routes.routes() {
        let method = route.method.as_str().to_ascii_lowercase();
        let parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut operation = serde_json::Map::new();
        operation.insert(
            "operationId".into(),
            json!(format!(
                "{function}.{method}{}",
                route.path.replace(['/', '{', '}', '-'], "_")
            )),
        );
        operation.insert("tags".into(), json!([function]));
        operation.insert("x-function".into(), json!(function));
        let mut responses = serde_json::Map::new();
        let mut all_parameters = parameters;
        match describe(route.method.as_str(), route.path) {
            Some(d) => {
                operation.insert("summary".into(), json!(d.summary));
                if let Some(schema) = d.request {
                    operation.insert(
                        "requestBody".into(),
                        json!({"required": true, "content": {"application/json": {"schema": schema}}}),
                    );
                }
                for (status, schema) in std::iter::once(d.success).chain(d.also) {
                    responses.insert(
                        status.into(),
                        json!({"description": "success", "content": {"application/json": {"schema": schema}}}),
                    );
                }
                for (name, description) in d.query {
                    all_parameters.push(json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}}));
                }
                if d.bearer {
                    operation.insert("security".into(), json!([{"bearer": []}]));
                    responses.insert("401".into(), error_response("no or bad token"));
                    responses.insert("403".into(), error_response("wrong role"));
                } else {
                    operation.insert("security".into(), json!([]));
                    responses.insert(
                        "401".into(),
                        error_response("bad signature or stale timestamp"),
                    );
                }
            }
            None => {
                operation.insert("x-undocumented".into(), json!(true));
                responses.insert("200".into(), json!({"description": "success"}));
            }
        }
        for (status, description) in [
            ("400", "bad input; nothing changed"),
            ("404", "not found, or not yours"),
            ("409", "conflict"),
            ("429", "upstream throttled; retry"),
            ("500", "internal error"),
            ("503", "upstream unavailable; retry"),
        ] {
            responses.insert(status.into(), error_response(description));
        }
        if !all_parameters.is_empty() {
            operation.insert("parameters".into(), json!(all_parameters));
        }
        operation.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry
            .as_object_mut()
            .expect("path items are objects")
            .insert(method, Value::Object(operation));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Managed accounts platform API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Client-facing routes of the managed-accounts platform (design.md). Errors: {\"error\":{\"code\",\"message\",\"requestId\"}}."
        },
        "servers": [{"url": base_url}],
        "paths": Value::Object(paths),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::FUNCTIONS;

    #[test]
    fn every_served_route_is_documented_with_its_parameters() {
        let table = RouteTable::new(FUNCTIONS).unwrap();
        let doc = document(&table, "http://127.0.0.1:1");
        let mut count = 0;
        for (route, function) in table.routes() {
            count += 1;
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} missing", route.method, route.path);
            assert_eq!(op["x-function"], function);
            assert!(
                op.get("x-undocumented").is_none(),
                "{} {} has no description in openapi::describe",
                route.method,
                route.path
            );
            for name in route.path.split('/').filter_map(|s| s.strip_prefix('{')) {
                let name = name.trim_end_matches('}');
                let params = op["parameters"].as_array().unwrap();
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path")
                );
            }
        }
        assert!(count >= 17, "only {count} routes");
        // Every $ref names a schema that exists.
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(doc["components"]["schemas"].get(&name).is_some(), "{name}");
        }
        assert!(
            doc["paths"]["/v1/webhooks/dfns"]["post"]["security"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
}
