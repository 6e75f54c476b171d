//! Txids as 32 bytes: the key of the mempool lists' entries and of the templates' transactions.

/// A txid, as its 32 bytes (display order).
pub type Txid = [u8; 32];

/// The 32 bytes of a 64-digit hex txid.
pub fn parse_txid(hex: &str) -> Option<Txid> {
    let b = hex.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// A txid as hex.
pub fn txid_hex(t: &Txid) -> String {
    t.iter().map(|b| format!("{b:02x}")).collect()
}
