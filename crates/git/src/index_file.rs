//! The index file (`.git/index`) read and rewritten directly for a commit of a few paths:
//! entries are found by binary search in the file as read, and the new file is one copy
//! with the changed entries spliced in. libgit2 parses every entry into its own structures
//! and hashes the whole file with collision-detecting SHA-1 on read and again on write,
//! which on 100,000 tracked files is most of the time of a one-file commit.
//!
//! Only the plain formats are handled here (versions 2 and 3, SHA-1, no split or sparse
//! index); [`IndexFile::open`] says [`Open::Unsupported`] otherwise, and the commit goes
//! through libgit2. The lock protocol is git's: `index.lock` is created exclusively before
//! the index is read and renamed over it once written, so no other writer slips between.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use git2::Oid;
use sha1::{Digest, Sha1};

use crate::lock_owner;

/// Where the new index is written while `index.lock` is held (git's own writers use the
/// lock file itself; see [`lock_owner`] for why this one does not).
const NEW_INDEX: &str = "index.vaultkeeper.new";
const HASH_LEN: usize = 20;
const HEADER_LEN: usize = 12;
/// Stat fields (10 × u32), object id, flags: the fixed part of a v2 entry.
const FIXED_LEN: usize = 40 + HASH_LEN + 2;
const NAME_MASK: u16 = 0x0fff;
const EXTENDED: u16 = 0x4000;
const STAGE_MASK: u16 = 0x3000;
/// Below this size the old index's checksum is checked inline: a thread costs more.
const CHECK_ASIDE: usize = 256 * 1024;

/// What opening the index found.
pub(crate) enum Open {
    /// The index, with `index.lock` held.
    Ready(IndexFile),
    /// Another process holds `index.lock`.
    Locked,
    /// A format this module does not rewrite (the reason, for the debug log).
    Unsupported(String),
    /// The index has conflicts (entries at a stage other than 0).
    Conflicts,
}

/// One entry to write: the stat data git keeps, the blob and the mode.
#[derive(Debug, Clone)]
pub(crate) struct NewEntry {
    /// The stat fields in index order: ctime s, ns, mtime s, ns, dev, ino, (mode), uid, gid, size.
    pub stat: Stat,
    /// The object id.
    pub id: Oid,
    /// The git mode (0o100644, 0o100755, 0o120000).
    pub mode: u32,
}

/// The stat data of an index entry, truncated to 32 bits as git stores it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stat {
    pub ctime: (u32, u32),
    pub mtime: (u32, u32),
    pub dev: u32,
    pub ino: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

/// Where one entry lies in the file as read.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
    path_len: usize,
}

/// The index as read, the changes made to it, and the lock that is renamed over it.
pub(crate) struct IndexFile {
    path: PathBuf,
    data: Arc<Vec<u8>>,
    /// The old index, open until the new one is renamed over it: see [`free_aside`].
    old: Option<std::fs::File>,
    /// The old index's checksum being checked on another thread while the commit stages;
    /// [`IndexFile::commit`] waits for it before it writes anything taken from that index.
    checksum: Checksum,
    version: u32,
    entries: Vec<Span>,
    /// Offset of the first extension (the end of the entries).
    ext_start: usize,
    /// Path → new entry, or `None` for a removal.
    changes: BTreeMap<Vec<u8>, Option<NewEntry>>,
    /// Folders removed whole (`a/b/`, with the slash).
    removed_dirs: Vec<Vec<u8>>,
    /// Held until the commit or the drop: `index.lock` goes with it.
    _lock: Lock,
}

/// Whether the old index's bytes are the ones its trailer names.
enum Checksum {
    /// Known: checked inline, or there is none (`index.skipHash`, an absent index).
    Done(bool),
    /// Being computed aside.
    Pending(JoinHandle<bool>),
}

