//! Empty: the conformance test lives in `tests/`.
