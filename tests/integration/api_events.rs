//! The API's event stream with a real client (curl on the Unix socket): resume after a
//! restart with `Last-Event-ID` (exactly the missed events, in order), filters, heartbeat,
//! an explicit reset, and the socket's mode.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vaultkeeper_core::event::Event;

use crate::util::{BIN, TestVault, wait_until};

/// The daemon's socket, as `vaultkeeper open --json` names it.
pub fn socket(v: &TestVault) -> String {
    let out = v.run(&["open", "--json"]);
    assert!(out.status.success(), "open: {out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("open --json");
    doc["socket"].as_str().expect("socket").to_string()
}

/// A curl reading an SSE stream; what it has printed so far is in `text`.
pub struct Stream {
    child: Child,
    text: Arc<Mutex<String>>,
}

/// One SSE message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Option<u64>,
    pub event: Option<String>,
    pub data: String,
}

impl Stream {
    /// `curl -N` on `url` through the socket, with extra curl arguments.
    pub fn open(socket: &str, url: &str, extra: &[&str]) -> Stream {
        let mut child = Command::new("curl")
            .args(["-sSN", "--unix-socket", socket])
            .args(extra)
            .arg(format!("http://localhost{url}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        let mut out = child.stdout.take().expect("stdout");
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&text);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Stream { child, text }
    }

    /// Everything received so far.
    pub fn text(&self) -> String {
        self.text.lock().expect("lock").clone()
    }

    /// The complete messages received so far (comments skipped).
    pub fn messages(&self) -> Vec<Message> {
        let text = self.text();
        let complete = match text.rfind("\n\n") {
            Some(end) => &text[..end],
            None => "",
        };
        complete
            .split("\n\n")
            .filter_map(|block| {
                let mut m = Message {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines().filter(|l| !l.starts_with(':')) {
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    any = true;
                    match k {
                        "id" => m.id = v.parse().ok(),
                        "event" => m.event = Some(v.to_string()),
                        "data" => m.data.push_str(v),
                        _ => {}
                    }
                }
                any.then_some(m)
            })
            .collect()
    }

    /// The events received so far.
    pub fn events(&self) -> Vec<Event> {
        self.messages()
            .iter()
            .filter(|m| m.event.is_none())
            .map(|m| serde_json::from_str(&m.data).expect("an event's JSON"))
            .collect()
    }

    /// Waits until curl ends (the server closed the stream).
    pub fn wait_end(&mut self, what: &str) {
        wait_until(what, Duration::from_secs(30), || {
            self.child.try_wait().expect("try_wait").is_some()
        });
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_client_resumes_after_a_restart_with_exactly_the_missed_events() {
    let v = TestVault::new(BIN);
    v.write("a.md", "a");
    let d = v.start();
    let sock = socket(&v);
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let mut first = Stream::open(&sock, "/v1/events?since=0", &[]);
    v.write("b.md", "b");
    wait_until(
        "a.md and b.md on the stream",
        Duration::from_secs(20),
        || {
            let paths: Vec<String> = first.events().into_iter().map(|e| e.file_path).collect();
            paths.contains(&"a.md".to_string()) && paths.contains(&"b.md".to_string())
        },
    );
    // Stopped mid-stream: the server ends the stream; the client keeps its last id.
    d.stop();
    first.wait_end("the stream to end with the daemon");
    let seen = first.messages();
    let last_id = seen.iter().filter_map(|m| m.id).max().expect("an id");
    let ids: Vec<u64> = first.events().iter().map(|e| e.seq).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");

    for i in 0..20 {
        v.write(&format!("missed/n{i:02}.md"), &format!("note {i}"));
    }
    let d = v.start();
    let second = Stream::open(
        &socket(&v),
        "/v1/events",
        &["-H", &format!("Last-Event-ID: {last_id}")],
    );
    wait_until("the 20 missed notes", Duration::from_secs(30), || {
        second.events().len() >= 20
    });
    // Everything the journal holds after the client's last id, and nothing else.
    let journal: Vec<Event> = v.events().into_iter().filter(|e| e.seq > last_id).collect();
    let got = second.events();
    let got_ids: Vec<u64> = got.iter().map(|e| e.seq).collect();
    let want_ids: Vec<u64> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(got_ids, want_ids, "exactly the missed events, in order");
    let mut missed: Vec<String> = got
        .iter()
        .filter(|e| e.file_path.starts_with("missed/"))
        .map(|e| e.file_path.clone())
        .collect();
    assert_eq!(missed.len(), 20, "{missed:?}");
    missed.dedup();
    assert_eq!(missed.len(), 20, "no duplicates: {missed:?}");
    assert!(got.iter().all(|e| e.event.as_str() == "created"), "{got:?}");
    drop(second);
    d.stop();
}

#[test]
fn filters_heartbeat_and_an_explicit_reset() {
    let v = TestVault::with_config(BIN, "[api]\nheartbeat = \"200ms\"\n");
    let d = v.start();
    let sock = socket(&v);
    let filtered = Stream::open(&sock, "/v1/events?kind=modified&path=keep/**", &[]);
    let ahead = Stream::open(&sock, "/v1/events?since=1000000", &[]);
    v.write("keep/x.md", "one");
    v.write("other.md", "one");
    v.wait_events(2, "two creations");
    v.write("keep/x.md", "two");
    v.write("other.md", "two");
    wait_until(
        "the modification of keep/x.md",
        Duration::from_secs(20),
        || !filtered.events().is_empty(),
    );
    // Everything is journaled before the sentinel; the filtered stream then idles.
    let before = v.events_before_sentinel();
    assert!(before.len() >= 4, "{before:?}");
    wait_until("a heartbeat", Duration::from_secs(20), || {
        filtered.text().contains(": heartbeat\n")
    });
    let got: Vec<(String, String)> = filtered
        .events()
        .iter()
        .map(|e| (e.event.as_str().to_string(), e.file_path.clone()))
        .collect();
    assert_eq!(got, vec![("modified".into(), "keep/x.md".into())]);

    // A cursor past the head (a replaced journal) is told so, then gets what follows.
    wait_until("the reset", Duration::from_secs(20), || {
        ahead
            .messages()
            .iter()
            .any(|m| m.event.as_deref() == Some("reset"))
    });
    let reset = ahead
        .messages()
        .into_iter()
        .find(|m| m.event.as_deref() == Some("reset"))
        .expect("reset");
    let body: serde_json::Value = serde_json::from_str(&reset.data).expect("reset json");
    assert_eq!(body["reason"], "ahead", "{body}");
    assert_eq!(body["since"], 1_000_000, "{body}");
    assert_eq!(
        Some(body["resume_at"].as_u64().expect("resume_at")),
        reset.id
    );
    assert!(reset.id.is_some_and(|id| id < 1_000_000), "{reset:?}");
    wait_until(
        "the events after the reset",
        Duration::from_secs(20),
        || ahead.events().iter().any(|e| e.file_path == "other.md"),
    );

    // Bad parameters are refused with a reason.
    let out = Command::new("curl")
        .args([
            "-s",
            "--unix-socket",
            &sock,
            "http://localhost/v1/events?kind=exploded",
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exploded"), "{text}");
    drop(filtered);
    drop(ahead);
    d.stop();
}

#[test]
fn a_websocket_client_gets_the_same_stream() {
    let v = TestVault::new(BIN);
    for i in 0..5 {
        v.write(&format!("w{i}.md"), "w");
    }
    let d = v.start();
    v.wait_events(5, "five creations");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_client.py");
    let out = Command::new("python3")
        .args([script, &socket(&v), "/v1/events/ws?since=2", "3"])
        .output()
        .expect("python3");
    assert!(out.status.success(), "ws client: {out:?}");
    let got: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect();
    let want: Vec<Event> = v
        .events()
        .into_iter()
        .filter(|e| e.seq > 2)
        .take(3)
        .collect();
    assert_eq!(got, want);
    d.stop();
}