impl Checksum {
    /// Starts checking `data` (an index whose structure parsed) against its trailer.
    /// git itself checks it only in `fsck` (since 2.13): a commit splices these bytes into
    /// the new index, so this one does, but on the second core while the paths are staged
    /// (1.9 MB at 20,000 tracked files, about a millisecond of SHA-1).
    fn start(data: &Arc<Vec<u8>>) -> Checksum {
        if data.len() < HEADER_LEN + HASH_LEN {
            return Checksum::Done(true);
        }
        if data.len() < CHECK_ASIDE {
            return Checksum::Done(checksum_matches(data));
        }
        let aside = Arc::clone(data);
        match std::thread::Builder::new()
            .name("vk-index-sum".into())
            .spawn(move || checksum_matches(&aside))
        {
            Ok(handle) => Checksum::Pending(handle),
            Err(_) => Checksum::Done(checksum_matches(data)),
        }
    }

    /// Waits for the answer.
    fn matches(self) -> bool {
        match self {
            Checksum::Done(ok) => ok,
            Checksum::Pending(handle) => handle.join().unwrap_or(false),
        }
    }
}

/// Closes the replaced index on another thread. Its last close frees the file, which on
/// ext4 costs about 1.4 ms per MB (2.7 ms at 20,000 tracked files, measured), and nothing
/// of the commit waits for that.
fn free_aside(old: Option<std::fs::File>) {
    let Some(old) = old else { return };
    let _ = std::thread::Builder::new()
        .name("vk-index-free".into())
        .spawn(move || drop(old));
}

/// A null trailer is what `index.skipHash` writes: nothing to check.
fn checksum_matches(d: &[u8]) -> bool {
    let end = d.len() - HASH_LEN;
    let trailer = &d[end..];
    trailer.iter().all(|&b| b == 0) || Sha1::digest(&d[..end]).as_slice() == trailer
}

/// `index.lock`, held while this exists: removed on drop (the new index is renamed over the
/// index beside it, see [`IndexFile::commit`]).
struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

