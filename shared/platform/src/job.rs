//! How a scheduled function's failed run reaches Lambda: a diagnostic whose `error_type` says
//! whether the next run may succeed (`Retryable.…`: Dfns or DynamoDB throttled or down) or a person
//! must act (`Fatal.…`: configuration, permissions, a bug). The schedule's failure queue and alarm
//! see the type; the message carries no internals beyond the error's own text.

use lambda_http::lambda_runtime::Diagnostic;

use crate::PlatformError;

/// A scheduled run that did not complete.
#[derive(Debug)]
pub struct JobFailure {
    pub retryable: bool,
    pub kind: &'static str,
    pub message: String,
}

impl From<PlatformError> for JobFailure {
    fn from(error: PlatformError) -> Self {
        let kind = match &error {
            PlatformError::BadRequest(_)
            | PlatformError::Forbidden(_)
            | PlatformError::NotFound(_)
            | PlatformError::Conflict(_)
            | PlatformError::TooManyRequests { .. } => "Refused",
            PlatformError::Store(_) => "Store",
            PlatformError::Dfns(_) => "Dfns",
            PlatformError::Secret(_) => "Secret",
            PlatformError::EventBus(_) => "EventBus",
            PlatformError::Queue(_) => "Queue",
            PlatformError::Internal(_) => "Internal",
        };
        JobFailure {
            retryable: error.is_retryable(),
            kind,
            message: error.to_string(),
        }
    }
}

impl From<JobFailure> for Diagnostic {
    fn from(failure: JobFailure) -> Self {
        let class = if failure.retryable {
            "Retryable"
        } else {
            "Fatal"
        };
        Diagnostic {
            error_type: format!("{class}.{}", failure.kind),
            error_message: failure.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_retryable_and_configuration_is_not() {
        let throttled = PlatformError::EventBus("throttled".into());
        let diagnostic = Diagnostic::from(JobFailure::from(throttled));
        assert_eq!(diagnostic.error_type, "Retryable.EventBus");

        let bug = PlatformError::Internal("trading configuration: bad registry".into());
        let diagnostic = Diagnostic::from(JobFailure::from(bug));
        assert_eq!(diagnostic.error_type, "Fatal.Internal");
        assert!(diagnostic.error_message.contains("bad registry"));
    }
}
