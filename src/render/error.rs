//! A failed command under `--json`: one JSON document on stdout with a stable shape, so a
//! script reads the error where it reads results, and a non-zero exit:
//!
//! ```json
//! {"error": {"message": "no note matches \"x\"", "causes": []}}
//! ```
//!
//! `message` is the outermost error, `causes` the errors under it, outermost first.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

/// The error document.
#[derive(Debug, Serialize)]
pub struct ErrorDoc {
    /// The error.
    pub error: ErrorBody,
}

/// What went wrong.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// The outermost message.
    pub message: String,
    /// The causes under it, outermost first.
    pub causes: Vec<String>,
}

impl ErrorDoc {
    /// The document for `e`.
    pub fn of(e: &anyhow::Error) -> ErrorDoc {
        let mut chain = e.chain().map(|c| c.to_string());
        let message = chain.next().unwrap_or_default();
        // Errors that repeat their source's text (`{0}`) would list it twice.
        let mut causes: Vec<String> = Vec::new();
        for c in chain {
            if !message.contains(&c) && causes.last() != Some(&c) {
                causes.push(c);
            }
        }
        ErrorDoc {
            error: ErrorBody { message, causes },
        }
    }
}

/// Prints `e` as the error document on stdout (and on stderr for humans when stdout fails)
/// and returns the failure exit code.
pub fn print_json(e: &anyhow::Error) -> ExitCode {
    let doc = ErrorDoc::of(e);
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &doc)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    if written.is_err() {
        eprintln!("vaultkeeper: {e:#}");
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_and_causes() {
        let e = anyhow::anyhow!("inner").context("outer");
        let doc = serde_json::to_value(ErrorDoc::of(&e)).expect("json");
        assert_eq!(
            doc,
            serde_json::json!({"error": {"message": "outer", "causes": ["inner"]}})
        );
    }
}