impl IndexFile {
    /// Takes `index.lock` in `git_dir`, then reads and checks the index (absent: empty).
    pub(crate) fn open(git_dir: &Path) -> std::io::Result<Open> {
        let path = git_dir.join("index");
        let lock_path = git_dir.join("index.lock");
        // A lock a vaultkeeper that died left behind is taken back by `safety::check`,
        // which every commit runs before it gets here.
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock_path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(Open::Locked),
            Err(e) => return Err(e),
        };
        let lock = Lock { path: lock_path };
        // Says who holds it, should this process die before letting go (see lock_owner).
        file.write_all(&lock_owner::marker())?;
        drop(file);
        // A new index a killed vaultkeeper was writing; ours to remove while the lock is held.
        let _ = std::fs::remove_file(git_dir.join(NEW_INDEX));
        let (data, old) = match std::fs::File::open(&path) {
            Ok(mut f) => {
                let size = f.metadata().map_or(0, |m| m.len() as usize);
                let mut d = Vec::with_capacity(size + 1);
                f.read_to_end(&mut d)?;
                (Arc::new(d), Some(f))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Arc::new(Vec::new()), None),
            Err(e) => return Err(e),
        };
        Ok(match parse(&data) {
            Ok(Parsed::Index {
                version,
                entries,
                ext_start,
            }) => Open::Ready(IndexFile {
                path,
                old,
                checksum: Checksum::start(&data),
                data,
                version,
                entries,
                ext_start,
                changes: BTreeMap::new(),
                removed_dirs: Vec::new(),
                _lock: lock,
            }),
            Ok(Parsed::Conflicts) => Open::Conflicts,
            Err(why) => Open::Unsupported(why),
        })
    }

    fn entry_path(&self, s: &Span) -> &[u8] {
        let at = s.start + FIXED_LEN + self.extended_len(s);
        &self.data[at..at + s.path_len]
    }

    fn extended_len(&self, s: &Span) -> usize {
        if be16(&self.data, s.start + 60) & EXTENDED != 0 {
            2
        } else {
            0
        }
    }

    fn find(&self, path: &[u8]) -> Option<&Span> {
        self.entries
            .binary_search_by(|s| self.entry_path(s).cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    fn under_removed_dir(&self, path: &[u8]) -> bool {
        self.removed_dirs.iter().any(|d| path.starts_with(d))
    }

    /// The object id and mode at `path` (stage 0), the changes made so far included.
    pub(crate) fn get(&self, path: &str) -> Option<(Oid, u32)> {
        let p = path.as_bytes();
        if let Some(change) = self.changes.get(p) {
            return change.as_ref().map(|e| (e.id, e.mode));
        }
        if self.under_removed_dir(p) {
            return None;
        }
        let s = self.find(p)?;
        let id = Oid::from_bytes(&self.data[s.start + 40..s.start + 40 + HASH_LEN]).ok()?;
        Some((id, be32(&self.data, s.start + 24)))
    }

    /// Whether `dir/` holds any entry (the changes made so far included).
    fn has_under(&self, dir: &[u8]) -> bool {
        if self
            .changes
            .range(dir.to_vec()..)
            .take_while(|(k, _)| k.starts_with(dir))
            .any(|(_, v)| v.is_some())
        {
            return true;
        }
        if self.under_removed_dir(dir) {
            return false;
        }
        let i = self.entries.partition_point(|s| self.entry_path(s) < dir);
        self.entries
            .get(i)
            .is_some_and(|s| self.entry_path(s).starts_with(dir))
    }

    /// Adds or replaces the entry at `path`. As `git add` does, a file replaces a folder
    /// of the same name (its entries go) and a folder replaces a file on its way.
    pub(crate) fn upsert(&mut self, path: &str, entry: NewEntry) {
        let mut dir = path.as_bytes().to_vec();
        dir.push(b'/');
        if self.has_under(&dir) {
            self.remove_dir(path);
        }
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            if self.get(parent).is_some() {
                self.remove(parent);
            }
            at += i + 1;
        }
        self.changes.insert(path.as_bytes().to_vec(), Some(entry));
    }

    /// Removes the entry at `path`, if any.
    pub(crate) fn remove(&mut self, path: &str) {
        self.changes.insert(path.as_bytes().to_vec(), None);
    }

    /// Removes every entry under the folder `dir`.
    pub(crate) fn remove_dir(&mut self, dir: &str) {
        let mut d = dir.as_bytes().to_vec();
        d.push(b'/');
        let under: Vec<Vec<u8>> = self
            .changes
            .range(d.clone()..)
            .take_while(|(k, _)| k.starts_with(&d))
            .map(|(k, _)| k.clone())
            .collect();
        for k in under {
            self.changes.remove(&k);
        }
        self.removed_dirs.push(d);
    }

    /// The new index: entries merged in path order, the tree cache invalidated along every
    /// changed path, the extensions that describe the old entries dropped (git rebuilds
    /// them), then the checksum.
    #[cfg(test)]
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + self.changes.len() * 96 + 64);
        self.emit(&mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .expect("writing to memory does not fail");
        let sum = Sha1::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Hands `out` the new index but its checksum, piece by piece: runs of untouched entries
    /// straight from the old index, so nothing the size of the index is copied or allocated.
    /// With 100,000 entries, building it in one buffer took 7 ms for one change (the fresh
    /// 8.8 MB were mostly page faults).
    fn emit(&self, out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<()> {
        let (pieces, count) = self.plan();
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(b"DIRC");
        header.extend_from_slice(&self.version.max(2).to_be_bytes());
        header.extend_from_slice(&count.to_be_bytes());
        out(&header)?;
        let mut entry = Vec::with_capacity(FIXED_LEN + 256);
        for piece in pieces {
            match piece {
                Piece::Old(range) => out(&self.data[range])?,
                Piece::New(path, e) => {
                    entry.clear();
                    encode_entry(&mut entry, path, e);
                    out(&entry)?;
                }
            }
        }
        if !self.data.is_empty() {
            let mut ext = Vec::new();
            self.encode_extensions(&mut ext);
            out(&ext)?;
        }
        Ok(())
    }

    /// The pieces of the new entry list, in order, and how many entries they hold.
    fn plan(&self) -> (Vec<Piece<'_>>, u32) {
        let mut pieces = Vec::with_capacity(2 * self.changes.len() + 1);
        let mut count: u32 = 0;
        let mut changes = self.changes.iter().peekable();
        // Runs of untouched entries go in one piece.
        let mut run: Option<(usize, usize)> = None;
        let flush = |pieces: &mut Vec<Piece<'_>>, run: &mut Option<(usize, usize)>| {
            if let Some((a, b)) = run.take() {
                pieces.push(Piece::Old(a..b));
            }
        };
        for s in &self.entries {
            let p = self.entry_path(s);
            while let Some((k, v)) = changes.next_if(|(k, _)| k.as_slice() < p) {
                flush(&mut pieces, &mut run);
                if let Some(e) = v {
                    pieces.push(Piece::New(k, e));
                    count += 1;
                }
            }
            if let Some((k, v)) = changes.next_if(|(k, _)| k.as_slice() == p) {
                flush(&mut pieces, &mut run);
                if let Some(e) = v {
                    pieces.push(Piece::New(k, e));
                    count += 1;
                }
                continue;
            }
            if self.under_removed_dir(p) {
                flush(&mut pieces, &mut run);
                continue;
            }
            // Entries lie back to back, and every change or skip above ends the run.
            run = Some((run.map_or(s.start, |r| r.0), s.start + s.len));
            count += 1;
        }
        flush(&mut pieces, &mut run);
        for (k, v) in changes {
            if let Some(e) = v {
                pieces.push(Piece::New(k, e));
                count += 1;
            }
        }
        (pieces, count)
    }

    fn encode_extensions(&self, out: &mut Vec<u8>) {
        let end = self.data.len() - HASH_LEN;
        let mut at = self.ext_start;
        while at + 8 <= end {
            let sig = &self.data[at..at + 4];
            let len = be32(&self.data, at + 4) as usize;
            let body = &self.data[at + 8..at + 8 + len];
            match sig {
                b"TREE" => {
                    if let Some(mut root) = tree::parse(body) {
                        for path in self.changes.keys() {
                            tree::invalidate(&mut root, path);
                        }
                        for d in &self.removed_dirs {
                            tree::invalidate(&mut root, &d[..d.len() - 1]);
                        }
                        let mut enc = Vec::with_capacity(body.len());
                        tree::encode(&root, &mut enc);
                        out.extend_from_slice(b"TREE");
                        out.extend_from_slice(&(enc.len() as u32).to_be_bytes());
                        out.extend_from_slice(&enc);
                    }
                }
                // Resolve-undo records are about paths, not about the entries: kept.
                b"REUC" => out.extend_from_slice(&self.data[at..at + 8 + len]),
                // Optional extensions that describe the old entries (untracked cache,
                // fsmonitor, offset tables): dropped, as git drops what it cannot keep true.
                _ => {}
            }
            at += 8 + len;
        }
    }

    /// Writes the new index beside the lock, renames it over the index, then lets go of
    /// the lock. git renames the lock itself; ours keeps saying who holds it to the end.
    pub(crate) fn commit(mut self) -> std::io::Result<()> {
        let checksum = std::mem::replace(&mut self.checksum, Checksum::Done(true));
        if !checksum.matches() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} is damaged (its checksum does not match its content); \
                     `rm .git/index && git reset` rebuilds it from HEAD",
                    self.path.display()
                ),
            ));
        }
        let new = self.path.with_file_name(NEW_INDEX);
        let written = (|| {
            let file = std::fs::File::create(&new)?;
            let mut file = std::io::BufWriter::with_capacity(WRITE_BUFFER, file);
            let mut sum = Sha1::new();
            self.emit(&mut |b| {
                sum.update(b);
                file.write_all(b)
            })?;
            file.write_all(&sum.finalize())?;
            let file = file.into_inner().map_err(|e| e.into_error())?;
            if let Ok(meta) = std::fs::metadata(&self.path) {
                file.set_permissions(meta.permissions())?;
            }
            drop(file);
            std::fs::rename(&new, &self.path)?;
            free_aside(self.old.take());
            Ok(())
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&new);
        }
        // Dropping the lock removes index.lock.
        written
    }
}

