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

use std::borrow::Cow;
use std::ops::Range;

use pulldown_cmark::{Event as MdEvent, LinkType, MetadataBlockKind, Options, Parser, Tag, TagEnd};
use serde::Serialize;

/// How a link was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedHeading {
    /// 1 to 6.
    pub level: u8,
    /// Its text, markup removed.
    pub text: String,
    /// 1-based line.
    pub line: u32,
}

/// One tag, without `#`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedTag {
    /// As written (`project/alpha`).
    pub tag: String,
    /// `inline` or `frontmatter`.
    pub source: &'static str,
    /// 1-based line (frontmatter tags: the line of the opening `---`).
    pub line: u32,
}

/// One task list item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedTask {
    /// The character between the brackets (` `, `x`, `-`, `/`, …).
    pub status: char,
    /// The text after the checkbox.
    pub text: String,
    /// 1-based line.
    pub line: u32,
}

/// One field: a frontmatter key or a Dataview `key:: value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// The text after the frontmatter (what full-text search indexes).
    pub body: String,
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

struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    /// 1-based line of byte offset `at`.
    fn line_of(&self, at: usize) -> u32 {
        let idx = match self.starts.binary_search(&at) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        u32::try_from(idx + 1).unwrap_or(u32::MAX)
    }
}

