//! The README's deploy instructions name only things that exist: every stack parameter in its
//! table is a template parameter (and every template parameter is in the table), the outputs it
//! names are outputs, the secret fields are the ones the code reads, and each configuration
//! variable said to come from a parameter is set from that parameter by the template.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use deploy_checks::{Template, backticked_in_section};
use serde_yaml::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("read README.md")
}

fn template() -> Template {
    Template::parse(&std::fs::read_to_string(repo().join("template.yaml")).unwrap()).unwrap()
}

/// Lines of one `## ` section.
fn section<'a>(markdown: &'a str, heading: &str) -> Vec<&'a str> {
    let mut inside = false;
    let mut lines = Vec::new();
    for line in markdown.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            inside = title.trim() == heading;
            continue;
        }
        if inside {
            lines.push(line);
        }
    }
    assert!(!lines.is_empty(), "README has no `## {heading}` section");
    lines
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Table rows (`| … |`) of a section, as their cells.
fn rows<'a>(lines: &[&'a str]) -> Vec<Vec<&'a str>> {
    lines
        .iter()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}

#[test]
fn the_deploy_parameter_table_is_exactly_the_templates_parameters() {
    let text = readme();
    let deploy = section(&text, "Deploy");
    let in_readme: BTreeSet<String> = rows(&deploy)
        .iter()
        .filter(|cells| cells.len() == 2)
        .flat_map(|cells| backticked(cells[0]))
        .filter(|name| name.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .collect();
    assert_eq!(in_readme, template().parameters());
}

#[test]
fn the_outputs_the_readme_names_exist() {
    let text = readme();
    let line = section(&text, "Deploy")
        .into_iter()
        .skip_while(|l| !l.starts_with("The stack's outputs"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let named: BTreeSet<String> = backticked(&line).into_iter().collect();
    assert!(
        named.contains("WebhookUrl") && named.contains("ApiUrl"),
        "{named:?}"
    );
    let outputs: BTreeSet<String> = template().0["Outputs"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    assert!(
        named.is_subset(&outputs),
        "{named:?} not all in {outputs:?}"
    );
    // Every backticked CamelCase name in the deploy section is a parameter or an output of the
    // template, or one of the Dfns values the text explains (so a renamed parameter or output
    // cannot leave a stale name behind).
    let parameters = template().parameters();
    let dfns_values = [
        "AlwaysTrigger",
        "Block",
        "RequestApproval",
        "Ethereum",
        "EthereumSepolia",
    ];
    for name in backticked_in_section(&text, "Deploy") {
        let camel = name.len() > 1
            && name.chars().all(|c| c.is_ascii_alphanumeric())
            && name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.chars().any(|c| c.is_ascii_lowercase());
        if camel {
            assert!(
                parameters.contains(&name)
                    || outputs.contains(&name)
                    || dfns_values.contains(&name.as_str()),
                "`{name}` in the deploy section is neither a parameter nor an output"
            );
        }
    }
}

#[test]
fn the_secret_fields_named_are_the_ones_the_code_reads() {
    let text = readme();
    let mut named: BTreeSet<String> = BTreeSet::new();
    for heading in ["Deploy", "Configuration", "Operating"] {
        for line in section(&text, heading) {
            // Backticked names and JSON keys in code blocks.
            let mut candidates = backticked(line);
            candidates.extend(line.split('"').skip(1).step_by(2).map(str::to_owned));
            named.extend(candidates.into_iter().filter(|c| {
                c.starts_with("dfns")
                    && c.len() > 4
                    && c.chars().all(|ch| ch.is_ascii_alphanumeric())
                    && c.chars().nth(4).is_some_and(|ch| ch.is_ascii_uppercase())
            }));
        }
    }
    // Exactly the fields of the three secrets, as the code names them.
    let signing = [
        platform_config::FIELD_SERVICE_ACCOUNT_TOKEN,
        platform_config::FIELD_CREDENTIAL_ID,
        platform_config::FIELD_PRIVATE_KEY_PEM,
    ];
    let read_only = [platform_config::FIELD_READ_ONLY_TOKEN];
    let webhook = [platform_config::FIELD_WEBHOOK_SECRET];
    let optional = platform_config::FIELD_WEBHOOK_SECRET_NEXT;
    let expected: BTreeSet<String> = signing
        .iter()
        .chain(&read_only)
        .chain(&webhook)
        .chain([&optional])
        .map(|f| (*f).to_owned())
        .collect();
    assert_eq!(named, expected, "the README's secret fields");
    // Each secret parses from exactly its required fields, and not without any one of them.
    fn parses<K: platform_config::SecretKind>(fields: &[&str]) -> bool {
        let object: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|f| ((*f).to_owned(), serde_json::Value::String("x".repeat(40))))
            .collect();
        K::from_json(&serde_json::Value::Object(object).to_string()).is_ok()
    }
    fn without(fields: &[&'static str], missing: &str) -> Vec<&'static str> {
        fields.iter().copied().filter(|f| *f != missing).collect()
    }
    assert!(parses::<platform_config::SigningCredential>(&signing));
    assert!(parses::<platform_config::ReadCredential>(&read_only));
    assert!(parses::<platform_config::WebhookSecrets>(&webhook));
    assert!(parses::<platform_config::WebhookSecrets>(&[
        webhook[0], optional
    ]));
    for missing in signing {
        assert!(!parses::<platform_config::SigningCredential>(&without(
            &signing, missing
        )));
    }
    assert!(!parses::<platform_config::ReadCredential>(&[]));
    assert!(!parses::<platform_config::WebhookSecrets>(&[optional]));
    // The placeholder the README tells deployers to use is the one the functions refuse to verify
    // with (and bootstrap replaces).
    assert!(text.contains(&format!(
        "\"dfnsWebhookSecret\": \"{}\"",
        platform_config::WEBHOOK_SECRET_PLACEHOLDER
    )));
}

/// `!Ref Param` (or a plain value) the template gives `variable`, globally or per function.
fn template_sources(template: &Template, variable: &str) -> BTreeSet<String> {
    let mut sources = BTreeSet::new();
    let mut add = |value: Option<&Value>| {
        if let Some(Value::Tagged(tagged)) = value {
            if tagged.tag == "!Ref" {
                if let Some(name) = tagged.value.as_str() {
                    sources.insert(name.to_owned());
                }
            }
        }
    };
    add(template.0["Globals"]["Function"]["Environment"]["Variables"].get(variable));
    for (_, function) in template.functions() {
        add(function["Properties"]["Environment"]["Variables"].get(variable));
    }
    sources
}

#[test]
fn each_configuration_variable_comes_from_the_parameter_the_readme_says() {
    let text = readme();
    let template = template();
    let table = rows(&section(&text, "Configuration"));
    let mut checked = 0;
    for cells in table.iter().filter(|c| c.len() == 4) {
        let variables = backticked(cells[0]);
        let parameters = backticked(cells[1]);
        let [variable] = variables.as_slice() else {
            continue;
        };
        match parameters.as_slice() {
            [parameter] => {
                assert!(
                    template.parameters().contains(parameter),
                    "`{parameter}` is not a parameter"
                );
                assert_eq!(
                    template_sources(&template, variable),
                    BTreeSet::from([parameter.clone()]),
                    "{variable} is not set from {parameter}"
                );
                checked += 1;
            }
            [] if cells[1].contains("table") => {
                assert_eq!(
                    template_sources(&template, variable),
                    BTreeSet::from(["PlatformTable".to_owned()])
                );
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked >= 15, "only {checked} rows checked");
    // And no variable the template sets is missing from the table.
    let documented: BTreeSet<String> = table
        .iter()
        .filter(|c| c.len() == 4)
        .flat_map(|c| backticked(c[0]))
        .collect();
    for variable in template.environment_variables() {
        if variable == "RUST_LOG" {
            continue;
        }
        assert!(
            documented.contains(&variable),
            "{variable} is set by the template but not in the README"
        );
    }
}
