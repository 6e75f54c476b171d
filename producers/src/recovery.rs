//! Where the log source resumes after a start: pure planning over what the broker holds.
//!
//! A delivery that timed out while later batches landed leaves a hole before the broker's newest
//! fact (librdkafka's "message timeout considerations"). While the producer runs, [`InFlight`]
//! notes it and the next attempt refills it. If the process dies first, only the broker and the
//! local checkpoint are left: the checkpoint is the end of a contiguous acknowledged prefix, and
//! the broker's records of this node after it say which ranges landed. [`plan`] finds the first
//! byte after the checkpoint that is not on the broker; when later ranges did land past it, the
//! start is a [`Refill`] from there, skipping them.
//!
//! [`InFlight`]: crate::in_flight::InFlight

use crate::in_flight::Refill;
use crate::tail::{FileId, Position};

/// One log fact of this node found on the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LandedLine {
    /// Its offset in the partition: the order in which facts landed.
    pub at: i64,
    /// The file (epoch) it came from.
    pub file: FileId,
    /// The line's byte range `[start, end)` in that file.
    pub start: u64,
    /// See `start`.
    pub end: u64,
}

/// What the recovery scan found of this node in its partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Landed {
    /// This node's log facts in the scanned part, in any order.
    pub lines: Vec<LandedLine>,
    /// Whether the scan reached back past the checkpoint (to the fact that ends at or covers it,
    /// or to records older than the checkpoint's write), so that every fact after it is in
    /// `lines`. Without it no hole can be told from the end of the scan.
    pub reached_checkpoint: bool,
}

impl Landed {
    /// The position after the newest fact.
    pub fn newest(&self) -> Option<Position> {
        self.lines.iter().max_by_key(|l| l.at).map(|l| Position { file: l.file, offset: l.end })
    }
}

/// Where to start following the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Resume at this position (from the start of the current file if `None`).
    At(Option<Position>),
    /// A hole: re-read from its start and send only what is not on the broker.
    Refill(Refill),
}

/// Plans the start from the local `checkpoint` (the end of an acknowledged prefix, if any) and
/// what `landed`. Without a hole the start is after the broker's newest fact (or the checkpoint,
/// if the broker has nothing of this node). A hole is a byte range after the checkpoint that is
/// missing while a later range of the same file, or a later file's range that does not start at
/// its beginning, landed.
pub fn plan(checkpoint: Option<Position>, landed: &Landed) -> Resume {
    let newest = landed.newest();
    let fallback = Resume::At(newest.or(checkpoint));
    let Some(cp) = checkpoint.filter(|_| landed.reached_checkpoint) else { return fallback };
    // The fact that ends at (or covers) the checkpoint: what landed after it is what counts.
    // Facts before it (an older file's last lines, say) are behind the checkpoint.
    let Some(anchor) = landed
        .lines
        .iter()
        .filter(|l| l.file == cp.file && l.start < cp.offset && cp.offset <= l.end)
        .min_by_key(|l| l.at)
    else {
        return fallback;
    };
    let mut after: Vec<(FileId, u64, u64)> = landed
        .lines
        .iter()
        .filter(|l| l.at > anchor.at || (l.at == anchor.at && l.end > cp.offset))
        .map(|l| if l.file == cp.file { (l.file, l.start.max(cp.offset), l.end) } else { (l.file, l.start, l.end) })
        .filter(|(_, s, e)| s < e)
        .collect();
    let ranges = merge(&mut after);
    // The checkpoint's file is contiguous from the checkpoint up to `cur`.
    let mut cur = cp.offset;
    for (f, s, e) in &ranges {
        if *f == cp.file && *s <= cur && cur < *e {
            cur = *e;
        }
    }
    let left: Vec<(FileId, u64, u64)> = ranges.into_iter().filter(|(f, _, e)| !(*f == cp.file && *e <= cur)).collect();
    // Evidence of a hole: a later range in the checkpoint's file, or a later file whose facts do
    // not start at its first byte or have a gap. Otherwise (a rotation, say) nothing is missing.
    let mut files: Vec<FileId> = Vec::new();
    for (f, _, _) in &left {
        if !files.contains(f) {
            files.push(*f);
        }
    }
    let hole = files.iter().any(|f| {
        let mine: Vec<&(FileId, u64, u64)> = left.iter().filter(|(g, _, _)| g == f).collect();
        *f == cp.file || mine.len() > 1 || mine.first().is_some_and(|(_, s, _)| *s > 0)
    });
    if !hole {
        return fallback;
    }
    let skip =
        left.into_iter().map(|(file, s, e)| (Position { file, offset: s }, Position { file, offset: e })).collect();
    Resume::Refill(Refill { from: Position { file: cp.file, offset: cur }, skip })
}

