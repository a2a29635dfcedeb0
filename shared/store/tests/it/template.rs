//! `template.yaml`'s table must be the table the code defines (`store::schema::TABLE`).

use std::collections::BTreeSet;

use serde_yaml::Value;
use store::schema::TABLE;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let text = std::fs::read_to_string(path).expect("read template.yaml");
    // CloudFormation short forms (`!Ref`, `!Sub`, …) parse as tagged values; the table's keys
    // use none of them.
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

fn str_at<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {value:?}"))
}

/// (HASH name, RANGE name) of a CloudFormation KeySchema list.
fn key_schema(value: &Value) -> (String, String) {
    let elements = value.as_sequence().expect("KeySchema is a list");
    let find = |kind: &str| {
        let matching: Vec<_> = elements
            .iter()
            .filter(|e| str_at(e, "KeyType") == kind)
            .collect();
        assert_eq!(matching.len(), 1, "exactly one {kind} key in {value:?}");
        str_at(matching[0], "AttributeName").to_owned()
    };
    assert_eq!(elements.len(), 2, "hash and range key");
    (find("HASH"), find("RANGE"))
}

fn table_properties(template: &Value) -> Value {
    let resources = template["Resources"].as_mapping().expect("Resources");
    let tables: Vec<_> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .collect();
    assert_eq!(
        tables.len(),
        1,
        "exactly one DynamoDB table in template.yaml"
    );
    tables[0]["Properties"].clone()
}

#[test]
fn template_table_matches_the_code() {
    let template = template();
    assert_eq!(str_at(&template, "Transform"), "AWS::Serverless-2016-10-31");
    assert_table_matches_code(&table_properties(&template));
}

/// Panics naming the first difference between a template table and `TABLE`.
fn assert_table_matches_code(table: &Value) {
    assert_eq!(
        key_schema(&table["KeySchema"]),
        (
            TABLE.partition_key.name.to_owned(),
            TABLE.sort_key.name.to_owned()
        )
    );

    let in_template: BTreeSet<(String, String)> = table["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            (
                str_at(a, "AttributeName").to_owned(),
                str_at(a, "AttributeType").to_owned(),
            )
        })
        .collect();
    let in_code: BTreeSet<(String, String)> = TABLE
        .attribute_definitions()
        .iter()
        .map(|a| (a.name.to_owned(), a.kind.as_str().to_owned()))
        .collect();
    assert_eq!(in_template, in_code, "AttributeDefinitions");

    let indexes_in_template: BTreeSet<(String, (String, String), String)> =
        table["GlobalSecondaryIndexes"]
            .as_sequence()
            .expect("GlobalSecondaryIndexes")
            .iter()
            .map(|i| {
                (
                    str_at(i, "IndexName").to_owned(),
                    key_schema(&i["KeySchema"]),
                    str_at(&i["Projection"], "ProjectionType").to_owned(),
                )
            })
            .collect();
    let indexes_in_code: BTreeSet<(String, (String, String), String)> = TABLE
        .indexes
        .iter()
        .map(|i| {
            (
                i.name.to_owned(),
                (i.partition_key.name.to_owned(), i.sort_key.name.to_owned()),
                "ALL".to_owned(),
            )
        })
        .collect();
    assert_eq!(
        indexes_in_template, indexes_in_code,
        "GlobalSecondaryIndexes"
    );

    let ttl = &table["TimeToLiveSpecification"];
    assert_eq!(str_at(ttl, "AttributeName"), TABLE.ttl_attribute);
    assert_eq!(ttl["Enabled"].as_bool(), Some(true));

    // Production settings the code cannot create locally but the deployment must have.
    assert_eq!(str_at(table, "BillingMode"), "PAY_PER_REQUEST");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        table["SSESpecification"]["SSEEnabled"].as_bool(),
        Some(true)
    );
}

#[test]
fn the_comparison_notices_a_drifted_template() {
    // Each drift alone must make the comparison fail.
    type Drift = (&'static str, fn(&mut Value));
    let drifts: [Drift; 4] = [
        ("index removed", |t| {
            t["GlobalSecondaryIndexes"].as_sequence_mut().unwrap().pop();
        }),
        ("ttl attribute renamed", |t| {
            t["TimeToLiveSpecification"]["AttributeName"] = Value::from("ttl");
        }),
        ("attribute type changed", |t| {
            let defs = t["AttributeDefinitions"].as_sequence_mut().unwrap();
            let due_at = defs
                .iter_mut()
                .find(|d| d["AttributeName"].as_str() == Some("dueAt"))
                .unwrap();
            due_at["AttributeType"] = Value::from("S");
        }),
        ("index key renamed", |t| {
            t["GlobalSecondaryIndexes"][0]["KeySchema"][1]["AttributeName"] = Value::from("other");
        }),
    ];
    let original = table_properties(&template());
    for (name, drift) in drifts {
        let mut drifted = original.clone();
        drift(&mut drifted);
        let outcome = std::panic::catch_unwind(|| assert_table_matches_code(&drifted));
        assert!(outcome.is_err(), "drift not noticed: {name}");
    }
}
