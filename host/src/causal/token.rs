//! The causal token's format: what a service hands its client after a
//! write, and accepts back. Opaque to the client, versioned, and holding no
//! credential: the position a read must wait for, per database cluster
//! (PostgreSQL: a WAL position, the cluster named by its system
//! identifier; MariaDB: a GTID sequence number, the primary named by its
//! GTID domain and server id).
//!
//! Bytes, then base64url without padding. Version 1, written when every
//! position is PostgreSQL's (so that a build that reads only version 1
//! reads it):
//!
//! ```text
//! 1 | count n (1..=8) | n × (system identifier u64 BE, WAL position u64 BE) | FNV-1a 32 BE of all before
//! ```
//!
//! Version 2, written when a position is MariaDB's; each position says
//! its kind (1: PostgreSQL, as above; 2: MariaDB, the identity being the
//! GTID domain in the high 32 bits and the primary's server id in the low
//! ones, the position a sequence number in that domain):
//!
//! ```text
//! 2 | count n (1..=8) | n × (kind u8, identity u64 BE, position u64 BE) | FNV-1a 32 BE of all before
//! ```
//!
//! The checksum catches a token damaged or cut on its way (a cookie
//! trimmed, a header mangled); it is no protection against forging, which
//! needs none: see `docs/replicas.md` ("Tokens").

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The format version of tokens of PostgreSQL positions only.
pub(crate) const VERSION: u8 = 1;

/// The format version of tokens with a kind per position (any MariaDB
/// position). This build reads both.
pub(crate) const VERSION_KINDS: u8 = 2;

/// The most clusters one token names.
pub(crate) const MAX_POSITIONS: usize = 8;

/// A token longer than this is refused before it is decoded.
const MAX_LEN: usize = 4 * (2 + MAX_POSITIONS * 17 + 4).div_ceil(3);

/// What a position counts in, and what names its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// PostgreSQL: a WAL position, the cluster's system identifier.
    Wal = 1,
    /// MariaDB: a GTID sequence number in one domain, the primary's domain
    /// and server id.
    Gtid = 2,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Wal),
            2 => Some(Kind::Gtid),
            _ => None,
        }
    }
}

/// One cluster's position in a token: its kind, its identity (PostgreSQL:
/// the system identifier; MariaDB: domain and server id) and the position
/// a read must have replayed (a WAL position, a GTID sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Position {
    pub(crate) kind: Kind,
    pub(crate) system_id: u64,
    pub(crate) lsn: u64,
}

/// A read-your-writes token: after a write, the position of each
/// database cluster written to, bound to that cluster (PostgreSQL: a WAL
/// position at or past the commit, bound to the cluster's system
/// identifier; MariaDB: a GTID sequence number at or past the commit's,
/// bound to the primary's GTID domain and server id).
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
/// cluster, and holds no credential: a cluster's identity and a position.
/// Its format is in `docs/replicas.md`.
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
    /// Sorted by cluster (kind, identity), one per cluster.
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
    Kind(u8),
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
                "it is of format version {v}, which this build does not read (it reads versions {VERSION} and {VERSION_KINDS}); \
                 it was issued by another version of dbroute"
            ),
            Malformed::Count(n) => write!(f, "it claims {n} positions (1 to {MAX_POSITIONS} are possible)"),
            Malformed::Kind(k) => write!(f, "it names a position of kind {k}, which this build does not know"),
            Malformed::Checksum => f.write_str("its checksum does not match: it was damaged or altered"),
            Malformed::ZeroPosition => f.write_str("it names a zero cluster identity or position"),
        }
    }
}

impl CausalToken {
    /// A token of these positions (not empty; at most [`MAX_POSITIONS`],
    /// the highest position kept per cluster).
    pub(crate) fn new(mut positions: Vec<Position>) -> Option<CausalToken> {
        positions.sort();
        // Sorted by (kind, system_id, lsn): keep the last of each cluster.
        let mut kept: Vec<Position> = Vec::with_capacity(positions.len());
        for p in positions {
            match kept.last_mut() {
                Some(last) if last.cluster() == p.cluster() => *last = p,
                _ => kept.push(p),
            }
        }
        (!kept.is_empty() && kept.len() <= MAX_POSITIONS).then_some(CausalToken { positions: kept })
    }

