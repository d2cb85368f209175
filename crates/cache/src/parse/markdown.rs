//! The one pulldown-cmark pass over a note: headings, links and embeds, inline tags, the
//! frontmatter's text, the ranges the line scan skips, and the rendered text words are
//! counted in. Each event kind has its own handler on [`Walker`].

use std::ops::Range;

use pulldown_cmark::{Event as MdEvent, LinkType, MetadataBlockKind, Options, Parser, Tag, TagEnd};

use super::links::make_link;
use super::tags::scan_tags;
use super::{LinkKind, ParsedHeading, ParsedLink, ParsedTag};

/// What the markdown pass found.
pub(super) struct Markdown {
    /// The frontmatter's text and the line its text starts on.
    pub(super) yaml: Option<(String, u32)>,
    /// Where the body starts (after the frontmatter).
    pub(super) body_start: usize,
    /// Byte ranges of the frontmatter, code blocks and HTML blocks.
    pub(super) skip: Vec<Range<usize>>,
    /// Outgoing links in order.
    pub(super) links: Vec<ParsedLink>,
    /// Headings in order.
    pub(super) headings: Vec<ParsedHeading>,
    /// Inline tags.
    pub(super) tags: Vec<ParsedTag>,
    /// The rendered text (frontmatter excluded, code included).
    pub(super) plain: String,
    /// The first non-empty H1.
    pub(super) first_h1: Option<String>,
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

/// A link or image being read: its text arrives between its start and end events.
struct OpenLink {
    kind: LinkKind,
    dest: String,
    start: usize,
    has_pothole: bool,
    display: String,
}

/// The state of the pass between events.
struct Walker<'t> {
    text: &'t str,
    lines: Lines,
    out: Markdown,
    in_meta: bool,
    in_code_block: bool,
    /// The heading being read: level, text so far, line.
    heading: Option<(u8, String, u32)>,
    link_stack: Vec<OpenLink>,
}

/// Runs the pass over `text`.
pub(super) fn scan(text: &str) -> Markdown {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_YAML_STYLE_METADATA_BLOCKS);
    opts.insert(Options::ENABLE_WIKILINKS);
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_FOOTNOTES);
    let mut w = Walker {
        text,
        lines: Lines::new(text),
        out: Markdown {
            yaml: None,
            body_start: 0,
            skip: Vec::new(),
            links: Vec::new(),
            headings: Vec::new(),
            tags: Vec::new(),
            plain: String::new(),
            first_h1: None,
        },
        in_meta: false,
        in_code_block: false,
        heading: None,
        link_stack: Vec::new(),
    };
    for (ev, range) in Parser::new_ext(text, opts).into_offset_iter() {
        w.event(ev, range);
    }
    w.out
}

impl Walker<'_> {
    fn event(&mut self, ev: MdEvent<'_>, range: Range<usize>) {
        match ev {
            MdEvent::Start(Tag::MetadataBlock(MetadataBlockKind::YamlStyle)) => {
                self.in_meta = true;
                self.out.skip.push(range.clone());
                self.out.body_start = range.end;
            }
            MdEvent::End(TagEnd::MetadataBlock(_)) => self.in_meta = false,
            MdEvent::Start(Tag::CodeBlock(_)) => {
                self.in_code_block = true;
                self.out.skip.push(range);
            }
            MdEvent::End(TagEnd::CodeBlock) => {
                self.in_code_block = false;
                self.out.plain.push('\n');
            }
            MdEvent::Start(Tag::HtmlBlock) => self.out.skip.push(range),
            MdEvent::Start(Tag::Heading { level, .. }) => {
                self.heading = Some((level as u8, String::new(), self.lines.line_of(range.start)));
            }
            MdEvent::End(TagEnd::Heading(_)) => self.heading_end(),
            MdEvent::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            }) => self.link_start(link_type, &dest_url, range.start),
            MdEvent::Start(Tag::Image {
                link_type,
                dest_url,
                ..
            }) => self.image_start(link_type, &dest_url, range.start),
            MdEvent::End(TagEnd::Link) | MdEvent::End(TagEnd::Image) => self.link_end(),
            MdEvent::Text(t) => self.text(&t, range.start),
            MdEvent::Code(t) => self.code(&t),
            MdEvent::SoftBreak | MdEvent::HardBreak => {
                if let Some((_, h, _)) = self.heading.as_mut() {
                    h.push(' ');
                }
                self.out.plain.push('\n');
            }
            MdEvent::End(TagEnd::Paragraph)
            | MdEvent::End(TagEnd::Item)
            | MdEvent::End(TagEnd::TableCell)
            | MdEvent::End(TagEnd::BlockQuote(_)) => self.out.plain.push('\n'),
            _ => {}
        }
    }

    fn heading_end(&mut self) {
        if let Some((level, t, line)) = self.heading.take() {
            let t = t.trim().to_string();
            if level == 1 && self.out.first_h1.is_none() && !t.is_empty() {
                self.out.first_h1 = Some(t.clone());
            }
            self.out.headings.push(ParsedHeading {
                level,
                text: t,
                line,
            });
        }
        self.out.plain.push('\n');
    }

    fn link_start(&mut self, link_type: LinkType, dest: &str, start: usize) {
        let (kind, has_pothole) = match link_type {
            LinkType::WikiLink { has_pothole } => (LinkKind::Wikilink, has_pothole),
            _ => (LinkKind::Markdown, true),
        };
        // Autolinks are URLs: keep a placeholder (no destination) so the end pops something.
        let dest = if matches!(link_type, LinkType::Autolink | LinkType::Email) {
            String::new()
        } else {
            dest.to_string()
        };
        self.link_stack.push(OpenLink {
            kind,
            dest,
            start,
            has_pothole,
            display: String::new(),
        });
    }

    fn image_start(&mut self, link_type: LinkType, dest: &str, start: usize) {
        let has_pothole = match link_type {
            LinkType::WikiLink { has_pothole } => has_pothole,
            _ => true,
        };
        self.link_stack.push(OpenLink {
            kind: LinkKind::Embed,
            dest: dest.to_string(),
            start,
            has_pothole,
            display: String::new(),
        });
    }

    fn link_end(&mut self) {
        let Some(open) = self.link_stack.pop() else {
            return;
        };
        let rest = &self.text[open.start..];
        let wiki = rest.starts_with("[[") || rest.starts_with("![[");
        let line = self.lines.line_of(open.start);
        if let Some(l) = make_link(
            open.kind,
            &open.dest,
            wiki,
            open.has_pothole,
            open.display,
            line,
        ) {
            self.out.links.push(l);
        }
    }

    fn text(&mut self, t: &str, start: usize) {
        if self.in_meta {
            if let Some((y, _)) = self.out.yaml.as_mut() {
                y.push_str(t);
            } else {
                self.out.yaml = Some((t.to_string(), self.lines.line_of(start)));
            }
            return;
        }
        if let Some((_, h, _)) = self.heading.as_mut() {
            h.push_str(t);
        }
        if let Some(top) = self.link_stack.last_mut() {
            top.display.push_str(t);
        } else if !self.in_code_block {
            let before = self.text[..start].chars().next_back();
            scan_tags(t, before, self.lines.line_of(start), &mut self.out.tags);
        }
        self.out.plain.push_str(t);
    }

    fn code(&mut self, t: &str) {
        if let Some((_, h, _)) = self.heading.as_mut() {
            h.push_str(t);
        }
        if let Some(top) = self.link_stack.last_mut() {
            top.display.push_str(t);
        }
        self.out.plain.push(' ');
        self.out.plain.push_str(t);
        self.out.plain.push(' ');
    }
}
