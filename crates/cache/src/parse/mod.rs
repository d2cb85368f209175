//! Parsing one markdown note into the rows the cache stores (pure: text in, [`ParsedNote`] out).
//!
//! pulldown-cmark (with YAML metadata blocks, wikilinks, tables) finds links, headings and code,
//! so nothing inside code blocks or inline code counts. Line-shaped syntax that CommonMark does
//! not know (tasks with any status character, block ids `^id`, Dataview `key:: value`) is read
//! line by line, skipping lines inside code blocks, HTML blocks and the frontmatter.
//!
//! Rules worth knowing:
//! - tags: `#` preceded by the start of a text run, whitespace or `|`; then letters, digits,
//!   `_`, `-`, `/`; at least one character that is not a digit. Not in code, not in link text or
//!   URLs, not in headings' `#` markers (pulldown-cmark consumes those). Frontmatter `tags`/`tag`
//!   as a list or a string (comma or space separated), leading `#` dropped.
//! - links in `%% comments %%` count (Obsidian indexes them); links in code do not.
//! - markdown links with a URL scheme (`https:`, `mailto:`, `obsidian:`) are external, not notes.
//! - word count: whitespace-separated runs with at least one letter or digit in the rendered
//!   text (frontmatter excluded, code included).
//!
//! One concern per module: [`markdown`] (the pulldown-cmark pass), [`frontmatter`],
//! [`links`], [`tags`], [`lines`] (tasks, block ids, inline fields), [`tokens`] (the search
//! tokenizer) and [`fts`] (a note's full-text columns); [`parse_note`] puts their parts
//! together.

mod frontmatter;
pub(crate) mod fts;
mod lines;
mod links;
mod markdown;
mod tags;
pub(crate) mod tokens;

use serde::Serialize;

/// How a link was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// `[[Note]]`
    Wikilink,
    /// `![[x.png]]` or `![alt](x.png)`
    Embed,
    /// `[x](Other%20Note.md)`
    Markdown,
}

impl LinkKind {
    /// The word stored in the `links.kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Wikilink => "wikilink",
            LinkKind::Embed => "embed",
            LinkKind::Markdown => "markdown",
        }
    }
}

/// One outgoing link of a note.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ParsedLink {
    /// The destination as written, before `|` (`Note#Heading`, `Other%20Note.md`).
    pub raw: String,
    /// The file part, decoded (`Note`, `Other Note.md`); empty for `[[#Heading]]` (the note itself).
    pub target: String,
    /// The heading after `#`, if any.
    pub heading: Option<String>,
    /// The block id after `#^`, if any.
    pub block: Option<String>,
    /// Display text after `|` or the markdown link's text.
    pub display: Option<String>,
    /// How it was written.
    pub kind: LinkKind,
    /// 1-based line.
    pub line: u32,
}

/// One heading.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ParsedHeading {
    /// 1 to 6.
    pub level: u8,
    /// Its text, markup removed.
    pub text: String,
    /// 1-based line.
    pub line: u32,
}

/// One tag, without `#`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ParsedTag {
    /// As written (`project/alpha`).
    pub tag: String,
    /// `inline` or `frontmatter`.
    pub source: &'static str,
    /// 1-based line (frontmatter tags: the line of the opening `---`).
    pub line: u32,
}

/// One task list item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ParsedTask {
    /// The character between the brackets (` `, `x`, `-`, `/`, …).
    pub status: char,
    /// The text after the checkbox.
    pub text: String,
    /// 1-based line.
    pub line: u32,
}

/// One field: a frontmatter key or a Dataview `key:: value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ParsedField {
    /// The key as written.
    pub key: String,
    /// The value as text (lists give one field per element; other non-strings as JSON).
    pub value: String,
    /// `frontmatter` or `inline`.
    pub source: &'static str,
    /// 1-based line.
    pub line: u32,
}

/// A block id `^id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ParsedBlock {
    /// The id without `^`.
    pub id: String,
    /// 1-based line.
    pub line: u32,
}