    /// The positions, one per cluster.
    pub(crate) fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// The position it names in the cluster `(kind, system_id)` (0: none).
    pub(crate) fn lsn_for(&self, kind: Kind, system_id: u64) -> u64 {
        self.positions
            .iter()
            .find(|p| p.cluster() == (kind, system_id))
            .map_or(0, |p| p.lsn)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let kinds = self.positions.iter().any(|p| p.kind != Kind::Wal);
        let mut bytes = Vec::with_capacity(2 + 17 * self.positions.len() + 4);
        bytes.push(if kinds { VERSION_KINDS } else { VERSION });
        bytes.push(self.positions.len() as u8);
        for p in &self.positions {
            if kinds {
                bytes.push(p.kind as u8);
            }
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
        let size = match version {
            VERSION => 16,
            VERSION_KINDS => 17,
            _ => return Err(Malformed::Version(version)),
        };
        let (&count, rest) = rest.split_first().ok_or(Malformed::Truncated)?;
        if count == 0 || usize::from(count) > MAX_POSITIONS {
            return Err(Malformed::Count(count));
        }
        if rest.len() != usize::from(count) * size + 4 {
            return Err(Malformed::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - 4);
        if fnv1a(body).to_be_bytes() != sum {
            return Err(Malformed::Checksum);
        }
        let word = |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let positions = (0..usize::from(count))
            .map(|i| {
                let at = 2 + size * i;
                let (kind, at) = match size {
                    16 => (Kind::Wal, at),
                    _ => (Kind::from_byte(body[at]).ok_or(Malformed::Kind(body[at]))?, at + 1),
                };
                Ok(Position {
                    kind,
                    system_id: word(at),
                    lsn: word(at + 8),
                })
            })
            .collect::<Result<Vec<Position>, Malformed>>()?;
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
                Some(last) if last.cluster() == p.cluster() => *last = p,
                _ => kept.push(p),
            }
        }
        kept.truncate(MAX_POSITIONS);
        CausalToken { positions: kept }
    }
}

impl Position {
    /// The cluster it is a position of.
    pub(crate) fn cluster(&self) -> (Kind, u64) {
        (self.kind, self.system_id)
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
                .map(|&(system_id, lsn)| Position {
                    kind: Kind::Wal,
                    system_id,
                    lsn,
                })
                .collect(),
        )
        .unwrap()
    }

    fn gtid(system_id: u64, lsn: u64) -> Position {
        Position {
            kind: Kind::Gtid,
            system_id,
            lsn,
        }
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
            [
                Position {
                    kind: Kind::Wal,
                    system_id: 1,
                    lsn: 9
                },
                Position {
                    kind: Kind::Wal,
                    system_id: 2,
                    lsn: 7
                }
            ]
        );
        assert_eq!(CausalToken::decode(&two.to_string()).unwrap(), two);
        assert_eq!(two.lsn_for(Kind::Wal, 2), 7);
        assert_eq!(two.lsn_for(Kind::Wal, 3), 0);
        assert_eq!(two.lsn_for(Kind::Gtid, 2), 0);
    }

    #[test]
    fn gtid_positions_make_a_version_2_token() {
        // Domain 0, server id 1, sequence number 42.
        let maria = CausalToken::new(vec![gtid(1, 42)]).unwrap();
        let text = maria.to_string();
        assert_eq!(URL_SAFE_NO_PAD.decode(&text).unwrap()[0], VERSION_KINDS);
        assert_eq!(text.len(), 31, "{text}");
        assert_eq!(CausalToken::decode(&text).unwrap(), maria);
        assert_eq!(maria.lsn_for(Kind::Gtid, 1), 42);
        assert_eq!(maria.lsn_for(Kind::Wal, 1), 0);
        // A PostgreSQL cluster and a MariaDB primary of the same number are
        // two clusters.
        let both = maria.merge(&token(&[(1, 7)]));
        assert_eq!(both.positions().len(), 2);
        assert_eq!(CausalToken::decode(&both.to_string()).unwrap(), both);
        assert_eq!((both.lsn_for(Kind::Wal, 1), both.lsn_for(Kind::Gtid, 1)), (7, 42));
        // PostgreSQL's alone stay version 1, as earlier builds wrote them.
        let pg = token(&[(1, 7)]).to_string();
        assert_eq!(URL_SAFE_NO_PAD.decode(&pg).unwrap()[0], VERSION);
        refuses_every_cut_and_change(&text);
        // An unknown kind, its checksum right.
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        bytes[2] = 9;
        let body = bytes.len() - 4;
        let sum = fnv1a(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            CausalToken::decode(&URL_SAFE_NO_PAD.encode(&bytes)),
            Err(Malformed::Kind(9))
        );
    }

    /// Every cut of `text` is refused, never a panic, and so is every
    /// character changed (a checksum or a length).
    fn refuses_every_cut_and_change(text: &str) {
        for cut in 1..text.len() {
            assert!(CausalToken::decode(&text[..cut]).is_err(), "{cut}");
        }
        for at in 0..text.len() {
            let mut altered = text.to_owned().into_bytes();
            altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(CausalToken::decode(&altered).is_err(), "{altered}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_whole_token() {
        let text = token(&[(11, 22)]).to_string();
        assert_eq!(CausalToken::decode(""), Err(Malformed::Empty));
        assert_eq!(CausalToken::decode("  "), Err(Malformed::Empty));
        assert_eq!(CausalToken::decode("not a token!"), Err(Malformed::NotBase64));
        assert_eq!(CausalToken::decode(&"A".repeat(1000)), Err(Malformed::TooLong(1000)));
        refuses_every_cut_and_change(&text);
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        bytes[0] = 3;
        assert_eq!(
            CausalToken::decode(&URL_SAFE_NO_PAD.encode(&bytes)),
            Err(Malformed::Version(3))
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
