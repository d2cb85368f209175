//! The query commands (clap) and their output: one JSON document with `--json`, text otherwise.

use std::io::Write;
use std::path::Path;

use vaultkeeper_cache::CacheReader;
use vaultkeeper_cache::query::{
    self, FieldsResult, LinkRow, LinksResult, NoteInfo, OrphansResult, RecentResult, SearchResult,
    SqlResult, TagsResult, TaskFilter, TasksResult, UnresolvedResult,
};

/// The cache query commands; the CLI flattens them into its top-level commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum QueryCommand {
    /// Full-text search in every script (words with their stems, "phrases", prefix*,
    /// title:word, field:key=value, OR/NOT).
    Search {
        /// What to look for (may start with `-`: it is a query, never a flag).
        #[arg(allow_hyphen_values = true, default_value = "")]
        query: String,
        /// Only notes with this tag (nested tags included).
        #[arg(long)]
        tag: Option<String>,
        /// Only paths matching this glob (`*` also matches `/`).
        #[arg(long = "path")]
        path: Option<String>,
        /// Only notes whose field KEY (frontmatter or `key:: value`) is exactly VALUE; repeatable.
        #[arg(long = "field", value_name = "KEY=VALUE", value_parser = parse_field)]
        fields: Vec<(String, String)>,
        /// Match parts of words too (compound parts, code identifiers): slower.
        #[arg(long)]
        substring: bool,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Everything about one note: metadata, headings, links, backlinks, errors.
    Note {
        /// Note name or vault path.
        note: String,
    },
    /// Notes that link to a note.
    Backlinks {
        /// Note name or vault path.
        note: String,
    },
    /// Links written in a note.
    Links {
        /// Note name or vault path.
        note: String,
    },
    /// Tags in the vault.
    Tags {
        /// Show how many notes carry each tag.
        #[arg(long)]
        counts: bool,
    },
    /// Tasks (`- [ ]`, `- [x]`, other statuses).
    Tasks {
        /// Only open tasks (not x, X or -).
        #[arg(long, conflicts_with = "done")]
        open: bool,
        /// Only done tasks (x or X).
        #[arg(long)]
        done: bool,
        /// Only tasks of notes with this tag, or with `#tag` in their text.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Notes no other note links to.
    Orphans,
    /// Links that point at no file.
    Unresolved,
    /// Recently modified notes.
    Recent {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Notes with a field (frontmatter key or `key:: value`), optionally with a value.
    Fields {
        /// `KEY` or `KEY=VALUE`.
        field: String,
    },
    /// Run one read-only SQL statement on the cache.
    Sql {
        /// The statement (SELECT …).
        query: String,
        /// At most this many rows; reading stops there (the output says so).
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
        /// Stop the statement after this many seconds.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
}

/// The query `name` with an HTTP request's parameters (`?query=...&tag=...`), parsed by
/// the same clap definitions as the command line: the API takes the CLI's options, by
/// their names (`/v1/query/search?query=x&limit=5`, `/v1/query/tasks?open=true`).
pub fn from_params(name: &str, params: &[(String, String)]) -> anyhow::Result<QueryCommand> {
    use clap::{FromArgMatches, Subcommand};
    let root = QueryCommand::augment_subcommands(clap::Command::new("vaultkeeper"));
    let Some(sub) = root.find_subcommand(name) else {
        let names: Vec<&str> = root.get_subcommands().map(|c| c.get_name()).collect();
        anyhow::bail!("no query {name:?}; the queries: {}", names.join(", "));
    };
    let mut argv = vec!["vaultkeeper".to_string(), name.to_string()];
    let mut positionals = Vec::new();
    for (key, value) in params {
        // The TCP listener's credential, already checked.
        if key == "token" {
            continue;
        }
        let Some(arg) = sub.get_arguments().find(|a| a.get_id() == key.as_str()) else {
            anyhow::bail!("query {name}: no parameter {key:?}");
        };
        if arg.is_positional() {
            positionals.push(value.clone());
            continue;
        }
        let long = arg.get_long().unwrap_or(key.as_str());
        if arg.get_action().takes_values() {
            argv.push(format!("--{long}={value}"));
        } else {
            match value.as_str() {
                "" | "true" | "1" => argv.push(format!("--{long}")),
                "false" | "0" => {}
                other => anyhow::bail!("query {name}: {key}={other:?}: expected true or false"),
            }
        }
    }
    // After `--`, a value starting with `-` is not taken for an option.
    if !positionals.is_empty() {
        argv.push("--".into());
        argv.extend(positionals);
    }
    let matches = root.try_get_matches_from(argv)?;
    Ok(QueryCommand::from_arg_matches(&matches)?)
}

/// `--field KEY=VALUE`.
fn parse_field(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?}: expected KEY=VALUE")),
    }
}

/// Output for humans.
pub trait RenderHuman {
    /// Writes the result as text.
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()>;
}

/// Runs a query command on the cache at `cache_db` and writes its result.
pub fn run_query(
    cache_db: &Path,
    cmd: &QueryCommand,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let cache = CacheReader::open(cache_db)?;
    fn emit<T: serde::Serialize + RenderHuman>(
        v: T,
        json: bool,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        if json {
            serde_json::to_writer_pretty(&mut *out, &v)?;
            writeln!(out)?;
        } else {
            v.render_human(out)?;
        }
        Ok(())
    }
    match cmd {
        QueryCommand::Search {
            query,
            tag,
            path,
            fields,
            substring,
            limit,
        } => {
            let opts = query::SearchOptions {
                tag: tag.clone(),
                path_glob: path.clone(),
                fields: fields.clone(),
                substring: *substring,
                limit: *limit,
            };
            emit(cache.search_with(query, &opts)?, json, out)
        }
        QueryCommand::Note { note } => emit(cache.note_unique(note)?, json, out),
        QueryCommand::Backlinks { note } => emit(Backlinks(cache.backlinks(note)?), json, out),
        QueryCommand::Links { note } => emit(cache.links(note)?, json, out),
        QueryCommand::Tags { counts } => emit(
            TagsView {
                tags: cache.tags()?,
                counts: *counts,
            },
            json,
            out,
        ),
        QueryCommand::Tasks { open, done, tag } => {
            let filter = if *open {
                TaskFilter::Open
            } else if *done {
                TaskFilter::Done
            } else {
                TaskFilter::All
            };
            emit(cache.tasks(filter, tag.as_deref())?, json, out)
        }
        QueryCommand::Orphans => emit(cache.orphans()?, json, out),
        QueryCommand::Unresolved => emit(cache.unresolved()?, json, out),
        QueryCommand::Recent { limit } => emit(cache.recent(*limit)?, json, out),
        QueryCommand::Fields { field } => {
            let (k, v) = match field.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (field.as_str(), None),
            };
            emit(cache.fields(k, v)?, json, out)
        }
        QueryCommand::Sql {
            query,
            limit,
            timeout,
        } => {
            let bounds = query::SqlBounds {
                max_rows: *limit,
                timeout: std::time::Duration::from_secs(*timeout),
                ..query::SqlBounds::default()
            };
            let res = cache.sql_within(query, &bounds)?;
            if let Some(bound) = &res.stopped_by {
                // On stderr, so that the rows on stdout stay clean for scripts.
                eprintln!("vaultkeeper: more rows than shown: stopped at the {bound}");
            }
            emit(res, json, out)
        }
    }
}