fn encode_entry(out: &mut Vec<u8>, path: &[u8], e: &NewEntry) {
    let start = out.len();
    let s = &e.stat;
    for v in [
        s.ctime.0, s.ctime.1, s.mtime.0, s.mtime.1, s.dev, s.ino, e.mode, s.uid, s.gid, s.size,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(e.id.as_bytes());
    let flags = path.len().min(usize::from(NAME_MASK)) as u16;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(path);
    // NUL-terminated and padded to a multiple of 8, as git writes v2/v3 entries.
    let len = (FIXED_LEN + path.len() + 8) & !7;
    out.resize(start + len, 0);
}

/// One piece of a new index's entry list.
enum Piece<'a> {
    /// Untouched entries, a byte range of the old index.
    Old(std::ops::Range<usize>),
    /// A new or changed entry at this path.
    New(&'a [u8], &'a NewEntry),
}

/// Bytes buffered between writes of a new index.
const WRITE_BUFFER: usize = 256 * 1024;

enum Parsed {
    Index {
        version: u32,
        entries: Vec<Span>,
        ext_start: usize,
    },
    Conflicts,
}

/// Checks the header and every entry (the checksum is [`Checksum`]'s); finds where each
/// entry lies.
fn parse(d: &[u8]) -> Result<Parsed, String> {
    if d.is_empty() {
        return Ok(Parsed::Index {
            version: 2,
            entries: Vec::new(),
            ext_start: 0,
        });
    }
    if d.len() < HEADER_LEN + HASH_LEN || &d[..4] != b"DIRC" {
        return Err("not an index file".into());
    }
    let version = be32(d, 4);
    if !(2..=3).contains(&version) {
        return Err(format!("index version {version}"));
    }
    let end = d.len() - HASH_LEN;
    let count = be32(d, 8) as usize;
    let mut entries = Vec::with_capacity(count);
    let mut at = HEADER_LEN;
    let mut conflicts = false;
    for _ in 0..count {
        if at + FIXED_LEN > end {
            return Err("truncated entry".into());
        }
        let flags = be16(d, at + 60);
        let ext = if flags & EXTENDED != 0 {
            if version < 3 {
                return Err("extended flags in a version 2 index".into());
            }
            2
        } else {
            0
        };
        conflicts |= flags & STAGE_MASK != 0;
        let path_at = at + FIXED_LEN + ext;
        let named = usize::from(flags & NAME_MASK);
        let path_len = if named < usize::from(NAME_MASK) {
            named
        } else {
            d.get(path_at..end)
                .and_then(|r| r.iter().position(|&b| b == 0))
                .ok_or("unterminated path")?
        };
        let len = (FIXED_LEN + ext + path_len + 8) & !7;
        if at + len > end || d[path_at + path_len] != 0 {
            return Err("malformed entry".into());
        }
        entries.push(Span {
            start: at,
            len,
            path_len,
        });
        at += len;
    }
    let ext_start = at;
    while at + 8 <= end {
        let sig = &d[at..at + 4];
        let len = be32(d, at + 4) as usize;
        if at + 8 + len > end {
            return Err("truncated extension".into());
        }
        // Lower-case signatures are required extensions (split index `link`, sparse
        // `sdir`): the entries alone do not describe the index.
        if sig[0].is_ascii_lowercase() {
            return Err(format!("index extension {}", String::from_utf8_lossy(sig)));
        }
        at += 8 + len;
    }
    if at != end {
        return Err("trailing bytes after the extensions".into());
    }
    if conflicts {
        return Ok(Parsed::Conflicts);
    }
    Ok(Parsed::Index {
        version,
        entries,
        ext_start,
    })
}

