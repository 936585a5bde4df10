//! A `depfw serve` child process for the end-to-end benches, and a port for it.

use std::process::Child;

/// Kills and reaps the child when the bench ends, however it ends.
pub struct Depfw(pub Child);

impl Drop for Depfw {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
