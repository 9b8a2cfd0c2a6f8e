//! Prefixed, time-sortable ids (`evt_` + a ULID) and the random tokens behind API keys.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_MAX: u128 = (1 << 80) - 1;

pub fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A ULID: 48 bits of milliseconds then 80 random bits, in Crockford base32, so ids sort by
/// creation time (cursor pagination relies on it).
pub fn ulid_at(ms: i64) -> String {
    encode(ms, random_part())
}

fn random_part() -> u128 {
    random::<10>().iter().fold(0u128, |acc, b| (acc << 8) | *b as u128)
}

fn encode(ms: i64, random_part: u128) -> String {
    let value: u128 = ((ms.max(0) as u128 & 0xFFFF_FFFF_FFFF) << 80) | (random_part & RANDOM_MAX);
    let mut out = [0u8; 26];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 125 - 5 * i as u32;
        *slot = CROCKFORD[((value >> shift) & 0x1F) as usize];
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// The next id of this process: within one millisecond (or if the clock steps back) the
/// previous id's random part is incremented instead of redrawn, so ids made here always
/// increase, as the ULID specification's monotonic mode does.
fn next_ulid() -> String {
    static LAST: Mutex<(i64, u128)> = Mutex::new((i64::MIN, 0));
    let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = now_ms();
    *last = if now <= last.0 && last.1 < RANDOM_MAX { (last.0, last.1 + 1) } else { (now, random_part()) };
    encode(last.0, last.1)
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", next_ulid())
}

/// Hex SHA-256: how API keys and session tokens are stored (they are random, so a fast
/// hash is enough; the plain value is never kept).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// A secret token: `prefix`, `_`, then `N` random bytes in URL-safe base64 (API keys,
/// session cookies, stream tokens).
pub fn secret_token<const N: usize>(prefix: &str) -> String {
    use base64::Engine;
    format!("{prefix}_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<N>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_sort_by_time_and_have_26_chars() {
        let a = ulid_at(1_000);
        let b = ulid_at(2_000);
        assert_eq!(a.len(), 26);
        assert!(a < b);
        assert!(new_id("evt").starts_with("evt_"));
    }

    #[test]
    fn ids_made_quickly_still_increase() {
        let ids: Vec<String> = (0..10_000).map(|_| new_id("x")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn secret_tokens_carry_their_prefix_and_all_their_bytes() {
        let token = secret_token::<32>("hk");
        assert!(token.starts_with("hk_"));
        assert_eq!(token.len(), 3 + 43);
        assert_ne!(token, secret_token::<32>("hk"));
    }

    #[test]
    fn ulid_encodes_the_timestamp_in_the_first_ten_chars() {
        assert!(ulid_at(0).starts_with("0000000000"));
        assert!(ulid_at(0xFFFF_FFFF_FFFF).starts_with("7ZZZZZZZZZ"));
    }
}