impl RenderHuman for SearchResult {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.hits.is_empty() {
            return writeln!(out, "no match for {:?}", self.query);
        }
        for h in &self.hits {
            writeln!(out, "{}  ({})", h.path, h.title)?;
            let snip = h.snippet.split_whitespace().collect::<Vec<_>>().join(" ");
            if !snip.is_empty() {
                writeln!(out, "    {snip}")?;
            }
        }
        Ok(())
    }
}

fn link_line(l: &LinkRow, show_src: bool) -> String {
    let target = match &l.target_path {
        Some(p) => p.clone(),
        None => format!("{} (unresolved)", l.target_raw),
    };
    let mut frag = String::new();
    if let Some(h) = &l.heading {
        frag = format!(" #{h}");
    }
    if let Some(b) = &l.block {
        frag = format!(" #^{b}");
    }
    if show_src {
        format!("{}:{}  {} {}{}", l.path, l.line, l.kind, target, frag)
    } else {
        format!("{:>5}  {} {}{}", l.line, l.kind, target, frag)
    }
}

impl RenderHuman for NoteInfo {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "{}", self.path)?;
        writeln!(out, "  title:   {}", self.title)?;
        writeln!(
            out,
            "  size:    {} bytes, {} words, modified {}",
            self.size,
            self.words,
            self.mtime.as_deref().unwrap_or("?")
        )?;
        if !self.aliases.is_empty() {
            writeln!(out, "  aliases: {}", self.aliases.join(", "))?;
        }
        if !self.tags.is_empty() {
            writeln!(
                out,
                "  tags:    {}",
                self.tags
                    .iter()
                    .map(|t| format!("#{t}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )?;
        }
        if self.tasks > 0 {
            writeln!(out, "  tasks:   {} ({} open)", self.tasks, self.open_tasks)?;
        }
        if let Some(why) = &self.not_indexed {
            writeln!(out, "  body:    not indexed ({why}); not searchable")?;
        }
        if let Some(e) = &self.error {
            writeln!(out, "  error:   {e}")?;
        }
        if let serde_json::Value::Object(m) = &self.frontmatter
            && !m.is_empty()
        {
            writeln!(out, "frontmatter:")?;
            for (k, v) in m {
                writeln!(out, "  {k}: {v}")?;
            }
        }
        if !self.headings.is_empty() {
            writeln!(out, "headings:")?;
            for h in &self.headings {
                writeln!(
                    out,
                    "  {}{} {}",
                    " ".repeat(usize::from(h.level.saturating_sub(1)) * 2),
                    "#".repeat(usize::from(h.level)),
                    h.text
                )?;
            }
        }
        writeln!(out, "links ({}):", self.links.len())?;
        for l in &self.links {
            writeln!(out, "  {}", link_line(l, false))?;
        }
        writeln!(out, "backlinks ({}):", self.backlinks.len())?;
        for l in &self.backlinks {
            writeln!(out, "  {}:{}", l.path, l.line)?;
        }
        Ok(())
    }
}

impl RenderHuman for LinksResult {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for l in &self.links {
            writeln!(out, "{}", link_line(l, false))?;
        }
        Ok(())
    }
}

