//! Snippets cut from a note's original body (the index keeps terms, not text): the window of
//! [`WIDTH`] words with the most matches, matches between `«` and `»`, `…` where cut.

use std::ops::Range;

use super::syntax::Needles;
use crate::parse::tokens::{Piece, pieces, stem_of};

/// Words (or CJK characters) a snippet shows, as FTS5's `snippet()` did.
pub(crate) const WIDTH: usize = 16;

/// One unit of text a snippet counts: a word, or one CJK character.
struct Unit {
    range: Range<usize>,
    hit: bool,
}

fn word_hits(folded: &str, n: &Needles) -> bool {
    n.words.contains(folded)
        || n.prefixes.iter().any(|p| folded.starts_with(p.as_str()))
        || n.substrings.iter().any(|s| folded.contains(s.as_str()))
        // Stemming every word of a long body is the cost here: only words that start like
        // a stem of the query can have it.
        || (n.stems.iter().any(|s| s.chars().next() == folded.chars().next())
            && stem_of(folded).is_some_and(|s| n.stems.contains(&s)))
}

fn units_of(body: &str, n: &Needles) -> Vec<Unit> {
    let mut units = Vec::new();
    for p in pieces(body) {
        match p {
            Piece::Word { range, folded } => units.push(Unit {
                hit: word_hits(&folded, n),
                range,
            }),
            Piece::Cjk { range, chars } => {
                let mut hits = vec![false; chars.len()];
                for needle in n.cjk.iter().filter(|w| !w.is_empty()) {
                    for (i, w) in chars.windows(needle.len()).enumerate() {
                        if w == needle.as_slice() {
                            hits[i..i + needle.len()].iter_mut().for_each(|h| *h = true);
                        }
                    }
                }
                let original: Vec<(usize, char)> = body[range.clone()].char_indices().collect();
                if original.len() == chars.len() {
                    for (k, (off, c)) in original.iter().enumerate() {
                        let s = range.start + off;
                        units.push(Unit {
                            range: s..s + c.len_utf8(),
                            hit: hits[k],
                        });
                    }
                } else {
                    // Normalization changed the length (half-width kana): one unit.
                    units.push(Unit {
                        hit: hits.iter().any(|h| *h),
                        range,
                    });
                }
            }
        }
    }
    units
}

/// The snippet of `body` for a search with these needles.
pub(crate) fn snippet(body: &str, n: &Needles) -> String {
    let units = units_of(body, n);
    if units.is_empty() {
        return String::new();
    }
    let width = WIDTH.min(units.len());
    // The window with the most hits (the first such), then started a few units before its
    // first hit for context.
    let mut count: usize = units[..width].iter().filter(|u| u.hit).count();
    let (mut best, mut best_count) = (0usize, count);
    for i in 1..=units.len() - width {
        count = count + usize::from(units[i + width - 1].hit) - usize::from(units[i - 1].hit);
        if count > best_count {
            (best, best_count) = (i, count);
        }
    }
    if let Some(first) = units[best..best + width].iter().position(|u| u.hit) {
        best = (best + first).saturating_sub(3).min(units.len() - width);
    }
    let window = &units[best..best + width];
    let mut out = String::new();
    // At either end of the body the text around the words (markup, punctuation) is kept.
    let mut at = if best > 0 {
        out.push('…');
        window[0].range.start
    } else {
        0
    };
    let mut open = false;
    for u in window {
        let gap = &body[at..u.range.start];
        if open && (!u.hit || !gap.is_empty()) {
            out.push('»');
            open = false;
        }
        out.push_str(gap);
        if u.hit && !open {
            out.push('«');
            open = true;
        }
        out.push_str(&body[u.range.clone()]);
        at = u.range.end;
    }
    if open {
        out.push('»');
    }
    if best + width < units.len() {
        out.push('…');
    } else {
        out.push_str(body[at..].trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needles(words: &[&str], stems: &[&str], cjk: &[&str]) -> Needles {
        Needles {
            words: words.iter().map(|s| s.to_string()).collect(),
            stems: stems.iter().map(|s| s.to_string()).collect(),
            cjk: cjk.iter().map(|s| s.chars().collect()).collect(),
            ..Needles::default()
        }
    }

    #[test]
    fn shows_original_text_with_marks() {
        let n = needles(&["attachment"], &["attach"], &[]);
        assert_eq!(
            snippet("Add **Attachments** here; it attached.", &n),
            "Add **«Attachments»** here; it «attached»."
        );
        let body = (0..40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ")
            + " Ünïcode end";
        let s = snippet(&body, &needles(&["unicode"], &[], &[]));
        assert!(s.starts_with('…') && s.contains("«Ünïcode»"), "{s}");
        let s = snippet("東京都に住む。京都も好き。", &needles(&[], &[], &["京都"]));
        assert_eq!(s, "東«京都»に住む。«京都»も好き。");
        assert_eq!(snippet("", &n), "");
    }
}
