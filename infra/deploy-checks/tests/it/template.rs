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
        ("withdrawals", withdrawals::router),
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

/// Least privilege: no function statement grants a wildcard action or resource, secrets are only
/// read (never listed or written), and only functions that notify may put events.
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

/// Every function crate's declared secrets (`SECRETS`), by binary name.
fn secrets_held() -> BTreeMap<&'static str, platform::SecretsHeld> {
    BTreeMap::from([
        ("signup", signup::SECRETS),
        ("destinations", destinations::SECRETS),
        ("reporting", reporting::SECRETS),
        ("trading", trading::SECRETS),
        ("withdrawals", withdrawals::SECRETS),
        ("operator", operator::SECRETS),
        ("dfns-webhook", dfns_webhook::SECRETS),
        ("order-execution", order_execution::SECRETS),
        ("reconciler", reconciler::SECRETS),
        ("webhook-consumer", webhook_consumer::SECRETS),
    ])
}

/// The secret parameters a function may `GetSecretValue` on, and those it is told about in its
/// environment (`DFNS_*_SECRET_ID`), each as the parameter's name.
fn granted_and_passed(function: &serde_yaml::Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let reference = |value: &serde_yaml::Value| match value {
        serde_yaml::Value::Tagged(tagged) if tagged.tag == "!Ref" => {
            tagged.value.as_str().map(str::to_owned)
        }
        _ => None,
    };
    let mut granted = BTreeSet::new();
    for statement in function["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| p["Statement"].as_sequence().cloned().unwrap_or_default())
    {
        if statement["Action"].as_str() == Some("secretsmanager:GetSecretValue") {
            let resources = match &statement["Resource"] {
                serde_yaml::Value::Sequence(many) => many.clone(),
                one => vec![one.clone()],
            };
            for resource in &resources {
                granted.insert(reference(resource).unwrap_or_else(|| format!("{resource:?}")));
            }
        }
    }
    let mut passed = BTreeSet::new();
    if let Some(variables) = function["Properties"]["Environment"]["Variables"].as_mapping() {
        for (name, value) in variables {
            if name.as_str().is_some_and(|n| n.ends_with("_SECRET_ID")) {
                passed.insert(reference(value).unwrap_or_else(|| format!("{value:?}")));
            }
        }
    }
    (granted, passed)
}

fn expected_parameters(held: platform::SecretsHeld) -> BTreeSet<String> {
    [
        (held.signing, "DfnsSigningSecretArn"),
        (held.read_only, "DfnsReadSecretArn"),
        (held.webhook, "DfnsWebhookSecretArn"),
    ]
    .into_iter()
    .filter(|(held, _)| *held)
    .map(|(_, parameter)| parameter.to_owned())
    .collect()
}

/// Credentials by need: each function may read, and is told about, exactly the secrets its crate
/// says it holds; no secret id is global.
#[test]
fn each_function_reads_exactly_the_secrets_its_crate_holds() {
    let t = template();
    let globals = &t.0["Globals"]["Function"]["Environment"]["Variables"];
    for name in [
        "DFNS_SIGNING_SECRET_ID",
        "DFNS_READ_SECRET_ID",
        "DFNS_WEBHOOK_SECRET_ID",
        "PLATFORM_SECRET_ID",
    ] {
        assert!(globals.get(name).is_none(), "{name} is global");
    }
    let held = secrets_held();
    let binaries = t.function_binaries();
    assert_eq!(
        binaries
            .values()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        held.keys().copied().collect::<BTreeSet<_>>(),
        "every deployed function is listed here"
    );
    for (id, function) in t.functions() {
        let binary = binaries[&id].as_str();
        let expected = expected_parameters(held[binary]);
        let (granted, passed) = granted_and_passed(function);
        assert_eq!(granted, expected, "{id} ({binary}) may read");
        assert_eq!(passed, expected, "{id} ({binary}) is told about");
    }
}

/// The acceptance point, said plainly: the internet-facing webhook receiver and read-only
/// reporting cannot read the signing key, and only the receiver reads the webhook secret.
#[test]
fn reporting_and_the_webhook_receiver_cannot_read_the_signing_secret() {
    let t = template();
    let binaries = t.function_binaries();
    let mut webhook_readers = BTreeSet::new();
    for (id, function) in t.functions() {
        let (granted, _) = granted_and_passed(function);
        let binary = binaries[&id].as_str();
        if matches!(binary, "reporting" | "dfns-webhook" | "operator") {
            assert!(
                !granted.contains("DfnsSigningSecretArn"),
                "{binary} can read the signing secret"
            );
        }
        if granted.contains("DfnsWebhookSecretArn") {
            webhook_readers.insert(binary.to_owned());
        }
    }
    assert_eq!(webhook_readers, BTreeSet::from(["dfns-webhook".to_owned()]));
}

/// `!Ref name` / `!GetAtt name.attr` as text (`"!Ref name"`), anything else as `None`.
fn intrinsic(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::Tagged(tagged) => Some(format!(
            "!{} {}",
            tagged.tag.to_string().trim_start_matches('!'),
            tagged.value.as_str().unwrap_or_default()
        )),
        _ => None,
    }
}

