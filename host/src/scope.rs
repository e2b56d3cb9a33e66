//! Hint scopes: hints attached to all the work done inside a future, in the
//! current task.

use std::sync::Arc;

use crate::model::Hints;

tokio::task_local! {
    static SCOPE: Arc<Hints>;
}

/// Runs `future` with `hints` attached: every routed operation inside (in
/// this task) sees them without being passed them. Scopes nest, inner keys
/// winning; an operation's own hints win over the scope's. Tasks spawned
/// inside do not inherit the scope.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use dbroute::{Hints, scope, scope_hints};
///
/// scope(Hints::new().with("tenant", "acme").with("region", "eu"), async {
///     scope(Hints::new().with("tenant", "globex"), async {
///         let hints = scope_hints().unwrap();
///         assert_eq!(hints.get("tenant").unwrap(), "globex");
///         assert_eq!(hints.get("region").unwrap(), "eu");
///     })
///     .await;
/// })
/// .await;
/// assert!(scope_hints().is_none());
/// # }
/// ```
pub async fn scope<F: Future>(hints: Hints, future: F) -> F::Output {
    let merged = match scope_hints() {
        Some(outer) => {
            let mut merged = (*outer).clone();
            merged.extend(&hints);
            merged
        }
        None => hints,
    };
    SCOPE.scope(Arc::new(merged), future).await
}

/// The hints of the scopes the current task is inside, merged.
pub fn scope_hints() -> Option<Arc<Hints>> {
    SCOPE.try_with(Arc::clone).ok()
}

/// The hints an operation runs with: its own over its scope's.
pub(crate) enum Effective<'a> {
    Own(&'a Hints),
    Scope(Arc<Hints>),
    Merged(Hints),
}

impl Effective<'_> {
    pub(crate) fn hints(&self) -> &Hints {
        match self {
            Effective::Own(h) => h,
            Effective::Scope(h) => h,
            Effective::Merged(h) => h,
        }
    }
}

#[inline]
pub(crate) fn effective(own: &Hints) -> Effective<'_> {
    match scope_hints() {
        None => Effective::Own(own),
        Some(scope) if own.is_empty() => Effective::Scope(scope),
        Some(scope) => {
            let mut merged = (*scope).clone();
            merged.extend(own);
            Effective::Merged(merged)
        }
    }
}
