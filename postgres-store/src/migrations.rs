//! Versioned schema migrations, applied at start under an advisory lock so
//! that nodes starting together apply each one once.

use tokio_postgres::Client;

use crate::StoreError;

/// The migrations, in order: (version, SQL). Never edit one that shipped:
/// add the next.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE candado_tasks (
    id              BIGSERIAL PRIMARY KEY,
    queue           TEXT NOT NULL,
    priority        SMALLINT NOT NULL,
    capability      TEXT,
    dependency      TEXT,
    payload         JSONB NOT NULL,
    state           TEXT NOT NULL DEFAULT 'ready'
                    CHECK (state IN ('ready', 'running', 'done', 'dead')),
    attempt         INTEGER NOT NULL DEFAULT 0,
    max_retries     INTEGER NOT NULL,
    timeout_ms      BIGINT,
    run_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_holder    TEXT,
    lease_until     TIMESTAMPTZ,
    idempotency_key TEXT,
    history         JSONB NOT NULL DEFAULT '[]'::jsonb,
    output          JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ
);
CREATE INDEX candado_tasks_ready ON candado_tasks (queue, priority, id)
    WHERE state = 'ready';
CREATE INDEX candado_tasks_leases ON candado_tasks (lease_until)
    WHERE state = 'running';
CREATE INDEX candado_tasks_dead ON candado_tasks (queue, id)
    WHERE state = 'dead';
CREATE UNIQUE INDEX candado_tasks_idempotency ON candado_tasks (queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE candado_breakers (
    queue       TEXT NOT NULL,
    dependency  TEXT NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    open_until  TIMESTAMPTZ,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, dependency)
);
"#,
    ),
    // The fence of every report is the lease holder: a task has one
    // exactly while it runs. Reports then need not name the state, and a
    // planner cannot answer them by walking the index of running tasks
    // (whose entries for finished tasks stay until a vacuum) instead of
    // the primary key.
    (
        2,
        "ALTER TABLE candado_tasks ADD CONSTRAINT candado_tasks_held_while_running
             CHECK ((state = 'running') = (lease_holder IS NOT NULL))",
    ),
];

/// The schema version this build expects.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Applies the migrations not applied yet; returns the versions applied.
pub(crate) async fn migrate(client: &mut Client) -> Result<Vec<i32>, StoreError> {
    let tx = client.transaction().await?;
    // One node at a time; the others wait here, then find nothing to do.
    tx.execute("SELECT pg_advisory_xact_lock(7406512260218115)", &[])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS candado_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM candado_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for &(version, sql) in MIGRATIONS {
        if done.contains(&version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO candado_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        applied.push(version);
    }
    if let Some(&newest) = done.iter().max() {
        if newest > SCHEMA_VERSION {
            return Err(StoreError::Invalid {
                field: "schema",
                problem: format!(
                    "the database is at schema version {newest}, newer than this build's {SCHEMA_VERSION}"
                ),
            });
        }
    }
    tx.commit().await?;
    Ok(applied)
}
