//! The user's search text into an FTS5 query over the terms of `parse::tokens`, plus the
//! field filters and what a snippet highlights. User input never breaks FTS5: every term is
//! quoted, operators are kept only where FTS5 accepts them.
//!
//! - a word matches itself and the words of its stem: `attachment` is
//!   `("attachment" OR "attach" OR "~attach")`, `~` marking stored stems;
//! - `"two words"` is an exact phrase, `word*` a prefix (neither is stemmed);
//! - a word that is several terms (`soft-embed`, a CJK word: bigrams) is a phrase of them;
//! - `title:word` / `body:word` search one column; `OR`, `AND`, `NOT` in capitals are operators;
//! - `field:key=value` (or `field:key="two words"`) keeps notes whose field `key` is exactly
//!   `value` (ASCII case-insensitive), like `vaultkeeper fields key=value`;
//! - in substring mode a word matches every indexed word containing it (parts of compounds,
//!   code identifiers), looked up in the index's vocabulary.

use std::collections::HashSet;

use crate::CacheError;
use crate::parse::tokens::{Piece, STEM_MARK, pieces, query_terms, stem_of};

/// What a snippet marks in a body: the terms of the query in the forms it searches.
#[derive(Debug, Default, Clone)]
pub(crate) struct Needles {
    /// Folded words, matched exactly.
    pub(crate) words: HashSet<String>,
    /// Stems: a word whose stem is one of these matches.
    pub(crate) stems: HashSet<String>,
    /// A word starting with one of these matches.
    pub(crate) prefixes: Vec<String>,
    /// A word containing one of these matches (substring mode).
    pub(crate) substrings: Vec<String>,
    /// CJK strings, matched inside runs.
    pub(crate) cjk: Vec<Vec<char>>,
}

/// A parsed search.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The FTS5 query (empty when the search has only filters).
    pub(crate) fts: String,
    /// `field:key=value` filters.
    pub(crate) fields: Vec<(String, String)>,
    /// What snippets highlight.
    pub(crate) needles: Needles,
}

/// Looks up the indexed words containing a folded word (substring mode).
pub(crate) type Expand<'a> = &'a mut dyn FnMut(&str) -> Result<Vec<String>, CacheError>;

fn quote(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

fn is_operator(w: &str) -> bool {
    matches!(w, "AND" | "OR" | "NOT")
}

/// Reads one whitespace-separated word, where a `"` after `=` opens a quoted value that may
/// hold spaces (`field:key="two words"`).
fn read_word(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut word = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            break;
        }
        chars.next();
        if c == '"' && word.ends_with('=') {
            word.extend(chars.by_ref().take_while(|&c| c != '"'));
            continue;
        }
        word.push(c);
    }
    word
}

/// Parses `user` (see the module docs); `expand` is set in substring mode.
pub(crate) fn plan(user: &str, mut expand: Option<Expand<'_>>) -> Result<Plan, CacheError> {
    let mut plan = Plan::default();
    let mut out: Vec<String> = Vec::new();
    let mut chars = user.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let phrase: String = chars.by_ref().take_while(|&c| c != '"').collect();
            if let Some(p) = phrase_fragment(phrase.trim(), false, &mut plan.needles) {
                out.push(p);
            }
            continue;
        }
        let word = read_word(&mut chars);
        if is_operator(&word) {
            // An operator needs terms on both sides; drop a dangling one.
            if out.last().is_some_and(|w| !is_operator(w)) && chars.peek().is_some() {
                out.push(word);
            }
            continue;
        }
        if let Some(rest) = word.strip_prefix("field:")
            && let Some((k, v)) = rest.split_once('=')
            && !k.trim().is_empty()
        {
            plan.fields.push((k.trim().to_string(), v.to_string()));
            continue;
        }
        let (column, term) = match word.split_once(':') {
            Some((col @ ("title" | "body"), rest)) if !rest.is_empty() => (Some(col), rest),
            _ => (None, word.as_str()),
        };
        let (term, prefix) = match term.strip_suffix('*') {
            Some(t) if !t.is_empty() => (t, true),
            _ => (term, false),
        };
        let piece = match expand.as_mut() {
            Some(ex) => substring_fragment(term, &mut **ex, &mut plan.needles)?,
            None => word_fragment(term, prefix, &mut plan.needles),
        };
        let Some(mut piece) = piece else { continue };
        if let Some(col) = column {
            piece = format!("{col} : {piece}");
        }
        out.push(piece);
    }
    // Operators left without a term after them, or before them (a word that gave no term).
    while out.last().is_some_and(|w| is_operator(w)) {
        out.pop();
    }
    let mut cleaned: Vec<String> = Vec::with_capacity(out.len() * 2);
    for w in out {
        let after_term = cleaned.last().is_some_and(|l| !is_operator(l));
        if is_operator(&w) && !after_term {
            continue;
        }
        // FTS5's implicit AND joins phrases only, not parenthesized groups: say it.
        if !is_operator(&w) && after_term {
            cleaned.push("AND".to_string());
        }
        cleaned.push(w);
    }
    plan.fts = cleaned.join(" ");
    Ok(plan)
}