/// Parses one note. Never fails and never panics: problems land in [`ParsedNote::errors`].
pub fn parse_note(path: &str, text: &str) -> ParsedNote {
    let lines = Lines::new(text);
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_YAML_STYLE_METADATA_BLOCKS);
    opts.insert(Options::ENABLE_WIKILINKS);
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_FOOTNOTES);

    let mut yaml: Option<(String, u32)> = None;
    let mut body_start = 0usize;
    let mut skip: Vec<Range<usize>> = Vec::new();
    let mut links = Vec::new();
    let mut headings = Vec::new();
    let mut tags = Vec::new();
    let mut plain = String::new();

    let mut in_meta = false;
    let mut in_code_block = false;
    let mut heading: Option<(u8, String, u32)> = None;
    // Open links/images: (kind, dest, start offset, has_pothole, display text collected)
    let mut link_stack: Vec<(LinkKind, String, usize, bool, String)> = Vec::new();
    let mut first_h1: Option<String> = None;

    for (ev, range) in Parser::new_ext(text, opts).into_offset_iter() {
        match ev {
            MdEvent::Start(Tag::MetadataBlock(MetadataBlockKind::YamlStyle)) => {
                in_meta = true;
                skip.push(range.clone());
                body_start = range.end;
            }
            MdEvent::End(TagEnd::MetadataBlock(_)) => in_meta = false,
            MdEvent::Start(Tag::CodeBlock(_)) => {
                in_code_block = true;
                skip.push(range);
            }
            MdEvent::End(TagEnd::CodeBlock) => {
                in_code_block = false;
                plain.push('\n');
            }
            MdEvent::Start(Tag::HtmlBlock) => skip.push(range),
            MdEvent::Start(Tag::Heading { level, .. }) => {
                heading = Some((level as u8, String::new(), lines.line_of(range.start)));
            }
            MdEvent::End(TagEnd::Heading(_)) => {
                if let Some((level, t, line)) = heading.take() {
                    let t = t.trim().to_string();
                    if level == 1 && first_h1.is_none() && !t.is_empty() {
                        first_h1 = Some(t.clone());
                    }
                    headings.push(ParsedHeading {
                        level,
                        text: t,
                        line,
                    });
                }
                plain.push('\n');
            }
            MdEvent::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            }) => {
                let (kind, pothole) = match link_type {
                    LinkType::WikiLink { has_pothole } => (LinkKind::Wikilink, has_pothole),
                    _ => (LinkKind::Markdown, true),
                };
                let kind = if matches!(link_type, LinkType::Autolink | LinkType::Email) {
                    None
                } else {
                    Some(kind)
                };
                match kind {
                    Some(k) => link_stack.push((
                        k,
                        dest_url.to_string(),
                        range.start,
                        pothole,
                        String::new(),
                    )),
                    // Autolinks are URLs: keep a placeholder so the End pops something.
                    None => link_stack.push((
                        LinkKind::Markdown,
                        String::new(),
                        range.start,
                        true,
                        String::new(),
                    )),
                }
            }
            MdEvent::Start(Tag::Image {
                link_type,
                dest_url,
                ..
            }) => {
                let pothole = match link_type {
                    LinkType::WikiLink { has_pothole } => has_pothole,
                    _ => true,
                };
                link_stack.push((
                    LinkKind::Embed,
                    dest_url.to_string(),
                    range.start,
                    pothole,
                    String::new(),
                ));
            }
            MdEvent::End(TagEnd::Link) | MdEvent::End(TagEnd::Image) => {
                if let Some((kind, dest, start, pothole, display)) = link_stack.pop() {
                    let wiki = text[start..].starts_with("[[") || text[start..].starts_with("![[");
                    if let Some(l) =
                        make_link(kind, &dest, wiki, pothole, display, lines.line_of(start))
                    {
                        links.push(l);
                    }
                }
            }
            MdEvent::Text(t) => {
                if in_meta {
                    if let Some((y, _)) = yaml.as_mut() {
                        y.push_str(&t);
                    } else {
                        yaml = Some((t.to_string(), lines.line_of(range.start)));
                    }
                    continue;
                }
                if let Some((_, h, _)) = heading.as_mut() {
                    h.push_str(&t);
                }
                if let Some(top) = link_stack.last_mut() {
                    top.4.push_str(&t);
                } else if !in_code_block {
                    let before = text[..range.start].chars().next_back();
                    scan_tags(&t, before, lines.line_of(range.start), &mut tags);
                }
                plain.push_str(&t);
            }
            MdEvent::Code(t) => {
                if let Some((_, h, _)) = heading.as_mut() {
                    h.push_str(&t);
                }
                if let Some(top) = link_stack.last_mut() {
                    top.4.push_str(&t);
                }
                plain.push(' ');
                plain.push_str(&t);
                plain.push(' ');
            }
            MdEvent::SoftBreak | MdEvent::HardBreak => {
                if let Some((_, h, _)) = heading.as_mut() {
                    h.push(' ');
                }
                plain.push('\n');
            }
            MdEvent::End(TagEnd::Paragraph)
            | MdEvent::End(TagEnd::Item)
            | MdEvent::End(TagEnd::TableCell)
            | MdEvent::End(TagEnd::BlockQuote(_)) => plain.push('\n'),
            _ => {}
        }
    }

    let mut errors = Vec::new();
    let fm_line = yaml
        .as_ref()
        .map(|(_, l)| l.saturating_sub(1).max(1))
        .unwrap_or(1);
    let frontmatter = match &yaml {
        Some((y, _)) => parse_yaml(y, &mut errors),
        None => serde_json::Value::Null,
    };

    let mut aliases = Vec::new();
    let mut fields = Vec::new();
    if let serde_json::Value::Object(map) = &frontmatter {
        for (k, v) in map {
            match k.to_lowercase().as_str() {
                "aliases" | "alias" => aliases.extend(string_list(v)),
                "tags" | "tag" => {
                    for t in string_list(v) {
                        for t in t.split([',', ' ']) {
                            let t = t.trim().trim_start_matches('#');
                            if !t.is_empty() {
                                tags.push(ParsedTag {
                                    tag: t.to_string(),
                                    source: "frontmatter",
                                    line: fm_line,
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
            let values: Vec<String> = match v {
                serde_json::Value::Array(items) => items.iter().map(value_text).collect(),
                other => vec![value_text(other)],
            };
            for value in values {
                fields.push(ParsedField {
                    key: k.clone(),
                    value,
                    source: "frontmatter",
                    line: fm_line,
                });
            }
        }
    }
    // Tags in frontmatter come first in the file; keep file order.
    tags.sort_by_key(|t| (t.line, t.source != "frontmatter"));

    let fm_title = frontmatter
        .get("title")
        .and_then(|t| t.as_str())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let (title, title_from) = match (first_h1, fm_title) {
        (Some(h), _) => (h, "h1"),
        (None, Some(t)) => (t, "frontmatter"),
        (None, None) => (file_stem(path).to_string(), "name"),
    };

    let (tasks, blocks, inline_fields) = scan_lines(text, &skip);
    fields.extend(inline_fields);

    let words = plain
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count() as u64;

    ParsedNote {
        title,
        title_from,
        frontmatter,
        aliases,
        tags,
        links,
        headings,
        blocks,
        tasks,
        fields,
        words,
        body: {
            let b = text.get(body_start..).unwrap_or("");
            b.strip_prefix("\r\n")
                .or_else(|| b.strip_prefix('\n'))
                .unwrap_or(b)
                .to_string()
        },
        errors,
    }
}

fn parse_yaml(y: &str, errors: &mut Vec<String>) -> serde_json::Value {
    let mut opts = serde_saphyr::Options::default();
    opts.with_snippet = false;
    match serde_saphyr::from_str_with_options::<serde_json::Value>(y, opts) {
        Ok(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            errors.push("frontmatter: not a mapping of keys to values".to_string());
            serde_json::Value::Null
        }
        Err(e) => {
            let mut msg = format!("frontmatter: {e}");
            if msg.len() > 500 {
                let mut cut = 500;
                while !msg.is_char_boundary(cut) {
                    cut -= 1;
                }
                msg.truncate(cut);
                msg.push('…');
            }
            errors.push(msg);
            serde_json::Value::Null
        }
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A list of strings, or one string split on commas.
fn string_list(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_null())
            .map(value_text)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

fn has_scheme(dest: &str) -> bool {
    let Some(colon) = dest.find(':') else {
        return false;
    };
    let scheme = &dest[..colon];
    // One letter before ':' is a Windows drive, not a scheme.
    scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn make_link(
    kind: LinkKind,
    dest: &str,
    wiki: bool,
    pothole: bool,
    display: String,
    line: u32,
) -> Option<ParsedLink> {
    if dest.is_empty() {
        return None;
    }
    let (raw, decoded): (String, Cow<'_, str>) = if wiki {
        // `[[T\|alias]]` inside a table leaves the escaping backslash on the target.
        let d = dest.trim().trim_end_matches('\\').trim();
        (d.to_string(), Cow::Borrowed(d))
    } else {
        if has_scheme(dest) || dest.starts_with("//") {
            return None;
        }
        let d = dest.trim();
        (
            d.to_string(),
            percent_encoding::percent_decode_str(d).decode_utf8_lossy(),
        )
    };
    let (file, frag) = match decoded.find('#') {
        Some(i) => (&decoded[..i], Some(&decoded[i + 1..])),
        None => (&decoded[..], None),
    };
    let (heading, block) = match frag {
        Some(f) if f.starts_with('^') => (None, Some(f[1..].trim().to_string())),
        Some(f) if !f.trim().is_empty() => (Some(f.trim().to_string()), None),
        _ => (None, None),
    };
    let display = if wiki {
        if pothole {
            Some(display.trim().to_string()).filter(|d| !d.is_empty())
        } else {
            None
        }
    } else {
        Some(display.trim().to_string()).filter(|d| !d.is_empty())
    };
    Some(ParsedLink {
        raw,
        target: file.trim().to_string(),
        heading,
        block,
        display,
        kind,
        line,
    })
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '/')
}

fn scan_tags(t: &str, before: Option<char>, line: u32, out: &mut Vec<ParsedTag>) {
    let mut prev = before;
    let mut line = line;
    let mut it = t.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c == '#' && prev.is_none_or(|p| p.is_whitespace() || p == '|') {
            let rest = &t[i + 1..];
            let end = rest.find(|c: char| !is_tag_char(c)).unwrap_or(rest.len());
            let tag = rest[..end].trim_end_matches('/');
            if !tag.is_empty() && !tag.starts_with('/') && tag.chars().any(|c| !c.is_ascii_digit())
            {
                out.push(ParsedTag {
                    tag: tag.to_string(),
                    source: "inline",
                    line,
                });
            }
            // Skip the tag's characters so `#a#b` yields one tag only.
            while let Some(&(j, c2)) = it.peek() {
                if j > i + end {
                    break;
                }
                prev = Some(c2);
                it.next();
            }
            continue;
        }
        if c == '\n' {
            line = line.saturating_add(1);
        }
        prev = Some(c);
    }
}

type LineScan = (Vec<ParsedTask>, Vec<ParsedBlock>, Vec<ParsedField>);

/// Tasks, block ids and inline fields, read line by line outside `skip` ranges.
fn scan_lines(text: &str, skip: &[Range<usize>]) -> LineScan {
    let mut tasks = Vec::new();
    let mut blocks = Vec::new();
    let mut fields = Vec::new();
    let mut offset = 0usize;
    let mut skip_i = 0usize;
    for (n, raw_line) in text.split('\n').enumerate() {
        let start = offset;
        offset += raw_line.len() + 1;
        while skip_i < skip.len() && skip[skip_i].end <= start {
            skip_i += 1;
        }
        // Any overlap skips the line: indented code starts after the indentation.
        let end = start + raw_line.len();
        if skip[skip_i..]
            .iter()
            .take_while(|r| r.start <= end)
            .any(|r| r.start < end.max(start + 1) && r.end > start)
        {
            continue;
        }
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let line = raw_line.trim_end_matches('\r');
        if let Some(task) = task_of(line) {
            tasks.push(ParsedTask {
                status: task.0,
                text: task.1.to_string(),
                line: line_no,
            });
        }
        if let Some(id) = block_id_of(line) {
            blocks.push(ParsedBlock {
                id: id.to_string(),
                line: line_no,
            });
        }
        if line.contains("::") {
            inline_fields(line, line_no, &mut fields);
        }
    }
    (tasks, blocks, fields)
}

/// Strips blockquote markers and indentation.
fn strip_quote(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        match t.strip_prefix('>') {
            Some(rest) => s = rest,
            None => return t,
        }
    }
}

fn task_of(line: &str) -> Option<(char, &str)> {
    let s = strip_quote(line);
    let rest = if let Some(r) = s
        .strip_prefix("- ")
        .or_else(|| s.strip_prefix("* "))
        .or_else(|| s.strip_prefix("+ "))
    {
        r
    } else {
        let digits = s.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 || digits > 9 {
            return None;
        }
        let r = &s[digits..];
        r.strip_prefix(". ").or_else(|| r.strip_prefix(") "))?
    };
    let rest = rest.trim_start();
    let mut chars = rest.chars();
    if chars.next() != Some('[') {
        return None;
    }
    let status = chars.next()?;
    if chars.next() != Some(']') || status == '\n' {
        return None;
    }
    let after = chars.as_str();
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    Some((status, after.trim()))
}

fn block_id_of(line: &str) -> Option<&str> {
    let t = line.trim_end();
    let caret = t.rfind('^')?;
    let id = &t[caret + 1..];
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let before = &t[..caret];
    if before.is_empty() || before.ends_with([' ', '\t']) {
        Some(id)
    } else {
        None
    }
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars().next().is_some_and(char::is_alphanumeric)
        && k.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '/' | '.'))
}

fn clean_key(k: &str) -> &str {
    k.trim().trim_matches(|c| c == '*' || c == '_').trim()
}

/// Dataview fields: `key:: value` as a whole line (after list/quote markers), and
/// `[key:: value]` / `(key:: value)` inside a line. Inline code is ignored.
fn inline_fields(line: &str, line_no: u32, out: &mut Vec<ParsedField>) {
    let mut cleaned = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            cleaned.push(' ');
        } else {
            cleaned.push(if in_code { ' ' } else { c });
        }
    }
    let s = strip_quote(&cleaned);
    let s = s
        .strip_prefix("- ")
        .or_else(|| s.strip_prefix("* "))
        .or_else(|| s.strip_prefix("+ "))
        .unwrap_or(s);
    let mut bracketed = false;
    for (open, close) in [('[', ']'), ('(', ')')] {
        let mut from = 0;
        while let Some(i) = s[from..].find(open) {
            let start = from + i + 1;
            let Some(j) = s[start..].find(close) else {
                break;
            };
            let inner = &s[start..start + j];
            if let Some((k, v)) = inner.split_once("::") {
                let k = clean_key(k);
                if valid_key(k) && (v.is_empty() || v.starts_with([' ', '\t'])) {
                    out.push(ParsedField {
                        key: k.to_string(),
                        value: v.trim().to_string(),
                        source: "inline",
                        line: line_no,
                    });
                    bracketed = true;
                }
            }
            from = start + j + 1;
        }
    }
    if bracketed {
        return;
    }
    if let Some((k, v)) = s.split_once("::") {
        let k = clean_key(k);
        if valid_key(k) && (v.is_empty() || v.starts_with([' ', '\t'])) {
            out.push(ParsedField {
                key: k.to_string(),
                value: v.trim().to_string(),
                source: "inline",
                line: line_no,
            });
        }
    }
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
