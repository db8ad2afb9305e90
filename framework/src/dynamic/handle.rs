//! The handle to a running dynamic supervisor.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, Context};

use super::slots::Slot;
use super::spec::{Factory, Template};
use super::DynamicError;
use crate::{ChildInfo, ChildLink, ChildSpec, StartResult, SupervisorRef};

/// Where the dynamic supervisor runs.
pub(super) enum Place {
    /// A root of a runtime: its handle never changes.
    Root(SupervisorRef),
    /// A child of `parent`: found by id, again after each restart.
    Under {
        parent: SupervisorRef,
        id: String,
        /// The incarnation found last (looked up again once it stops).
        current: Mutex<Option<SupervisorRef>>,
    },
}

impl Place {
    pub(super) fn under(parent: SupervisorRef, id: &str) -> Self {
        Place::Under {
            parent,
            id: id.to_owned(),
            current: Mutex::new(None),
        }
    }
}

/// A running dynamic supervisor (see [`DynamicSpec`](crate::DynamicSpec)):
/// starts children from its template at run time, counts them, stops them.
/// Cheap to clone.
///
/// Children are one-for-one: a crash restarts only that child, within the
/// supervisor's intensity and with its backoff, and emits the usual events
/// under the supervisor's path. A child's address changes with every
/// restart: look it up again with [`worker`](Self::worker).
pub struct DynamicSupervisor<A, Args> {
    template: Arc<Template<A, Args>>,
    place: Arc<Place>,
}

/// A child just started: its id (for [`DynamicSupervisor::terminate_child`]
/// and lookups) and the address of its first incarnation.
pub struct DynamicChild<A: Actor> {
    id: String,
    addr: Option<Addr<A>>,
}

impl<A: Actor> DynamicChild<A> {
    /// The child's id under its dynamic supervisor (unique, never reused).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The address of the incarnation that started; `None` when its
    /// factory declined to start it ([`StartResult::Ignore`]: nothing was
    /// added), or when it had already exited by the time it was read (it
    /// may be restarting: ask [`DynamicSupervisor::worker`]).
    pub fn addr(&self) -> Option<&Addr<A>> {
        self.addr.as_ref()
    }
}

impl<A: Actor> fmt::Debug for DynamicChild<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicChild")
            .field("id", &self.id)
            .field("running", &self.addr.as_ref().is_some_and(Addr::connected))
            .finish()
    }
}

/// One child's factory: the template's, bound to the child's arguments and
/// holding its slot, which is freed when the supervisor drops the spec.
struct Bound<A, Args> {
    factory: Factory<A, Args>,
    args: Args,
    _slot: Slot,
}

impl<A, Args: Clone> Bound<A, Args> {
    fn build(&self, link: ChildLink) -> StartResult<A> {
        (self.factory)(link, self.args.clone())
    }
}

impl<A, Args> DynamicSupervisor<A, Args>
where
    A: Actor<Context = Context<A>>,
    Args: Clone + Send + Sync + 'static,
{
    pub(super) fn new(template: Arc<Template<A, Args>>, place: Place) -> Self {
        Self {
            template,
            place: Arc::new(place),
        }
    }

    /// The dynamic supervisor's id.
    pub fn id(&self) -> &str {
        &self.template.id
    }

    fn stopped(&self) -> DynamicError {
        DynamicError::Stopped(self.template.id.to_string())
    }

    /// The running supervisor behind this handle.
    pub async fn supervisor(&self) -> Result<SupervisorRef, DynamicError> {
        match &*self.place {
            Place::Root(root) if root.is_running() => Ok(root.clone()),
            Place::Root(_) => Err(self.stopped()),
            Place::Under {
                parent,
                id,
                current,
            } => {
                let cached = current
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .filter(SupervisorRef::is_running);
                if let Some(found) = cached {
                    return Ok(found);
                }
                let found = parent.supervisor(id).await.map_err(|_| self.stopped())?;
                *current.lock().unwrap_or_else(|p| p.into_inner()) = Some(found.clone());
                Ok(found)
            }
        }
    }

    /// Starts a child built from `args` and returns once it runs (its
    /// `started` hook has run on its worker thread). The restart type and
    /// shutdown policy are the template's; restarts build it from a clone of
    /// the same `args`.
    ///
    /// Errors: [`DynamicError::Full`] when `max_children` children are held
    /// (checked before anything is sent, so it costs no message),
    /// [`DynamicError::Stopped`] once the supervisor has stopped, and
    /// [`SupervisorError::StartFailed`](crate::SupervisorError::StartFailed)
    /// (inside [`DynamicError::Supervisor`]) when the factory panicked or
    /// failed ([`DynamicSpec::try_new`](crate::DynamicSpec::try_new)).
    /// The cost does not grow with the number of children.
    pub async fn start_child(&self, args: Args) -> Result<DynamicChild<A>, DynamicError> {
        let slot = self
            .template
            .slots
            .take()
            .ok_or_else(|| DynamicError::Full {
                supervisor: self.template.id.to_string(),
                max: self.template.slots.max(),
            })?;
        let supervisor = self.supervisor().await?;
        let n = self.template.next.fetch_add(1, Ordering::Relaxed);
        let id = n.to_string();
        let bound = Bound {
            factory: self.template.factory.clone(),
            args,
            _slot: slot,
        };
        let spec = ChildSpec::try_worker(id.clone(), move |link| bound.build(link))
            .restart(self.template.restart)
            .shutdown(self.template.shutdown);
        let addr = supervisor
            .add_child_with_addr(spec)
            .await?
            .and_then(|any| any.downcast::<Addr<A>>().ok())
            .map(|addr| *addr);
        Ok(DynamicChild { id, addr })
    }

    /// Stops child `id` (within its shutdown timeout, then killed) and
    /// forgets it, freeing its slot.
    pub async fn terminate_child(&self, id: &str) -> Result<(), DynamicError> {
        Ok(self.supervisor().await?.remove_child(id).await?)
    }

    /// The address of child `id`'s running incarnation.
    pub async fn worker(&self, id: &str) -> Result<Addr<A>, DynamicError> {
        Ok(self.supervisor().await?.worker::<A>(id).await?)
    }

    /// Every child held, in start order, with its state, restart count and
    /// last exit. This walks the children (O(n)); to count them, use
    /// [`count_children`](Self::count_children).
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, DynamicError> {
        Ok(self.supervisor().await?.children().await?)
    }

    /// The children held, running or waiting for a restart: one atomic read,
    /// no message. Zero once the supervisor has stopped.
    pub fn count_children(&self) -> usize {
        self.template.slots.held()
    }

    /// The bound set with [`DynamicSpec::max_children`](crate::DynamicSpec::max_children).
    pub fn max_children(&self) -> usize {
        self.template.slots.max()
    }

    /// Stops every child (newest first, each within its shutdown timeout)
    /// and the supervisor. For a child of a tree, this is a normal exit its
    /// parent judges by the child's restart type (a permanent child
    /// supervisor is started again, empty).
    pub async fn shutdown(&self) -> Result<crate::ExitReason, DynamicError> {
        Ok(self.supervisor().await?.shutdown().await)
    }
}

impl<A, Args> Clone for DynamicSupervisor<A, Args> {
    fn clone(&self) -> Self {
        Self {
            template: self.template.clone(),
            place: self.place.clone(),
        }
    }
}

impl<A, Args> fmt::Debug for DynamicSupervisor<A, Args> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicSupervisor")
            .field("id", &self.template.id)
            .field("children", &self.template.slots.held())
            .field("max_children", &self.template.slots.max())
            .finish()
    }
}
