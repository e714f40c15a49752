//! A worker's output cut into whole lines.

/// The longest line sent as one piece; a longer line goes in pieces of this size (only the last
/// ends with `\n`).
pub const MAX_LINE: usize = 64 * 1024;

/// Bytes of one output stream, waiting for the end of their line.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Adds bytes; returns every line they complete (each with its `\n`).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            self.pending.extend_from_slice(piece);
            if piece.ends_with(b"\n") {
                out.push(std::mem::take(&mut self.pending));
            } else {
                while self.pending.len() >= MAX_LINE {
                    let rest = self.pending.split_off(MAX_LINE);
                    out.push(std::mem::replace(&mut self.pending, rest));
                }
            }
        }
        out
    }

    /// The partial line left at the end of the stream, if any.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_whole_whatever_the_pieces() {
        let mut lines = Lines::default();
        assert!(lines.push(b"first ha").is_empty());
        assert_eq!(
            lines.push(b"lf\nsecond\nthi"),
            vec![b"first half\n".to_vec(), b"second\n".to_vec()]
        );
        assert_eq!(lines.finish(), Some(b"thi".to_vec()));
        assert_eq!(lines.finish(), None);
        let long = vec![b'x'; MAX_LINE + 10];
        let pieces = lines.push(&long);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].len(), MAX_LINE);
        assert_eq!(
            lines.push(b"\n"),
            vec![[vec![b'x'; 10], b"\n".to_vec()].concat()]
        );
    }
}
