//! What the `otp_*` tests share: a child that exits on command in each of
//! the ways OTP tells apart, a factory whose next start can be made to run,
//! decline (OTP's `ignore`) or fail, and readers of a supervisor's state.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};
use candado::{
    ChildCount, ChildInfo, ChildLink, ChildSpec, Event, EventKind, EventStream, StartResult,
    SupervisorRef, SupervisorSpec,
};

use crate::common::{run_paused, start_local, Echo};

/// How a child ends itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// `ChildLink::stop`: OTP's `normal`.
    Normal,
    /// `ChildLink::shutdown`: OTP's `shutdown`.
    Shutdown,
    /// `ChildLink::shutdown_with`: OTP's `{shutdown, Term}`.
    ShutdownWith,
    /// `ChildLink::fail`: a reason of its own, OTP's `exit(Reason)`.
    Failed,
    /// A panic in a handler: OTP's crash.
    Panic,
}

impl How {
    pub const ALL: [How; 5] = [
        How::Normal,
        How::Shutdown,
        How::ShutdownWith,
        How::Failed,
        How::Panic,
    ];

    /// OTP's rule: is this exit abnormal?
    pub fn is_abnormal(self) -> bool {
        matches!(self, How::Failed | How::Panic)
    }
}

/// Makes an [`Echo`] end itself as said.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Exit(pub How);

impl Handler<Exit> for Echo {
    type Result = ();
    fn handle(&mut self, msg: Exit, ctx: &mut Context<Self>) {
        match msg.0 {
            How::Normal => self.link().stop(ctx),
            How::Shutdown => self.link().shutdown(ctx),
            How::ShutdownWith => self.link().shutdown_with(ctx, "drained"),
            How::Failed => self.link().fail(ctx, "lost its connection"),
            How::Panic => panic!("boom"),
        }
    }
}

/// What the next start of a [`Switch`] worker does.
pub const RUN: u8 = 0;
/// See [`RUN`].
pub const IGNORE: u8 = 1;
/// See [`RUN`].
pub const FAIL: u8 = 2;

/// Decides the next starts of the workers built by [`Switch::worker`].
#[derive(Clone, Default)]
pub struct Switch(Arc<AtomicU8>);

impl Switch {
    pub fn new(mode: u8) -> Self {
        Self(Arc::new(AtomicU8::new(mode)))
    }

    pub fn set(&self, mode: u8) {
        self.0.store(mode, Ordering::SeqCst);
    }

    /// A worker whose factory runs, ignores or fails as the switch says.
    pub fn worker(&self, id: &str) -> ChildSpec {
        let mode = self.0.clone();
        ChildSpec::try_worker(id, move |link: ChildLink| {
            match mode.load(Ordering::SeqCst) {
                RUN => StartResult::Run(Echo::new(link)),
                IGNORE => StartResult::Ignore,
                _ => Err::<Echo, _>("database unreachable").into(),
            }
        })
    }
}

/// A child that stops normally as soon as it has started.
pub struct Done {
    pub link: ChildLink,
}

impl Actor for Done {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.link.stop(ctx);
    }
}

/// Runs `body` on virtual time against `spec`, started as the root of a
/// local runtime ([`start_local`]) with its events; then shuts that
/// runtime down.
pub fn with_local_tree(
    spec: SupervisorSpec,
    body: impl AsyncFnOnce(&SupervisorRef, &mut EventStream),
) {
    run_paused(|| async {
        let (runtime, mut events, sup) = start_local(spec).await;
        body(&sup, &mut events).await;
        runtime.shutdown().await;
    });
}

/// The child `id`, if the supervisor keeps it.
pub async fn child(sup: &SupervisorRef, id: &str) -> Option<ChildInfo> {
    sup.children()
        .await
        .expect("supervisor runs")
        .into_iter()
        .find(|c| c.id == id)
}

/// OTP's `get_child_counts`: `[specs, active, supervisors, workers]`.
pub async fn counts(sup: &SupervisorRef) -> [usize; 4] {
    let ChildCount {
        specs,
        active,
        supervisors,
        workers,
    } = sup.count_children().await.expect("supervisor runs");
    [specs, active, supervisors, workers]
}

/// The kinds of `events`, without the ones every test sees.
pub fn kinds(events: &[Event]) -> Vec<&EventKind> {
    events.iter().map(|e| &e.kind).collect()
}

/// Waits (on virtual time, at most a minute) for `sup` to stop and returns
/// why; a supervisor still running by then fails the test instead of
/// hanging it.
pub async fn joined(sup: &SupervisorRef) -> candado::ExitReason {
    tokio::time::timeout(std::time::Duration::from_secs(60), sup.join())
        .await
        .unwrap_or_else(|_| panic!("supervisor `{}` is still running", sup.path()))
}
