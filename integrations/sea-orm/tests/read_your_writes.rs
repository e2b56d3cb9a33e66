//! SeaORM's writes are followed for read-your-writes, as dbroute's own:
//! on a real PostgreSQL primary with a streaming replica (whose replay is
//! paused), a read routed to the replica after a SeaORM write in the same
//! task runs on the primary and sees the row.

// The entity is written as SeaORM's generator writes it.
#![allow(unreachable_pub)]

// dbroute's own throwaway servers (a primary and its replica).
#[allow(dead_code)]
#[path = "../../../tests/integration/pg_server.rs"]
mod pg_server;
#[allow(dead_code)]
#[path = "../../../tests/integration/replica_server.rs"]
mod replica_server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dbroute::Engine;
use dbroute::wasm::{RouterSource, WasmRouter};
use dbroute_sea_orm::EntityRouter;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, Set};

use replica_server::ReplicaCluster;

mod item {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_reads_its_seaorm_writes_from_the_primary() {
    let cluster = tokio::task::spawn_blocking(ReplicaCluster::start).await.unwrap();
    cluster.wait_until_streaming().await;
    let engine = Engine::builder()
        .connection("default", cluster.primary_url("postgres"))
        .connection("replica", cluster.replica_url("postgres"))
        .replica_of("replica", "default")
        .replication_check_every(Duration::ZERO)
        .build()
        .await
        .unwrap();
    // Compiled from WebAssembly text: reads to `replica`, writes to
    // `default`.
    let router = engine
        .load_router(
            WasmRouter::named("refuses"),
            RouterSource::File(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/routers/refuses.wat"),
            ),
        )
        .unwrap();
    engine.set_router(router);
    let orm = EntityRouter::new(engine.clone());
    orm.for_write::<item::Entity>()
        .unwrap()
        .execute_unprepared("CREATE TABLE items (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    // The table reached the replica.
    let deadline = Instant::now() + Duration::from_secs(30);
    while item::Entity::find()
        .all(&orm.connection("replica").unwrap())
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the replica never replayed the table");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    cluster.pause_replay().await;
    let task = orm.clone();
    let (wrote_on, read_on, seen) = tokio::spawn(async move {
        let db = task.for_write::<item::Entity>().unwrap();
        item::ActiveModel { id: Set(1) }.insert(&db).await.unwrap();
        let db = task.for_read::<item::Entity>().unwrap();
        let seen = item::Entity::find_by_id(1).one(&db).await.unwrap();
        (task.for_write::<item::Entity>().unwrap().name(), db.name(), seen)
    })
    .await
    .unwrap();
    assert_eq!(wrote_on.as_str(), "default");
    assert_eq!(read_on.as_str(), "default", "the read gave way to the primary");
    assert_eq!(seen.map(|i| i.id), Some(1));

    // A task that wrote nothing reads from the replica, which has not
    // replayed the row.
    let task = orm.clone();
    let (read_on, seen) = tokio::spawn(async move {
        let db = task.for_read::<item::Entity>().unwrap();
        (db.name(), item::Entity::find_by_id(1).one(&db).await.unwrap())
    })
    .await
    .unwrap();
    assert_eq!(read_on.as_str(), "replica");
    assert_eq!(seen, None);
    cluster.resume_replay().await;
    engine.close().await;
}
