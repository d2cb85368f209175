//! Full-text search over the cache: the query ([`syntax`]) runs on `notes_fts`, ranked by
//! bm25 with the title weighing most, then aliases, frontmatter values and the body, after
//! the notes whose whole title is the query (`notes.title_key`); filters by tag, path glob
//! and field; snippets cut from the original body ([`snippet`]).

mod snippet;
mod syntax;

use rusqlite::{Connection, OptionalExtension, params_from_iter, types::Value};
use serde::Serialize;

use crate::CacheError;
use crate::parse::tokens::{STEM_MARK, words_key};
use crate::resolve::fold;

pub use syntax::fts_query;

/// bm25 weights of `notes_fts`'s columns: title, aliases, frontmatter values, body.
const WEIGHTS: &str = "10.0, 5.0, 2.0, 1.0";

/// Most indexed words one substring may stand for; past it the search asks for a longer one.
pub const MAX_SUBSTRING_TERMS: usize = 2000;

/// One search result.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// Vault path.
    pub path: String,
    /// Note title.
    pub title: String,
    /// bm25 score (lower is better; a title match weighs 10x a body match, aliases 5x,
    /// frontmatter values 2x); 0 for a search with filters only.
    pub score: f64,
    /// Body excerpt with matches between `«` and `»`.
    pub snippet: String,
}

/// `search` output.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    /// The query as given.
    pub query: String,
    /// The FTS5 query run (empty for a search with filters only).
    pub fts: String,
    /// Best first.
    pub hits: Vec<SearchHit>,
}

/// How to search, besides the query text.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Only notes with this tag (nested tags included).
    pub tag: Option<String>,
    /// Only paths matching this SQLite `GLOB` (`*` also matches `/`).
    pub path_glob: Option<String>,
    /// Only notes whose field `key` has exactly `value` (key case-insensitive, value ASCII
    /// case-insensitive), every pair required; added to the query's `field:key=value`.
    pub fields: Vec<(String, String)>,
    /// A word matches every indexed word containing it (compound parts, identifiers).
    pub substring: bool,
    /// At most this many hits.
    pub limit: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            tag: None,
            path_glob: None,
            fields: Vec::new(),
            substring: false,
            limit: 20,
        }
    }
}

fn q(context: &str, source: rusqlite::Error) -> CacheError {
    CacheError::Query {
        context: context.to_string(),
        source,
    }
}

/// The indexed words (not stems) that contain `folded`.
fn words_containing(conn: &Connection, folded: &str) -> Result<Vec<String>, CacheError> {
    let mut glob = String::from("*");
    for c in folded.chars() {
        match c {
            '*' | '?' | '[' => {
                glob.push('[');
                glob.push(c);
                glob.push(']');
            }
            _ => glob.push(c),
        }
    }
    glob.push('*');
    let mut st = conn
        .prepare_cached(
            "SELECT term FROM notes_vocab WHERE term GLOB ?1 AND substr(term, 1, 1) <> ?2
             LIMIT ?3",
        )
        .map_err(|e| q("substring search: ", e))?;
    let terms = st
        .query_map(
            params_from_iter([
                Value::Text(glob),
                Value::Text(STEM_MARK.to_string()),
                Value::Integer(MAX_SUBSTRING_TERMS as i64 + 1),
            ]),
            |r| r.get::<_, String>(0),
        )
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| q("substring search: ", e))?;
    if terms.len() > MAX_SUBSTRING_TERMS {
        return Err(CacheError::BadQuery(format!(
            "substring {folded:?} is in more than {MAX_SUBSTRING_TERMS} indexed words: make it longer"
        )));
    }
    Ok(terms)
}

/// Full-text search with the query syntax of [`syntax`] and the filters of `opts`.
pub fn search_with(
    conn: &Connection,
    query: &str,
    opts: &SearchOptions,
) -> Result<SearchResult, CacheError> {
    let mut expand = |w: &str| words_containing(conn, w);
    let expand: Option<syntax::Expand<'_>> = if opts.substring {
        Some(&mut expand)
    } else {
        None
    };
    let plan = syntax::plan(query, expand)?;
    let mut fields = plan.fields.clone();
    fields.extend(opts.fields.iter().cloned());
    if plan.fts.is_empty() && fields.is_empty() {
        return Err(CacheError::BadQuery(format!("empty search: {query:?}")));
    }
    let has_fts = !plan.fts.is_empty();
    let context = format!("search {query:?}: ");
    let unfiltered = opts.tag.is_none() && opts.path_glob.is_none() && fields.is_empty();
    let ranked = if has_fts && unfiltered {
        top_matches(conn, &plan.fts, &words_key(query), opts.limit).map_err(|e| q(&context, e))?
    } else {
        None
    };
    let rows = match ranked {
        Some(rows) => rows,
        None => matches_in_one_query(conn, &plan, &fields, query, opts, &context)?,
    };
    let mut body_st = conn
        .prepare_cached("SELECT body FROM bodies WHERE id = ?1")
        .map_err(|e| q(&context, e))?;
    let mut hits = Vec::with_capacity(rows.len());
    for (id, path, title, score) in rows {
        let body: Option<String> = body_st
            .query_row([id], |r| r.get(0))
            .optional()
            .map_err(|e| q(&context, e))?;
        hits.push(SearchHit {
            snippet: body
                .map(|b| snippet::snippet(&b, &plan.needles))
                .unwrap_or_default(),
            path,
            title,
            score,
        });
    }
    Ok(SearchResult {
        query: query.to_string(),
        fts: plan.fts,
        hits,
    })
}

