//! One file's rows for the cache's tables: every value computed first ([`NoteRows::new`], pure,
//! so a full index runs it on its parser threads, link resolution included), then written
//! ([`NoteRows::insert`] for a new row, [`NoteRows::replace`] for a note already indexed:
//! binds and steps only, the one part that must run on the writer).
//! Full-text writes of a batch wait in an [`FtsBatch`] until its end (see there why).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use rusqlite::{Connection, OptionalExtension, params};

use super::apply::{FileData, is_markdown};
use super::parse::fts::{FtsColumns, fts_columns};
use super::parse::tokens::words_key;
use super::parse::{ParsedNote, file_stem};
use super::resolve::{fold, name_key, target_key};

/// A kind of a note's parts, each in a table of its own, one row per part, keyed by the
/// note's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Tags,
    Links,
    Headings,
    Blocks,
    Tasks,
    Fields,
}

impl Part {
    /// Every kind, in the order of [`Shape`]'s hashes.
    pub(crate) const ALL: [Part; 6] = [
        Part::Tags,
        Part::Links,
        Part::Headings,
        Part::Blocks,
        Part::Tasks,
        Part::Fields,
    ];

    /// Its table.
    pub(crate) fn table(self) -> &'static str {
        match self {
            Part::Tags => "tags",
            Part::Links => "links",
            Part::Headings => "headings",
            Part::Blocks => "blocks",
            Part::Tasks => "tasks",
            Part::Fields => "fields",
        }
    }
}

/// Per [`Part`], a hash of the rows a note has there (links without what
/// they resolve to), stored with the note (`notes.shape`). An edit that leaves a table's rows
/// as they were (most edits change text, not the note's links, tags or headings) leaves
/// them in place: deleting and inserting them again, with their indexes, and resolving every
/// link again was most of the cache's time catching up after a burst of edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape([u64; 6]);

/// Bytes of a stored [`Shape`].
const SHAPE_BYTES: usize = 6 * 8;

/// A [`Hasher`] over blake3: a stored hash must mean the same rows in the next run, which
/// std's `DefaultHasher` does not promise. Only equality matters, so 64 bits are plenty.
struct StableHasher(blake3::Hasher);

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0.finalize().as_bytes()[..8]);
        u64::from_le_bytes(first)
    }
}

fn stable_hash(rows: &impl Hash) -> u64 {
    let mut h = StableHasher(blake3::Hasher::new());
    rows.hash(&mut h);
    h.finish()
}

impl Shape {
    /// The shape of a parsed note's rows.
    fn of(p: &ParsedNote) -> Shape {
        Shape([
            stable_hash(&p.tags),
            stable_hash(&p.links),
            stable_hash(&p.headings),
            stable_hash(&p.blocks),
            stable_hash(&p.tasks),
            stable_hash(&p.fields),
        ])
    }

    /// The hash of a table with no rows of the note.
    fn empty() -> u64 {
        stable_hash(&Vec::<u8>::new())
    }

    /// The form stored in `notes.shape`.
    fn to_blob(self) -> Vec<u8> {
        self.0.iter().flat_map(|h| h.to_le_bytes()).collect()
    }

    /// A stored shape; None for none (a note without parts: metadata only) or one that is not
    /// a shape's size (then every table is written again).
    pub(crate) fn from_blob(blob: Option<&[u8]>) -> Option<Shape> {
        let blob = blob.filter(|b| b.len() == SHAPE_BYTES)?;
        let mut out = [0u64; 6];
        for (h, chunk) in out.iter_mut().zip(blob.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *h = u64::from_le_bytes(b);
        }
        Some(Shape(out))
    }
}

/// A file's rows, ready to insert.
pub(crate) struct NoteRows {
    path: String,
    data: FileData,
    parsed: Option<ParsedNote>,
    name_key: String,
    title: String,
    title_from: &'static str,
    title_key: String,
    frontmatter: Option<String>,
    aliases: String,
    error: Option<String>,
    /// Per table, the hash of its rows (None: not parsed, no rows).
    shape: Option<Shape>,
    /// Per tag of `parsed`, its folded form.
    tag_keys: Vec<String>,
    /// Per link of `parsed`, its target key and the path it resolves to (see
    /// [`NoteRows::resolve_links`]).
    links: Vec<(String, Option<String>)>,
    /// Per field of `parsed`, its folded key.
    field_keys: Vec<String>,
}

/// Gives a link's target path from the linking note's path and the link's target (`E`: what
/// looking it up can fail with; a full index looks up in memory and cannot fail).
pub(crate) type ResolveLink<'a, E = rusqlite::Error> =
    dyn FnMut(&str, &str) -> Result<Option<String>, E> + 'a;

