//! Bytes waiting to go out on a non-blocking stream: a process that relays never blocks on a
//! slow reader (which could be blocked on it).

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};

/// A queue of byte buffers for a non-blocking writer.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Vec<u8>>,
    offset: usize,
    queued: usize,
}

impl Outbox {
    /// Queues bytes.
    pub fn push(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.queued += bytes.len();
            self.queue.push_back(bytes);
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many bytes wait.
    pub fn len(&self) -> usize {
        self.queued - self.offset
    }

    /// Writes as much as `out` takes now; `Ok(true)` when something was written.
    pub fn flush_into(&mut self, out: &mut impl Write) -> std::io::Result<bool> {
        let mut wrote = false;
        while let Some(front) = self.queue.front() {
            match out.write(&front[self.offset..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    wrote = true;
                    self.offset += n;
                    if self.offset == front.len() {
                        self.queued -= front.len();
                        self.offset = 0;
                        self.queue.pop_front();
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(wrote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_goes_out_in_order() {
        let mut outbox = Outbox::default();
        outbox.push(b"ab".to_vec());
        outbox.push(Vec::new());
        outbox.push(b"cde".to_vec());
        assert_eq!(outbox.len(), 5);
        let mut out = Vec::new();
        assert!(outbox.flush_into(&mut out).expect("write"));
        assert_eq!(out, b"abcde");
        assert!(outbox.is_empty());
        assert_eq!(outbox.len(), 0);
    }
}