/// Sorts `ranges` and merges the ones that touch or overlap, per file.
fn merge(ranges: &mut [(FileId, u64, u64)]) -> Vec<(FileId, u64, u64)> {
    ranges.sort_by_key(|(f, s, _)| (f.dev, f.ino, f.generation, *s));
    let mut out: Vec<(FileId, u64, u64)> = Vec::new();
    for &(f, s, e) in ranges.iter() {
        match out.last_mut() {
            Some((g, _, end)) if *g == f && s <= *end => *end = (*end).max(e),
            _ => out.push((f, s, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: FileId = FileId { dev: 1, ino: 2, generation: 0 };
    const G: FileId = FileId { dev: 1, ino: 3, generation: 0 };

    fn pos(file: FileId, offset: u64) -> Position {
        Position { file, offset }
    }

    /// Lines of 10 bytes at the given starts, landing in the order given.
    fn landed(lines: &[(FileId, u64)]) -> Landed {
        let lines = lines
            .iter()
            .enumerate()
            .map(|(i, &(file, start))| LandedLine { at: i as i64, file, start, end: start + 10 })
            .collect();
        Landed { lines, reached_checkpoint: true }
    }

    #[test]
    fn contiguous_facts_resume_after_the_newest() {
        let l = landed(&[(F, 0), (F, 10), (F, 20), (F, 30)]);
        assert_eq!(plan(Some(pos(F, 10)), &l), Resume::At(Some(pos(F, 40))));
    }

    #[test]
    fn a_hole_after_the_checkpoint_is_refilled_skipping_what_landed() {
        // 20..40 timed out; 40..60 landed after it.
        let l = landed(&[(F, 0), (F, 10), (F, 40), (F, 50)]);
        let Resume::Refill(r) = plan(Some(pos(F, 10)), &l) else { panic!("no refill") };
        assert_eq!(r.from, pos(F, 20));
        assert_eq!(r.skip, vec![(pos(F, 40), pos(F, 60))]);
    }

    #[test]
    fn a_hole_right_at_the_checkpoint_starts_there() {
        let l = landed(&[(F, 0), (F, 30)]);
        let Resume::Refill(r) = plan(Some(pos(F, 10)), &l) else { panic!("no refill") };
        assert_eq!(r.from, pos(F, 10));
    }

    #[test]
    fn a_rotation_without_a_hole_resumes_after_the_newest() {
        let l = landed(&[(F, 0), (F, 10), (G, 0), (G, 10)]);
        assert_eq!(plan(Some(pos(F, 10)), &l), Resume::At(Some(pos(G, 20))));
    }

    #[test]
    fn a_hole_in_a_later_file_refills_from_the_checkpoints_end() {
        let l = landed(&[(F, 0), (F, 10), (G, 20)]);
        let Resume::Refill(r) = plan(Some(pos(F, 10)), &l) else { panic!("no refill") };
        assert_eq!(r.from, pos(F, 20), "the rest of the checkpoint's file, then the later one");
        assert_eq!(r.skip, vec![(pos(G, 20), pos(G, 30))]);
    }

    #[test]
    fn an_older_files_lines_before_the_checkpoint_are_no_hole() {
        // G's last lines landed before F's first: behind the checkpoint.
        let l = landed(&[(G, 0), (G, 30), (F, 0), (F, 10)]);
        assert_eq!(plan(Some(pos(F, 20)), &l), Resume::At(Some(pos(F, 20))));
    }

    #[test]
    fn without_a_checkpoint_or_a_complete_scan_the_newest_wins() {
        let l = landed(&[(F, 0), (F, 40)]);
        assert_eq!(plan(None, &l), Resume::At(Some(pos(F, 50))));
        let partial = Landed { reached_checkpoint: false, ..l };
        assert_eq!(plan(Some(pos(F, 10)), &partial), Resume::At(Some(pos(F, 50))));
        assert_eq!(plan(Some(pos(F, 10)), &Landed::default()), Resume::At(Some(pos(F, 10))));
    }

    #[test]
    fn a_refill_in_flight_refills_only_the_rest() {
        // The refill had sent 20..30 before the crash: the hole is 30..40 now.
        let l = landed(&[(F, 0), (F, 10), (F, 40), (F, 20)]);
        let Resume::Refill(r) = plan(Some(pos(F, 10)), &l) else { panic!("no refill") };
        assert_eq!(r.from, pos(F, 30));
        assert_eq!(r.skip, vec![(pos(F, 40), pos(F, 50))]);
    }
}
