//! The search tokenizer: text into the folded terms the full-text index stores, and the same
//! for a query, so a user types a word as they write it and finds it in every script.
//!
//! - Words: runs of letters, digits and combining marks, in every script but CJK (so
//!   `soft-embed`, `snake_case`, `obsidian.md` and `it's` are two words each, as FTS5's own
//!   tokenizer had them). Folded the way users expect: lowercase, compatibility forms (NFKD: full-width
//!   letters, ligatures), diacritics on Latin and Greek letters, Arabic harakat, hamza forms
//!   and tatweel, Hebrew points; `ß` is `ss`, Russian `ё` is `е`. Other scripts
//!   keep their marks (an Indic vowel sign is a letter, not an accent).
//! - CJK (Han, Hiragana, Katakana, Hangul): a run of these characters, which has no spaces,
//!   is indexed as its overlapping bigrams followed by its last character. Any substring of
//!   two or more characters is then a phrase of bigrams, and one character a prefix, so a
//!   word is found inside a sentence, and a Korean word with its particle attached.
//! - Stems: a Snowball stemmer chosen per word by its script (Latin: English, Cyrillic:
//!   Russian, Greek, Arabic), never one language per note or vault. A stem that differs from
//!   its word is stored after the column's words with [`STEM_MARK`] in front, so exact,
//!   phrase and prefix searches never meet a stem, and a stem never breaks a phrase.

use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Put before a stored stem. The tokenizer never makes a word that starts with it, and the
/// FTS5 tokenizer keeps it (symbols are token characters in the schema).
pub(crate) const STEM_MARK: char = '~';

/// One piece of text: a word or a run of CJK characters, with its byte range in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A word, folded.
    Word {
        /// Byte range in the original text.
        range: std::ops::Range<usize>,
        /// The folded word.
        folded: String,
    },
    /// A run of CJK characters, in NFKC (half-width kana made full-width).
    Cjk {
        /// Byte range in the original text.
        range: std::ops::Range<usize>,
        /// The run's characters.
        chars: Vec<char>,
    },
}

/// True for characters of the scripts written without spaces that are bigrammed.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF      // Hangul Jamo
        | 0x2E80..=0x2FDF    // CJK radicals
        | 0x3005..=0x3007    // 々 〆 〇
        | 0x3021..=0x3029    // Hangzhou numerals
        | 0x3031..=0x3035    // kana repeat marks
        | 0x3038..=0x303C
        | 0x3041..=0x309F    // Hiragana (with the combining voiced marks)
        | 0x30A0..=0x30FA    // Katakana (not the middle dot U+30FB)
        | 0x30FC..=0x30FF
        | 0x3130..=0x318F    // Hangul compatibility Jamo
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xA960..=0xA97F    // Hangul Jamo extended A
        | 0xAC00..=0xD7FF    // Hangul syllables, Jamo extended B
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9F    // half-width Katakana
        | 0xFFA0..=0xFFDC    // half-width Hangul
        | 0x20000..=0x3FFFF // CJK extensions B and later
    )
}

/// What a character is to the tokenizer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Cjk,
    Word,
    Other,
}

fn class(c: char) -> Class {
    if is_cjk(c) {
        Class::Cjk
    } else if c.is_alphanumeric() || is_combining_mark(c) {
        Class::Word
    } else {
        Class::Other
    }
}

/// One piece as [`each_piece`] hands it over: the folded word or the run's characters live
/// in a buffer used again for the next piece.
pub(crate) enum PieceRef<'a> {
    /// A word, folded.
    Word {
        /// Byte range in the original text.
        range: std::ops::Range<usize>,
        /// The folded word.
        folded: &'a str,
    },
    /// A run of CJK characters, in NFKC.
    Cjk {
        /// Byte range in the original text.
        range: std::ops::Range<usize>,
        /// The run's characters.
        chars: &'a [char],
    },
}

impl PieceRef<'_> {
    fn to_owned(&self) -> Piece {
        match self {
            PieceRef::Word { range, folded } => Piece::Word {
                range: range.clone(),
                folded: folded.to_string(),
            },
            PieceRef::Cjk { range, chars } => Piece::Cjk {
                range: range.clone(),
                chars: chars.to_vec(),
            },
        }
    }
}

/// Splits `text` into its words and CJK runs, in order.
pub(crate) fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    each_piece(text, |p| out.push(p.to_owned()));
    out
}

