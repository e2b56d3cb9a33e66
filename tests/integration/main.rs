//! dbroute's integration tests: one binary, against real PostgreSQL,
//! MariaDB and SQLite, real compiled WebAssembly routers.

mod support;

mod example_routers;
mod hot_swap;
mod raw_sql;
mod registry;
mod router_faults;
mod schema;
mod tenants;
mod transactions;
