//! Connection names: validated once, stored inline, compared by bytes.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The longest connection name, in bytes (the ABI's limit).
pub const MAX_NAME_LEN: usize = 64;

/// A connection name: 1 to 64 bytes of `A-Z a-z 0-9 _ - .`.
///
/// Names are stored inline (no heap allocation), so a router's answer can be
/// turned into a name on the routing hot path for free.
///
/// # Examples
///
/// ```
/// use dbroute::ConnectionName;
///
/// let replica = ConnectionName::new("replica")?;
/// assert_eq!(replica.as_str(), "replica");
/// assert!(ConnectionName::new("no spaces").is_err());
///
/// // Checked at compile time when used in a constant.
/// const ANALYTICS: ConnectionName = ConnectionName::from_static("analytics");
/// assert_eq!(ANALYTICS, "analytics");
/// # Ok::<(), dbroute::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct ConnectionName {
    len: u8,
    bytes: [u8; MAX_NAME_LEN],
}

/// Why a string is not a valid connection name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than 64 bytes.
    TooLong,
    /// The name contains a byte outside `A-Z a-z 0-9 _ - .`.
    BadCharacter,
}

impl NameProblem {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            NameProblem::Empty => "it is empty",
            NameProblem::TooLong => "it is longer than 64 bytes",
            NameProblem::BadCharacter => "it has a character outside A-Z a-z 0-9 _ - .",
        }
    }
}

const fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

/// [`is_name_byte`] for every byte: one load per byte on the hot path.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_name_byte(b as u8);
        b += 1;
    }
    table
};

/// Checks `bytes` against the name rules without building anything.
#[inline]
pub(crate) const fn check_name(bytes: &[u8]) -> Result<(), NameProblem> {
    if bytes.is_empty() {
        return Err(NameProblem::Empty);
    }
    if bytes.len() > MAX_NAME_LEN {
        return Err(NameProblem::TooLong);
    }
    let mut i = 0;
    while i < bytes.len() {
        if !NAME_BYTES[bytes[i] as usize] {
            return Err(NameProblem::BadCharacter);
        }
        i += 1;
    }
    Ok(())
}

impl ConnectionName {
    /// The name of the default connection, which always resolves.
    pub const DEFAULT: ConnectionName = ConnectionName::from_static("default");

    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`](crate::Error::InvalidName) when the name is
    /// empty, longer than 64 bytes or has a character outside
    /// `A-Z a-z 0-9 _ - .`.
    pub fn new(name: &str) -> Result<Self, crate::Error> {
        Self::from_bytes(name.as_bytes()).map_err(|problem| crate::Error::InvalidName {
            // A URL given where a name belongs must not show its password.
            name: printable(&crate::connection::url::redact(name)),
            reason: problem.describe(),
        })
    }

    /// Builds a name from raw bytes (for example a router's answer): the
    /// fast path used at run time, and usable in constants.
    #[inline]
    pub(crate) const fn from_bytes(bytes: &[u8]) -> Result<Self, NameProblem> {
        if let Err(problem) = check_name(bytes) {
            return Err(problem);
        }
        let mut out = [0u8; MAX_NAME_LEN];
        let mut i = 0;
        while i < bytes.len() {
            out[i] = bytes[i];
            i += 1;
        }
        Ok(ConnectionName {
            len: bytes.len() as u8,
            bytes: out,
        })
    }

    /// A name known when the program is written.
    ///
    /// # Panics
    ///
    /// Panics (at compile time, in a `const`) when `name` is not a valid name.
    pub const fn from_static(name: &'static str) -> Self {
        match Self::from_bytes(name.as_bytes()) {
            Ok(n) => n,
            Err(_) => panic!("invalid connection name: use 1-64 bytes of A-Z a-z 0-9 _ - ."),
        }
    }

    /// The name's length and bytes as little-endian words (zero-padded),
    /// for the answer cache's plain-word slots.
    #[inline]
    pub(crate) fn to_words(self) -> (u8, [u64; MAX_NAME_LEN / 8]) {
        let mut words = [0u64; MAX_NAME_LEN / 8];
        for (word, bytes) in words.iter_mut().zip(self.bytes.chunks_exact(8)) {
            *word = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
        }
        (self.len, words)
    }

    /// A name back from [`ConnectionName::to_words`], unchanged (the answer
    /// cache checks that with its sequence lock): not checked again, but in
    /// debug builds.
    #[inline]
    pub(crate) fn from_words(len: u8, words: [u64; MAX_NAME_LEN / 8]) -> Self {
        let mut bytes = [0u8; MAX_NAME_LEN];
        for (to, word) in bytes.chunks_exact_mut(8).zip(words) {
            to.copy_from_slice(&word.to_le_bytes());
        }
        let name = ConnectionName { len, bytes };
        debug_assert!(check_name(name.as_bytes()).is_ok());
        debug_assert!(name.bytes[len as usize..].iter().all(|b| *b == 0));
        name
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored, so this cannot fail.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Whether this is the reserved name `default`.
    pub fn is_default(&self) -> bool {
        self.as_bytes() == b"default"
    }
}

/// A short, safe rendering of untrusted text for an error message.
pub(crate) fn printable(text: &str) -> String {
    let mut out: String = text.chars().take(80).flat_map(char::escape_debug).collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

impl PartialEq for ConnectionName {
    /// Compares the whole fixed-size array, not the slices: every
    /// constructor zero-fills the bytes past `len`, so equal names have
    /// equal arrays, and a fixed-size comparison is a few vector
    /// instructions instead of a call to `memcmp` (the registry compares
    /// names on every decision).
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.bytes == other.bytes
    }
}
impl Eq for ConnectionName {}

impl PartialEq<str> for ConnectionName {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl PartialEq<&str> for ConnectionName {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Hash for ConnectionName {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must agree with `str`'s Hash (its bytes, then 0xff), so maps keyed
        // by names accept `&str`.
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

impl Borrow<str> for ConnectionName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialOrd for ConnectionName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ConnectionName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// Serializes as the name's string.
impl serde::Serialize for ConnectionName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Debug for ConnectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ConnectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ConnectionName {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for ConnectionName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        for ok in ["a", "default", "replica-1", "tenant_acme", "db.v2", &"x".repeat(64)] {
            assert_eq!(ConnectionName::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in ["", "with space", "ümlaut", "semi;colon", "slash/", &"x".repeat(65)] {
            assert!(ConnectionName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_url_given_as_a_name_does_not_show_its_password() {
        for url in ["postgres://bob:hunter2@db/app", "postgres://db/app?password=hunter2"] {
            let err = ConnectionName::new(url).unwrap_err();
            assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn names_are_equal_exactly_when_their_text_is() {
        let names = ["a", "ab", "ba", "default", "replica-1", "replica-10", &"x".repeat(64)];
        for a in names {
            for b in names {
                let (x, y) = (ConnectionName::new(a).unwrap(), ConnectionName::new(b).unwrap());
                assert_eq!(x == y, a == b, "{a} == {b}");
                let (len, words) = y.to_words();
                assert_eq!(
                    x == ConnectionName::from_words(len, words),
                    a == b,
                    "{a} == {b} from words"
                );
            }
        }
    }

    #[test]
    fn hashes_like_str_so_maps_accept_str_keys() {
        let mut map = std::collections::HashMap::new();
        map.insert(ConnectionName::new("replica").unwrap(), 1);
        assert_eq!(map.get("replica"), Some(&1));
    }
}
