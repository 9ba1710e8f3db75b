//! Runs a blocking serializer (SPARQL results, a graph dump) on the blocking
//! thread pool and streams its output in chunks, with a deadline.
//!
//! The status is decided by the first chunk: an error before any output
//! becomes a proper JSON error (503 on timeout); once bytes flow, a later
//! failure can only abort the chunked response. A result that fits in one
//! chunk is sent whole, with a `Content-Length`. Memory stays bounded by the
//! channel (a few chunks), whatever the size of the result.

use super::ApiError;
use crate::graph::GraphError;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use std::io::{self, Write};
use std::time::Duration;
use tokio::sync::mpsc;

const CHUNK_BYTES: usize = 64 << 10;

enum Chunk {
    Data(Bytes),
    /// The last bytes: the receiver needs no further wake-up to learn the end.
    Last(Bytes),
    Failed(GraphError),
}

/// A `Write` that sends 64 KiB chunks to the response (the rest at the
/// end, marked last); fails with
/// `BrokenPipe` once the client has gone, which stops the serializer.
pub struct ChunkWriter {
    tx: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        let data = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.deliver(Chunk::Data(data))
    }

    fn finish(self) -> io::Result<()> {
        let Self { tx, buf } = self;
        tx.blocking_send(Chunk::Last(Bytes::from(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    fn deliver(&self, chunk: Chunk) -> io::Result<()> {
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `produce` on the blocking pool and answers with what it writes, as
/// `content_type`. `cancel` is called when `timeout` passes (it must make
/// `produce` stop soon). Without any output by `timeout` plus a second of
/// grace, the answer is 503.
pub async fn respond(
    content_type: &'static str,
    timeout: Duration,
    cancel: impl FnOnce() + Send + 'static,
    produce: impl FnOnce(ChunkWriter) -> Result<ChunkWriter, GraphError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let (tx, mut rx) = mpsc::channel(4);
    let failed = tx.clone();
    tokio::task::spawn_blocking(move || {
        let writer = ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK_BYTES),
        };
        let result = produce(writer).and_then(|w| {
            w.finish()
                .map_err(|source| GraphError::Io { path: None, source })
        });
        if let Err(e) = result {
            let _ = failed.blocking_send(Chunk::Failed(e));
        }
    });
    // The watchdog: cancels the operation at the deadline, even mid-stream.
    let watchdog = tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        cancel();
    });
    let first = match tokio::time::timeout(timeout + Duration::from_secs(1), rx.recv()).await {
        Ok(first) => first,
        Err(_) => {
            return Err(GraphError::Timeout(timeout).into());
        }
    };
    let first = match first {
        None => {
            watchdog.abort();
            return Err(ApiError::internal(
                "the result writer stopped without a word",
            ));
        }
        Some(Chunk::Failed(e)) => {
            watchdog.abort();
            return Err(e.into());
        }
        Some(Chunk::Last(all)) => {
            // The whole result in one piece, with a Content-Length.
            watchdog.abort();
            return Ok(HttpResponse::Ok().content_type(content_type).body(all));
        }
        Some(Chunk::Data(first)) => first,
    };
    let rest = futures_util::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await? {
            Chunk::Data(b) => Some((Ok::<_, io::Error>(b), Some(rx))),
            Chunk::Last(b) => Some((Ok(b), None)),
            Chunk::Failed(e) => {
                tracing::warn!(error = %e, "response aborted mid-stream");
                Some((Err(io::Error::other(e.to_string())), None))
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok::<_, io::Error>(first) }).chain(rest);
    Ok(HttpResponse::build(StatusCode::OK)
        .content_type(content_type)
        .streaming(body))
}

use futures_util::StreamExt;
