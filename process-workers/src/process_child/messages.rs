//! What a process child answers: calls and pid requests.

use actix::prelude::*;

use super::ProcessChild;
use crate::call::{Call, Pid};
use crate::connection::WorkerProcess;
use crate::error::CallError;

impl Handler<Call> for ProcessChild {
    type Result = ResponseFuture<Result<Vec<u8>, CallError>>;

    fn handle(&mut self, Call(payload): Call, _ctx: &mut Context<Self>) -> Self::Result {
        let answer = match self.process() {
            Some(process) => {
                let answer = process.call(payload);
                self.watch();
                futures_util::future::Either::Left(answer)
            }
            None => {
                futures_util::future::Either::Right(std::future::ready(Err(CallError::NotRunning)))
            }
        };
        // Not tied to the actor: a call in flight when the process dies gets
        // the exit reason, not a closed mailbox.
        Box::pin(answer)
    }
}

impl Handler<Pid> for ProcessChild {
    type Result = Option<u32>;

    fn handle(&mut self, _: Pid, _ctx: &mut Context<Self>) -> Option<u32> {
        self.process.as_ref().map(WorkerProcess::pid)
    }
}
