//! Named connections: URLs, pools, the registry, and the handle that runs
//! SQL.

pub(crate) mod dispatch;
pub(crate) mod handle;
pub(crate) mod pool;
pub(crate) mod registry;
pub(crate) mod stats;
pub(crate) mod url;
pub(crate) mod value;
