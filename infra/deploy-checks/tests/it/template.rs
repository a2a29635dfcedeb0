//! The real `template.yaml` against the code: every name it references is defined, every
//! function crate is deployed, every route reaches a handler and every handler a route, and only
//! the Dfns webhook is open (no JWT authorizer).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use deploy_checks::{RouteKey, Template, compare_routes};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Template {
    let text = std::fs::read_to_string(repo().join("template.yaml")).expect("read template.yaml");
    Template::parse(&text).expect("template.yaml parses")
}

/// Every HTTP function crate's routes (from its router), by crate (= binary) name. A new HTTP
/// function crate must be added here; `every_function_crate_is_deployed` notices one that is not.
fn handlers() -> BTreeMap<String, BTreeSet<RouteKey>> {
    type Router = fn() -> platform::http::FunctionRouter;
    let crates: &[(&str, Router)] = &[
        ("signup", signup::router),
        ("destinations", destinations::router),
        ("reporting", reporting::router),
        ("trading", trading::router),
        ("operator", operator::router),
        ("dfns-webhook", dfns_webhook::router),
    ];
    crates
        .iter()
        .map(|(name, router)| {
            let keys = platform::http::routes_of(router()).into_iter().collect();
            ((*name).to_owned(), keys)
        })
        .collect()
}

#[test]
fn every_reference_names_something_defined() {
    let undefined = template().undefined_references();
    assert!(undefined.is_empty(), "undefined names: {undefined:#?}");
}

#[test]
fn every_route_has_a_handler_and_every_handler_a_route() {
    let mismatches = compare_routes(&template().routes(), &handlers());
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn every_function_crate_is_deployed_and_nothing_else() {
    let mut crates = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("functions")).unwrap() {
        let path = entry.unwrap().path();
        let manifest = path.join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let text = std::fs::read_to_string(manifest).unwrap();
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim().trim_matches('"').to_owned())
            .expect("package name");
        crates.insert(name);
    }
    let deployed: BTreeSet<String> = template().function_binaries().into_values().collect();
    assert_eq!(deployed, crates);
    // Crates with ROUTES are exactly those the template routes HTTP to.
    let routed: BTreeSet<String> = template().routes().into_iter().map(|r| r.binary).collect();
    let with_routes: BTreeSet<String> = handlers().into_keys().collect();
    assert_eq!(routed, with_routes);
}

#[test]
fn only_the_dfns_webhook_is_open() {
    let open: Vec<_> = template()
        .routes()
        .into_iter()
        .filter(|r| !r.authorized)
        .map(|r| (r.binary, r.method, r.path))
        .collect();
    assert_eq!(
        open,
        vec![(
            "dfns-webhook".to_owned(),
            "POST".to_owned(),
            "/v1/webhooks/dfns".to_owned()
        )]
    );
}

#[test]
fn every_function_is_arm64_cargo_lambda_on_al2023() {
    let t = template();
    let globals = &t.0["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    for (id, function) in t.functions() {
        assert_eq!(
            function["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        assert!(
            function["Properties"].get("Runtime").is_none()
                && function["Properties"].get("Architectures").is_none(),
            "{id} overrides the runtime or architecture"
        );
    }
}

/// Least privilege: no function statement grants a wildcard action or resource, each function
/// reads only the platform secret, and only functions that notify may put events.
#[test]
fn function_permissions_are_narrow() {
    let t = template();
    for (id, function) in t.functions() {
        let policies = function["Properties"]["Policies"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{id} has no inline policy"));
        for statement in policies
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().cloned().unwrap_or_default())
        {
            let actions: Vec<String> = match &statement["Action"] {
                serde_yaml::Value::String(one) => vec![one.clone()],
                serde_yaml::Value::Sequence(many) => many
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
                other => panic!("{id}: action {other:?}"),
            };
            for action in &actions {
                assert!(!action.contains('*'), "{id} grants {action}");
            }
            assert_ne!(
                statement["Resource"].as_str(),
                Some("*"),
                "{id} grants {actions:?} on every resource"
            );
            if actions.iter().any(|a| a.starts_with("secretsmanager:")) {
                assert_eq!(actions, ["secretsmanager:GetSecretValue"], "{id}");
            }
        }
    }
}
