//! The spool's record framing. Pure.
//!
//! A record is `len: u32 LE | crc32(appended_at ‖ payload): u32 LE | appended_at_us: i64 LE | payload`,
//! where `len` counts the payload. A torn or corrupt record ends the readable part of a segment.

/// Bytes before the payload.
pub const HEADER: usize = 16;

/// One spooled record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// When it was spooled, µs since the epoch (for the age metric).
    pub appended_at_us: i64,
    /// The encoded fact.
    pub payload: Vec<u8>,
}

fn crc(appended_at_us: i64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&appended_at_us.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Encodes a frame.
pub fn encode(appended_at_us: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc(appended_at_us, payload).to_le_bytes());
    out.extend_from_slice(&appended_at_us.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes the frame at the start of `bytes`: the frame and its total length, or `None` if the
/// bytes hold no complete, intact frame (a torn write, or garbage).
pub fn decode(bytes: &[u8], max_payload: usize) -> Option<(Frame, usize)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    if len > max_payload {
        return None;
    }
    let sum = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let at = i64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER + len)?;
    (crc(at, payload) == sum).then(|| (Frame { appended_at_us: at, payload: payload.to_vec() }, HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_rejects_torn_or_flipped() {
        let f = encode(42, b"fact");
        assert_eq!(decode(&f, 1 << 20), Some((Frame { appended_at_us: 42, payload: b"fact".to_vec() }, f.len())));
        assert_eq!(decode(&f[..f.len() - 1], 1 << 20), None);
        let mut flipped = f.clone();
        flipped[HEADER] ^= 1;
        assert_eq!(decode(&flipped, 1 << 20), None);
        assert_eq!(decode(&f, 3), None, "over the payload limit");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes, 1 << 20);
        }
    }
}
