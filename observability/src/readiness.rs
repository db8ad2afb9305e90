//! Readiness: whether the application can take work now, and why not.

use candado::HealthStatus;
use candado_pool::PoolMetrics;
use serde::{Deserialize, Serialize};

use crate::snapshot::TreeReading;

/// The answer of the readiness probe ([`Observer::readiness`](crate::Observer::readiness),
/// `/readyz`): ready when every observed tree answers and none is critical,
/// and every observed pool has a worker in service.
///
/// Critical is the one health that means a supervisor cannot heal a child
/// (the heal limit refused the restart a strategy ordered); degraded
/// children keep the application ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Whether the application can take work now.
    pub ready: bool,
    /// Why not, one sentence per cause (empty when ready).
    pub reasons: Vec<String>,
}

/// Judges the trees and pools a probe read.
pub(crate) fn judge(trees: &[TreeReading], pools: &[(String, Option<PoolMetrics>)]) -> Readiness {
    let mut reasons = Vec::new();
    for reading in trees {
        let Some(tree) = &reading.tree else {
            reasons.push(format!(
                "tree `{}` is down or did not answer in time",
                reading.root
            ));
            continue;
        };
        for supervisor in tree.supervisors() {
            let critical = supervisor
                .children
                .iter()
                .filter(|c| c.health == HealthStatus::Critical);
            for child in critical {
                let why = child.health_reason.as_deref().unwrap_or("no reason given");
                reasons.push(format!(
                    "`{}/{}` is critical: {why}",
                    supervisor.path, child.id
                ));
            }
        }
    }
    for (name, metrics) in pools {
        match metrics {
            None => reasons.push(format!("pool `{name}` did not answer in time")),
            Some(m) if m.health.ready => {}
            Some(m) => reasons.push(match &m.health.failed {
                Some(why) => format!("pool `{name}` failed: {why}"),
                None => format!("pool `{name}` has no worker in service"),
            }),
        }
    }
    Readiness {
        ready: reasons.is_empty(),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{child, tree};
    use crate::TreeSnapshot;

    fn reading(tree: Option<TreeSnapshot>) -> TreeReading {
        TreeReading {
            root: "app".into(),
            tree,
        }
    }

    #[test]
    fn a_critical_child_deep_in_a_tree_or_a_silent_tree_makes_it_unready() {
        let degraded = tree("app", vec![child("a", HealthStatus::Degraded)], vec![]);
        assert!(judge(&[reading(Some(degraded))], &[]).ready);

        let deep = tree(
            "app",
            vec![child("a", HealthStatus::Healthy)],
            vec![tree(
                "app/db",
                vec![child("conn", HealthStatus::Critical)],
                vec![],
            )],
        );
        let verdict = judge(&[reading(Some(deep))], &[]);
        assert!(!verdict.ready);
        assert_eq!(
            verdict.reasons,
            ["`app/db/conn` is critical: heal limit reached"]
        );

        let silent = judge(&[reading(None)], &[("jobs".into(), None)]);
        assert_eq!(silent.reasons.len(), 2, "{silent:?}");
    }
}