/// Everything the cache keeps about one note.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedNote {
    /// First H1, else frontmatter `title`, else the file stem.
    pub title: String,
    /// Where the title came from: `h1`, `frontmatter` or `name`.
    pub title_from: &'static str,
    /// The frontmatter as JSON (`null` when absent or unparsable).
    pub frontmatter: serde_json::Value,
    /// Frontmatter `aliases`/`alias`.
    pub aliases: Vec<String>,
    /// Inline and frontmatter tags.
    pub tags: Vec<ParsedTag>,
    /// Outgoing links in order.
    pub links: Vec<ParsedLink>,
    /// Headings in order.
    pub headings: Vec<ParsedHeading>,
    /// Block ids.
    pub blocks: Vec<ParsedBlock>,
    /// Tasks.
    pub tasks: Vec<ParsedTask>,
    /// Frontmatter keys and inline fields.
    pub fields: Vec<ParsedField>,
    /// Word count of the body.
    pub words: u64,
    /// The text after the frontmatter (what full-text search indexes; snippets come from it).
    pub body: String,
    /// The full-text columns, tokenized (title, aliases, frontmatter values, body).
    pub fts: fts::FtsColumns,
    /// Problems met while parsing (malformed YAML …); the note is indexed anyway.
    pub errors: Vec<String>,
}

/// The file name without folders and without a final `.md`.
pub fn file_stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.len().checked_sub(3) {
        Some(i) if name.is_char_boundary(i) && name[i..].eq_ignore_ascii_case(".md") && i > 0 => {
            &name[..i]
        }
        _ => name,
    }
}
/// Parses one note. Never fails and never panics: problems land in [`ParsedNote::errors`].
pub fn parse_note(path: &str, text: &str) -> ParsedNote {
    let md = markdown::scan(text);
    let mut errors = Vec::new();
    let fm = frontmatter::read(md.yaml.as_ref(), &mut errors);
    let mut tags = md.tags;
    tags.extend(fm.tags);
    // Tags in frontmatter come first in the file; keep file order.
    tags.sort_by_key(|t| (t.line, t.source != "frontmatter"));
    let (title, title_from) = title_of(path, md.first_h1, frontmatter::title(&fm.value));
    let (tasks, blocks, inline_fields) = lines::scan_lines(text, &md.skip);
    let mut fields = fm.fields;
    fields.extend(inline_fields);
    let body = body_after(text, md.body_start);
    let fts = fts::fts_columns(&title, &fm.aliases, &fm.value, &body);
    ParsedNote {
        title,
        title_from,
        frontmatter: fm.value,
        aliases: fm.aliases,
        tags,
        links: md.links,
        headings: md.headings,
        blocks,
        tasks,
        fields,
        words: word_count(&md.plain),
        body,
        fts,
        errors,
    }
}

/// First H1, else frontmatter `title`, else the file stem; with where it came from.
fn title_of(
    path: &str,
    first_h1: Option<String>,
    fm_title: Option<String>,
) -> (String, &'static str) {
    match (first_h1, fm_title) {
        (Some(h), _) => (h, "h1"),
        (None, Some(t)) => (t, "frontmatter"),
        (None, None) => (file_stem(path).to_string(), "name"),
    }
}

/// Whitespace-separated runs with at least one letter or digit.
fn word_count(plain: &str) -> u64 {
    plain
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count() as u64
}

