//! What a router answers for a read or a write.

use alloc::borrow::Cow;

/// A router's answer for a read or a write: a connection, no opinion, or a
/// refusal.
///
/// A `Decision` may borrow its text from the router (its configuration),
/// from the operation (its model, its hints) or from a literal, or own it.
/// The host reads borrowed text where it is, with no copy (it stays valid
/// until the next call into the instance, as the ABI requires); the SDK
/// keeps owned text until then.
///
/// ```
/// use dbroute_sdk::Decision;
///
/// let replica = Decision::use_connection("replica");
/// assert_eq!(replica.connection(), Some("replica"));
///
/// let tenant = String::from("tenant_acme");
/// assert_eq!(Decision::use_connection(&tenant).connection(), Some("tenant_acme"));
///
/// let refusal = Decision::refuse(format!("writes to {} are forbidden", "Audit"));
/// assert_eq!(refusal.refusal(), Some("writes to Audit are forbidden"));
///
/// assert!(Decision::no_opinion().is_no_opinion());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision<'a>(pub(crate) Choice<'a>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Choice<'a> {
    #[default]
    NoOpinion,
    Use(Cow<'a, str>),
    Refuse(Cow<'a, str>),
}

impl<'a> Decision<'a> {
    /// Use the connection `name`: a `&str` (a literal, or borrowed from the
    /// router or the operation), a `&String` or a `String`.
    ///
    /// The host checks the name: 1 to 64 bytes of `A-Z a-z 0-9 _ - .`, and a
    /// registered connection (or one its connection factory can create).
    /// Any other name is a router fault, never a silent fallback.
    pub fn use_connection(name: impl Into<Cow<'a, str>>) -> Self {
        Decision(Choice::Use(name.into()))
    }

    /// No opinion: the host asks the next router in its chain, and uses
    /// `default` when none has an opinion.
    pub const fn no_opinion() -> Self {
        Decision(Choice::NoOpinion)
    }

    /// Refuse the operation with `message`. The host fails the operation
    /// with an error carrying the message, and does not fall back.
    pub fn refuse(message: impl Into<Cow<'a, str>>) -> Self {
        Decision(Choice::Refuse(message.into()))
    }

    /// The connection chosen, if any.
    pub fn connection(&self) -> Option<&str> {
        match &self.0 {
            Choice::Use(name) => Some(name),
            _ => None,
        }
    }

    /// The refusal's message, if this is a refusal.
    pub fn refusal(&self) -> Option<&str> {
        match &self.0 {
            Choice::Refuse(message) => Some(message),
            _ => None,
        }
    }

    /// Whether this is "no opinion".
    pub fn is_no_opinion(&self) -> bool {
        self.0 == Choice::NoOpinion
    }
}
