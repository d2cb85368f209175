//! A deterministic vault generator for tests and benchmarks: seeded, N notes in nested
//! folders with frontmatter, tags, wikilinks, tasks, headings and a few attachments.
//! [`generate`] draws its words from a small fixed list (every word is in nearly every note);
//! [`generate_zipf`] draws them from a large vocabulary with Zipf-distributed frequencies
//! ([`Zipf`]), as natural text has: a few words everywhere, most words in a few notes.

use std::io;
use std::path::Path;

mod zipf;

pub use zipf::Zipf;

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
    generate_in(root, n, seed, &Vocab::Fixed)
}

/// [`generate`] with the words of the notes drawn from `vocab` by their Zipf frequencies
/// (same folders, frontmatter, links, tasks and attachments).
pub fn generate_zipf(root: &Path, n: usize, seed: u64, vocab: &Zipf) -> io::Result<Generated> {
    generate_in(root, n, seed, &Vocab::Zipf(vocab))
}

fn generate_in(root: &Path, n: usize, seed: u64, vocab: &Vocab<'_>) -> io::Result<Generated> {
    let mut rng = Rng::new(seed);
    let mut out = Generated::default();
    for i in 0..n {
        let rel = note_path(i, n);
        let text = note_text_in(&mut rng, i, n, vocab);
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

/// Where the words of a note come from.
enum Vocab<'a> {
    /// [`WORDS`], uniformly (one `below` draw per word: the original generator's stream).
    Fixed,
    /// A large vocabulary by Zipf's law.
    Zipf(&'a Zipf),
}

impl Vocab<'_> {
    fn pick(&self, rng: &mut Rng) -> &str {
        match self {
            Vocab::Fixed => WORDS[rng.below(WORDS.len())],
            Vocab::Zipf(z) => z.sample(rng),
        }
    }
}

fn words(rng: &mut Rng, vocab: &Vocab<'_>, count: usize) -> String {
    let mut s = String::new();
    for k in 0..count {
        if k > 0 {
            s.push(' ');
        }
        s.push_str(vocab.pick(rng));
    }
    s
}

/// The text of note `i`: frontmatter, headings, paragraphs with tags and links, tasks.
pub fn note_text(rng: &mut Rng, i: usize, n: usize) -> String {
    note_text_in(rng, i, n, &Vocab::Fixed)
}

fn note_text_in(rng: &mut Rng, i: usize, n: usize, vocab: &Vocab<'_>) -> String {
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
        let mut para = words(rng, vocab, count);
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
            let what = words(rng, vocab, 4);
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

    const PINNED: &str = "380ac27ad258ba48ce8e9647425762c3c2dc2166a416181dc678fd98d3883755";

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

    /// Every note of `generate(root, 120, 7)`, hashed in order.
    fn vault_hash(root: &Path, g: &Generated) -> String {
        let mut h = blake3::Hasher::new();
        for p in &g.note_paths {
            h.update(p.as_bytes());
            h.update(&std::fs::read(root.join(p)).expect("read"));
        }
        h.finalize().to_hex().to_string()
    }

    #[test]
    fn fixed_vocabulary_output_is_unchanged() {
        // Pinned from the generator before the Zipf mode: tests and benchmarks depend on it.
        let a = tempfile::tempdir().expect("tempdir");
        let g = generate(a.path(), 120, 7).expect("gen");
        assert_eq!(vault_hash(a.path(), &g), PINNED);
    }

    #[test]
    fn zipf_vault_has_a_long_tail() {
        let a = tempfile::tempdir().expect("tempdir");
        let z = Zipf::new(5_000, 1.0);
        let g = generate_zipf(a.path(), 200, 7, &z).expect("gen");
        assert_eq!(g.notes, 200);
        let all: String = g
            .note_paths
            .iter()
            .map(|p| std::fs::read_to_string(a.path().join(p)).expect("read"))
            .collect();
        let top = z.word(0);
        let in_notes = g
            .note_paths
            .iter()
            .filter(|p| {
                std::fs::read_to_string(a.path().join(p))
                    .expect("read")
                    .split_whitespace()
                    .any(|w| w == top)
            })
            .count();
        assert!(in_notes > 150, "the top word is in most notes ({in_notes})");
        let distinct: std::collections::HashSet<&str> = all.split_whitespace().collect();
        assert!(
            distinct.len() > 1_500,
            "a large vocabulary ({})",
            distinct.len()
        );
        // Same seed, same vault.
        let b = tempfile::tempdir().expect("tempdir");
        let g2 = generate_zipf(b.path(), 200, 7, &z).expect("gen");
        assert_eq!(vault_hash(a.path(), &g), vault_hash(b.path(), &g2));
    }
}
