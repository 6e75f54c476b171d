//! A TCP proxy that delays every byte by a fixed time in each direction: a slow link between two
//! regtest nodes with a known, injected propagation delay.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::TestbedError;

/// A running delay proxy; stops accepting when dropped (open connections end with their peers).
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl DelayProxy {
    /// Listens on `127.0.0.1:port` and forwards each connection to `target`, holding every chunk
    /// for `delay` before passing it on, in order, in both directions.
    pub fn start(port: u16, target: SocketAddr, delay: Duration) -> Result<DelayProxy, TestbedError> {
        let listener =
            TcpListener::bind(("127.0.0.1", port)).map_err(TestbedError::io(format!("proxy bind {port}")))?;
        listener.set_nonblocking(true).map_err(TestbedError::io("proxy listener"))?;
        let addr = listener.local_addr().map_err(TestbedError::io("proxy listener"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if let Ok(server) = TcpStream::connect(target) {
                            let _ = client.set_nonblocking(false);
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                                pipe(client, s2, delay);
                                pipe(server, c2, delay);
                            }
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(DelayProxy { addr, stop })
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to`, each chunk released `delay` after it was read.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
