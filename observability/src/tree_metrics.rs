//! The supervision trees' gauges, from the scrape's tree snapshots.

use std::fmt;

use candado::SupervisorInfo;
use prometheus_client::encoding::DescriptorEncoder;

use crate::encode::{family, flag, gauges};
use crate::labels::{self, CHILD_STATES, HEALTHS};
use crate::snapshot::TreeReading;
use crate::TreeSnapshot;

/// Writes the tree families: whether each tree answered, and per
/// supervisor its children by state and by health, the isolated ones, and
/// its restarts in the current intensity period.
pub(crate) fn encode(trees: &[TreeReading], encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
    gauges(
        encoder,
        family(
            "tree_up",
            "1 if the tree's supervisors answered this scrape, 0 if the tree is down or did not answer in time.",
        ),
        trees
            .iter()
            .map(|t| ([("tree", t.root.as_str())], flag(t.tree.is_some()))),
    )?;
    let supervisors: Vec<&SupervisorInfo> = trees
        .iter()
        .filter_map(|t| t.tree.as_ref())
        .flat_map(TreeSnapshot::supervisors)
        .collect();
    gauges(
        encoder,
        family(
            "children",
            "Children of a supervisor by lifecycle state (starting, running, stopping, restarting, stopped).",
        ),
        supervisors.iter().flat_map(|s| {
            CHILD_STATES.into_iter().map(|state| {
                let n = s.children.iter().filter(|c| c.status == state).count();
                let labels = [
                    ("supervisor", s.path.as_str()),
                    ("state", labels::child_state(state)),
                ];
                (labels, n)
            })
        }),
    )?;
    gauges(
        encoder,
        family(
            "children_health",
            "Children of a supervisor by health as its strategies see it (healthy, degraded, critical).",
        ),
        supervisors.iter().flat_map(|s| {
            HEALTHS.into_iter().map(|health| {
                let n = s.children.iter().filter(|c| c.health == health).count();
                let labels = [
                    ("supervisor", s.path.as_str()),
                    ("health", labels::health(health)),
                ];
                (labels, n)
            })
        }),
    )?;
    gauges(
        encoder,
        family(
            "children_isolated",
            "Children of a supervisor that no work may be routed to now.",
        ),
        supervisors.iter().map(|s| {
            let n = s.children.iter().filter(|c| c.isolated).count();
            ([("supervisor", s.path.as_str())], n)
        }),
    )?;
    gauges(
        encoder,
        family(
            "supervisor_restarts_in_period",
            "Restarts a supervisor counted in its current intensity period (past its limit it gives up).",
        ),
        supervisors
            .iter()
            .map(|s| ([("supervisor", s.path.as_str())], s.restarts_in_period)),
    )
}
