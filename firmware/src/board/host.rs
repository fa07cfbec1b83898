//! The host twin: stdin/stdout as the serial port, no instruction counter.

use super::Serial;
use std::io::{Read, Write};

/// Standard input and output.
pub struct Stdio {
    stdin: std::io::Stdin,
    stdout: std::io::Stdout,
}

impl Serial for Stdio {
    fn read(&mut self) -> Option<u8> {
        let mut b = [0u8; 1];
        match self.stdin.read(&mut b) {
            Ok(1) => Some(b[0]),
            // End of input: the host closed the link.
            _ => exit(true),
        }
    }

    fn write(&mut self, byte: u8) {
        self.write_all(&[byte]);
    }

    fn write_all(&mut self, bytes: &[u8]) {
        let mut out = self.stdout.lock();
        if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
            exit(false);
        }
    }
}

/// The twin's serial port.
pub fn serial() -> Stdio {
    Stdio { stdin: std::io::stdin(), stdout: std::io::stdout() }
}

/// Leave with a status.
#[allow(dead_code)]
pub fn exit(success: bool) -> ! {
    std::process::exit(if success { 0 } else { 1 })
}

/// No instruction counter on the host.
pub struct Counter;

/// A point in time (none on the host).
#[derive(Clone, Copy, Debug)]
pub struct Instant;

impl Counter {
    /// Always the same.
    pub fn now(&self) -> Instant {
        Instant
    }

    /// Always 0.
    pub fn since(&self, _start: Instant) -> u32 {
        0
    }

    /// Always 0.
    pub fn calibration(&self) -> u32 {
        0
    }
}