fn strings(value: &serde_yaml::Value) -> BTreeSet<String> {
    value
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The officers' alerts reach their SNS topic: the rule on the notification bus matches the
/// `source` and `detail-type`s the platform publishes (issue 18), targets the officers' topic,
/// and the topic lets that rule, and only it, publish.
#[test]
fn the_officers_alert_rule_matches_what_the_platform_publishes_and_feeds_their_topic() {
    use platform::compliance::{APPROVAL_PENDING, APPROVAL_REMINDER, OFFICERS_EVENT_SOURCE};
    let template = template();
    let resources = &template.0["Resources"];
    let rule = &resources["ComplianceAlertsRule"];
    assert_eq!(rule["Type"].as_str(), Some("AWS::Events::Rule"));
    let properties = &rule["Properties"];
    assert_eq!(
        intrinsic(&properties["EventBusName"]).as_deref(),
        Some("!Ref NotificationBusName"),
        "the bus the platform publishes on (EVENT_BUS_NAME)"
    );
    let pattern = &properties["EventPattern"];
    assert_eq!(
        strings(&pattern["source"]),
        BTreeSet::from([OFFICERS_EVENT_SOURCE.to_owned()])
    );
    assert_eq!(
        strings(&pattern["detail-type"]),
        BTreeSet::from([APPROVAL_PENDING.to_owned(), APPROVAL_REMINDER.to_owned()])
    );
    let targets: Vec<_> = properties["Targets"]
        .as_sequence()
        .expect("targets")
        .iter()
        .filter_map(|t| intrinsic(&t["Arn"]))
        .collect();
    assert_eq!(targets, ["!Ref ComplianceAlertsTopic"]);

    let topic = &resources["ComplianceAlertsTopic"];
    assert_eq!(topic["Type"].as_str(), Some("AWS::SNS::Topic"));
    let policy = &resources["ComplianceAlertsTopicPolicy"]["Properties"];
    let topics: Vec<_> = policy["Topics"]
        .as_sequence()
        .expect("topics")
        .iter()
        .filter_map(intrinsic)
        .collect();
    assert_eq!(topics, ["!Ref ComplianceAlertsTopic"]);
    let statements = policy["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("statements");
    assert_eq!(statements.len(), 1, "{statements:?}");
    let statement = &statements[0];
    assert_eq!(statement["Effect"].as_str(), Some("Allow"));
    assert_eq!(
        statement["Principal"]["Service"].as_str(),
        Some("events.amazonaws.com")
    );
    assert_eq!(statement["Action"].as_str(), Some("sns:Publish"));
    assert_eq!(
        intrinsic(&statement["Condition"]["ArnEquals"]["aws:SourceArn"]).as_deref(),
        Some("!GetAtt ComplianceAlertsRule.Arn"),
        "only the officers' rule may publish"
    );
    let outputs = &template.0["Outputs"]["ComplianceAlertsTopicArn"]["Value"];
    assert_eq!(
        intrinsic(outputs).as_deref(),
        Some("!Ref ComplianceAlertsTopic"),
        "officers subscribe to the output's topic"
    );
}
