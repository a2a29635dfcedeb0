//! The table definition, in one place. Local runs create the table from it ([`create_table`]) and a
//! test checks that `template.yaml`'s table matches it ([`TABLE`]).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};

use crate::StoreError;

/// DynamoDB scalar type of a key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttributeType {
    /// String (`S`).
    S,
    /// Number (`N`).
    N,
}

impl AttributeType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::S => "S",
            AttributeType::N => "N",
        }
    }

    fn sdk(self) -> ScalarAttributeType {
        match self {
            AttributeType::S => ScalarAttributeType::S,
            AttributeType::N => ScalarAttributeType::N,
        }
    }
}

/// A key attribute: name and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: &'static str,
    pub kind: AttributeType,
}

/// A global secondary index (projection: all attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDefinition {
    pub name: &'static str,
    pub partition_key: KeyAttribute,
    pub sort_key: KeyAttribute,
}

/// The whole table definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDefinition {
    pub partition_key: KeyAttribute,
    pub sort_key: KeyAttribute,
    pub indexes: &'static [IndexDefinition],
    /// Epoch-seconds attribute DynamoDB TTL deletes items by.
    pub ttl_attribute: &'static str,
}

impl TableDefinition {
    /// Every key attribute of the table and its indexes, each once, sorted by name
    /// (CloudFormation's `AttributeDefinitions`).
    pub fn attribute_definitions(&self) -> Vec<KeyAttribute> {
        let mut all = vec![self.partition_key, self.sort_key];
        for index in self.indexes {
            all.push(index.partition_key);
            all.push(index.sort_key);
        }
        all.sort_by_key(|a| a.name);
        all.dedup_by_key(|a| a.name);
        all
    }
}

pub const PARTITION_KEY: &str = "pk";
pub const SORT_KEY: &str = "sk";
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// Lookups: wallet → client, approval → destination request, client → orders.
pub const GSI1: &str = "gsi1";
/// Lookups: change request → destination request.
pub const GSI2: &str = "gsi2";
/// Sparse: orders that need an execution run, by when.
pub const DUE_INDEX: &str = "due";
/// Sparse: work not finished yet, per kind (destination requests not final, orders at Dfns
/// but not final), oldest first: what the reconciler and the in-flight refresh read.
pub const OPEN_INDEX: &str = "open";

const fn s(name: &'static str) -> KeyAttribute {
    KeyAttribute {
        name,
        kind: AttributeType::S,
    }
}

/// The single definition of the table.
pub const TABLE: TableDefinition = TableDefinition {
    partition_key: s(PARTITION_KEY),
    sort_key: s(SORT_KEY),
    indexes: &[
        IndexDefinition {
            name: GSI1,
            partition_key: s("gsi1pk"),
            sort_key: s("gsi1sk"),
        },
        IndexDefinition {
            name: GSI2,
            partition_key: s("gsi2pk"),
            sort_key: s("gsi2sk"),
        },
        IndexDefinition {
            name: DUE_INDEX,
            partition_key: s("duePk"),
            sort_key: KeyAttribute {
                name: "dueAt",
                kind: AttributeType::N,
            },
        },
        IndexDefinition {
            name: OPEN_INDEX,
            partition_key: s("openPk"),
            sort_key: s("openSk"),
        },
    ],
    ttl_attribute: TTL_ATTRIBUTE,
};

fn key_schema(pk: KeyAttribute, sk: KeyAttribute) -> Result<Vec<KeySchemaElement>, StoreError> {
    let build = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(|e| build_error("key schema", e))
    };
    Ok(vec![
        build(pk.name, KeyType::Hash)?,
        build(sk.name, KeyType::Range)?,
    ])
}

fn build_error(what: &'static str, e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Aws {
        operation: what,
        message: e.to_string(),
        retryable: false,
        source: Box::new(e),
    }
}

/// How long [`create_table`] waits for the table and its indexes to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates the table from [`TABLE`] (on-demand billing, TTL enabled) and waits until it and its
/// indexes are ACTIVE. An existing table is fine: the call is idempotent.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table_name: &str,
) -> Result<(), StoreError> {
    let mut request = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(TABLE.partition_key, TABLE.sort_key)?));
    for attribute in TABLE.attribute_definitions() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute.name)
                .attribute_type(attribute.kind.sdk())
                .build()
                .map_err(|e| build_error("attribute definition", e))?,
        );
    }
    for index in TABLE.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.partition_key, index.sort_key)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| build_error("index definition", e))?,
        );
    }
    match request.send().await {
        Ok(_) => tracing::info!(table = table_name, "created table"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            tracing::debug!(table = table_name, "table already exists");
        }
        Err(e) => return Err(StoreError::aws("CreateTable", e)),
    }
    wait_until_active(client, table_name).await?;
    enable_ttl(client, table_name).await
}

async fn wait_until_active(
    client: &aws_sdk_dynamodb::Client,
    table_name: &str,
) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + ACTIVE_TIMEOUT;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let described = client
            .describe_table()
            .table_name(table_name)
            .send()
            .await
            .map_err(|e| StoreError::aws("DescribeTable", e))?;
        let table = described.table();
        let table_active = table.and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        let indexes_active = table
            .map(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status() == Some(&IndexStatus::Active))
            })
            .unwrap_or(false);
        if table_active && indexes_active {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Contention {
                operation: "CreateTable (waiting for ACTIVE)",
                attempts,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn enable_ttl(client: &aws_sdk_dynamodb::Client, table_name: &str) -> Result<(), StoreError> {
    let ttl_enabled = |status: Option<&TimeToLiveStatus>| {
        matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        )
    };
    let current = client
        .describe_time_to_live()
        .table_name(table_name)
        .send()
        .await
        .map_err(|e| StoreError::aws("DescribeTimeToLive", e))?;
    if ttl_enabled(
        current
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status()),
    ) {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(|e| build_error("TTL specification", e))?;
    match client
        .update_time_to_live()
        .table_name(table_name)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // A concurrent create_table enabled it between our describe and update.
        Err(e) => {
            let now = client
                .describe_time_to_live()
                .table_name(table_name)
                .send()
                .await
                .map_err(|e| StoreError::aws("DescribeTimeToLive", e))?;
            if ttl_enabled(
                now.time_to_live_description()
                    .and_then(|d| d.time_to_live_status()),
            ) {
                Ok(())
            } else {
                Err(StoreError::aws("UpdateTimeToLive", e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_definitions_are_every_key_once() {
        let names: Vec<_> = TABLE
            .attribute_definitions()
            .iter()
            .map(|a| (a.name, a.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                ("dueAt", AttributeType::N),
                ("duePk", AttributeType::S),
                ("gsi1pk", AttributeType::S),
                ("gsi1sk", AttributeType::S),
                ("gsi2pk", AttributeType::S),
                ("gsi2sk", AttributeType::S),
                ("openPk", AttributeType::S),
                ("openSk", AttributeType::S),
                ("pk", AttributeType::S),
                ("sk", AttributeType::S),
            ]
        );
    }
}