/// The text from `body_start` on, without the newline that ends the frontmatter.
fn body_after(text: &str, body_start: usize) -> String {
    let b = text.get(body_start..).unwrap_or("");
    b.strip_prefix("\r\n")
        .or_else(|| b.strip_prefix('\n'))
        .unwrap_or(b)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(n: &ParsedNote) -> Vec<(&str, LinkKind)> {
        n.links
            .iter()
            .map(|l| (l.target.as_str(), l.kind))
            .collect()
    }

    #[test]
    fn title_order() {
        assert_eq!(parse_note("a/B.md", "x\n# Top\n# Second").title, "Top");
        assert_eq!(parse_note("a/B.md", "---\ntitle: T\n---\nbody").title, "T");
        assert_eq!(parse_note("a/B c.md", "## not h1").title, "B c");
    }

    #[test]
    fn wikilink_forms() {
        let n = parse_note(
            "n.md",
            "[[Note]] [[Note|shown]] [[Note#Heading]] [[Note#^block]] ![[x.png]] [[#Local]]\n",
        );
        assert_eq!(n.links.len(), 6);
        assert_eq!(n.links[0].target, "Note");
        assert_eq!(n.links[0].display, None);
        assert_eq!(n.links[1].display.as_deref(), Some("shown"));
        assert_eq!(n.links[2].heading.as_deref(), Some("Heading"));
        assert_eq!(n.links[3].block.as_deref(), Some("block"));
        assert_eq!(n.links[4].kind, LinkKind::Embed);
        assert_eq!(n.links[4].target, "x.png");
        assert_eq!(n.links[5].target, "");
        assert_eq!(n.links[5].heading.as_deref(), Some("Local"));
        assert!(n.tags.is_empty(), "{:?}", n.tags);
    }

    #[test]
    fn markdown_links_decoded_and_external_skipped() {
        let n = parse_note(
            "n.md",
            "[a](Other%20Note.md) [b](https://x.org/a#b) [c](mailto:a@b.c) <https://x.org> [d](../up/There.md#Sec) ![i](pic%201.png) [e](#Here)\n",
        );
        assert_eq!(
            targets(&n),
            vec![
                ("Other Note.md", LinkKind::Markdown),
                ("../up/There.md", LinkKind::Markdown),
                ("pic 1.png", LinkKind::Embed),
                ("", LinkKind::Markdown)
            ]
        );
        assert_eq!(n.links[1].heading.as_deref(), Some("Sec"));
        assert_eq!(n.links[0].raw, "Other%20Note.md");
    }

    #[test]
    fn code_excluded_comments_included() {
        let n = parse_note(
            "n.md",
            "```\n[[Fake]] #faketag - [ ] fake\nkey:: v\n```\n\n`[[Inline]] #no`\n\n%% [[Hidden]] %%\n\n    [[Indented]]\n",
        );
        assert_eq!(targets(&n), vec![("Hidden", LinkKind::Wikilink)]);
        assert!(n.tags.is_empty());
        assert!(n.tasks.is_empty());
        assert!(n.fields.is_empty());
    }

    #[test]
    fn tags_rules() {
        let n = parse_note(
            "n.md",
            "# Heading\n#top and #a/b/c, #1984 no, x#no, https://x.org/#frag #ok-1 #under_s #日本\n\\#escaped\n",
        );
        let t: Vec<&str> = n.tags.iter().map(|t| t.tag.as_str()).collect();
        assert_eq!(t, vec!["top", "a/b/c", "ok-1", "under_s", "日本"]);
        assert_eq!(n.tags[0].line, 2);
    }

    #[test]
    fn frontmatter_tags_aliases_fields() {
        let n = parse_note(
            "n.md",
            "---\ntags: [one, '#two']\naliases: Alt, Other\ntag: three four\nstatus: draft\nn: 3\n---\nbody #inline\n",
        );
        // Frontmatter keys come in key order (`tag` before `tags`), then inline tags.
        let t: Vec<&str> = n.tags.iter().map(|t| t.tag.as_str()).collect();
        assert_eq!(t, vec!["three", "four", "one", "two", "inline"]);
        assert_eq!(n.aliases, vec!["Alt", "Other"]);
        assert!(
            n.fields
                .iter()
                .any(|f| f.key == "status" && f.value == "draft")
        );
        assert!(n.fields.iter().any(|f| f.key == "n" && f.value == "3"));
        assert_eq!(n.body, "body #inline\n");
        assert_eq!(n.frontmatter["status"], "draft");
    }

    #[test]
    fn malformed_yaml_is_recorded() {
        let n = parse_note(
            "Bad.md",
            "---\ntitle: [unclosed\n  : :\n---\n# Still\n[[Link]]\n",
        );
        assert_eq!(n.errors.len(), 1, "{:?}", n.errors);
        assert!(n.errors[0].starts_with("frontmatter"));
        assert_eq!(n.title, "Still");
        assert_eq!(n.links.len(), 1);
        assert!(n.frontmatter.is_null());
    }

    #[test]
    fn yaml_bomb_is_refused() {
        let mut y = String::from("---\na: &a [x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='z' {
            y.push_str(&format!("{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = c;
        }
        y.push_str("---\nbody\n");
        let n = parse_note("bomb.md", &y);
        assert_eq!(n.errors.len(), 1);
    }

    #[test]
    fn tasks_blocks_fields_headings() {
        let text = "# T\n- [ ] open one\n- [x] done\n  - [/] half ^blk-1\n1. [-] cancelled\n> - [>] quoted\n- [] not a task\n\nPara ^para\n\n## Sub *emph*\nstatus:: active\nA line with [due:: 2026-01-01] and (rating:: 5).\nuse std::io\n";
        let n = parse_note("n.md", text);
        let st: Vec<char> = n.tasks.iter().map(|t| t.status).collect();
        assert_eq!(st, vec![' ', 'x', '/', '-', '>']);
        assert_eq!(n.tasks[2].text, "half ^blk-1");
        assert_eq!(n.tasks[0].line, 2);
        let b: Vec<(&str, u32)> = n.blocks.iter().map(|b| (b.id.as_str(), b.line)).collect();
        assert_eq!(b, vec![("blk-1", 4), ("para", 9)]);
        let h: Vec<(u8, &str)> = n
            .headings
            .iter()
            .map(|h| (h.level, h.text.as_str()))
            .collect();
        assert_eq!(h, vec![(1, "T"), (2, "Sub emph")]);
        let f: Vec<(&str, &str)> = n
            .fields
            .iter()
            .map(|f| (f.key.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            f,
            vec![("status", "active"), ("due", "2026-01-01"), ("rating", "5")]
        );
    }

    #[test]
    fn indented_code_is_not_scanned() {
        let n = parse_note(
            "n.md",
            "Para\n\n    - [ ] code task ^code\n    k:: v\n\n- [ ] real\n",
        );
        assert_eq!(n.tasks.len(), 1, "{:?}", n.tasks);
        assert!(n.blocks.is_empty());
        assert!(n.fields.is_empty());
    }

    #[test]
    fn table_escaped_pipe() {
        let n = parse_note(
            "n.md",
            "| a | b |\n|---|---|\n| [[T\\|al]] | ![[E.jpg\\|200]] |\n",
        );
        assert_eq!(
            targets(&n),
            vec![("T", LinkKind::Wikilink), ("E.jpg", LinkKind::Embed)]
        );
        assert_eq!(n.links[0].display.as_deref(), Some("al"));
    }

    #[test]
    fn words_and_nesting() {
        assert_eq!(
            parse_note("n.md", "---\na: b c\n---\nOne two, three — 4\n").words,
            4
        );
        let deep: String = (0..5000)
            .map(|i| format!("{}- x\n", "  ".repeat(i)))
            .collect();
        let n = parse_note("deep.md", &deep);
        assert!(n.words > 0);
        let quotes = format!("{} [[Deep]]\n", ">".repeat(20000));
        assert_eq!(parse_note("q.md", &quotes).links.len(), 1);
    }

    #[test]
    fn stems() {
        assert_eq!(file_stem("a/b/Note.md"), "Note");
        assert_eq!(file_stem("a/x.png"), "x.png");
        assert_eq!(file_stem(".md"), ".md");
        assert_eq!(file_stem("Ω.MD"), "Ω");
    }
}
