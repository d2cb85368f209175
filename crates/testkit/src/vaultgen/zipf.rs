//! A large vocabulary whose word frequencies follow Zipf's law (the word of rank `r` is drawn
//! with weight `1 / r^s`), for generated vaults that search like natural text: the top ranks
//! are common English words, the long tail is seeded pronounceable words, every one distinct.

use std::collections::HashSet;

use super::Rng;

/// Common English words, the vocabulary's top ranks (real words a user would search for).
const ENGLISH: &[&str] = &[
    "time",
    "year",
    "people",
    "way",
    "day",
    "man",
    "thing",
    "woman",
    "life",
    "child",
    "world",
    "school",
    "state",
    "family",
    "student",
    "group",
    "country",
    "problem",
    "hand",
    "part",
    "place",
    "case",
    "week",
    "company",
    "system",
    "program",
    "question",
    "work",
    "government",
    "number",
    "night",
    "point",
    "home",
    "water",
    "room",
    "mother",
    "area",
    "money",
    "story",
    "fact",
    "month",
    "lot",
    "right",
    "study",
    "book",
    "eye",
    "job",
    "word",
    "business",
    "issue",
    "side",
    "kind",
    "head",
    "house",
    "service",
    "friend",
    "father",
    "power",
    "hour",
    "game",
    "line",
    "end",
    "member",
    "law",
    "car",
    "city",
    "community",
    "name",
    "president",
    "team",
    "minute",
    "idea",
    "kid",
    "body",
    "information",
    "back",
    "parent",
    "face",
    "others",
    "level",
    "office",
    "door",
    "health",
    "person",
    "art",
    "war",
    "history",
    "party",
    "result",
    "change",
    "morning",
    "reason",
    "research",
    "girl",
    "guy",
    "moment",
    "air",
    "teacher",
    "force",
    "education",
    "foot",
    "boy",
    "age",
    "policy",
    "music",
    "market",
    "sense",
    "nation",
    "plan",
    "college",
    "interest",
    "death",
    "experience",
    "effect",
    "class",
    "control",
    "care",
    "field",
    "development",
    "role",
    "effort",
    "rate",
    "heart",
    "drug",
    "show",
    "leader",
    "light",
    "voice",
    "wife",
    "police",
    "mind",
    "price",
    "report",
    "decision",
    "son",
    "view",
    "relationship",
    "town",
    "road",
    "arm",
    "difference",
    "value",
    "building",
    "action",
    "model",
    "season",
    "society",
    "tax",
    "director",
    "position",
    "player",
    "record",
    "paper",
    "space",
    "ground",
    "form",
    "event",
    "official",
    "matter",
    "center",
    "couple",
    "site",
    "project",
    "activity",
    "star",
    "table",
    "need",
    "court",
    "oil",
    "situation",
    "cost",
    "industry",
    "figure",
    "street",
    "image",
    "phone",
    "data",
    "picture",
    "practice",
    "piece",
    "land",
    "product",
    "doctor",
    "wall",
    "patient",
    "worker",
    "news",
    "test",
    "movie",
    "north",
    "love",
    "support",
    "technology",
    "step",
    "baby",
    "computer",
    "type",
    "attention",
    "film",
    "tree",
    "source",
    "organization",
    "hair",
    "window",
    "evidence",
    "population",
    "site",
    "river",
    "garden",
    "mountain",
    "bridge",
    "letter",
    "island",
    "forest",
    "kitchen",
    "winter",
    "summer",
    "autumn",
    "spring",
    "harbor",
    "lantern",
    "compass",
    "meadow",
    "quartz",
    "anchor",
    "thread",
    "pattern",
    "method",
    "archive",
    "signal",
    "memory",
    "draft",
    "review",
    "summary",
    "answer",
    "journal",
    "library",
    "pencil",
    "engine",
    "orchard",
    "violin",
    "canvas",
    "harvest",
    "glacier",
    "desert",
    "volcano",
    "canyon",
    "pepper",
    "butter",
    "ginger",
    "saffron",
    "walnut",
    "almond",
    "cherry",
    "lemon",
    "melon",
    "silver",
    "copper",
    "marble",
    "granite",
    "velvet",
    "cotton",
    "ribbon",
    "feather",
    "pebble",
    "whisper",
    "thunder",
    "rainbow",
    "shadow",
    "mirror",
    "candle",
    "blanket",
    "ladder",
    "hammer",
];

