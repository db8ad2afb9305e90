//! Wake-ups: a connection of its own `LISTEN`s on the channel committed
//! enqueues notify, so a node claims new work at once instead of at its
//! next poll. Polling stays as the fallback: a lost connection (it is
//! re-established every second) or a missed notification only delays work.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::store::CHANNEL;

/// How long a lost listening connection waits before it is opened again.
const RECONNECT: Duration = Duration::from_secs(1);

/// Notifications for one queue. Dropping it stops listening.
#[derive(Debug)]
pub struct Wakeups {
    notify: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Wakeups {
    /// Listens for the enqueues of `queue` on the database at `url`.
    /// Needs a tokio runtime.
    pub fn listen(url: &str, queue: &str) -> Self {
        let notify = Arc::new(Notify::new());
        let task = tokio::spawn(listen(url.to_owned(), queue.to_owned(), notify.clone()));
        Self { notify, task }
    }

    /// Waits for a notification, or `fallback` at most. Returns whether a
    /// notification came.
    pub async fn wait(&self, fallback: Duration) -> bool {
        tokio::time::timeout(fallback, self.notify.notified())
            .await
            .is_ok()
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(url: String, queue: String, notify: Arc<Notify>) {
    loop {
        match tokio_postgres::connect(&url, NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let statement = format!("LISTEN {CHANNEL}");
                let ready = {
                    // The connection must be polled for the LISTEN to complete.
                    let mut listening = std::pin::pin!(client.batch_execute(&statement));
                    loop {
                        tokio::select! {
                            done = &mut listening => break done.is_ok(),
                            message = messages.next() => if message.is_none() { break false },
                        }
                    }
                };
                if ready {
                    // Whatever was enqueued before we listened: look once.
                    notify.notify_one();
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) if n.payload() == queue => {
                                notify.notify_one();
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "the listening connection failed");
                                break;
                            }
                        }
                    }
                }
                drop(client);
            }
            Err(e) => tracing::warn!(error = %e, "cannot open the listening connection"),
        }
        tokio::time::sleep(RECONNECT).await;
    }
}