impl NoteRows {
    /// Computes the rows of `path`, links not resolved yet (see [`NoteRows::resolve_links`]).
    pub(crate) fn new(path: &str, data: FileData, parsed: Option<ParsedNote>) -> NoteRows {
        let md = is_markdown(path);
        let (title, title_from) = match &parsed {
            Some(p) => (p.title.clone(), p.title_from),
            None if md => (file_stem(path).to_string(), "name"),
            None => (path.rsplit('/').next().unwrap_or(path).to_string(), "name"),
        };
        let frontmatter = parsed
            .as_ref()
            .map(|p| &p.frontmatter)
            .filter(|f| !f.is_null())
            .map(|f| f.to_string());
        let aliases = parsed
            .as_ref()
            .map(|p| serde_json::to_string(&p.aliases).unwrap_or_else(|_| "[]".into()))
            .unwrap_or_else(|| "[]".into());
        let error = join_errors(&data, parsed.as_ref());
        let (tag_keys, links, field_keys) = match &parsed {
            Some(p) => (
                p.tags.iter().map(|t| fold(&t.tag)).collect(),
                p.links
                    .iter()
                    .map(|l| (target_key(&l.target), None))
                    .collect(),
                p.fields.iter().map(|f| fold(&f.key)).collect(),
            ),
            None => Default::default(),
        };
        NoteRows {
            path: path.to_string(),
            name_key: name_key(path),
            title_key: words_key(&title),
            shape: parsed.as_ref().map(Shape::of),
            title,
            title_from,
            frontmatter,
            aliases,
            error,
            data,
            parsed,
            tag_keys,
            links,
            field_keys,
        }
    }

    /// Resolves every link: `resolve_link(src, target)` gives its target path.
    pub(crate) fn resolve_links<E>(
        &mut self,
        resolve_link: &mut ResolveLink<'_, E>,
    ) -> Result<(), E> {
        let Some(p) = &self.parsed else {
            return Ok(());
        };
        for (l, (_, to)) in p.links.iter().zip(self.links.iter_mut()) {
            *to = resolve_link(&self.path, &l.target)?;
        }
        Ok(())
    }

    /// [`NoteRows::resolve_links`], by value.
    pub(crate) fn resolved<E>(
        mut self,
        resolve_link: &mut ResolveLink<'_, E>,
    ) -> Result<NoteRows, E> {
        self.resolve_links(resolve_link)?;
        Ok(self)
    }

    /// Inserts the rows of a note not in the cache (inside the caller's transaction), links
    /// as resolved; the full-text row goes into `fts` when given, else at once (a full
    /// index, whose ids only grow).
    pub(crate) fn insert(
        mut self,
        tx: &Connection,
        fts: Option<&mut FtsBatch>,
    ) -> rusqlite::Result<()> {
        let id = self.write_note(tx, None)?;
        let Some(p) = self.parsed.as_mut() else {
            return Ok(());
        };
        match fts {
            Some(batch) => batch.insert(id, std::mem::take(&mut p.fts)),
            None => insert_fts(tx, id, &p.fts)?,
        }
        tx.prepare_cached("INSERT INTO bodies(id, body) VALUES(?1, ?2)")?
            .execute(params![id, p.body])?;
        for part in Part::ALL {
            self.insert_parts(tx, part)?;
        }
        Ok(())
    }

    /// Writes these rows over those of note `id` at the same path, whose stored shape is
    /// `old` (None: it has no parts), keeping its id: its row is updated, and of its parts
    /// only the kinds whose [`Shape`] hash changed are written again, their links resolved
    /// then through `resolve_link`.
    pub(crate) fn replace(
        mut self,
        tx: &Connection,
        id: i64,
        old: Option<Shape>,
        fts: &mut FtsBatch,
        resolve_link: &mut ResolveLink<'_>,
    ) -> rusqlite::Result<()> {
        // First: the old terms are made from the stored text, which changes below.
        fts.delete(tx, id)?;
        self.write_note(tx, Some(id))?;
        match self.parsed.as_mut() {
            Some(p) => {
                fts.insert(id, std::mem::take(&mut p.fts));
                tx.prepare_cached(
                    "INSERT INTO bodies(id, body) VALUES(?1, ?2)
                     ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                )?
                .execute(params![id, p.body])?;
            }
            None => {
                tx.prepare_cached("DELETE FROM bodies WHERE id = ?1")?
                    .execute([id])?;
            }
        }
        let empty = Shape::empty();
        for (i, part) in Part::ALL.into_iter().enumerate() {
            let before = old.map_or(empty, |s| s.0[i]);
            let after = self.shape.map_or(empty, |s| s.0[i]);
            if before == after {
                continue;
            }
            if before != empty {
                tx.prepare_cached(&format!("DELETE FROM {} WHERE path = ?1", part.table()))?
                    .execute([&self.path])?;
            }
            if after != empty {
                if part == Part::Links {
                    self.resolve_links(resolve_link)?;
                }
                self.insert_parts(tx, part)?;
            }
        }
        Ok(())
    }

