//! The causal token's format: what a service hands its client after a
//! write, and accepts back. Opaque to the client, versioned, and holding no
//! credential: the WAL position a read must wait for, per database cluster
//! (named by its PostgreSQL system identifier).
//!
//! Bytes, then base64url without padding:
//!
//! ```text
//! version (1) | count n (1..=8) | n × (system identifier u64 BE, WAL position u64 BE) | FNV-1a 32 BE of all before
//! ```
//!
//! The checksum catches a token damaged or cut on its way (a cookie
//! trimmed, a header mangled); it is no protection against forging, which
//! needs none: see `docs/replicas.md` ("Tokens").

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The format version this build writes and reads.
pub(crate) const VERSION: u8 = 1;

/// The most clusters one token names.
pub(crate) const MAX_POSITIONS: usize = 8;

/// A token longer than this is refused before it is decoded.
const MAX_LEN: usize = 4 * (2 + MAX_POSITIONS * 16 + 4).div_ceil(3);

/// One cluster's position in a token: its system identifier and the WAL
/// position a read must have replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Position {
    pub(crate) system_id: u64,
    pub(crate) lsn: u64,
}

/// A read-your-writes token: after a write, the WAL position of each
/// database cluster written to (PostgreSQL: a commit's position on the
/// primary), bound to that cluster's system identifier.
///
/// Get one from [`Engine::causal_token`](crate::Engine::causal_token)
/// after writing, hand its text ([`Display`](std::fmt::Display),
/// `to_string()`) to the client (a cookie, a header), and on the client's
/// next request, maybe to another instance of the service, turn the text
/// back into a token with [`Engine::accept_token`](crate::Engine::accept_token)
/// and run the request's reads in [`causal::scope`](crate::causal::scope):
/// they go to a replica only once it has replayed past the token's
/// position.
///
/// The text is opaque (base64url), versioned, about 30 characters for one
/// cluster, and holds no credential: a cluster's system identifier and a
/// WAL position. Its format is in `docs/replicas.md`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbroute::Result<()> {
/// use dbroute::Engine;
///
/// let engine = Engine::builder().connection("default", "sqlite::memory:").build().await?;
/// // No replica, no write: nothing to wait for.
/// assert!(engine.causal_token().is_none());
/// // What a client sends back is checked: this is not a token.
/// assert!(matches!(engine.accept_token("not a token").await, Err(dbroute::Error::CausalToken { .. })));
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CausalToken {
    /// Sorted by system identifier, one per cluster.
    positions: Vec<Position>,
}

impl std::fmt::Debug for CausalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CausalToken").field(&self.to_string()).finish()
    }
}

impl std::fmt::Display for CausalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.to_bytes()))
    }
}

/// Why a token's text was refused (turned into
/// [`Error::CausalToken`](crate::Error::CausalToken) by the engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Malformed {
    Empty,
    TooLong(usize),
    NotBase64,
    Truncated,
    Version(u8),
    Count(u8),
    Checksum,
    ZeroPosition,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::Empty => f.write_str("it is empty"),
            Malformed::TooLong(len) => write!(f, "it is {len} characters long, more than any token ({MAX_LEN})"),
            Malformed::NotBase64 => f.write_str("it is not a token (not base64url text)"),
            Malformed::Truncated => f.write_str("it is cut short, or has characters added or altered"),
            Malformed::Version(v) => write!(
                f,
                "it is of format version {v}, which this build does not read (it reads version {VERSION}); \
                 it was issued by another version of dbroute"
            ),
            Malformed::Count(n) => write!(f, "it claims {n} positions (1 to {MAX_POSITIONS} are possible)"),
            Malformed::Checksum => f.write_str("its checksum does not match: it was damaged or altered"),
            Malformed::ZeroPosition => f.write_str("it names a zero system identifier or WAL position"),
        }
    }
}

impl CausalToken {
    /// A token of these positions (not empty; at most [`MAX_POSITIONS`],
    /// the highest position kept per cluster).
    pub(crate) fn new(mut positions: Vec<Position>) -> Option<CausalToken> {
        positions.sort();
        // Sorted by (system_id, lsn): keep the last of each cluster.
        let mut kept: Vec<Position> = Vec::with_capacity(positions.len());
        for p in positions {
            match kept.last_mut() {
                Some(last) if last.system_id == p.system_id => *last = p,
                _ => kept.push(p),
            }
        }
        (!kept.is_empty() && kept.len() <= MAX_POSITIONS).then_some(CausalToken { positions: kept })
    }

    /// The positions, one per cluster.
    pub(crate) fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// The position it names in the cluster `system_id` (0: none).
    pub(crate) fn lsn_for(&self, system_id: u64) -> u64 {
        self.positions
            .iter()
            .find(|p| p.system_id == system_id)
            .map_or(0, |p| p.lsn)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(2 + 16 * self.positions.len() + 4);
        bytes.push(VERSION);
        bytes.push(self.positions.len() as u8);
        for p in &self.positions {
            bytes.extend_from_slice(&p.system_id.to_be_bytes());
            bytes.extend_from_slice(&p.lsn.to_be_bytes());
        }
        let sum = fnv1a(&bytes);
        bytes.extend_from_slice(&sum.to_be_bytes());
        bytes
    }