/// Backlinks print their sources, not their targets.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Backlinks(LinksResult);

impl RenderHuman for Backlinks {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for l in &self.0.links {
            writeln!(out, "{}:{}  {}", l.path, l.line, l.kind)?;
        }
        Ok(())
    }
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct TagsView {
    tags: TagsResult,
    #[serde(skip)]
    counts: bool,
}

impl RenderHuman for TagsView {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for t in &self.tags.tags {
            if self.counts {
                writeln!(out, "{:>6}  #{}", t.notes, t.tag)?;
            } else {
                writeln!(out, "#{}", t.tag)?;
            }
        }
        Ok(())
    }
}

impl RenderHuman for TasksResult {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for t in &self.tasks {
            writeln!(out, "{}:{}  [{}] {}", t.path, t.line, t.status, t.text)?;
        }
        Ok(())
    }
}

impl RenderHuman for OrphansResult {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for n in &self.notes {
            writeln!(out, "{n}")?;
        }
        Ok(())
    }
}

impl RenderHuman for UnresolvedResult {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for l in &self.links {
            writeln!(out, "{}:{}  {}", l.path, l.line, l.target_raw)?;
        }
        Ok(())
    }
}

impl RenderHuman for RecentResult {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for n in &self.notes {
            writeln!(out, "{}  {}", n.mtime.as_deref().unwrap_or("?"), n.path)?;
        }
        Ok(())
    }
}

impl RenderHuman for FieldsResult {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for f in &self.fields {
            writeln!(out, "{}:{}  {} = {}", f.path, f.line, f.key, f.value)?;
        }
        Ok(())
    }
}

