//! Splitting a byte stream into lines, with their file offsets. Pure: no I/O.

/// One complete line read from a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// File offset of the line's first byte.
    pub start: u64,
    /// File offset just past its newline (or past its last byte, for a final line flushed without
    /// one): where reading resumes.
    pub end: u64,
    /// The bytes without the newline, at most the splitter's limit.
    pub bytes: Vec<u8>,
    /// The line was longer than the limit and was cut.
    pub truncated: bool,
}

/// Turns chunks of a file into lines. A partial last line is held until its newline arrives; a line
/// longer than `max_line` keeps its first `max_line` bytes and is marked truncated. Bytes need not
/// be UTF-8.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    max_line: usize,
    /// File offset of the current partial line's first byte.
    start: u64,
    /// Bytes of the current partial line (at most `max_line`).
    buf: Vec<u8>,
    /// Bytes of the current line seen so far, including any cut off.
    seen: u64,
}

impl LineSplitter {
    /// A splitter whose next byte is at file offset `offset`.
    pub fn new(offset: u64, max_line: usize) -> Self {
        LineSplitter { max_line: max_line.max(1), start: offset, buf: Vec::new(), seen: 0 }
    }

    /// Feeds the next chunk of the file; returns the lines it completed, in order.
    pub fn push(&mut self, mut chunk: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        while let Some(nl) = chunk.iter().position(|b| *b == b'\n') {
            self.take(&chunk[..nl]);
            let end = self.start + self.seen + 1;
            out.push(self.emit(end));
            chunk = &chunk[nl + 1..];
        }
        self.take(chunk);
        out
    }

    fn take(&mut self, bytes: &[u8]) {
        let room = self.max_line.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.seen += bytes.len() as u64;
    }

    fn emit(&mut self, end: u64) -> Line {
        let line = Line {
            start: self.start,
            end,
            truncated: self.seen > self.buf.len() as u64,
            bytes: std::mem::take(&mut self.buf),
        };
        self.start = end;
        self.seen = 0;
        line
    }

    /// Emits the held partial line, if any, as a final line without newline (used when the file
    /// will not grow any more: it was rotated away).
    pub fn finish(&mut self) -> Option<Line> {
        (self.seen > 0).then(|| {
            let end = self.start + self.seen;
            self.emit(end)
        })
    }

    /// Bytes of a partial line currently held (including any cut off).
    pub fn pending(&self) -> u64 {
        self.seen
    }

    /// File offset where the held partial line starts: the resume point if the process stopped now.
    pub fn committed_offset(&self) -> u64 {
        self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_lines_with_offsets_and_holds_partials() {
        let mut s = LineSplitter::new(100, 1000);
        let lines = s.push(b"ab\ncd");
        assert_eq!(lines, vec![Line { start: 100, end: 103, bytes: b"ab".to_vec(), truncated: false }]);
        assert_eq!(s.pending(), 2);
        let lines = s.push(b"e\n\n");
        assert_eq!(lines[0], Line { start: 103, end: 107, bytes: b"cde".to_vec(), truncated: false });
        assert_eq!(lines[1], Line { start: 107, end: 108, bytes: vec![], truncated: false });
        assert_eq!(s.committed_offset(), 108);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn long_lines_are_cut_but_offsets_stay_exact() {
        let mut s = LineSplitter::new(0, 4);
        let lines = s.push(b"0123456789\nxy\n");
        assert_eq!(lines[0], Line { start: 0, end: 11, bytes: b"0123".to_vec(), truncated: true });
        assert_eq!(lines[1], Line { start: 11, end: 14, bytes: b"xy".to_vec(), truncated: false });
    }

    #[test]
    fn finish_flushes_a_final_line_without_newline() {
        let mut s = LineSplitter::new(0, 10);
        s.push(b"a\n\xffb");
        assert_eq!(s.finish(), Some(Line { start: 2, end: 4, bytes: b"\xffb".to_vec(), truncated: false }));
    }

    proptest! {
        /// However the file is chunked, the same lines come out, and they tile the file exactly.
        #[test]
        fn chunking_does_not_matter(data in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..400),
                                    cuts in proptest::collection::vec(0usize..400, 0..20),
                                    max in 1usize..50) {
            let mut whole = LineSplitter::new(0, max);
            let mut expected = whole.push(&data);
            expected.extend(whole.finish());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            let mut s = LineSplitter::new(0, max);
            let mut got = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                got.extend(s.push(&data[at..c]));
                at = c;
            }
            got.extend(s.finish());
            prop_assert_eq!(&got, &expected);
            let mut pos = 0;
            for l in &got {
                prop_assert_eq!(l.start, pos);
                prop_assert!(l.bytes.len() <= max);
                pos = l.end;
            }
            prop_assert_eq!(pos, data.len() as u64);
        }
    }
}