/// Hands `f` the words and CJK runs of `text`, in order, without a string per word: the
/// index's tokenizing is a third of a full index's parsing, and a `String` per word made
/// its allocations a fifth of the parser threads' time.
pub(crate) fn each_piece(text: &str, mut f: impl FnMut(PieceRef<'_>)) {
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let mut start = 0usize;
    let mut current = Class::Other;
    let mut push = |class: Class, range: std::ops::Range<usize>| {
        let raw = &text[range.clone()];
        match class {
            Class::Other => {}
            Class::Word => {
                word.clear();
                fold_word_into(raw, &mut word);
                if !word.is_empty() {
                    f(PieceRef::Word {
                        range,
                        folded: &word,
                    });
                }
            }
            Class::Cjk => {
                run.clear();
                if unicode_normalization::is_nfkc_quick(raw.chars())
                    == unicode_normalization::IsNormalized::Yes
                {
                    run.extend(raw.chars());
                } else {
                    run.extend(raw.nfkc());
                }
                f(PieceRef::Cjk { range, chars: &run });
            }
        }
    };
    for (i, c) in text.char_indices() {
        let k = class(c);
        if k != current {
            push(current, start..i);
            start = i;
            current = k;
        }
    }
    push(current, start..text.len());
}

/// [`fold_word`] appended to `out`.
fn fold_word_into(w: &str, out: &mut String) {
    if w.is_ascii() {
        let at = out.len();
        out.push_str(w);
        out[at..].make_ascii_lowercase();
    } else {
        out.push_str(&fold_word(w));
    }
}

/// Folds one word (see the module docs).
pub(crate) fn fold_word(w: &str) -> String {
    if w.is_ascii() {
        return w.to_ascii_lowercase();
    }
    let lower = w.to_lowercase();
    let mut tmp = String::with_capacity(lower.len());
    let mut base = '\0';
    for c in lower.nfkd() {
        if is_combining_mark(c) {
            if strips(base, c) {
                continue;
            }
        } else {
            base = c;
        }
        match c {
            'ß' => tmp.push_str("ss"),
            '\u{0640}' => {} // Arabic tatweel: stretches a word, means nothing
            _ => tmp.push(c),
        }
    }
    tmp.nfc().collect()
}

/// True when the combining mark `m` after the base letter `base` is folded away.
fn strips(base: char, m: char) -> bool {
    let m = m as u32;
    match m {
        // Arabic harakat, hamza above/below (so أ إ آ fold to ا), superscript alef.
        0x064B..=0x065F | 0x0670 => true,
        // Hebrew points and cantillation.
        0x0591..=0x05C7 => true,
        // General diacritics: on Latin and Greek letters; on Cyrillic only ё → е (й stays).
        0x0300..=0x036F => is_latin(base) || is_greek(base) || (base == 'е' && m == 0x0308),
        0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F => {
            is_latin(base) || is_greek(base)
        }
        _ => false,
    }
}

fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c as u32, 0x00C0..=0x024F | 0x1E00..=0x1EFF)
}

fn is_greek(c: char) -> bool {
    matches!(c as u32, 0x0370..=0x03FF | 0x1F00..=0x1FFF)
}

struct Stemmers {
    english: Stemmer,
    russian: Stemmer,
    greek: Stemmer,
    arabic: Stemmer,
}

static STEMMERS: LazyLock<Stemmers> = LazyLock::new(|| Stemmers {
    english: Stemmer::create(Algorithm::English),
    russian: Stemmer::create(Algorithm::Russian),
    greek: Stemmer::create(Algorithm::Greek),
    arabic: Stemmer::create(Algorithm::Arabic),
});

/// The stem of a folded word, when its script has a stemmer (it may equal the word).
pub(crate) fn stem_of(folded: &str) -> Option<String> {
    let first = folded.chars().find(|c| c.is_alphabetic())?;
    let s = &*STEMMERS;
    let stemmer = match first as u32 {
        _ if is_latin(first) => &s.english,
        0x0400..=0x04FF => &s.russian,
        0x0370..=0x03FF | 0x1F00..=0x1FFF => &s.greek,
        0x0600..=0x06FF | 0x0750..=0x077F => &s.arabic,
        _ => return None,
    };
    let st = stemmer.stem(folded);
    (!st.is_empty()).then(|| st.into_owned())
}

/// The stem of a folded word when it has one that differs from it (what the index stores).
pub(crate) fn stem(folded: &str) -> Option<String> {
    stem_of(folded).filter(|s| s != folded)
}

/// Words a parser thread remembers the stem of before it starts over: a vault's words
/// repeat, and a look-up costs a fraction of a stemming.
const STEM_MEMO: usize = 100_000;

/// Keys are short words hashed once per word of every note: foldhash, not SipHash (which
/// made this look-up 4% of the parser threads' time). Its seed is random per process, so a
/// note cannot be written ahead with words that collide, and the memo is bounded anyway.
type Memo = std::collections::HashMap<String, Option<String>, foldhash::fast::RandomState>;

thread_local! {
    static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::new(Memo::default());
}

/// [`stem`], remembered per thread.
fn stem_memo(folded: &str, out: &mut String) {
    MEMO.with_borrow_mut(|m| {
        if let Some(s) = m.get(folded) {
            if let Some(s) = s {
                out.push(STEM_MARK);
                out.push_str(s);
                out.push(' ');
            }
            return;
        }
        if m.len() >= STEM_MEMO {
            m.clear();
        }
        let s = stem(folded);
        if let Some(s) = &s {
            out.push(STEM_MARK);
            out.push_str(s);
            out.push(' ');
        }
        m.insert(folded.to_string(), s);
    });
}