    /// Writes the note's own row: a new one (`id` None), or over row `id` (same path), and
    /// returns its id. Only the columns an edit can change are written over: the path and
    /// name key keep their index entries.
    fn write_note(&self, tx: &Connection, id: Option<i64>) -> rusqlite::Result<i64> {
        let data = &self.data;
        tx.prepare_cached(
            "INSERT INTO notes(id, path, name_key, title, title_from, frontmatter, aliases, size, mtime, hash, words, is_markdown, error, title_key, shape)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT(id) DO UPDATE SET title = excluded.title, title_from = excluded.title_from,
                 frontmatter = excluded.frontmatter, aliases = excluded.aliases, size = excluded.size,
                 mtime = excluded.mtime, hash = excluded.hash, words = excluded.words,
                 error = excluded.error, title_key = excluded.title_key, shape = excluded.shape",
        )?
        .execute(params![
            id,
            self.path,
            self.name_key,
            self.title,
            self.title_from,
            self.frontmatter,
            self.aliases,
            i64::try_from(data.size).unwrap_or(i64::MAX),
            data.mtime,
            data.hash,
            self.words(),
            is_markdown(&self.path),
            self.error,
            self.title_key,
            self.shape.map(Shape::to_blob),
        ])?;
        Ok(id.unwrap_or_else(|| tx.last_insert_rowid()))
    }

    fn words(&self) -> i64 {
        self.parsed
            .as_ref()
            .map(|p| i64::try_from(p.words).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// Inserts this note's parts of one kind.
    fn insert_parts(&self, tx: &Connection, part: Part) -> rusqlite::Result<()> {
        let Some(p) = &self.parsed else { return Ok(()) };
        let path = self.path.as_str();
        match part {
            Part::Tags => {
                let mut st = tx.prepare_cached(
                    "INSERT INTO tags(path, tag, tag_key, source, line) VALUES(?1, ?2, ?3, ?4, ?5)",
                )?;
                for (t, key) in p.tags.iter().zip(&self.tag_keys) {
                    st.execute(params![path, t.tag, key, t.source, t.line])?;
                }
            }
            Part::Links => {
                let mut st = tx.prepare_cached(
                    "INSERT INTO links(path, target_raw, target, target_key, target_path, kind, heading, block, display, line)
                     VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for (l, (key, to)) in p.links.iter().zip(&self.links) {
                    st.execute(params![
                        path,
                        l.raw,
                        l.target,
                        key,
                        to,
                        l.kind.as_str(),
                        l.heading,
                        l.block,
                        l.display,
                        l.line
                    ])?;
                }
            }
            Part::Headings => {
                let mut st = tx.prepare_cached(
                    "INSERT INTO headings(path, level, text, line) VALUES(?1, ?2, ?3, ?4)",
                )?;
                for h in &p.headings {
                    st.execute(params![path, h.level, h.text, h.line])?;
                }
            }
            Part::Blocks => {
                let mut st = tx.prepare_cached(
                    "INSERT INTO blocks(path, block_id, line) VALUES(?1, ?2, ?3)",
                )?;
                for b in &p.blocks {
                    st.execute(params![path, b.id, b.line])?;
                }
            }
            Part::Tasks => {
                let mut st = tx.prepare_cached(
                    "INSERT INTO tasks(path, line, status, done, text) VALUES(?1, ?2, ?3, ?4, ?5)",
                )?;
                for t in &p.tasks {
                    let done = matches!(t.status, 'x' | 'X');
                    st.execute(params![path, t.line, t.status.to_string(), done, t.text])?;
                }
            }
            Part::Fields => {
                let mut st = tx.prepare_cached(
                    "INSERT INTO fields(path, key, key_fold, value, source, line) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (f, key) in p.fields.iter().zip(&self.field_keys) {
                    st.execute(params![path, f.key, key, f.value, f.source, f.line])?;
                }
            }
        }
        Ok(())
    }
}

fn join_errors(data: &FileData, parsed: Option<&ParsedNote>) -> Option<String> {
    let mut all: Vec<&str> = data.error.iter().map(String::as_str).collect();
    if let Some(p) = parsed {
        all.extend(p.errors.iter().map(String::as_str));
    }
    (!all.is_empty()).then(|| all.join("; "))
}

/// The full-text row of note `id` (terms made by the parser, see `parse::fts`).
pub(crate) fn insert_fts(tx: &Connection, id: i64, c: &FtsColumns) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO notes_fts(rowid, title, aliases, fm, body) VALUES(?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, c.title, c.aliases, c.fm, c.body])?;
    Ok(())
}

/// Title, frontmatter, aliases and body as the cache stores them.
type StoredRow = (String, Option<String>, String, Option<String>);

/// What the cache stores of an indexed note, from which its full-text row was made: the index
/// keeps no text (contentless), so deleting a row means handing FTS5 the same terms again.
pub(crate) struct StoredText {
    title: String,
    frontmatter: serde_json::Value,
    aliases: Vec<String>,
    body: String,
}

impl StoredText {
    /// Note `id`'s stored text, or None when it has no full-text row (an attachment, or a
    /// note indexed as metadata only: those have no body).
    pub(crate) fn read(tx: &Connection, id: i64) -> rusqlite::Result<Option<StoredText>> {
        Ok(Self::read_where(tx, "n.id", &id)?.map(|(_, t)| t))
    }

