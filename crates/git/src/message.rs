//! The commit message: the `{count}`, `{files}`, `{date}`, `{host}`, `{vault}` template.

/// One change in a commit, as listed in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new file.
    Added(String),
    /// A changed file.
    Modified(String),
    /// A removed file.
    Deleted(String),
    /// A file moved (same content or close enough that the events said so).
    Renamed {
        /// Where it was.
        from: String,
        /// Where it is.
        to: String,
    },
}

impl Change {
    /// `A path`, `M path`, `D path`, `R old -> new`, like `git status --short`.
    pub fn line(&self) -> String {
        match self {
            Change::Added(p) => format!("A {p}"),
            Change::Modified(p) => format!("M {p}"),
            Change::Deleted(p) => format!("D {p}"),
            Change::Renamed { from, to } => format!("R {from} -> {to}"),
        }
    }
}

/// What the template can refer to.
#[derive(Debug, Clone)]
pub struct MessageVars<'a> {
    /// The changes, in path order.
    pub changes: &'a [Change],
    /// How many to list before "... and K more".
    pub max_files: usize,
    /// `{date}`.
    pub date: String,
    /// `{host}`.
    pub host: &'a str,
    /// `{vault}`.
    pub vault: &'a str,
}

/// The `{files}` block: one change per line, at most `max_files`, then "... and K more".
pub fn files_block(changes: &[Change], max_files: usize) -> String {
    let mut lines: Vec<String> = changes.iter().take(max_files).map(Change::line).collect();
    if changes.len() > max_files {
        lines.push(format!("... and {} more", changes.len() - max_files));
    }
    lines.join("\n")
}

/// Fills the template in one pass, so text that a placeholder inserts (a file named
/// `{count}.md`) is never expanded again. Unknown `{...}` stay as written.
pub fn render(template: &str, vars: &MessageVars<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('}') else {
            out.push_str(after);
            rest = "";
            break;
        };
        let key = &after[1..end];
        match key {
            "count" => out.push_str(&vars.changes.len().to_string()),
            "files" => out.push_str(&files_block(vars.changes, vars.max_files)),
            "date" => out.push_str(&vars.date),
            "host" => out.push_str(vars.host),
            "vault" => out.push_str(vars.vault),
            _ => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    let mut msg = out.trim_end().to_string();
    if msg.trim().is_empty() {
        msg = format!("vault: {} change(s)", vars.changes.len());
    }
    msg.push('\n');
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(changes: &[Change], max: usize) -> MessageVars<'_> {
        MessageVars {
            changes,
            max_files: max,
            date: "2026-11-24 12:00:00 +0000".into(),
            host: "laptop",
            vault: "notes",
        }
    }

    #[test]
    fn default_template_lists_files_and_more() {
        let changes = vec![
            Change::Added("a.md".into()),
            Change::Modified("b.md".into()),
            Change::Deleted("c.md".into()),
            Change::Renamed {
                from: "d.md".into(),
                to: "e/d.md".into(),
            },
        ];
        let m = render(super::super::config::DEFAULT_MESSAGE, &vars(&changes, 3));
        assert_eq!(
            m,
            "vault: 4 change(s) on laptop\n\nA a.md\nM b.md\nD c.md\n... and 1 more\n"
        );
    }

    #[test]
    fn placeholders_are_not_expanded_twice_and_unknown_kept() {
        let changes = vec![Change::Added("{count}.md".into())];
        let m = render("{vault} {x} {date}: {files} {", &vars(&changes, 20));
        assert_eq!(m, "notes {x} 2026-11-24 12:00:00 +0000: A {count}.md {\n");
    }

    #[test]
    fn empty_template_still_gives_a_message() {
        let changes = vec![Change::Added("a".into())];
        assert_eq!(render("  ", &vars(&changes, 1)), "vault: 1 change(s)\n");
    }
}
