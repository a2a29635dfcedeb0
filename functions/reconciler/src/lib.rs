//! Placeholder while the reconciler is written.