    /// The id and stored text of the note at `path` (see [`StoredText::read`]).
    pub(crate) fn read_path(
        tx: &Connection,
        path: &str,
    ) -> rusqlite::Result<Option<(i64, StoredText)>> {
        Self::read_where(tx, "n.path", &path)
    }

    /// The note whose `column` (of `notes n`) is `value`, with its id.
    fn read_where(
        tx: &Connection,
        column: &str,
        value: &dyn rusqlite::ToSql,
    ) -> rusqlite::Result<Option<(i64, StoredText)>> {
        let found: Option<(i64, StoredRow)> = tx
            .prepare_cached(&format!(
                "SELECT n.id, n.title, n.frontmatter, n.aliases, b.body FROM notes n
                 LEFT JOIN bodies b ON b.id = n.id WHERE {column} = ?1"
            ))?
            .query_row([value], |r| {
                Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            })
            .optional()?;
        Ok(found.and_then(|(id, row)| StoredText::from_row(row).map(|t| (id, t))))
    }

    /// Bytes of text held (for bounding work in memory).
    pub(crate) fn len(&self) -> usize {
        self.body.len() + self.title.len()
    }

    fn from_row((title, fm, aliases, body): StoredRow) -> Option<StoredText> {
        let body = body?;
        // Both were written by `NoteRows::new` from the parse the row was made of.
        let frontmatter = fm
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or(serde_json::Value::Null);
        let aliases = serde_json::from_str(&aliases).unwrap_or_default();
        Some(StoredText {
            title,
            frontmatter,
            aliases,
            body,
        })
    }

    /// The full-text columns this text makes under `title` (the stored one when None).
    pub(crate) fn columns(&self, title: Option<&str>) -> FtsColumns {
        let title = title.unwrap_or(&self.title);
        fts_columns(title, &self.aliases, &self.frontmatter, &self.body)
    }
}

/// The full-text writes of one transaction, made at its end: deletions first, then insertions,
/// each in rowid order. FTS5 keeps pending writes in memory only while rowids grow; a write of
/// a smaller rowid (the old row of an edited note, right after the previous note's new row)
/// writes them out as a segment of their own first. Per event, that made one tiny segment per
/// note and constant merging: 540 notes/s catching up after a burst, most of it in
/// `fts5IndexFlush` and merges.
///
/// A deletion carries the row's old columns (FTS5's `delete` command on a contentless table).
/// The table used to be `contentless_delete=1`, which deletes by rowid alone and keeps
/// tombstones instead: a linear-probing hash per segment that every merge and every search
/// consults for each posting it reads. A burst of edits to notes with consecutive ids fills
/// consecutive slots, and those lookups were a quarter of catching up after a 10,000-edit
/// burst, and made a search five times slower until the next optimize.
#[derive(Default)]
pub(crate) struct FtsBatch {
    deletes: BTreeMap<i64, FtsColumns>,
    inserts: BTreeMap<i64, FtsColumns>,
    /// Terms of indexed rows made ahead of their deletion (see `prepare`).
    known: HashMap<i64, FtsColumns>,
}

impl FtsBatch {
    /// Row `id` leaves the index; its old terms come from what the cache stores of it, so call
    /// this before its rows change. A row inserted in this batch is simply not inserted.
    pub(crate) fn delete(&mut self, tx: &Connection, id: i64) -> rusqlite::Result<()> {
        self.leave(id, || {
            Ok(StoredText::read(tx, id)?.map(|stored| stored.columns(None)))
        })
    }