/// The cache-tree extension (`TREE`): each folder's entry count and tree id, which git
/// reuses for its next commit; a folder with count -1 is recomputed.
mod tree {
    pub(super) struct Node {
        name: Vec<u8>,
        count: i64,
        id: Option<[u8; super::HASH_LEN]>,
        children: Vec<Node>,
    }

    pub(super) fn parse(body: &[u8]) -> Option<Node> {
        let mut at = 0;
        let root = node(body, &mut at)?;
        (at == body.len()).then_some(root)
    }

    fn node(b: &[u8], at: &mut usize) -> Option<Node> {
        let nul = b.get(*at..)?.iter().position(|&c| c == 0)?;
        let name = b[*at..*at + nul].to_vec();
        *at += nul + 1;
        let sp = b.get(*at..)?.iter().position(|&c| c == b' ')?;
        let count: i64 = std::str::from_utf8(&b[*at..*at + sp]).ok()?.parse().ok()?;
        *at += sp + 1;
        let nl = b.get(*at..)?.iter().position(|&c| c == b'\n')?;
        let subtrees: usize = std::str::from_utf8(&b[*at..*at + nl]).ok()?.parse().ok()?;
        *at += nl + 1;
        let id = if count >= 0 {
            let raw = b.get(*at..*at + super::HASH_LEN)?;
            *at += super::HASH_LEN;
            let mut id = [0; super::HASH_LEN];
            id.copy_from_slice(raw);
            Some(id)
        } else {
            None
        };
        let mut children = Vec::with_capacity(subtrees.min(4096));
        for _ in 0..subtrees {
            children.push(node(b, at)?);
        }
        Some(Node {
            name,
            count,
            id,
            children,
        })
    }

