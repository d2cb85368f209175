//! Search in every script, on small notes written for this test in Japanese, Chinese, Korean,
//! Russian, German, Arabic and English, checked against a plain substring scan of the files
//! (what `rg -i` finds, plus the accent folding users expect: `ä` is `a`, `ß` is `ss`).
//!
//! - substring mode (`--substring`) finds exactly the notes the scan finds, for every word;
//! - the default search finds exactly the scan's notes for CJK words (bigrams find a word
//!   inside a sentence, and a Korean word with its particle); for the other scripts, every
//!   note holding the word as a whole word, and only notes holding its root (stems).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vaultkeeper_cache::apply::vault_files;
use vaultkeeper_cache::query::{self, SearchOptions};
use vaultkeeper_cache::schema::open_ro;
use vaultkeeper_cache::{CacheConfig, reindex};

/// (path, text): every note of the test vault.
const NOTES: &[(&str, &str)] = &[
    (
        "ja/1.md",
        "# 会議メモ\n今日は東京で会議がありました。資料を共有します。\n",
    ),
    ("ja/2.md", "東京都の天気は晴れ。明日の会議は中止です。\n"),
    ("ja/3.md", "京都に旅行した。お寺がきれいだった。\n"),
    (
        "ja/4.md",
        "ファイルを添付してください。添付ファイルは10MBまで。\n",
    ),
    ("zh/1.md", "我们明天去北京开会。会议资料已经发送。\n"),
    ("zh/2.md", "北京大学的图书馆很大。\n"),
    ("zh/3.md", "这个软件支持同步笔记和附件。\n"),
    ("zh/4.md", "笔记本电脑坏了，需要修理。\n"),
    ("ko/1.md", "문서를 저장했습니다. 새 문서가 필요합니다.\n"),
    ("ko/2.md", "이 문서는 중요합니다.\n"),
    (
        "ko/3.md",
        "회의는 내일 오전에 있습니다. 회의실을 예약하세요.\n",
    ),
    ("ko/4.md", "파일을 첨부해 주세요.\n"),
    ("ru/1.md", "# Заметки\nЯ читаю книгу о программировании.\n"),
    (
        "ru/2.md",
        "Эта книга лежит на столе. Книги бывают разные.\n",
    ),
    (
        "ru/3.md",
        "Встреча назначена на пятницу. Все встречи в календаре.\n",
    ),
    (
        "ru/4.md",
        "Вложение прикреплено к письму. Ёлка стоит в углу.\n",
    ),
    ("de/1.md", "Das Haus steht am See. Die Häuser sind alt.\n"),
    (
        "de/2.md",
        "Die Hausaufgaben sind fertig. Der Hausschlüssel liegt auf dem Tisch.\n",
    ),
    (
        "de/3.md",
        "Das Sprachmodell übersetzt Texte. Große Modelle brauchen viel Speicher.\n",
    ),
    (
        "de/4.md",
        "Die Straße und die Fußgängerzone sind gesperrt.\n",
    ),
    ("ar/1.md", "قرأت الكتاب في المكتبة.\n"),
    ("ar/2.md", "هذا كتاب مفيد جدا.\n"),
    ("ar/3.md", "الاجتماع غدا في الصباح.\n"),
    ("ar/4.md", "أرسل الملف المرفق من فضلك.\n"),
    (
        "en/1.md",
        "# Attachments\nAdd attachments to a note by dragging files.\n",
    ),
    (
        "en/2.md",
        "The attachment folder setting decides where attached files go.\n",
    ),
    ("en/3.md", "Embedding a note shows its content inline.\n"),
    (
        "en/4.md",
        "---\ncssclasses: soft-embed\nstatus: draft\n---\nA note styled with a CSS class.\n",
    ),
    (
        "en/5.md",
        "---\nstatus: Final\n---\nSearching is fast. The search box is at the top.\n",
    ),
];

/// Words whose notes the default search finds exactly as the scan does (CJK).
const EXACT: &[&str] = &[
    "東京",
    "会議",
    "京都",
    "京",
    "添付",
    "ファイル",
    "天気",
    "旅行",
    "北京",
    "会议",
    "笔记",
    "附件",
    "图书馆",
    "大学",
    "开会",
    "문서",
    "회의",
    "첨부",
    "저장",
    "내일",
    "파일",
];

/// (word, root): the default search finds every note with the word as a whole word and only
/// notes containing the root.
const STEMMED: &[(&str, &str)] = &[
    ("книга", "книг"),
    ("встреча", "встреч"),
    ("вложение", "вложен"),
    ("елка", "елк"),
    ("Haus", "haus"),
    ("Strasse", "strasse"),
    ("Tisch", "tisch"),
    ("كتاب", "كتاب"),
    ("الاجتماع", "اجتماع"),
    ("الملف", "ملف"),
    ("attachment", "attach"),
    ("attachments", "attach"),
    ("search", "search"),
    ("note", "note"),
];

/// Words for substring mode: compound parts, word parts, plus every word above.
const PARTS: &[&str] = &[
    "haus",
    "modell",
    "schlüssel",
    "uber",
    "gänger",
    "tach",
    "книг",
    "встреч",
    "مرفق",
    "كتاب",
    "earch",
];

/// Lowercase, with the accents of these notes folded (independent of the tokenizer).
fn scan_fold(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .flat_map(|c| match c {
            'ä' => vec!['a'],
            'ö' => vec!['o'],
            'ü' => vec!['u'],
            'ß' => vec!['s', 's'],
            'ё' => vec!['е'],
            other => vec![other],
        })
        .collect()
}

