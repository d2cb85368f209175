//! A deterministic vault generator for tests and benchmarks: seeded, N notes in nested
//! folders with frontmatter, tags, wikilinks, tasks, headings and a few attachments.

use std::io;
use std::path::Path;

/// SplitMix64: tiny, fast, and stable forever, so a seed always gives the same vault
/// (a general-purpose RNG crate may change its streams between versions).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

const WORDS: &[&str] = &[
    "vault", "note", "graph", "link", "idea", "garden", "river", "stone", "paper", "signal",
    "memory", "draft", "project", "meeting", "summary", "question", "answer", "system", "daily",
    "review", "research", "pattern", "method", "archive", "index", "season", "harvest", "orbit",
    "lantern", "compass", "thread", "weave", "anchor", "harbor", "meadow", "ember", "quartz",
];
const TAGS: &[&str] = &[
    "project",
    "idea",
    "todo",
    "reading",
    "area/work",
    "area/home",
    "status/active",
    "status/done",
    "meeting",
    "journal",
];
const FOLDERS: &[&str] = &[
    "Projects",
    "Areas",
    "Resources",
    "Archive",
    "Daily",
    "People",
];

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// Notes written.
    pub notes: usize,
    /// Attachments written.
    pub attachments: usize,
    /// Vault-relative paths of the notes.
    pub note_paths: Vec<String>,
}

/// The vault-relative path of note `i` of a vault of `n` notes.
pub fn note_path(i: usize, n: usize) -> String {
    let top = FOLDERS[i % FOLDERS.len()];
    // Roughly 100 notes per leaf folder, two levels below the top.
    let leaves = (n / 100).max(1);
    let leaf = (i / FOLDERS.len()) % leaves;
    format!("{top}/g{:03}/s{:02}/Note {i}.md", leaf / 10, leaf % 10)
}

/// Writes `n` notes (and about `n / 50` attachments) into `root`, deterministically from `seed`.
pub fn generate(root: &Path, n: usize, seed: u64) -> io::Result<Generated> {
    let mut rng = Rng::new(seed);
    let mut out = Generated::default();
    for i in 0..n {
        let rel = note_path(i, n);
        let text = note_text(&mut rng, i, n);
        let abs = root.join(&rel);
        if let Some(parent) = abs.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&abs, text)?;
        out.note_paths.push(rel);
        out.notes += 1;
        if i % 50 == 0 {
            let dir = root.join("Attachments");
            std::fs::create_dir_all(&dir)?;
            let bytes: Vec<u8> = (0..2048).map(|_| (rng.next_u64() & 0xff) as u8).collect();
            std::fs::write(dir.join(format!("image {i}.png")), bytes)?;
            out.attachments += 1;
        }
    }
    Ok(out)
}

fn words(rng: &mut Rng, count: usize) -> String {
    let mut s = String::new();
    for k in 0..count {
        if k > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.below(WORDS.len())]);
    }
    s
}

/// The text of note `i`: frontmatter, headings, paragraphs with tags and links, tasks.
pub fn note_text(rng: &mut Rng, i: usize, n: usize) -> String {
    let mut t = String::new();
    t.push_str("---\n");
    t.push_str(&format!("title: Note {i}\n"));
    let tag_a = TAGS[rng.below(TAGS.len())];
    let tag_b = TAGS[rng.below(TAGS.len())];
    t.push_str(&format!("tags: [{tag_a}, {tag_b}]\n"));
    if rng.chance(20) {
        t.push_str(&format!("aliases: [\"N{i}\"]\n"));
    }
    t.push_str(&format!(
        "created: 2026-{:02}-{:02}\n",
        1 + i % 12,
        1 + i % 28
    ));
    t.push_str("---\n");
    t.push_str(&format!("# Note {i}\n\n"));
    for section in 0..(1 + rng.below(3)) {
        t.push_str(&format!("## Section {section}\n\n"));
        let count = 30 + rng.below(60);
        let mut para = words(rng, count);
        if rng.chance(60) {
            para.push_str(&format!(" #{}", TAGS[rng.below(TAGS.len())]));
        }
        for _ in 0..rng.below(4) {
            let target = rng.below(n.max(1));
            match rng.below(4) {
                0 => para.push_str(&format!(" [[Note {target}]]")),
                1 => para.push_str(&format!(" [[Note {target}|see {target}]]")),
                2 => para.push_str(&format!(" [[Note {target}#Section 0]]")),
                _ => para.push_str(&format!(" [[Missing {target}]]")),
            }
        }
        t.push_str(&para);
        t.push_str("\n\n");
    }
    if rng.chance(40) {
        for k in 0..(1 + rng.below(4)) {
            let done = if rng.chance(30) { 'x' } else { ' ' };
            let what = words(rng, 4);
            t.push_str(&format!("- [{done}] task {k} {what}\n"));
        }
        t.push('\n');
    }
    if i.is_multiple_of(50) {
        t.push_str(&format!("![[image {i}.png]]\n"));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_vault() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        let ga = generate(a.path(), 120, 7).expect("gen");
        generate(b.path(), 120, 7).expect("gen");
        assert_eq!(ga.notes, 120);
        assert_eq!(ga.attachments, 3);
        for p in &ga.note_paths {
            let x = std::fs::read(a.path().join(p)).expect("read");
            let y = std::fs::read(b.path().join(p)).expect("read");
            assert_eq!(x, y, "{p}");
        }
        let text = std::fs::read_to_string(a.path().join(&ga.note_paths[0])).expect("read");
        assert!(text.starts_with("---\ntitle: Note 0\n"));
        assert!(text.contains("# Note 0"));
    }
}