/// Consonants and vowels of the tail's syllables. No `e` or `y` ends a syllable, so the
/// English stemmer leaves the tail's words whole.
const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
const VOWELS: &[u8] = b"aiou";

/// A vocabulary of `len()` distinct words with Zipf weights, and a sampler over it.
#[derive(Debug, Clone)]
pub struct Zipf {
    words: Vec<String>,
    /// Cumulative weights, `cdf[r]` = sum of the weights of ranks `0..=r`.
    cdf: Vec<f64>,
}

impl Zipf {
    /// `size` words (at least one), the word of rank `r` (0-based) weighing `1 / (r+1)^exponent`
    /// (natural text: an exponent near 1).
    pub fn new(size: usize, exponent: f64) -> Zipf {
        let size = size.max(1);
        let mut seen = HashSet::with_capacity(size);
        let mut words = Vec::with_capacity(size);
        for w in ENGLISH {
            if words.len() < size && seen.insert((*w).to_string()) {
                words.push((*w).to_string());
            }
        }
        let mut k = 0usize;
        while words.len() < size {
            let w = tail_word(k);
            k += 1;
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut cdf = Vec::with_capacity(size);
        let mut total = 0.0;
        for r in 0..size {
            total += 1.0 / ((r + 1) as f64).powf(exponent);
            cdf.push(total);
        }
        Zipf { words, cdf }
    }

    /// How many words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Never: a vocabulary has at least one word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The word of rank `rank` (0 is the most frequent), clamped to the last.
    pub fn word(&self, rank: usize) -> &str {
        &self.words[rank.min(self.words.len() - 1)]
    }

    /// The share of all drawn words that rank `rank` gets, in `0..=1`.
    pub fn share(&self, rank: usize) -> f64 {
        let r = rank.min(self.cdf.len() - 1);
        let w = self.cdf[r] - if r == 0 { 0.0 } else { self.cdf[r - 1] };
        w / self.cdf[self.cdf.len() - 1]
    }

    /// One word drawn by its weight (one `next_u64` draw).
    pub fn sample(&self, rng: &mut Rng) -> &str {
        let total = self.cdf[self.cdf.len() - 1];
        // 53 random bits: a uniform f64 in [0, 1).
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let r = self.cdf.partition_point(|&c| c <= u);
        self.word(r)
    }
}

/// Tail word `k`: `k + 56` written in base 56 with a consonant-vowel syllable per digit, so
/// distinct `k` give distinct words of two syllables or more.
fn tail_word(k: usize) -> String {
    let base = CONSONANTS.len() * VOWELS.len();
    let mut x = k + base;
    let mut digits = Vec::new();
    while x > 0 {
        digits.push(x % base);
        x /= base;
    }
    let mut w = String::with_capacity(digits.len() * 2);
    for d in digits.iter().rev() {
        w.push(CONSONANTS[d / VOWELS.len()] as char);
        w.push(VOWELS[d % VOWELS.len()] as char);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_words_and_zipf_shares() {
        let z = Zipf::new(20_000, 1.0);
        assert_eq!(z.len(), 20_000);
        let unique: HashSet<&str> = (0..z.len()).map(|r| z.word(r)).collect();
        assert_eq!(unique.len(), z.len(), "every word is distinct");
        assert_eq!(z.word(0), "time");
        // Rank 1 is drawn about 10x as often as rank 10 (1/1 against 1/10).
        assert!((z.share(0) / z.share(9) - 10.0).abs() < 1e-9);
        let mut rng = Rng::new(3);
        let draws = 100_000;
        let top = (0..draws).filter(|_| z.sample(&mut rng) == "time").count();
        let expected = z.share(0) * draws as f64;
        assert!(
            (top as f64 - expected).abs() < expected * 0.1,
            "{top} draws of the top word, expected about {expected:.0}"
        );
    }
}
