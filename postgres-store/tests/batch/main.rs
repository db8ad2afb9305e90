//! The store's batch operations against a real PostgreSQL (a throwaway
//! cluster, as `tests/durable` starts one): completions settled many in one
//! statement keep the fencing of one, and batches enqueue in order, with
//! idempotency keys, inside a transaction. Skipped with a message without
//! PostgreSQL, unless `CANDADO_REQUIRE_POSTGRES` is set.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::time::{Duration, Instant};

use candado_postgres::testing::{client, TestCluster};
use candado_postgres::{Completion, NewTask, PgStore, StoreConfig};

async fn store(url: &str) -> PgStore {
    PgStore::connect(StoreConfig::new(url, "jobs"))
        .await
        .unwrap()
}

/// (state, lease holder, output) of task `id`.
async fn row(client: &tokio_postgres::Client, id: i64) -> (String, Option<String>, Option<u64>) {
    let row = client
        .query_one(
            "SELECT state, lease_holder, output FROM candado_tasks WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let output: Option<serde_json::Value> = row.get(2);
    (row.get(0), row.get(1), output.and_then(|o| o.as_u64()))
}

async fn a_batch_of_completions_is_fenced_task_by_task(url: String) {
    let store = store(&url).await;
    let db = client(&url).await.unwrap();
    let ids: Vec<i64> = store
        .enqueue_many((1..=3_u64).map(NewTask::new).collect())
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    // Node a's leases expire and its tasks are rescued, then claimed by b.
    let a = store
        .claim::<u64>("a", &[], 3, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(a.len(), 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rescued = Vec::new();
    while rescued.len() < 3 {
        assert!(Instant::now() < deadline, "not rescued: {rescued:?}");
        rescued.extend(store.rescue().await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = store
        .claim::<u64>("b", &[], 3, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(b.iter().all(|c| c.attempt == 2));
    // The stale holder's whole batch changes nothing.
    let stale: Vec<Completion<u64>> = ids
        .iter()
        .map(|&id| Completion {
            id,
            attempt: 1,
            output: 100,
        })
        .collect();
    assert_eq!(
        store.complete_many("a", &stale).await.unwrap(),
        [false, false, false]
    );
    // Right attempt number, wrong holder: fenced too.
    let wrong_holder = [Completion {
        id: ids[0],
        attempt: 2,
        output: 100_u64,
    }];
    assert_eq!(
        store.complete_many("a", &wrong_holder).await.unwrap(),
        [false]
    );
    for &id in &ids {
        assert_eq!(
            row(&db, id).await,
            ("running".into(), Some("b".into()), None)
        );
    }
    // A mixed batch: the stale attempt in it is fenced, the others count.
    let mixed = [
        Completion {
            id: ids[0],
            attempt: 2,
            output: 10_u64,
        },
        Completion {
            id: ids[1],
            attempt: 1,
            output: 20,
        },
        Completion {
            id: ids[2],
            attempt: 2,
            output: 30,
        },
    ];
    assert_eq!(
        store.complete_many("b", &mixed).await.unwrap(),
        [true, false, true]
    );
    assert_eq!(row(&db, ids[0]).await, ("done".into(), None, Some(10)));
    assert_eq!(
        row(&db, ids[1]).await,
        ("running".into(), Some("b".into()), None)
    );
    assert_eq!(row(&db, ids[2]).await, ("done".into(), None, Some(30)));
    // Settled once: a repeat counts no more.
    assert_eq!(
        store.complete_many("b", &mixed[..1]).await.unwrap(),
        [false]
    );
    assert_eq!(row(&db, ids[0]).await.2, Some(10));
    assert!(store
        .complete_many::<u64>("b", &[])
        .await
        .unwrap()
        .is_empty());
}

async fn a_batch_enqueues_in_order_once_per_key(url: String) {
    let store = store(&url).await;
    let before = store
        .enqueue(NewTask::new(0_u64).idempotency_key("k-old"))
        .await
        .unwrap();
    let batch = vec![
        NewTask::new(1_u64).idempotency_key("k1"),
        NewTask::new(2),
        NewTask::new(3).idempotency_key("k1"),
        NewTask::new(4).idempotency_key("k-old"),
        NewTask::new(5).priority(200),
    ];
    let out = store.enqueue_many(batch).await.unwrap();
    let created: Vec<bool> = out.iter().map(|e| e.created).collect();
    assert_eq!(created, [true, true, false, false, true]);
    assert_eq!(out[2].id, out[0].id, "the key's first task answers");
    assert_eq!(out[3].id, before.id, "the key's earlier task answers");
    assert!(
        out[0].id < out[1].id && out[1].id < out[4].id,
        "ids in order"
    );
    let claimed = store
        .claim::<u64>("a", &[], 10, Duration::from_secs(30))
        .await
        .unwrap();
    let order: Vec<u64> = claimed.iter().map(|c| c.task).collect();
    assert_eq!(order, [0, 1, 2, 5], "FIFO within a priority, then priority");
    assert!(store
        .enqueue_many::<u64>(Vec::new())
        .await
        .unwrap()
        .is_empty());
}

async fn a_batch_exists_if_and_only_if_its_transaction_commits(url: String) {
    let store = store(&url).await;
    let mut db = client(&url).await.unwrap();
    let tx = db.transaction().await.unwrap();
    store
        .enqueue_many_in(&tx, (0..5_u64).map(NewTask::new).collect())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.counts().await.unwrap().ready, 0, "rolled back");
    let tx = db.transaction().await.unwrap();
    store
        .enqueue_many_in(&tx, (0..5_u64).map(NewTask::new).collect())
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap().ready, 0, "not committed yet");
    tx.commit().await.unwrap();
    assert_eq!(store.counts().await.unwrap().ready, 5, "committed");
}

type Test = fn(String) -> Pin<Box<dyn Future<Output = ()>>>;

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), (|url| Box::pin($name(url))) as Test)),*]
    };
}

fn main() {
    let tests = tests![
        a_batch_of_completions_is_fenced_task_by_task,
        a_batch_enqueues_in_order_once_per_key,
        a_batch_exists_if_and_only_if_its_transaction_commits,
    ];
    let Some(cluster) = TestCluster::start_or_skip("batch store tests") else {
        return;
    };
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut ran, mut failed) = (0, Vec::new());
    for (i, (name, test)) in tests.into_iter().enumerate() {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let db = format!("b{i}");
        cluster.create_database(&db).expect("a fresh database");
        let url = cluster.url(&db);
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            actix::System::new().block_on(test(url));
        }));
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        eprintln!("test {name} ... {verdict} ({:.2?})", started.elapsed());
        if outcome.is_err() {
            failed.push(name);
        }
    }
    cluster.stop();
    eprintln!(
        "test result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