/// A word typed bare: one term with its stem family, else a phrase of its terms.
fn word_fragment(term: &str, prefix: bool, needles: &mut Needles) -> Option<String> {
    let ps = pieces(term);
    if let [Piece::Word { folded, .. }] = ps.as_slice()
        && !prefix
    {
        needles.words.insert(folded.clone());
        let Some(stem) = stem_of(folded) else {
            return Some(quote(folded));
        };
        let mut alts = vec![quote(folded)];
        // The stem as a word of its own is in the family only when it is its own stem (a
        // word that is its own stem is stored without a marked one): `attach` for
        // `attachments`, but not `embed` (stem `emb`) for `embedding` (stem `embed`).
        if &stem != folded && stem_of(&stem).as_ref() == Some(&stem) {
            alts.push(quote(&stem));
        }
        alts.push(quote(&format!("{STEM_MARK}{stem}")));
        needles.stems.insert(stem);
        return Some(format!("({})", alts.join(" OR ")));
    }
    phrase_fragment(term, prefix, needles)
}

/// An exact phrase of the terms of `text`; with `prefix`, its last term is a prefix.
fn phrase_fragment(text: &str, prefix: bool, needles: &mut Needles) -> Option<String> {
    let ps = pieces(text);
    let last_word = ps.iter().rev().find_map(|p| match p {
        Piece::Word { folded, .. } => Some(folded.clone()),
        Piece::Cjk { .. } => None,
    });
    for p in ps {
        match p {
            Piece::Word { folded, .. } => {
                needles.words.insert(folded);
            }
            Piece::Cjk { chars, .. } => needles.cjk.push(chars),
        }
    }
    let (terms, last_prefix) = query_terms(text);
    if terms.is_empty() {
        return None;
    }
    if prefix && let Some(w) = last_word {
        needles.prefixes.push(w);
    }
    let mut q = quote(&terms.join(" "));
    if prefix || last_prefix {
        q.push('*');
    }
    Some(q)
}

/// Substring mode: each word of `term` matches the indexed words containing it; CJK runs are
/// substrings already.
fn substring_fragment(
    term: &str,
    expand: &mut dyn FnMut(&str) -> Result<Vec<String>, CacheError>,
    needles: &mut Needles,
) -> Result<Option<String>, CacheError> {
    let mut parts = Vec::new();
    for p in pieces(term) {
        match p {
            Piece::Word { folded, .. } => {
                let found = expand(&folded)?;
                parts.push(if found.is_empty() {
                    quote(&folded)
                } else {
                    format!(
                        "({})",
                        found
                            .iter()
                            .map(|t| quote(t))
                            .collect::<Vec<_>>()
                            .join(" OR ")
                    )
                });
                needles.substrings.push(folded);
            }
            Piece::Cjk { chars, .. } => {
                let run: String = chars.iter().collect();
                if let Some(f) = phrase_fragment(&run, false, needles) {
                    parts.push(f);
                }
            }
        }
    }
    Ok(match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(format!("({})", parts.join(" AND "))),
    })
}

/// The FTS5 query for `user` without substring mode (see the module docs).
pub fn fts_query(user: &str) -> String {
    plan(user, None).map(|p| p.fts).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_query_is_safe() {
        // Words bring their stem family; phrases and prefixes stay exact.
        assert_eq!(
            fts_query("alpha beta"),
            "(\"alpha\" OR \"~alpha\") AND (\"beta\" OR \"~beta\")"
        );
        assert_eq!(
            fts_query("\"two words\" pre*"),
            "\"two words\" AND \"pre\"*"
        );
        assert_eq!(
            fts_query("a OR b NOT"),
            "(\"a\" OR \"~a\") OR (\"b\" OR \"~b\")"
        );
        assert_eq!(
            fts_query("title:x body:y*"),
            "title : (\"x\" OR \"~x\") AND body : \"y\"*"
        );
        // Punctuation separates terms (a word of several terms is a phrase of them), and is
        // never FTS5 syntax: `-` is not an operator, parentheses are not groups.
        assert_eq!(
            fts_query("it's (x) -y a:b"),
            "\"it s\" AND (\"x\" OR \"~x\") AND (\"y\" OR \"~y\") AND \"a b\""
        );
        assert_eq!(fts_query("say\"hi"), "\"say hi\"");
        assert_eq!(fts_query("   "), "");
        assert_eq!(fts_query("((( \"\" - NOT"), "");
        assert_eq!(fts_query("NOT x"), "(\"x\" OR \"~x\")");
    }

    #[test]
    fn stems_cjk_and_fields() {
        assert_eq!(
            fts_query("Attachments"),
            "(\"attachments\" OR \"attach\" OR \"~attach\")"
        );
        assert_eq!(fts_query("東京都"), "\"東京 京都\"");
        assert_eq!(fts_query("京"), "\"京\"*");
        assert_eq!(fts_query("soft-embed"), "\"soft embed\"");
        let p = plan("field:status=draft field:owner=\"Ann Lee\" plan", None).expect("plan");
        assert_eq!(
            p.fields,
            vec![
                ("status".to_string(), "draft".to_string()),
                ("owner".to_string(), "Ann Lee".to_string())
            ]
        );
        assert_eq!(p.fts, "(\"plan\" OR \"~plan\")");
    }

    #[test]
    fn substring_mode_expands_words() {
        let mut ex = |w: &str| -> Result<Vec<String>, CacheError> {
            Ok(match w {
                "modell" => vec!["sprachmodell".into(), "modelle".into()],
                _ => vec![],
            })
        };
        let p = plan("modell zzz 日本", Some(&mut ex)).expect("plan");
        assert_eq!(
            p.fts,
            "(\"sprachmodell\" OR \"modelle\") AND \"zzz\" AND \"日本\""
        );
    }
}
