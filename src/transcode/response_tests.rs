//! Table-driven tests for reply and status printing.
