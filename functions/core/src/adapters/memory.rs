//! In-memory adapters for tests.