/// Notes whose text contains `needle` (folded).
fn scan(needle: &str) -> BTreeSet<String> {
    let n = scan_fold(needle);
    NOTES
        .iter()
        .filter(|(_, t)| scan_fold(t).contains(&n))
        .map(|(p, _)| p.to_string())
        .collect()
}

/// Notes holding `word` as a whole word: neither side touches a letter or digit.
fn scan_whole(word: &str) -> BTreeSet<String> {
    let w = scan_fold(word);
    NOTES
        .iter()
        .filter(|(_, t)| {
            let t = scan_fold(t);
            t.match_indices(&w).any(|(i, _)| {
                let before = t[..i].chars().next_back();
                let after = t[i + w.len()..].chars().next();
                !before.is_some_and(char::is_alphanumeric)
                    && !after.is_some_and(char::is_alphanumeric)
            })
        })
        .map(|(p, _)| p.to_string())
        .collect()
}

fn build() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    for (p, t) in NOTES {
        let f = vault.join(p);
        std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        std::fs::write(&f, t).expect("write");
    }
    let db = dir.path().join("cache.db");
    let files = vault_files(&vault).expect("walk");
    reindex(&db, &vault, files.into_iter(), 0, &CacheConfig::default()).expect("reindex");
    (dir, db)
}

fn found(db: &Path, q: &str, substring: bool) -> BTreeSet<String> {
    let conn = open_ro(db).expect("open");
    let opts = SearchOptions {
        substring,
        limit: 1000,
        ..SearchOptions::default()
    };
    query::search_with(&conn, q, &opts)
        .unwrap_or_else(|e| panic!("search {q:?}: {e}"))
        .hits
        .into_iter()
        .map(|h| h.path)
        .collect()
}

#[test]
fn every_script_finds_what_a_scan_finds() {
    let (_dir, db) = build();
    let mut failures = Vec::new();
    for w in EXACT {
        let (want, got) = (scan(w), found(&db, w, false));
        assert!(!want.is_empty(), "{w}: a test word the notes do not hold");
        if want != got {
            failures.push(format!("default {w:?}: scan {want:?}, search {got:?}"));
        }
    }
    for (w, root) in STEMMED {
        let got = found(&db, w, false);
        let (whole, rooted) = (scan_whole(w), scan(root));
        assert!(!rooted.is_empty(), "{w}: a test word the notes do not hold");
        if !whole.is_subset(&got) || !got.is_subset(&rooted) || got.is_empty() {
            failures.push(format!(
                "default {w:?}: whole-word notes {whole:?} <= search {got:?} <= notes with {root:?} {rooted:?}"
            ));
        }
    }
    let all = EXACT
        .iter()
        .copied()
        .chain(STEMMED.iter().map(|(w, _)| *w))
        .chain(PARTS.iter().copied());
    for w in all {
        let (want, got) = (scan(w), found(&db, w, true));
        if want != got {
            failures.push(format!("substring {w:?}: scan {want:?}, search {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stems_phrases_prefixes_frontmatter_and_snippets() {
    let (_dir, db) = build();
    let conn = open_ro(&db).expect("open");
    let paths = |q: &str| found(&db, q, false);
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    // A word finds its other forms; the title weighs most.
    assert_eq!(paths("attachment"), set(&["en/1.md", "en/2.md"]));
    let hits = query::search(&conn, "attachments", None, None, 10)
        .expect("s")
        .hits;
    assert_eq!(hits[0].path, "en/1.md", "{hits:?}");
    // Phrases and prefixes stay exact: no stems.
    assert_eq!(paths("\"attachment folder\""), set(&["en/2.md"]));
    assert!(paths("\"attach folder\"").is_empty());
    assert_eq!(paths("attach*"), set(&["en/1.md", "en/2.md"]));
    // A frontmatter value is searchable (`cssclasses: soft-embed`), below the body.
    assert_eq!(paths("embed*"), set(&["en/3.md", "en/4.md"]));
    let hits = query::search(&conn, "embed*", None, None, 10)
        .expect("s")
        .hits;
    assert_eq!(
        hits[0].path, "en/4.md",
        "frontmatter weighs more than the body: {hits:?}"
    );
    // Field filters: in the query, as an option, or alone.
    assert_eq!(paths("note field:status=draft"), set(&["en/4.md"]));
    assert_eq!(paths("field:STATUS=final"), set(&["en/5.md"]));
    let opts = SearchOptions {
        fields: vec![("status".into(), "draft".into())],
        ..SearchOptions::default()
    };
    let r = query::search_with(&conn, "", &opts).expect("fields only");
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.hits[0].path, "en/4.md");
    assert!(paths("field:status=drafts").is_empty());
    // Snippets show the original text, matches marked, in every script.
    let snip = |q: &str, path: &str| {
        query::search(&conn, q, None, None, 10)
            .expect("s")
            .hits
            .into_iter()
            .find(|h| h.path == path)
            .unwrap_or_else(|| panic!("{q}: {path} not found"))
            .snippet
    };
    assert!(snip("京都", "ja/2.md").contains("東«京都»の天気"));
    assert!(snip("문서", "ko/1.md").contains("«문서»를"));
    assert!(snip("Strasse", "de/4.md").contains("«Straße»"));
    assert!(
        snip("attachment", "en/2.md")
            .contains("«attachment» folder setting decides where «attached»")
    );
    // Bad input is never an FTS5 syntax error.
    for q in [
        "(((\"", "-", "NOT", "\"\"", "a AND", "OR OR x", "*", "title:", "field:=x",
    ] {
        match query::search(&conn, q, None, None, 10) {
            Ok(_) | Err(vaultkeeper_cache::CacheError::BadQuery(_)) => {}
            Err(e) => panic!("{q:?}: {e}"),
        }
    }
}