/// Appends the index terms of `text` to `out`, space-separated: each word folded, each CJK
/// run as bigrams and its last character, then the marked stems that differ from their word.
pub(crate) fn index_terms(text: &str, out: &mut String) {
    let mut stems = String::new();
    each_piece(text, |p| match p {
        PieceRef::Word { folded, .. } => {
            stem_memo(folded, &mut stems);
            out.push_str(folded);
            out.push(' ');
        }
        PieceRef::Cjk { chars, .. } => {
            for w in chars.windows(2) {
                out.extend(w);
                out.push(' ');
            }
            if let Some(last) = chars.last() {
                out.push(*last);
                out.push(' ');
            }
        }
    });
    out.push_str(&stems);
}

/// The folded words of `text` joined by spaces (CJK runs as they are): a title's key, equal
/// to a query's when the query is the title, however it is cased, accented or punctuated.
pub(crate) fn words_key(text: &str) -> String {
    let words: Vec<String> = pieces(text)
        .into_iter()
        .map(|p| match p {
            Piece::Word { folded, .. } => folded,
            Piece::Cjk { chars, .. } => chars.into_iter().collect(),
        })
        .collect();
    words.join(" ")
}

/// The terms a query phrase is searched as, in order, and whether its last term must be a
/// prefix (a phrase ending in one CJK character: the character may start a bigram).
///
/// A CJK run in a query gives its bigrams; its last character too when another piece follows
/// (in the index a run ends with it) or when it is one character long.
pub(crate) fn query_terms(text: &str) -> (Vec<String>, bool) {
    let ps = pieces(text);
    let mut terms = Vec::new();
    let mut last_prefix = false;
    let n = ps.len();
    for (i, p) in ps.into_iter().enumerate() {
        match p {
            Piece::Word { folded, .. } => {
                terms.push(folded);
                last_prefix = false;
            }
            Piece::Cjk { chars, .. } => {
                for w in chars.windows(2) {
                    terms.push(w.iter().collect());
                }
                let more = i + 1 < n;
                if (chars.len() == 1 || more)
                    && let Some(c) = chars.last()
                {
                    terms.push(c.to_string());
                }
                last_prefix = chars.len() == 1 && !more;
            }
        }
    }
    (terms, last_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(t: &str) -> String {
        let mut s = String::new();
        index_terms(t, &mut s);
        s.trim_end().to_string()
    }

    #[test]
    fn folding() {
        assert_eq!(fold_word("Ünïcödé"), "unicode");
        assert_eq!(
            words_key("Graph view (Core-Plugin)"),
            words_key("graph VIEW core plugin")
        );
        assert_eq!(fold_word("Straße"), "strasse");
        assert_eq!(fold_word("ΆΛΦΑ"), "αλφα");
        assert_eq!(fold_word("Ёлка"), "елка");
        assert_eq!(fold_word("йод"), "йод");
        assert_eq!(fold_word("أَحْمَد"), "احمد");
        assert_eq!(fold_word("ＰＤＦ"), "pdf");
        // An Indic vowel sign is kept.
        assert_eq!(fold_word("हिंदी"), "हिंदी");
    }

    #[test]
    fn cjk_bigrams_and_words() {
        assert_eq!(idx("東京都"), "東京 京都 都");
        assert_eq!(idx("Hello 世界!"), "hello 世界 界");
        assert_eq!(idx("문서를 저장"), "문서 서를 를 저장 장");
        // Half-width kana become full-width, so both spellings meet.
        assert_eq!(idx("ｶﾞｲﾄﾞ"), idx("ガイド"));
        assert_eq!(query_terms("東京"), (vec!["東京".to_string()], false));
        assert_eq!(query_terms("京"), (vec!["京".to_string()], true));
        assert_eq!(
            query_terms("東京tower"),
            (vec!["東京".into(), "京".into(), "tower".into()], false)
        );
    }

    #[test]
    fn stems_marked_after_words() {
        assert_eq!(
            idx("Attachments attached"),
            "attachments attached ~attach ~attach"
        );
        assert_eq!(idx("attach"), "attach");
        assert_eq!(idx("книги"), "книги ~книг");
        assert_eq!(stem_of("attachment").as_deref(), Some("attach"));
        assert_eq!(stem_of("attach").as_deref(), Some("attach"));
        assert_eq!(stem_of("東京"), None);
        // Snowball's English stem of `embed` is `emb` (prefix search finds every form).
        assert_eq!(
            idx("soft-embed snake_case it's"),
            "soft embed snake case it s ~emb"
        );
        assert!(idx("¡¿ — …").is_empty());
    }
}