    /// [`FtsBatch::delete`] of a row whose stored text the caller has read already.
    pub(crate) fn delete_stored(&mut self, id: i64, stored: &StoredText) -> rusqlite::Result<()> {
        self.leave(id, || Ok(Some(stored.columns(None))))
    }

    /// Row `id` leaves the index with the terms it holds: those made ahead ([`FtsBatch::know`]),
    /// else `old`. Nothing to do for a row not in the index yet (inserted in this batch,
    /// which is then dropped) or already leaving it.
    fn leave(
        &mut self,
        id: i64,
        old: impl FnOnce() -> rusqlite::Result<Option<FtsColumns>>,
    ) -> rusqlite::Result<()> {
        if self.inserts.remove(&id).is_some() || self.deletes.contains_key(&id) {
            return Ok(());
        }
        let columns = match self.known.remove(&id) {
            Some(columns) => Some(columns),
            None => old()?,
        };
        if let Some(columns) = columns {
            self.deletes.insert(id, columns);
        }
        Ok(())
    }

    /// The terms indexed row `id` holds, made ahead from its stored text; used if it leaves
    /// the index in this batch. Valid until the row's first deletion, as the stored text of
    /// a row changes only after it (see `apply::retitle_fts`).
    pub(crate) fn know(&mut self, id: i64, columns: FtsColumns) {
        self.known.insert(id, columns);
    }

    /// Row `id` gets these columns (after any deletion of `id` in this batch).
    pub(crate) fn insert(&mut self, id: i64, columns: FtsColumns) {
        self.inserts.insert(id, columns);
    }

    /// Makes the writes (inside the caller's transaction) and empties the batch.
    pub(crate) fn write(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        let mut del = tx.prepare_cached(
            "INSERT INTO notes_fts(notes_fts, rowid, title, aliases, fm, body)
             VALUES('delete', ?1, ?2, ?3, ?4, ?5)",
        )?;
        for (id, c) in std::mem::take(&mut self.deletes) {
            del.execute(params![id, c.title, c.aliases, c.fm, c.body])?;
        }
        for (id, c) in std::mem::take(&mut self.inserts) {
            insert_fts(tx, id, &c)?;
        }
        self.known.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(body: &str) -> FtsColumns {
        fts_columns("", &[], &serde_json::Value::Null, body)
    }

    fn db() -> Connection {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(crate::schema::SCHEMA).expect("schema");
        c
    }

    /// A note as `NoteRows::insert` leaves it: its row, its body, its full-text row.
    fn indexed(c: &Connection, id: i64, body: &str) {
        c.execute(
            "INSERT INTO notes(id, path, name_key, title, title_from, size, is_markdown)
             VALUES(?1, ?2, '', '', 'name', 0, 1)",
            params![id, format!("n{id}.md")],
        )
        .expect("note");
        c.execute(
            "INSERT INTO bodies(id, body) VALUES(?1, ?2)",
            params![id, body],
        )
        .expect("body");
        insert_fts(c, id, &cols(body)).expect("fts");
    }

    fn terms(c: &Connection) -> Vec<(String, i64)> {
        c.prepare("SELECT term, doc FROM notes_vocab ORDER BY term")
            .expect("vocab")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    #[test]
    fn a_batch_deletes_first_and_drops_rows_it_inserted_itself() {
        let c = db();
        indexed(&c, 3, "three");
        let mut b = FtsBatch::default();
        b.insert(7, cols("seven"));
        b.delete(&c, 7).expect("delete 7");
        b.delete(&c, 3).expect("delete 3");
        b.insert(3, cols("three again"));
        b.insert(9, cols("nine"));
        assert_eq!(b.deletes.keys().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!(b.inserts.keys().copied().collect::<Vec<_>>(), vec![3, 9]);
    }

    #[test]
    fn a_deleted_row_leaves_none_of_its_terms_behind() {
        let c = db();
        indexed(&c, 1, "alpha shared");
        indexed(&c, 2, "shared");
        let mut b = FtsBatch::default();
        b.delete(&c, 1).expect("delete");
        b.insert(1, cols("beta shared"));
        // Deleted again in the same batch: the terms leaving are still the indexed ones.
        b.delete(&c, 1).expect("delete again");
        b.insert(1, cols("gamma"));
        b.delete(&c, 2).expect("delete 2");
        b.write(&c).expect("write");
        assert_eq!(terms(&c), vec![("gamma".to_string(), 1)]);
    }
}
