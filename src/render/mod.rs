//! How the binary prints things: one text and one JSON rendering per kind of output.

pub mod error;
pub mod query;
