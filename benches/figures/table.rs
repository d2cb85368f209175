//! The figures table of issue #15: each section records its rows as it measures them, and the
//! harness prints them together at the end, each with what it was compared against and its aim.

use std::sync::Mutex;

/// One measured figure, printed as a row of the closing table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured, e.g. "full `reindex` of a generated 10,000-note vault".
    pub figure: String,
    /// Our figure, with its unit, e.g. "0.82 s".
    pub ours: String,
    /// What it was compared against in the same run, with its figure, e.g. "`rg -c` 95 ms (8.6x)".
    pub against: String,
    /// The aim, in the words, e.g. "under 1 s, 10x `rg -c` or better".
    pub aim: String,
    /// Whether the aim was reached; `None` when the row has no aim to judge.
    pub reached: Option<bool>,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

/// Keeps a row for the table printed at the end of the run.
pub fn record(row: Row) {
    match ROWS.lock() {
        Ok(mut rows) => rows.push(row),
        Err(poisoned) => poisoned.into_inner().push(row),
    }
}

/// Prints every recorded row as a markdown table (nothing when no section recorded a row).
pub fn print() {
    let rows = match ROWS.lock() {
        Ok(rows) => rows.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    if rows.is_empty() {
        return;
    }
    println!();
    println!("| figure | vaultkeeper | compared with, same run | aim | reached |");
    println!("|---|---|---|---|---|");
    for r in rows {
        let reached = match r.reached {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            r.figure, r.ours, r.against, r.aim, reached
        );
    }
}