    /// Marks every folder on the way to `path` as out of date and drops a cached folder
    /// named `path` itself (a file may have replaced it), as git's own invalidation does.
    pub(super) fn invalidate(root: &mut Node, path: &[u8]) {
        let mut node = root;
        let mut rest = path;
        loop {
            node.count = -1;
            node.id = None;
            match rest.iter().position(|&c| c == b'/') {
                None => {
                    node.children.retain(|c| c.name != rest);
                    return;
                }
                Some(i) => {
                    let (head, tail) = (&rest[..i], &rest[i + 1..]);
                    match node.children.iter_mut().find(|c| c.name == head) {
                        Some(child) => {
                            node = child;
                            rest = tail;
                        }
                        None => return,
                    }
                }
            }
        }
    }

    pub(super) fn encode(n: &Node, out: &mut Vec<u8>) {
        out.extend_from_slice(&n.name);
        out.push(0);
        out.extend_from_slice(format!("{} {}\n", n.count, n.children.len()).as_bytes());
        if let (true, Some(id)) = (n.count >= 0, n.id) {
            out.extend_from_slice(&id);
        }
        for c in &n.children {
            encode(c, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ready(git_dir: &Path) -> IndexFile {
        match IndexFile::open(git_dir).expect("open") {
            Open::Ready(i) => i,
            Open::Locked => panic!("locked"),
            Open::Conflicts => panic!("conflicts"),
            Open::Unsupported(why) => panic!("unsupported: {why}"),
        }
    }

    fn entry_for(dir: &Path, rel: &str) -> NewEntry {
        use std::os::unix::fs::MetadataExt;
        let full = dir.join(rel);
        let meta = std::fs::symlink_metadata(&full).expect("stat");
        let data = std::fs::read(&full).expect("read");
        NewEntry {
            stat: Stat {
                ctime: (meta.ctime() as u32, meta.ctime_nsec() as u32),
                mtime: (meta.mtime() as u32, meta.mtime_nsec() as u32),
                dev: meta.dev() as u32,
                ino: meta.ino() as u32,
                uid: meta.uid(),
                gid: meta.gid(),
                size: meta.len() as u32,
            },
            id: Oid::hash_object(git2::ObjectType::Blob, &data).expect("hash"),
            mode: 0o100644,
        }
    }

    /// A repository whose index git wrote with a tree cache, then changed through this
    /// module: git must read it back, see exactly the staged changes, and write the same
    /// tree from it as from an index it made itself.
    #[test]
    fn git_reads_what_is_spliced_in() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        git(d, &["init", "-q", "-b", "main"]);
        git(d, &["config", "user.name", "T"]);
        git(d, &["config", "user.email", "t@example.org"]);
        for (p, c) in [
            ("a.md", "a"),
            ("b/c.md", "c"),
            ("b/d.md", "d"),
            ("b/e/f.md", "f"),
            ("z.md", "z"),
            ("gone/x.md", "x"),
            ("gone/y.md", "y"),
        ] {
            let full = d.join(p);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(full, c).expect("write");
        }
        git(d, &["add", "-A"]);
        // Commits, and leaves the tree cache in the index.
        git(d, &["commit", "-q", "-m", "init"]);
        for (p, c) in [("b/c.md", "c2"), ("b/cc.md", "new")] {
            std::fs::write(d.join(p), c).expect("write");
        }
        std::fs::remove_file(d.join("a.md")).expect("rm");
        std::fs::remove_dir_all(d.join("gone")).expect("rm");
        let repo = git2::Repository::open(d).expect("repo");
        let mut idx = ready(&d.join(".git"));
        assert!(idx.get("b/c.md").is_some());
        assert!(idx.get("b/nope.md").is_none());
        for p in ["b/c.md", "b/cc.md"] {
            repo.blob(&std::fs::read(d.join(p)).expect("read"))
                .expect("blob");
            idx.upsert(p, entry_for(d, p));
        }
        idx.remove("a.md");
        idx.remove_dir("gone");
        assert!(idx.get("gone/x.md").is_none());
        assert_eq!(idx.get("b/cc.md").map(|e| e.1), Some(0o100644));
        let built = idx.encode();
        idx.commit().expect("commit");
        assert!(!d.join(".git/index.lock").exists());
        assert_eq!(
            std::fs::read(d.join(".git/index")).expect("index"),
            built,
            "the index written piece by piece is the one built in memory"
        );
        assert_eq!(
            git(d, &["diff", "--name-only"]),
            "",
            "the index matches the files"
        );
        assert_eq!(
            git(d, &["diff", "--cached", "--name-status"]),
            "D\ta.md\nM\tb/c.md\nA\tb/cc.md\nD\tgone/x.md\nD\tgone/y.md\n"
        );
        let ours = git(d, &["write-tree"]);
        std::fs::remove_file(d.join(".git/index")).expect("rm");
        git(d, &["add", "-A"]);
        assert_eq!(
            ours,
            git(d, &["write-tree"]),
            "the same tree as from git's own index"
        );
        // Read back by this module too, and by libgit2.
        drop(ready(&d.join(".git")));
        let mut index = repo.index().expect("index");
        index.read(true).expect("libgit2 reads it");
    }

    /// A path of 4095 bytes or more stores 0xfff as its length and ends at its NUL.
    #[test]
    fn long_paths_round_trip() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        git(d, &["init", "-q", "-b", "main"]);
        std::fs::write(d.join("a.md"), "a").expect("write");
        git(d, &["add", "-A"]);
        let long = format!("{}/x.md", "d".repeat(5000));
        let mut idx = ready(&d.join(".git"));
        let e = entry_for(d, "a.md");
        idx.upsert(&long, e.clone());
        idx.commit().expect("commit");
        let idx = ready(&d.join(".git"));
        assert_eq!(idx.get(&long).map(|x| x.0), Some(e.id));
        assert!(idx.get("a.md").is_some());
        drop(idx);
        assert!(git(d, &["ls-files"]).contains(&long));
    }

    /// A file replacing a folder, and a folder replacing a file, as `git add` does it.
    #[test]
    fn file_and_folder_replace_each_other() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        git(d, &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(d.join("x")).expect("mkdir");
        std::fs::write(d.join("x/in.md"), "in").expect("write");
        std::fs::write(d.join("f"), "file").expect("write");
        git(d, &["add", "-A"]);
        std::fs::remove_dir_all(d.join("x")).expect("rm");
        std::fs::write(d.join("x"), "now a file").expect("write");
        std::fs::remove_file(d.join("f")).expect("rm");
        std::fs::create_dir_all(d.join("f")).expect("mkdir");
        std::fs::write(d.join("f/in.md"), "now a folder").expect("write");
        let mut idx = ready(&d.join(".git"));
        idx.upsert("x", entry_for(d, "x"));
        idx.upsert("f/in.md", entry_for(d, "f/in.md"));
        idx.commit().expect("commit");
        assert_eq!(
            git(d, &["ls-files", "-s"])
                .lines()
                .map(|l| l.split('\t').nth(1).unwrap_or("").to_string())
                .collect::<Vec<_>>(),
            vec!["f/in.md", "x"]
        );
    }

    #[test]
    fn a_held_lock_and_conflicts_are_reported() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        git(d, &["init", "-q", "-b", "main"]);
        std::fs::write(d.join(".git/index.lock"), "").expect("lock");
        assert!(matches!(
            IndexFile::open(&d.join(".git")).expect("open"),
            Open::Locked
        ));
        assert!(
            d.join(".git/index.lock").exists(),
            "a foreign lock is left alone"
        );
        std::fs::remove_file(d.join(".git/index.lock")).expect("rm");
        // An unopened change drops its lock.
        drop(ready(&d.join(".git")));
        assert!(!d.join(".git/index.lock").exists());
    }

