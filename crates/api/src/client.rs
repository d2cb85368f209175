//! The CLI's side: requests to a running daemon over its Unix socket (hyper's HTTP/1
//! client), blocking, each on its own small runtime. A refused or missing socket reads as
//! "no daemon answers", so the caller falls back to the journal or to a signal.

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (no daemon, or one that has not bound it yet).
    #[error("no daemon answers on {path}: {source}")]
    NotListening {
        /// The socket.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The daemon did not answer in time.
    #[error("the daemon did not answer {what} within {timeout:?}")]
    Timeout {
        /// The request.
        what: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The HTTP exchange failed.
    #[error("the daemon's API: {0}")]
    Http(String),
    /// The caller's handler failed (a closed pipe, say).
    #[error("while following the stream: {0}")]
    Output(#[source] std::io::Error),
    /// The daemon answered with an error status.
    #[error("the daemon refused {what}: {message}")]
    Refused {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// Its `error` message.
        message: String,
    },
}

impl ClientError {
    /// True when no daemon listens: the caller may do without it.
    pub fn is_not_listening(&self) -> bool {
        matches!(self, ClientError::NotListening { .. })
    }
}

/// Sends `method path` to the daemon behind `socket` and returns its JSON body. A status
/// other than 2xx is [`ClientError::Refused`] with the body's `error` message.
pub fn call(
    socket: &Path,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<serde_json::Value, ClientError> {
    let what = format!("{method} {path}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let exchange = exchange(socket, method, path);
    let (status, body) = runtime
        .block_on(async { tokio::time::timeout(timeout, exchange).await })
        .map_err(|_| ClientError::Timeout {
            what: what.clone(),
            timeout,
        })??;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ClientError::Http(format!("{what}: the answer is not JSON: {e}")))?;
    if !(200..300).contains(&status) {
        let message = value
            .pointer("/error/message")
            .and_then(|m| m.as_str())
            .unwrap_or("no reason given")
            .to_string();
        return Err(ClientError::Refused {
            what,
            status,
            message,
        });
    }
    Ok(value)
}

async fn connect(
    socket: &Path,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, ClientError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::NotListening {
            path: socket.to_path_buf(),
            source,
        })?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn request(method: &str, path: &str) -> Result<hyper::Request<Empty<Bytes>>, ClientError> {
    hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "localhost")
        .body(Empty::new())
        .map_err(|e| ClientError::Http(e.to_string()))
}

async fn exchange(socket: &Path, method: &str, path: &str) -> Result<(u16, Bytes), ClientError> {
    let mut sender = connect(socket).await?;
    let res = sender
        .send_request(request(method, path)?)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?
        .to_bytes();
    Ok((status, body))
}

/// One message of an SSE stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseMessage {
    /// `id:`.
    pub id: Option<String>,
    /// `event:` (`message` when absent).
    pub event: Option<String>,
    /// `data:` lines, joined by newlines.
    pub data: String,
}

/// Follows the SSE stream at `path` (`/v1/events?since=N`), calling `each` per message
/// until it returns false or the daemon ends the stream (then `Ok(())`).
pub fn follow_sse(
    socket: &Path,
    path: &str,
    mut each: impl FnMut(SseMessage) -> std::io::Result<bool>,
) -> Result<(), ClientError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Http(e.to_string()))?;
    runtime.block_on(async {
        let mut sender = connect(socket).await?;
        let res = sender
            .send_request(request("GET", path)?)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        if !res.status().is_success() {
            return Err(ClientError::Refused {
                what: format!("GET {path}"),
                status: res.status().as_u16(),
                message: "the event stream was refused".into(),
            });
        }
        let mut body = res.into_body();
        let mut parser = SseParser::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Http(e.to_string()))?;
            let Some(chunk) = frame.data_ref() else {
                continue;
            };
            for message in parser.push(chunk) {
                if !each(message).map_err(ClientError::Output)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    })
}

/// Splits an SSE byte stream into messages (comments, heartbeats included, are skipped).
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    current: SseMessage,
    has_field: bool,
}

impl SseParser {
    /// Feeds `chunk`, returning the messages it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        let mut done = Vec::new();
        for &b in chunk {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = String::from_utf8_lossy(&self.line)
                .trim_end_matches('\r')
                .to_string();
            self.line.clear();
            if line.is_empty() {
                if self.has_field {
                    done.push(std::mem::take(&mut self.current));
                    self.has_field = false;
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            self.has_field = true;
            match field {
                "id" => self.current.id = Some(value.to_string()),
                "event" => self.current.event = Some(value.to_string()),
                "data" => {
                    if !self.current.data.is_empty() {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                }
                _ => {}
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_messages_across_chunks_and_skips_heartbeats() {
        let mut p = SseParser::default();
        assert!(p.push(b":heartbeat\n\nid: 3\nda").is_empty());
        let got = p.push(b"ta: {\"a\":1}\n\nevent: reset\nid: 9\ndata: x\n\n");
        assert_eq!(
            got,
            vec![
                SseMessage {
                    id: Some("3".into()),
                    event: None,
                    data: "{\"a\":1}".into()
                },
                SseMessage {
                    id: Some("9".into()),
                    event: Some("reset".into()),
                    data: "x".into()
                },
            ]
        );
    }
}
