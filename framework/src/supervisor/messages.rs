//! Messages a supervisor handles: its children's reports (it is their
//! [`Parent`]) and requests from its handle.

use actix::{Addr, Context, Handler, Message};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Supervisor;
use crate::info::{ChildCount, SupervisorInfo};
use crate::parent::{ChildExited, ChildSignal, ChildStarted, ChildrenStarted, Parent};
use crate::{ChildSpec, ExitReason, SupervisorError};

/// A supervisor's children report to its mailbox. `do_send` never blocks
/// and never panics, even once the supervisor is gone.
impl Parent for Addr<Supervisor> {
    fn started(&self, report: ChildStarted) {
        self.do_send(report);
    }

    fn started_all(&self, reports: Vec<ChildStarted>) {
        self.do_send(ChildrenStarted(reports));
    }

    fn exited(&self, report: ChildExited) {
        self.do_send(report);
    }

    fn signal(&self, report: ChildSignal) {
        self.do_send(report);
    }
}

impl Handler<ChildSignal> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildSignal, ctx: &mut Context<Self>) {
        let current = self
            .children
            .get(&msg.key)
            .is_some_and(|c| c.incarnation == msg.incarnation && c.is_running());
        if current {
            self.dispatch(msg.key, &msg.signal, ctx);
        }
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, SupervisorError>>;

/// The answer to an added child: its address, when asked for and running.
pub(crate) type Added = Option<Box<dyn std::any::Any + Send>>;

/// Requests from [`SupervisorRef`](crate::SupervisorRef).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum Request {
    Inspect(oneshot::Sender<SupervisorInfo>),
    /// A child to add; `bool`: answer with its address.
    Add(ChildSpec, bool, Reply<Added>),
    Remove(String, Reply<()>),
    Terminate(String, Reply<()>),
    Restart(String, Reply<()>),
    Delete(String, Reply<()>),
    Count(oneshot::Sender<ChildCount>),
    Lookup(String, Reply<Box<dyn std::any::Any + Send>>),
    Shutdown,
}

impl Handler<ChildStarted> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildStarted, ctx: &mut Context<Self>) {
        self.on_child_started(msg, ctx);
    }
}

impl Handler<ChildrenStarted> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildrenStarted, ctx: &mut Context<Self>) {
        for report in msg.0 {
            self.on_child_started(report, ctx);
        }
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        self.on_child_exited(msg, ctx);
    }
}

impl Handler<Request> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Request, ctx: &mut Context<Self>) {
        match msg {
            Request::Inspect(reply) => {
                let _ = reply.send(self.info(Instant::now()));
            }
            Request::Add(spec, with_addr, reply) => {
                if let Err(e) = self.check_addable(&spec) {
                    let _ = reply.send(Err(e));
                } else {
                    self.add_child(spec, with_addr, reply, ctx);
                }
            }
            Request::Remove(id, reply) => self.remove_child(&id, reply, ctx),
            Request::Terminate(id, reply) => self.terminate_child(&id, reply, ctx),
            Request::Restart(id, reply) => self.restart_child(&id, reply, ctx),
            Request::Delete(id, reply) => {
                let _ = reply.send(self.delete_stopped_child(&id));
            }
            Request::Count(reply) => {
                let _ = reply.send(self.count_children());
            }
            Request::Lookup(id, reply) => {
                let _ = reply.send(self.lookup(&id));
            }
            Request::Shutdown => self.begin_shutdown(ExitReason::Shutdown, ctx),
        }
    }
}