    /// Set by [`a_lock_left_by_a_killed_process_is_taken_back`] for the child it kills.
    const HOLD_ENV: &str = "VAULTKEEPER_TEST_HOLD_INDEX_LOCK";

    /// Opening takes the lock; in the child of the test below, it then holds it until killed.
    #[test]
    fn opening_takes_the_lock_until_dropped() {
        let held = std::env::var_os(HOLD_ENV);
        let t = tempfile::tempdir().expect("tempdir");
        let git_dir = match &held {
            Some(dir) => PathBuf::from(dir),
            None => {
                git(t.path(), &["init", "-q", "-b", "main"]);
                t.path().join(".git")
            }
        };
        let idx = ready(&git_dir);
        assert!(git_dir.join("index.lock").exists());
        if held.is_some() {
            // The parent kills this process: the lock is never released.
            std::fs::write(git_dir.join("child-holds-the-lock"), "").expect("write");
            loop {
                std::thread::park();
            }
        }
        drop(idx);
        assert!(!git_dir.join("index.lock").exists());
    }

    /// A vaultkeeper killed (OOM, power, `kill -9`) while it stages leaves `index.lock`
    /// behind; unlike a foreign git's, that one is known to be ours and dead, and is removed.
    #[test]
    fn a_lock_left_by_a_killed_process_is_taken_back() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        git(d, &["init", "-q", "-b", "main"]);
        let git_dir = d.join(".git");
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "index_file::tests::opening_takes_the_lock_until_dropped",
                "--nocapture",
            ])
            .env(HOLD_ENV, &git_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the holder");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !git_dir.join("child-holds-the-lock").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the child never took the lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        assert!(git_dir.join("index.lock").exists(), "left behind");
        let repo = git2::Repository::open(d).expect("repo");
        assert_eq!(crate::safety::check(&repo), Ok(()));
        assert!(!git_dir.join("index.lock").exists(), "removed");
        drop(ready(&git_dir));
        // A lock of a live process of ours (this one) is left alone, as a foreign one is.
        let idx = ready(&git_dir);
        assert!(crate::safety::check(&repo).is_err());
        assert!(matches!(
            IndexFile::open(&git_dir).expect("open"),
            Open::Locked
        ));
        drop(idx);
    }

    #[test]
    fn a_damaged_index_is_never_written_over() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        git(d, &["init", "-q", "-b", "main"]);
        // Small and large: the checksum is checked inline below CHECK_ASIDE, aside above.
        for (n, name) in [(1, "small"), (4000, "large")] {
            for i in 0..n {
                std::fs::write(d.join(format!("{name}-{i}-with-a-longer-name.md")), "a")
                    .expect("write");
            }
            git(d, &["add", "-A"]);
            let p = d.join(".git/index");
            let mut bytes = std::fs::read(&p).expect("read");
            assert_eq!(
                bytes.len() >= CHECK_ASIDE,
                name == "large",
                "{}",
                bytes.len()
            );
            bytes[20] ^= 1;
            std::fs::write(&p, &bytes).expect("write");
            let mut idx = ready(&d.join(".git"));
            idx.upsert(
                "new.md",
                entry_for(d, &format!("{name}-0-with-a-longer-name.md")),
            );
            let err = idx.commit().expect_err("a damaged index is not rewritten");
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
            assert!(err.to_string().contains("damaged"), "{err}");
            assert_eq!(std::fs::read(&p).expect("read"), bytes, "left as it was");
            assert!(!d.join(".git/index.lock").exists());
            bytes[20] ^= 1;
            std::fs::write(&p, &bytes).expect("write");
        }
        // A header that is not an index's is libgit2's to report.
        std::fs::write(
            d.join(".git/index"),
            b"not an index at all, but long enough",
        )
        .expect("write");
        assert!(matches!(
            IndexFile::open(&d.join(".git")).expect("open"),
            Open::Unsupported(_)
        ));
        assert!(!d.join(".git/index.lock").exists());
    }
}