    /// Reads a token's text. Checks its form only: that its clusters are
    /// the engine's is the engine's to check.
    pub(crate) fn decode(text: &str) -> Result<CausalToken, Malformed> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Malformed::Empty);
        }
        if text.len() > MAX_LEN {
            return Err(Malformed::TooLong(text.len()));
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| {
            // Token characters that do not decode: a token's text cut or
            // altered.
            if text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                Malformed::Truncated
            } else {
                Malformed::NotBase64
            }
        })?;
        let (&version, rest) = bytes.split_first().ok_or(Malformed::Truncated)?;
        if version != VERSION {
            return Err(Malformed::Version(version));
        }
        let (&count, rest) = rest.split_first().ok_or(Malformed::Truncated)?;
        if count == 0 || usize::from(count) > MAX_POSITIONS {
            return Err(Malformed::Count(count));
        }
        if rest.len() != usize::from(count) * 16 + 4 {
            return Err(Malformed::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - 4);
        if fnv1a(body).to_be_bytes() != sum {
            return Err(Malformed::Checksum);
        }
        let word = |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let positions: Vec<Position> = (0..usize::from(count))
            .map(|i| Position {
                system_id: word(2 + 16 * i),
                lsn: word(2 + 16 * i + 8),
            })
            .collect();
        if positions.iter().any(|p| p.system_id == 0 || p.lsn == 0) {
            return Err(Malformed::ZeroPosition);
        }
        CausalToken::new(positions).ok_or(Malformed::Count(count))
    }

    /// This token and `other`: the higher position per cluster.
    pub(crate) fn merge(&self, other: &CausalToken) -> CausalToken {
        let mut all = self.positions.clone();
        all.extend_from_slice(&other.positions);
        // Two tokens name at most 2 × MAX_POSITIONS clusters: keep the
        // highest positions of the first MAX_POSITIONS clusters, and never
        // fewer than `self` had.
        all.sort();
        let mut kept: Vec<Position> = Vec::new();
        for p in all {
            match kept.last_mut() {
                Some(last) if last.system_id == p.system_id => *last = p,
                _ => kept.push(p),
            }
        }
        kept.truncate(MAX_POSITIONS);
        CausalToken { positions: kept }
    }
}

/// FNV-1a, 32 bits: a checksum against damage, not a signature.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(positions: &[(u64, u64)]) -> CausalToken {
        CausalToken::new(
            positions
                .iter()
                .map(|&(system_id, lsn)| Position { system_id, lsn })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn round_trips_and_is_short() {
        let t = token(&[(7_301_234_567_890_123_456, 0x0016_B374_D848)]);
        let text = t.to_string();
        assert_eq!(text.len(), 30, "{text}");
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(CausalToken::decode(&text).unwrap(), t);
        let two = token(&[(2, 5), (1, 9), (2, 7)]);
        assert_eq!(
            two.positions(),
            [Position { system_id: 1, lsn: 9 }, Position { system_id: 2, lsn: 7 }]
        );
        assert_eq!(CausalToken::decode(&two.to_string()).unwrap(), two);
        assert_eq!(two.lsn_for(2), 7);
        assert_eq!(two.lsn_for(3), 0);
    }

    #[test]
    fn refuses_what_is_not_a_whole_token() {
        let text = token(&[(11, 22)]).to_string();
        assert_eq!(CausalToken::decode(""), Err(Malformed::Empty));
        assert_eq!(CausalToken::decode("  "), Err(Malformed::Empty));
        assert_eq!(CausalToken::decode("not a token!"), Err(Malformed::NotBase64));
        assert_eq!(CausalToken::decode(&"A".repeat(1000)), Err(Malformed::TooLong(1000)));
        // Every cut is refused, never a panic.
        for cut in 1..text.len() {
            assert!(CausalToken::decode(&text[..cut]).is_err(), "{cut}");
        }
        // Every character changed is refused (a checksum or a length).
        for at in 0..text.len() {
            let mut altered = text.clone().into_bytes();
            altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(CausalToken::decode(&altered).is_err(), "{altered}");
        }
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        bytes[0] = 2;
        assert_eq!(
            CausalToken::decode(&URL_SAFE_NO_PAD.encode(&bytes)),
            Err(Malformed::Version(2))
        );
        let zero = {
            let mut b = vec![VERSION, 1];
            b.extend_from_slice(&[0; 16]);
            let sum = fnv1a(&b);
            b.extend_from_slice(&sum.to_be_bytes());
            URL_SAFE_NO_PAD.encode(b)
        };
        assert_eq!(CausalToken::decode(&zero), Err(Malformed::ZeroPosition));
        let none = URL_SAFE_NO_PAD.encode([VERSION, 0, 0, 0, 0, 0]);
        assert_eq!(CausalToken::decode(&none), Err(Malformed::Count(0)));
    }

    #[test]
    fn merges_keep_the_highest_position_per_cluster() {
        let merged = token(&[(1, 5), (2, 9)]).merge(&token(&[(1, 8), (3, 1)]));
        assert_eq!(merged, token(&[(1, 8), (2, 9), (3, 1)]));
    }
}