impl RenderHuman for SqlResult {
    fn render_human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "{}", self.columns.join("\t"))?;
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "NULL".to_string(),
                    other => other.to_string(),
                })
                .collect();
            writeln!(out, "{}", cells.join("\t"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        cmd: QueryCommand,
    }

    #[test]
    fn flattens_into_a_cli() {
        let cli = Cli::try_parse_from(["vk", "tasks", "--open", "--tag", "work", "--json"])
            .expect("parse");
        assert!(cli.json);
        assert!(matches!(
            cli.cmd,
            QueryCommand::Tasks {
                open: true,
                done: false,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["vk", "tasks", "--open", "--done"]).is_err());
        let cli = Cli::try_parse_from(["vk", "search", "a b", "--path", "x/*", "--limit", "3"])
            .expect("search");
        assert!(matches!(cli.cmd, QueryCommand::Search { limit: 3, .. }));
        // A query that starts with `-` is a query, wherever the flags are.
        for args in [
            &["vk", "search", "-word"][..],
            &["vk", "--json", "search", "-word", "--limit", "3"],
            &["vk", "search", "--field", "status=draft", "-word"],
        ] {
            let cli = Cli::try_parse_from(args).expect("hyphen query");
            match cli.cmd {
                QueryCommand::Search { query, .. } => assert_eq!(query, "-word", "{args:?}"),
                other => panic!("{other:?}"),
            }
        }
        let cli = Cli::try_parse_from([
            "vk",
            "search",
            "--field",
            "status=draft",
            "--field",
            "k=a=b",
            "--substring",
        ])
        .expect("fields only");
        match cli.cmd {
            QueryCommand::Search {
                query,
                fields,
                substring,
                ..
            } => {
                assert_eq!(query, "");
                assert!(substring);
                assert_eq!(
                    fields,
                    vec![
                        ("status".into(), "draft".into()),
                        ("k".into(), "a=b".into())
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["vk", "search", "x", "--field", "novalue"]).is_err());
        let cli = Cli::try_parse_from(["vk", "fields", "status=done"]).expect("fields");
        assert!(matches!(cli.cmd, QueryCommand::Fields { .. }));
    }

    /// Indexes the repository's sample vault into a temporary cache.
    fn index_sample() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-vault");
        let db = dir.path().join("cache.db");
        let files = vaultkeeper_cache::apply::vault_files(&vault).expect("walk");
        let cfg = vaultkeeper_cache::CacheConfig::default();
        vaultkeeper_cache::reindex(&db, &vault, files.into_iter(), 0, &cfg).expect("reindex");
        (dir, db)
    }

    #[test]
    fn run_query_json_and_human() {
        let (_dir, db) = index_sample();
        let mut out = Vec::new();
        run_query(
            &db,
            &QueryCommand::Backlinks {
                note: "Home".into(),
            },
            true,
            &mut out,
        )
        .expect("json");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("one JSON document");
        assert_eq!(v["links"].as_array().map(Vec::len), Some(5));
        let mut out = Vec::new();
        run_query(&db, &QueryCommand::Tags { counts: true }, false, &mut out).expect("human");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("#project"), "{text}");
        for cmd in [
            QueryCommand::Note {
                note: "Home".into(),
            },
            QueryCommand::Links {
                note: "Home".into(),
            },
            QueryCommand::Tasks {
                open: true,
                done: false,
                tag: None,
            },
            QueryCommand::Orphans,
            QueryCommand::Unresolved,
            QueryCommand::Recent { limit: 3 },
            QueryCommand::Fields {
                field: "status=active".into(),
            },
            QueryCommand::Sql {
                query: "SELECT count(*) AS n FROM notes".into(),
                limit: 10,
                timeout: 10,
            },
            QueryCommand::Search {
                query: "home".into(),
                tag: None,
                path: None,
                fields: vec![],
                substring: false,
                limit: 5,
            },
            QueryCommand::Search {
                query: "hom".into(),
                tag: None,
                path: None,
                fields: vec![("status".into(), "active".into())],
                substring: true,
                limit: 5,
            },
        ] {
            for json in [true, false] {
                let mut out = Vec::new();
                run_query(&db, &cmd, json, &mut out).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
                assert!(!out.is_empty(), "{cmd:?}");
            }
        }
    }
}
