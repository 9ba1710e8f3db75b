//! Noticing a client that went away while its request runs. actix-web
//! does not poll the socket while a handler is busy, so a classification
//! whose client disconnected would run to the end and be cached. Handlers
//! race their work against [`gone`]; when the peer has closed the
//! connection, the work future is dropped: its queued encoder job is
//! skipped and nothing is cached.

use actix_web::HttpRequest;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// The connection's socket, recorded when it is accepted. Valid only while
/// the request that carries it is being handled (actix closes the socket
/// after the response): never keep it past the handler.
#[derive(Clone, Copy)]
pub(super) struct Peer(RawFd);

impl Peer {
    /// The socket of an accepted connection.
    pub(super) fn of(tcp: &actix_web::rt::net::TcpStream) -> Self {
        Self(tcp.as_raw_fd())
    }

    /// True when the peer has closed its side (a zero-byte peek) or the
    /// socket failed. Pipelined bytes waiting to be read count as alive.
    fn closed(self) -> bool {
        let mut byte = 0u8;
        // SAFETY: the descriptor belongs to the connection serving the
        // request that asks, which actix keeps open until the response is
        // written; MSG_PEEK | MSG_DONTWAIT neither consumes data nor blocks.
        let n = unsafe {
            libc::recv(
                self.0,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n == 0 {
            return true;
        }
        if n < 0 {
            let err = std::io::Error::last_os_error();
            return !matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            );
        }
        false
    }
}

/// Resolves when the client of `req` has disconnected (checked every 25 ms);
/// never, for connections that are not plain TCP. Work that already left
/// the handler (linking on the blocking pool) still finishes; the encoder
/// pass and the cache insert are skipped.
pub(super) async fn gone(req: &HttpRequest) {
    let Some(peer) = req.conn_data::<Peer>().copied() else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    loop {
        tick.tick().await;
        if peer.closed() {
            return;
        }
    }
}
