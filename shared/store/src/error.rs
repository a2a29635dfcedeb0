//! Typed store errors.

use std::error::Error as StdError;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Everything a store operation can report. Callers branch on the variant, never on a message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create lost: a record with this key already exists (possibly with other content).
    #[error("{entity} `{key}` already exists")]
    Conflict { entity: &'static str, key: String },

    /// The record exists but is not in the state the write was conditional on: another writer got
    /// there first (or the precondition never held).
    #[error("{entity} `{key}` did not meet the write's condition: {detail}")]
    ConditionFailed {
        entity: &'static str,
        key: String,
        detail: String,
    },

    #[error("{entity} `{key}` not found")]
    NotFound { entity: &'static str, key: String },

    /// An idempotency key already answered another request (another body, or another route).
    #[error("idempotency key `{key}` was used for another request")]
    IdempotencyKeyReused { key: String },

    /// The domain state machine forbids this move.
    #[error("{entity} `{key}`: illegal transition from {from} to {to}")]
    IllegalTransition {
        entity: &'static str,
        key: String,
        from: String,
        to: String,
    },

    /// An optimistic retry loop gave up (sustained contention on one item).
    #[error("{operation}: gave up after {attempts} attempts under contention")]
    Contention {
        operation: &'static str,
        attempts: u32,
    },

    /// The caller passed a value the store cannot key (checked before any write).
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },

    /// A stored item does not parse into its record type: data written by something else, or
    /// edited by hand.
    #[error("stored {entity} `{key}` is unreadable: {reason}")]
    Corrupt {
        entity: &'static str,
        key: String,
        reason: String,
    },

    /// DynamoDB (or the network) failed. `retryable` is true for throttling, timeouts and 5xx.
    #[error("DynamoDB {operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
        retryable: bool,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl StoreError {
    /// Whether repeating the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Aws {
                retryable: true,
                ..
            } | StoreError::Contention { .. }
        )
    }

    pub(crate) fn aws<E>(
        operation: &'static str,
        err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let retryable = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ResponseError(_) => true,
            SdkError::ServiceError(service) => {
                service.raw().status().is_server_error()
                    || matches!(
                        service.err().code(),
                        Some(
                            "ProvisionedThroughputExceededException"
                                | "ThrottlingException"
                                | "RequestLimitExceeded"
                                | "InternalServerError"
                                | "TransactionConflictException"
                        )
                    )
            }
            _ => false,
        };
        let message = match err.code() {
            Some(code) => format!("{code}: {}", err.message().unwrap_or("no message")),
            None => aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string(),
        };
        StoreError::Aws {
            operation,
            message,
            retryable,
            source: Box::new(err),
        }
    }
}
