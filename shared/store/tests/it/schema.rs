use aws_sdk_dynamodb::types::{BillingMode, TimeToLiveStatus};
use store::schema::{TABLE, create_table};

use crate::dynamodb_client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_is_idempotent_and_builds_the_defined_table() {
    let client = dynamodb_client().await;
    let name = format!("test-schema-{}", ulid::Ulid::new());
    // Concurrent and repeated creation both succeed.
    let (a, b) = tokio::join!(create_table(&client, &name), create_table(&client, &name));
    a.unwrap();
    b.unwrap();
    create_table(&client, &name).await.unwrap();

    let table = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let key_names: Vec<_> = table
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_owned())
        .collect();
    assert_eq!(
        key_names,
        vec![TABLE.partition_key.name, TABLE.sort_key.name]
    );
    let mut attributes: Vec<_> = table
        .attribute_definitions()
        .iter()
        .map(|a| {
            (
                a.attribute_name().to_owned(),
                a.attribute_type().as_str().to_owned(),
            )
        })
        .collect();
    attributes.sort();
    let expected: Vec<_> = TABLE
        .attribute_definitions()
        .iter()
        .map(|a| (a.name.to_owned(), a.kind.as_str().to_owned()))
        .collect();
    assert_eq!(attributes, expected);
    let mut indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            let keys: Vec<_> = i
                .key_schema()
                .iter()
                .map(|k| k.attribute_name().to_owned())
                .collect();
            (i.index_name().unwrap().to_owned(), keys)
        })
        .collect();
    indexes.sort();
    let mut expected_indexes: Vec<_> = TABLE
        .indexes
        .iter()
        .map(|i| {
            (
                i.name.to_owned(),
                vec![i.partition_key.name.to_owned(), i.sort_key.name.to_owned()],
            )
        })
        .collect();
    expected_indexes.sort();
    assert_eq!(indexes, expected_indexes);
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );

    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some(TABLE.ttl_attribute));
    assert!(matches!(
        ttl.time_to_live_status(),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ));
}
