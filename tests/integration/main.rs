//! dbroute's integration tests: one binary, against real PostgreSQL,
//! MariaDB and SQLite, real compiled WebAssembly routers.

mod support;

mod boundary_fuzz;
mod compiled_cache;
mod component_faults;
mod components;
mod conformance;
mod django_semantics;
mod example_routers;
mod fleet;
mod hot_swap;
mod lag_conformance;
mod lag_routing;
mod mariadb_replica_server;
mod mariadb_replicas;
mod mixed_load;
mod observability;
mod pg_server;
mod portable_sql;
mod provisioning;
mod raw_sql;
mod read_your_writes;
mod registry;
mod reliability;
mod replica;
mod replica_server;
mod router_faults;
mod router_watch;
mod schema;
mod sdk_native;
mod secrets;
mod tenants;
mod tiers;
mod transactions;
mod values;