/// A match: note id, path, title, score.
type Match = (i64, String, String, f64);

/// Best score first (bm25: lower is better), then the path.
fn by_score_then_path(a: &Match, b: &Match) -> std::cmp::Ordering {
    a.3.total_cmp(&b.3).then_with(|| a.1.cmp(&b.1))
}

/// The best `limit` matches of `fts`, ordered as [`matches_in_one_query`] orders them: notes
/// whose `title_key` is `key` first, then by score, then by path. Only the matches that make
/// the cut are looked up in `notes`: ordering every match by its path and title key meant a
/// lookup and a sort row per match, more than half of a search matching every note. None when
/// notes tied on score straddle the cut (their order is by path, which only the one query
/// can tell).
fn top_matches(
    conn: &Connection,
    fts: &str,
    key: &str,
    limit: usize,
) -> rusqlite::Result<Option<Vec<Match>>> {
    let mut known: Vec<Match> = conn
        .prepare_cached(&format!(
            "SELECT n.id, n.path, n.title, bm25(notes_fts, {WEIGHTS}) FROM notes n
             CROSS JOIN notes_fts ON notes_fts.rowid = n.id
             WHERE n.title_key = ?2 AND notes_fts MATCH ?1"
        ))?
        .query_map(params_from_iter([fts, key]), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    known.sort_by(by_score_then_path);
    known.truncate(limit);
    // Enough that `limit` others make it past the known ones, and one more to see a tie.
    let need = limit.saturating_add(known.len());
    let ranked: Vec<(i64, f64)> = conn
        .prepare_cached(&format!(
            "SELECT rowid, bm25(notes_fts, {WEIGHTS}) AS score FROM notes_fts
             WHERE notes_fts MATCH ?1 ORDER BY score LIMIT ?2"
        ))?
        .query_map(
            params_from_iter([
                Value::Text(fts.to_string()),
                Value::Integer(i64::try_from(need.saturating_add(1)).unwrap_or(i64::MAX)),
            ]),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    if let (Some(last), Some(next)) = (
        need.checked_sub(1).and_then(|i| ranked.get(i)),
        ranked.get(need),
    ) && last.1 == next.1
    {
        return Ok(None);
    }
    let mut by_id = conn.prepare_cached("SELECT path, title FROM notes WHERE id = ?1")?;
    let mut others = Vec::with_capacity(ranked.len());
    for (id, score) in ranked.into_iter().take(need) {
        if known.iter().any(|k| k.0 == id) {
            continue;
        }
        let (path, title) = by_id.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        others.push((id, path, title, score));
    }
    others.sort_by(by_score_then_path);
    known.extend(others);
    known.truncate(limit);
    Ok(Some(known))
}

/// Every match of the plan, filtered, ordered and cut in one query (see [`top_matches`]).
fn matches_in_one_query(
    conn: &Connection,
    plan: &syntax::Plan,
    fields: &[(String, String)],
    query: &str,
    opts: &SearchOptions,
    context: &str,
) -> Result<Vec<Match>, CacheError> {
    let has_fts = !plan.fts.is_empty();
    let mut sql = String::from("SELECT n.id, n.path, n.title, ");
    if has_fts {
        sql.push_str(&format!(
            "bm25(notes_fts, {WEIGHTS}) AS score FROM notes_fts JOIN notes n ON n.id = notes_fts.rowid
             WHERE notes_fts MATCH ?1"
        ));
    } else {
        sql.push_str("0.0 AS score FROM notes n WHERE n.is_markdown = 1 AND ?1 IS NULL");
    }
    sql.push_str(
        " AND (?2 IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.path = n.path
              AND (t.tag_key = ?2 OR substr(t.tag_key, 1, length(?2) + 1) = ?2 || '/')))
           AND (?3 IS NULL OR n.path GLOB ?3)",
    );
    let mut args: Vec<Value> = vec![
        if has_fts {
            Value::Text(plan.fts.clone())
        } else {
            Value::Null
        },
        opts.tag.as_deref().map_or(Value::Null, |t| {
            Value::Text(fold(t.trim().trim_start_matches('#')))
        }),
        opts.path_glob.clone().map_or(Value::Null, Value::Text),
        Value::Integer(i64::try_from(opts.limit).unwrap_or(i64::MAX)),
        Value::Text(words_key(query)),
    ];
    for (k, v) in fields {
        let (a, b) = (args.len() + 1, args.len() + 2);
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM fields x WHERE x.path = n.path AND x.key_fold = ?{a}
                  AND x.value = ?{b} COLLATE NOCASE)"
        ));
        args.push(Value::Text(fold(k.trim())));
        args.push(Value::Text(v.clone()));
    }
    // Known-item search: a note whose title is the query (folded) comes first.
    sql.push_str(" ORDER BY n.title_key = ?5 DESC, score, n.path LIMIT ?4");
    let mut st = conn.prepare(&sql).map_err(|e| q(context, e))?;
    st.query_map(params_from_iter(args), |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
    .map_err(|e| q(context, e))
}

/// Full-text search with optional tag (nested tags included) and path glob (SQLite `GLOB`:
/// `*` also matches `/`) filters; see [`search_with`] for the rest.
pub fn search(
    conn: &Connection,
    query: &str,
    tag: Option<&str>,
    path_glob: Option<&str>,
    limit: usize,
) -> Result<SearchResult, CacheError> {
    search_with(
        conn,
        query,
        &SearchOptions {
            tag: tag.map(str::to_string),
            path_glob: path_glob.map(str::to_string),
            limit,
            ..SearchOptions::default()
        },
    )
}
