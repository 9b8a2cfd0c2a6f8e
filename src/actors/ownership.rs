//! Which endpoints this node's actors send for. In a cluster each endpoint has one owner
//! node (a row in `endpoint_owners`, see `store::owners`); the Scheduler renews this node's
//! rows, and the set it holds is what publishes and the Registry consult. Endpoints are
//! spread over the live nodes by rendezvous hashing, so a node joining or leaving moves
//! only the endpoints it gains or loses.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// This node's endpoints, as of the last renewal, and until when that renewal holds.
pub struct Ownership {
    /// `false` on a single node (SQLite), which owns every endpoint and keeps no rows.
    cluster: bool,
    owned: RwLock<(Arc<HashSet<String>>, i64)>,
}

impl Ownership {
    pub fn new(cluster: bool) -> Self {
        Self { cluster, owned: RwLock::new((Arc::new(HashSet::new()), 0)) }
    }

    pub fn cluster(&self) -> bool {
        self.cluster
    }

    /// The endpoints this node may hold work for now; `None`: every endpoint.
    pub fn snapshot(&self, now: i64) -> Option<Arc<HashSet<String>>> {
        if !self.cluster {
            return None;
        }
        let guard = self.owned.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(if guard.1 > now { guard.0.clone() } else { Arc::new(HashSet::new()) })
    }

    /// What the last renewal returned, valid until `valid_until` (before the rows expire,
    /// so this node stops counting on them before any other node may take them).
    pub fn set(&self, owned: HashSet<String>, valid_until: i64) {
        *self.owned.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            (Arc::new(owned), valid_until);
    }
}

/// The node an endpoint belongs on: the highest hash of (node, endpoint) over the live
/// nodes. Every node computes the same answer from the same list.
pub fn rendezvous<'a>(nodes: &'a [String], endpoint_id: &str) -> Option<&'a str> {
    nodes.iter().max_by_key(|node| (score(node, endpoint_id), node.as_str())).map(String::as_str)
}

/// FNV-1a over the node id, a separator and the endpoint id, then a final mix so that
/// nearby ids spread well.
fn score(node: &str, endpoint_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0u8]).chain(endpoint_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node_{i:02}")).collect()
    }

    #[test]
    fn every_node_agrees_and_the_spread_is_even() {
        let three = nodes(3);
        let mut per_node = std::collections::HashMap::new();
        for i in 0..3000 {
            let ep = format!("ep_{i}");
            let owner = rendezvous(&three, &ep).unwrap();
            let mut reversed = three.clone();
            reversed.reverse();
            assert_eq!(rendezvous(&reversed, &ep), Some(owner), "order of the node list matters not");
            *per_node.entry(owner.to_string()).or_insert(0) += 1;
        }
        for (node, n) in per_node {
            assert!((800..1200).contains(&n), "{node} got {n} of 3000");
        }
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_endpoints() {
        let three = nodes(3);
        let two: Vec<String> = three[..2].to_vec();
        for i in 0..1000 {
            let ep = format!("ep_{i}");
            let before = rendezvous(&three, &ep).unwrap();
            if before != "node_02" {
                assert_eq!(rendezvous(&two, &ep), Some(before));
            }
        }
        assert_eq!(rendezvous(&[], "ep_1"), None);
    }

    #[test]
    fn a_stale_renewal_owns_nothing() {
        let o = Ownership::new(true);
        o.set(["ep_1".to_string()].into_iter().collect(), 1_000);
        assert!(o.snapshot(999).unwrap().contains("ep_1"));
        assert!(o.snapshot(1_000).unwrap().is_empty());
        assert!(Ownership::new(false).snapshot(5).is_none());
    }
}
