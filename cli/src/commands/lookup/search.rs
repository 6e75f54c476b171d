//! Where `bmon lookup` reads (pure): windows around the time asked, narrowest first, and when
//! the sightings found need no wider one.
//!
//! A node publishes its sightings of an object within seconds of each other, so a narrow
//! window around them holds them all; a wider one only adds other objects' records to read.

/// The half-widths tried by default, µs, before `--window`'s: one minute, then ten.
const STEPS_US: [i64; 2] = [60_000_000, 600_000_000];

/// How far inside a window the sightings found must lie for it to hold them all, µs: a node
/// that saw the object more than this before the first sighting found or after the last one,
/// and outside the window, is not shown (`--window` reads a whole window).
pub const MARGIN_US: i64 = 30_000_000;

/// The half-widths to read, µs, narrowest first: the default steps narrower than `max_us`,
/// then `max_us`; only `max_us` when `widen` is false.
pub fn half_widths(max_us: i64, widen: bool) -> Vec<i64> {
    let mut out: Vec<i64> = if widen { STEPS_US.iter().copied().filter(|w| *w < max_us).collect() } else { Vec::new() };
    out.push(max_us);
    out
}

/// Whether the window `[since_us, until_us]` holds every sighting near the ones found, whose
/// times are `found_us`: they lie [`MARGIN_US`] inside it. A window's end past `now_us` counts as
/// open (nothing later was published yet).
pub fn settled(found_us: &[i64], since_us: i64, until_us: i64, now_us: i64) -> bool {
    let (Some(first), Some(last)) = (found_us.iter().min(), found_us.iter().max()) else { return false };
    first.saturating_sub(MARGIN_US) >= since_us && (until_us >= now_us || last.saturating_add(MARGIN_US) <= until_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    #[test]
    fn widens_in_steps_up_to_the_window() {
        assert_eq!(half_widths(60 * MIN, true), vec![MIN, 10 * MIN, 60 * MIN]);
        assert_eq!(half_widths(5 * MIN, true), vec![MIN, 5 * MIN]);
        assert_eq!(half_widths(MIN, true), vec![MIN]);
        assert_eq!(half_widths(60 * MIN, false), vec![60 * MIN]);
    }

    #[test]
    fn nothing_found_never_settles() {
        assert!(!settled(&[], 0, 10 * MIN, 20 * MIN));
    }

    #[test]
    fn sightings_well_inside_settle() {
        let t = 100 * MIN;
        assert!(settled(&[t, t + 2_000_000], t - MIN, t + MIN, 200 * MIN));
    }

    #[test]
    fn sightings_near_an_end_do_not() {
        let t = 100 * MIN;
        // 10 s from the start: an earlier sighting could lie just before the window.
        assert!(!settled(&[t - MIN + 10_000_000], t - MIN, t + MIN, 200 * MIN));
        // 10 s from the end, likewise after it.
        assert!(!settled(&[t + MIN - 10_000_000], t - MIN, t + MIN, 200 * MIN));
    }

    #[test]
    fn an_end_in_the_future_is_open() {
        let now = 100 * MIN;
        // Seen 5 s ago, in a window around now: nothing later can have been published yet.
        assert!(settled(&[now - 5_000_000], now - MIN, now + MIN, now));
    }
}
