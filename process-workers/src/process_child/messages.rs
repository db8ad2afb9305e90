//! What a process child answers: the worker's frames, calls, pid requests.

use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::ProcessChild;
use crate::call::{Call, Pid};
use crate::error::{CallError, ProtocolError};
use crate::protocol::{ToChild, ToParent};

impl ProcessChild {
    pub(super) fn send_call(
        &mut self,
        payload: Vec<u8>,
    ) -> Result<oneshot::Receiver<Result<Vec<u8>, CallError>>, CallError> {
        let max = self.options.max_frame;
        // The id and the enum's tags take at most 16 bytes.
        if payload.len().saturating_add(16) > max {
            return Err(CallError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let requests = match &self.requests {
            Some(requests) if !self.ending && !self.stopping => requests,
            _ => return Err(CallError::NotRunning),
        };
        let id = self.next_id;
        self.next_id += 1;
        requests
            .send(ToChild::Call { id, payload })
            .map_err(|_| CallError::NotRunning)?;
        let (reply, answer) = oneshot::channel();
        let first = self.pending.is_empty();
        self.pending.insert(id, reply);
        if first {
            self.watch();
        }
        Ok(answer)
    }
}

impl StreamHandler<Result<ToParent, ProtocolError>> for ProcessChild {
    fn handle(&mut self, item: Result<ToParent, ProtocolError>, ctx: &mut Context<Self>) {
        match item {
            Ok(ToParent::Heartbeat) => {
                self.last_heartbeat = Some(Instant::now());
                if self.pending.is_empty() {
                    self.link.progress();
                }
            }
            Ok(ToParent::Progress { id }) if self.pending.contains_key(&id) => self.link.progress(),
            Ok(ToParent::Progress { .. }) => {}
            Ok(ToParent::Reply { id, result }) => {
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(result.map_err(CallError::Handler));
                    self.link.add_tasks_done(1);
                }
                self.watch();
            }
            Ok(ToParent::Ready { .. }) => self.protocol_failure(
                ctx,
                ProtocolError::Unexpected {
                    expected: "Heartbeat, Progress or Reply",
                    got: "Ready".into(),
                },
            ),
            // The pipe closed or broke: the process's exit says why.
            Err(ProtocolError::Closed | ProtocolError::Io(_)) => {}
            Err(e) => self.protocol_failure(ctx, e),
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // Stdout closed: the reaper reports the exit.
    }
}

impl Handler<Call> for ProcessChild {
    type Result = ResponseFuture<Result<Vec<u8>, CallError>>;

    fn handle(&mut self, Call(payload): Call, _ctx: &mut Context<Self>) -> Self::Result {
        let sent = self.send_call(payload);
        Box::pin(async move { sent?.await.unwrap_or(Err(CallError::NotRunning)) })
    }
}

impl Handler<Pid> for ProcessChild {
    type Result = Option<u32>;

    fn handle(&mut self, _: Pid, _ctx: &mut Context<Self>) -> Option<u32> {
        self.pid
    }
}
