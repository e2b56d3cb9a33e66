//! Named connections: URLs, pools, the registry, the handle that runs
//! SQL, and replicas.

pub(crate) mod dispatch;
pub(crate) mod gtid;
pub(crate) mod handle;
pub(crate) mod lent;
pub(crate) mod pool;
pub(crate) mod portable;
pub(crate) mod registry;
pub(crate) mod replication;
pub(crate) mod row_de;
pub(crate) mod stats;
pub(crate) mod typed_sql;
pub(crate) mod url;
pub(crate) mod value;
pub(crate) mod value_types;
